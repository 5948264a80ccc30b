//! The benchmark harness shared by the host's suites: interleaved rounds, medians, and the
//! report (a table on stdout with each ratio's change against the suite's baseline,
//! `target/bench/<suite>.json`).

#![allow(dead_code)]

pub mod baseline;

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Row {
    pub case: String,
    pub ours: String,
    pub anchor: String,
    pub ours_ns: f64,
    pub anchor_ns: f64,
}

pub struct Report {
    suite: &'static str,
    rows: Vec<Row>,
}

impl Report {
    pub fn new(suite: &'static str) -> Self {
        Self { suite, rows: Vec::new() }
    }

    pub fn add(&mut self, case: &str, ours: &str, anchor: &str, ours_ns: f64, anchor_ns: f64) {
        println!("  {case}: {ours} {} / {anchor} {}", fmt_ns(ours_ns), fmt_ns(anchor_ns));
        self.rows.push(Row { case: case.into(), ours: ours.into(), anchor: anchor.into(), ours_ns, anchor_ns });
    }

    /// Prints the table (each ratio beside its change against the baseline) and writes the
    /// JSON file.
    pub fn finish(self) {
        let baseline = baseline::Baseline::load(env!("CARGO_MANIFEST_DIR"), self.suite);
        let speedups = || self.rows.iter().map(|r| (baseline::key(&r.case, &r.ours, &r.anchor), r.anchor_ns / r.ours_ns));
        println!();
        println!("| case | ours | anchor | ours | anchor | speedup (anchor/ours) | against the baseline |");
        println!("|---|---|---|---|---|---|---|");
        for (r, (key, speedup)) in self.rows.iter().zip(speedups()) {
            println!(
                "| {} | {} | {} | {} | {} | {speedup:.2}x | {} |",
                r.case,
                r.ours,
                r.anchor,
                fmt_ns(r.ours_ns),
                fmt_ns(r.anchor_ns),
                baseline.change(&key, speedup)
            );
        }
        let slid = baseline.slid(speedups());
        if slid > 0 {
            println!("\n{slid} ratio(s) fell more than {:.0}% below the baseline", baseline::SLIDE * 100.0);
        }
        baseline.record_if_asked(speedups());
        let json: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"case\":{:?},\"ours\":{:?},\"anchor\":{:?},\"ours_ns\":{:.1},\"anchor_ns\":{:.1},\"speedup\":{:.4}}}",
                    r.case,
                    r.ours,
                    r.anchor,
                    r.ours_ns,
                    r.anchor_ns,
                    r.anchor_ns / r.ours_ns
                )
            })
            .collect();
        let dir = target_dir().join("bench");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.json", self.suite));
        std::fs::write(&path, format!("[\n  {}\n]\n", json.join(",\n  "))).unwrap();
        println!("\nwrote {}", path.display());
    }
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// How many iterations fill about `target` of time.
fn calibrate(mut once: impl FnMut() -> Duration, target: Duration) -> u64 {
    let mut n = 1u64;
    loop {
        let took = (0..n).map(|_| once()).sum::<Duration>();
        if took >= target / 4 || n >= 1 << 24 {
            return ((n as f64) * target.as_secs_f64() / took.as_secs_f64().max(1e-9)).ceil().max(1.0) as u64;
        }
        n *= 4;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `ours` and `anchor` in interleaved rounds and returns the median ns per iteration of
/// each. `ours(n)` and `anchor(n)` run `n` iterations and return the time they took.
pub fn compare(rounds: usize, mut ours: impl FnMut(u64) -> Duration, mut anchor: impl FnMut(u64) -> Duration) -> (f64, f64) {
    let per_round = Duration::from_millis(150);
    let n_ours = calibrate(|| ours(1), per_round);
    let n_anchor = calibrate(|| anchor(1), per_round);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(ours(n_ours).as_nanos() as f64 / n_ours as f64);
        b.push(anchor(n_anchor).as_nanos() as f64 / n_anchor as f64);
    }
    (median(a), median(b))
}

/// Times `n` runs of an async operation on `rt`.
pub fn time_async<F: Future<Output = ()>>(rt: &tokio::runtime::Runtime, n: u64, mut op: impl FnMut() -> F) -> Duration {
    rt.block_on(async {
        let started = Instant::now();
        for _ in 0..n {
            op().await;
        }
        started.elapsed()
    })
}

/// Times `n` runs of a blocking operation.
pub fn time_sync(n: u64, mut op: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        op();
    }
    started.elapsed()
}

fn database_server_url() -> String {
    std::env::var("STOREHOST_BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database for this run, dropped at the end.
pub struct BenchDatabase {
    pub name: String,
    pub url: String,
}

impl BenchDatabase {
    pub async fn create(suite: &str) -> BenchDatabase {
        use sqlx::Connection;
        let name = format!("storehost_bench_{suite}_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&database_server_url()).await.expect("PostgreSQL on 127.0.0.1:5432 (scripts/setup.sh starts it)");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        let base = database_server_url();
        BenchDatabase { url: format!("{}/{name}", &base[..base.rfind('/').unwrap()]), name }
    }

    pub async fn drop_database(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&database_server_url()).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn).await.unwrap();
    }
}

/// An S3 server (s3s over s3s-fs) on 127.0.0.1 over `root` with the bucket `bucket`, and a grant
/// of that bucket. It stops when the runtime does.
pub async fn start_s3(root: &std::path::Path, bucket: &str) -> storehost::capabilities::object_store::ObjectStoreGrant {
    std::fs::create_dir(root.join(bucket)).unwrap();
    let (access, secret) = ("bench-key".to_string(), "bench-secret".to_string());
    let mut builder = s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(root).unwrap());
    builder.set_auth(s3s::auth::SimpleAuth::from_single(access.clone(), secret.clone()));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            // As S3 servers do: without it, a response written in two parts waits for the
            // client's delayed ACK (tens of milliseconds).
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    storehost::capabilities::object_store::ObjectStoreGrant {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        path_style: true,
        access_key_id: Some(access),
        secret_access_key: Some(secret),
        ..storehost::capabilities::object_store::ObjectStoreGrant::new(bucket)
    }
}

/// Uploads `parts` as one multipart upload of `key`, four parts in flight: what native code
/// does with a large body.
pub async fn multipart_upload(client: &aws_sdk_s3::Client, bucket: &str, key: &str, parts: Vec<bytes::Bytes>) {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    use futures_util::{StreamExt, TryStreamExt};
    let upload = client.create_multipart_upload().bucket(bucket).key(key).send().await.unwrap();
    let id = upload.upload_id().unwrap().to_string();
    let done: Vec<CompletedPart> = futures_util::stream::iter(parts.into_iter().enumerate())
        .map(|(i, body)| {
            let id = id.clone();
            async move {
                let number = i as i32 + 1;
                let body = aws_sdk_s3::primitives::ByteStream::from(body);
                let out = client.upload_part().bucket(bucket).key(key).upload_id(id).part_number(number).body(body).send().await?;
                Ok::<_, aws_sdk_s3::Error>(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(String::from)).build())
            }
        })
        .buffered(4)
        .try_collect()
        .await
        .unwrap();
    let parts = CompletedMultipartUpload::builder().set_parts(Some(done)).build();
    client.complete_multipart_upload().bucket(bucket).key(key).upload_id(id).multipart_upload(parts).send().await.unwrap();
}

/// A process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    /// Asks the process to stop (SIGTERM) and waits for it, killing it after a few seconds:
    /// nginx's master stops its workers when asked, while killing it left them running.
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.0);
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok() {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `storehost` binary serving `manifest` (the embedded default when `None`) from `dir`,
/// its log in `dir/storehost.log`, and its URL. `STOREHOST_BENCH_BINARY` names another build of
/// it to measure (an earlier commit's, say) in place of this one's.
pub fn storehost(dir: &Path, manifest: Option<&str>) -> (Running, String) {
    storehost_with(dir, manifest, &[])
}

/// [`storehost`] with more environment variables.
pub fn storehost_with(dir: &Path, manifest: Option<&str>, env: &[(&str, &str)]) -> (Running, String) {
    let binary = std::env::var_os("STOREHOST_BENCH_BINARY").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_storehost")), PathBuf::from);
    let mut command = Command::new(binary);
    command.current_dir(dir).arg("serve").args(["--listen", "127.0.0.1:0"]).envs(env.iter().copied());
    if let Some(text) = manifest {
        let path = dir.join("storehost.toml");
        std::fs::write(&path, text).unwrap();
        command.arg("--manifest").arg(path);
    }
    let log = std::fs::File::create(dir.join("storehost.log")).unwrap();
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).spawn().expect("starting storehost");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url =
        first.trim().strip_prefix("storehost listening on ").unwrap_or_else(|| panic!("storehost did not start: {first:?}; see its log")).to_string();
    (Running(child), url)
}
