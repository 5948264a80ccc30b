//! `scripts/bench http` (or `cargo bench -p storehost --bench http` once Debian's `nginx` and
//! `wrk` are installed): the `storehost` binary against nginx serving the same bytes from files
//! on loopback, both under the same load.
//!
//! - nginx: Debian's, as a site would run it: `sendfile`, `open_file_cache`, an access log, one
//!   worker per CPU.
//! - storehost: the binary as `scripts/serve` runs it (its log, INFO, to a file as nginx's
//!   access log is), on the embedded default for the cached cases and on the fs plugin with
//!   `cache = false` for the uncached one.
//! - Load: wrk (Debian's), one thread and 32 keep-alive connections for 4 s a round, three rounds
//!   each interleaved, medians reported. wrk is C on epoll and needs a fraction of the CPU either
//!   server needs for a request, so on this two-CPU machine it is not the bottleneck; an
//!   in-process client (reqwest on a runtime of the bench's own) spent more per request than the
//!   servers it measured.
//!
//! Rows: nanoseconds per request (the inverse of throughput) and the p99 latency, storehost
//! against nginx, for a cached 4 KiB GET, the same with traces on and every request sampled
//! (exported over OTLP/HTTP to a sink of the bench's own, which takes and drops them), an
//! uncached 4 KiB GET of 1,000 keys in random order from the fs plugin, and a cached 1 MiB GET;
//! then what traces cost a cached GET (each row taken against the nginx rounds beside it).
//! And the admin page of a server with ten plugins
//! and every domain, printed with its render time (its goal, < 100 ms, is absolute).

mod support;

use support::{Running, storehost, storehost_with};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Report;

const CONNECTIONS: usize = 32;
const ROUND_SECS: u32 = 4;
const ROUNDS: usize = 3;
const KEYS: usize = 1000;

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("`{name}` is not installed: `scripts/bench http` installs Debian's nginx and wrk");
}

/// Throughput and p99 of one wrk round on `url` (with `script`, when requests vary).
struct Round {
    requests_per_sec: f64,
    p99: Duration,
}

fn wrk(url: &str, script: Option<&Path>) -> Round {
    let mut command = Command::new(tool("wrk"));
    command.args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{ROUND_SECS}s"), "--latency"]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command.arg(url).output().expect("running wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Non-2xx"), "wrk saw error answers from {url}:\n{text}");
    assert!(!text.contains("Socket errors"), "wrk saw socket errors on {url}:\n{text}");
    let field = |prefix: &str| -> &str {
        text.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in wrk's output:\n{text}")).trim()
    };
    Round { requests_per_sec: field("Requests/sec:").parse().expect("a rate"), p99: duration(field("99%")) }
}

/// wrk's durations: `812.00us`, `1.20ms`, `2.01s`.
fn duration(text: &str) -> Duration {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).expect("a unit");
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().expect("a number");
    Duration::from_secs_f64(match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => panic!("unknown unit in {text:?}"),
    })
}

/// nginx serving `root` on a loopback port.
fn nginx(dir: &Path, root: &Path) -> (Running, String) {
    let port = free_port();
    let temp = dir.join("nginx-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let d = dir.display();
    let t = temp.display();
    let config = format!(
        "worker_processes auto;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log {d}/access.log;\n  sendfile on;\n  tcp_nopush on;\n  open_file_cache max=10000 inactive=60s;\n  default_type application/octet-stream;\n  client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t}; uwsgi_temp_path {t}; scgi_temp_path {t};\n  server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
        root.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(tool("nginx"))
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .stdin(Stdio::null())
        .spawn()
        .expect("starting nginx");
    let running = Running(child);
    let addr = format!("127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < until, "nginx did not start listening on {addr}; see {d}/nginx-error.log");
        std::thread::sleep(Duration::from_millis(20));
    }
    (running, format!("http://{addr}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The set-up's HTTP client (one runtime and one connection pool for every request it makes).
static SETUP: std::sync::LazyLock<(tokio::runtime::Runtime, reqwest::Client)> =
    std::sync::LazyLock::new(|| (tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(), reqwest::Client::new()));

/// A PUT or a GET of the set-up.
fn request(url: &str, method: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (rt, client) = &*SETUP;
    rt.block_on(async {
        let request = match method {
            "PUT" => client.put(url).body(body.to_vec()),
            _ => client.get(url),
        };
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let headers = answer.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
        (status, headers, answer.bytes().await.unwrap().to_vec())
    })
}

fn put(url: &str, body: &[u8]) {
    let (status, _, answer) = request(url, "PUT", body);
    assert!(status < 300, "PUT {url}: {status} {}", String::from_utf8_lossy(&answer));
}

/// GETs `url` and checks the body; returns its `X-Cache`.
fn get_checked(url: &str, body: &[u8]) -> Option<String> {
    let (status, headers, answer) = request(url, "GET", b"");
    assert_eq!(status, 200, "GET {url}");
    assert!(answer == body, "GET {url}: other bytes than were written");
    headers.into_iter().find(|(k, _)| k == "x-cache").map(|(_, v)| v)
}

/// A wrk script that asks for one of [`KEYS`] keys under `prefix` at random.
fn random_keys_script(dir: &Path, name: &str, prefix: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        "math.randomseed(os.time())\nrequest = function()\n  return wrk.format(\"GET\", \"{prefix}k\" .. math.random(0, {}) .. \".bin\")\nend\n",
        KEYS - 1
    );
    std::fs::write(&path, script).unwrap();
    path
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Interleaved rounds of `ours` and `nginx`; two rows (ns per request, p99) in `report`, and
/// the ns per request of each.
fn compare(report: &mut Report, case: &str, ours: (&str, Option<&Path>), nginx: (&str, Option<&Path>)) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        a.push(wrk(ours.0, ours.1));
        b.push(wrk(nginx.0, nginx.1));
    }
    let rate = |v: &[Round]| median(v.iter().map(|r| r.requests_per_sec).collect());
    let p99 = |v: &[Round]| median(v.iter().map(|r| r.p99.as_nanos() as f64).collect());
    report.add(&format!("{case}, {CONNECTIONS} connections (ns per request)"), "storehost", "nginx", 1e9 / rate(&a), 1e9 / rate(&b));
    report.add(&format!("{case}, {CONNECTIONS} connections (p99 latency)"), "storehost", "nginx", p99(&a), p99(&b));
    (1e9 / rate(&a), 1e9 / rate(&b))
}

/// An OTLP/HTTP collector that takes every export and keeps nothing, on a thread of its own;
/// its URL.
fn otlp_sink() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(|_: axum::body::Bytes| async { ([("content-type", "application/x-protobuf")], Vec::<u8>::new()) }),
            );
            axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app).await.unwrap();
        });
    });
    url
}

/// A counter of a server's `/metrics`.
fn metric(url: &str, name: &str) -> f64 {
    let (_, _, text) = request(&format!("{url}/metrics"), "GET", b"");
    String::from_utf8_lossy(&text).lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("many")).unwrap();
    let small: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let large: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 13 + 5) as u8).collect();
    let many: Vec<Vec<u8>> = (0..KEYS).map(|k| (0..4096usize).map(|i| (i + k * 31) as u8).collect()).collect();
    std::fs::write(www.join("4k.bin"), &small).unwrap();
    std::fs::write(www.join("1m.bin"), &large).unwrap();
    for (k, body) in many.iter().enumerate() {
        std::fs::write(www.join("many").join(format!("k{k}.bin")), body).unwrap();
    }
    let (_nginx, nginx_url) = nginx(dir.path(), &www);

    // The embedded default: memory and disk caches in front of the fs plugin.
    let cached_dir = dir.path().join("cached");
    std::fs::create_dir_all(&cached_dir).unwrap();
    let (server, url) = storehost(&cached_dir, None);
    put(&format!("{url}/v1/artifacts/bench/4k.bin"), &small);
    put(&format!("{url}/v1/artifacts/bench/1m.bin"), &large);
    get_checked(&format!("{url}/v1/artifacts/bench/4k.bin"), &small);
    assert_eq!(get_checked(&format!("{url}/v1/artifacts/bench/4k.bin"), &small).as_deref(), Some("hit"));
    get_checked(&format!("{url}/v1/artifacts/bench/1m.bin"), &large);
    assert_eq!(get_checked(&format!("{url}/v1/artifacts/bench/1m.bin"), &large).as_deref(), Some("hit"));
    assert!(get_checked(&format!("{nginx_url}/4k.bin"), &small).is_none());

    let mut report = Report::new("http");
    let small_url = format!("{url}/v1/artifacts/bench/4k.bin");
    let untraced =
        compare(&mut report, "GET 4 KiB, cached (memory hit), embedded default", (&small_url, None), (&format!("{nginx_url}/4k.bin"), None));

    // The same with traces on, every request sampled and exported.
    let traced_dir = dir.path().join("traced");
    std::fs::create_dir_all(&traced_dir).unwrap();
    let sink = otlp_sink();
    let env =
        [("OTEL_EXPORTER_OTLP_ENDPOINT", sink.as_str()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_TRACES_SAMPLER", "always_on")];
    let (traced_server, traced_url) = storehost_with(&traced_dir, None, &env);
    put(&format!("{traced_url}/v1/artifacts/bench/4k.bin"), &small);
    get_checked(&format!("{traced_url}/v1/artifacts/bench/4k.bin"), &small);
    let traced = compare(
        &mut report,
        "GET 4 KiB, cached (memory hit), embedded default, every request traced",
        (&format!("{traced_url}/v1/artifacts/bench/4k.bin"), None),
        (&format!("{nginx_url}/4k.bin"), None),
    );
    let exported = metric(&traced_url, "storehost_trace_spans_exported_total");
    let dropped = metric(&traced_url, "storehost_trace_spans_dropped_total{reason=\"queue_full\"}")
        + metric(&traced_url, "storehost_trace_spans_dropped_total{reason=\"export_failed\"}");
    drop(traced_server);
    let cost = (traced.0 / traced.1) / (untraced.0 / untraced.1) - 1.0;
    println!(
        "  traces on, every request sampled: {:+.1}% per cached GET ({:+.0} ns a request; {exported} spans exported, {dropped} dropped)",
        cost * 100.0,
        cost * untraced.0
    );

    // The fs plugin without a cache: every GET is a plugin call and a file read.
    let uncached_dir = dir.path().join("uncached");
    std::fs::create_dir_all(uncached_dir.join("data")).unwrap();
    let manifest = "[plugins.files]\nsource = \"builtin:fs\"\ninstances = 4\ndirs = { \"/data\" = { host = \"data\", mode = \"rw\" } }\n[domains]\nartifact = { origin = \"files\", cache = false }\n";
    let (uncached, uncached_url) = storehost(&uncached_dir, Some(manifest));
    for (k, body) in many.iter().enumerate() {
        put(&format!("{uncached_url}/v1/artifacts/many/k{k}.bin"), body);
    }
    assert!(get_checked(&format!("{uncached_url}/v1/artifacts/many/k7.bin"), &many[7]).is_none(), "no cache answers");
    let ours_script = random_keys_script(dir.path(), "ours.lua", "/v1/artifacts/many/");
    let nginx_script = random_keys_script(dir.path(), "nginx.lua", "/many/");
    let _ = compare(
        &mut report,
        "GET 4 KiB, uncached fs plugin, 1,000 keys at random",
        (&uncached_url, Some(&ours_script)),
        (&nginx_url, Some(&nginx_script)),
    );
    drop(uncached);

    let large_url = format!("{url}/v1/artifacts/bench/1m.bin");
    let _ = compare(&mut report, "GET 1 MiB, cached (memory hit), embedded default", (&large_url, None), (&format!("{nginx_url}/1m.bin"), None));
    drop(server);

    admin_page();
    report.finish();
}

/// `GET /admin` of a server with ten plugins and every domain configured, one request at a
/// time: the time a request takes and the server's own render time (`Server-Timing`).
fn admin_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let (_server, url) = storehost(dir.path(), Some(include_str!("../tests/ten-plugins.toml")));
    for i in 0..32 {
        put(&format!("{url}/v1/artifacts/a/{i}"), &[7u8; 4096]);
        get_checked(&format!("{url}/v1/artifacts/a/{i}"), &[7u8; 4096]);
    }
    let (rt, client) = &*SETUP;
    let (took, rendered) = rt.block_on(async {
        let (mut each, mut server) = (Vec::new(), Vec::new());
        for _ in 0..500 {
            let started = Instant::now();
            let answer = client.get(format!("{url}/admin")).send().await.unwrap();
            let timing = answer.headers().get("server-timing").map(|v| v.to_str().unwrap().to_string());
            answer.bytes().await.unwrap();
            each.push(started.elapsed().as_secs_f64() * 1e3);
            if let Some(ms) = timing.and_then(|t| t.strip_prefix("render;dur=").map(|v| v.parse::<f64>().unwrap())) {
                server.push(ms);
            }
        }
        (median(each), median(server))
    });
    println!("  GET /admin, 10 plugins and every domain: {took:.3} ms a request, {rendered:.3} ms rendering on the server (goal < 100 ms)");
}
