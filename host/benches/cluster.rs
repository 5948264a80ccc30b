//! `cargo bench -p storehost --bench cluster`: what keeping replicas coherent costs.
//!
//! - from a write committed on one host to its invalidation applied on another (two hosts in
//!   this process, on one database), against a raw LISTEN/NOTIFY round trip through sqlx on the
//!   same database: the floor of any notification-driven scheme;
//! - project-save throughput with 32 concurrent writers, with `[cluster]` against without;
//! - peer fill: three `storehost` replicas (the release binary) with artifacts on the s3 plugin
//!   over an in-process S3 server, against aws-sdk-s3 GetObject of the same objects from the same
//!   server (the origin read without any host): one 4 KiB GET at a time that is a replica's local
//!   memory hit, a fetch from the key's owner (its memory), and an origin read (a host without a
//!   cache); then 32 concurrent readers spread round-robin over the replicas across a working set
//!   2.5 times one replica's budget, with peer fill on and off, each against 32 concurrent
//!   GetObjects. The readers are in this process (reqwest on the bench's runtime), as is the
//!   anchor's client.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgListener;
use storehost::app::{App, Manifest};
use storehost::domain::{Ctx, ProjectInput};
use support::{BenchDatabase, Report, Running, storehost};

const SAMPLES: usize = 400;
const WRITERS: usize = 32;
const THROUGHPUT_ROUND: Duration = Duration::from_secs(2);

fn manifest(db: &str, cluster: Option<&str>) -> Manifest {
    let mut text = format!(
        "[plugins.pg]\nsource = \"builtin:postgres\"\ninstances = 8\nsql = {{ url = \"{db}\", max_connections = 16 }}\n[domains]\nproject = {{ origin = \"pg\" }}\n"
    );
    if let Some(host) = cluster {
        text.push_str(&format!("[cluster]\nlog = {{ url = \"{db}\" }}\nhost_id = \"{host}\"\n"));
    }
    Manifest::parse(&text, "bench.toml", ".".into(), |_| None).unwrap()
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// Nanoseconds from a save's answer on `a` (committed and published) until `b` has applied it.
async fn propagation(a: &App, b: &App, i: usize) -> f64 {
    let (slot, ctx) = {
        let slot = Arc::new(std::sync::atomic::AtomicU64::new(0));
        (slot.clone(), Ctx::background().record_writes_in(slot))
    };
    let input = ProjectInput { id: format!("p{}", i % 8), name: "bench".into(), state: format!("{{\"i\":{i}}}") };
    a.stores.project.as_ref().unwrap().save(&ctx, input, None).await.unwrap();
    let answered = Instant::now();
    let seq = slot.load(std::sync::atomic::Ordering::Acquire);
    let node = b.cluster.as_ref().unwrap();
    while node.applied() < seq {
        tokio::task::yield_now().await;
    }
    answered.elapsed().as_nanos() as f64
}

/// Nanoseconds from a NOTIFY's commit on one connection until a listener on another has it.
async fn notify_round_trip(sender: &mut sqlx::PgConnection, listener: &mut PgListener, i: usize) -> f64 {
    sqlx::query("SELECT pg_notify('bench_raw', $1)").bind(i.to_string()).execute(&mut *sender).await.unwrap();
    let sent = Instant::now();
    let got = listener.recv().await.unwrap();
    assert_eq!(got.payload(), i.to_string());
    sent.elapsed().as_nanos() as f64
}

/// Nanoseconds per save with `WRITERS` writers saving for a round.
async fn saves(app: &App, prefix: &str) -> f64 {
    let store = app.stores.project.clone().unwrap();
    let until = Instant::now() + THROUGHPUT_ROUND;
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, id) = (store.clone(), format!("{prefix}-{w}"));
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let input = ProjectInput { id: id.clone(), name: "bench".into(), state: format!("{{\"n\":{n}}}") };
                    store.save(&Ctx::background(), input, None).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    started.elapsed().as_nanos() as f64 / total as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut report = Report::new("cluster");
    let db = rt.block_on(BenchDatabase::create("cluster"));
    rt.block_on(async {
        let a = App::build(manifest(&db.url, Some("a"))).await.unwrap();
        let b = App::build(manifest(&db.url, Some("b"))).await.unwrap();
        let plain = App::build(manifest(&db.url, None)).await.unwrap();
        let mut sender = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut listener = PgListener::connect(&db.url).await.unwrap();
        listener.listen("bench_raw").await.unwrap();

        // Warm both paths, then interleave samples so both see the same machine.
        for i in 0..50 {
            propagation(&a, &b, i).await;
            notify_round_trip(&mut sender, &mut listener, i).await;
        }
        let (mut ours, mut anchor) = (Vec::new(), Vec::new());
        for i in 0..SAMPLES {
            ours.push(propagation(&a, &b, i).await);
            anchor.push(notify_round_trip(&mut sender, &mut listener, i).await);
        }
        let (o50, a50) = (percentile(ours.clone(), 0.5), percentile(anchor.clone(), 0.5));
        let (o99, a99) = (percentile(ours, 0.99), percentile(anchor, 0.99));
        report.add("write on one host to applied on another (p50)", "invalidation log", "raw LISTEN/NOTIFY", o50, a50);
        report.add("write on one host to applied on another (p99)", "invalidation log", "raw LISTEN/NOTIFY", o99, a99);

        let (mut with, mut without) = (Vec::new(), Vec::new());
        for round in 0..3 {
            with.push(saves(&a, &format!("c{round}")).await);
            without.push(saves(&plain, &format!("n{round}")).await);
        }
        let stats = a.cluster.as_ref().unwrap().stats();
        report.add(
            &format!("project save, {WRITERS} concurrent writers (ns per save)"),
            "with [cluster]",
            "without",
            percentile(with, 0.5),
            percentile(without, 0.5),
        );
        println!(
            "  host a published {} invalidations in {} appends ({:.1} per append)",
            stats.published,
            stats.batches,
            stats.published as f64 / stats.batches.max(1) as f64
        );
        drop((a, b, plain));
    });
    rt.block_on(peer_fill(&mut report, &db.url));
    rt.block_on(db.drop_database());
    report.finish();
}

const PEER_KEYS: usize = 1792;
const BODY: usize = 4096;
const READERS: usize = 32;

fn peer_key(k: usize) -> String {
    format!("bench/{k:05}.bin")
}

/// A replica's manifest (or, without `log`, a host alone with no cache).
fn peer_manifest(grant: &storehost::capabilities::object_store::ObjectStoreGrant, log: Option<(&str, usize)>, peer_fill: bool) -> String {
    let mut text = format!(
        "[plugins.objects]\nsource = \"builtin:s3\"\nobject_store = {{ bucket = \"{}\", endpoint = \"{}\", region = \"us-east-1\", path_style = true, access_key_id = \"{}\", secret_access_key = \"{}\" }}\n",
        grant.bucket,
        grant.endpoint.as_deref().unwrap(),
        grant.access_key_id.as_deref().unwrap(),
        grant.secret_access_key.as_deref().unwrap()
    );
    match log {
        Some((url, i)) => text.push_str(&format!(
            "[domains]\nartifact = {{ origin = \"objects\", max_bytes = \"4MiB\", peer_fill = {peer_fill} }}\n[cluster]\nlog = {{ url = \"{url}\" }}\nhost_id = \"replica-{i}\"\npeer_secret = \"the bench's peer secret\"\n"
        )),
        None => text.push_str("[domains]\nartifact = { origin = \"objects\", cache = false }\n"),
    }
    text
}

/// Three replicas on one log, with peer fill on or off, once each sees the others.
async fn replicas(
    grant: &storehost::capabilities::object_store::ObjectStoreGrant,
    log: &str,
    peer_fill: bool,
) -> (Vec<(Running, String)>, Vec<tempfile::TempDir>) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let running: Vec<_> = dirs.iter().enumerate().map(|(i, d)| storehost(d.path(), Some(&peer_manifest(grant, Some((log, i)), peer_fill)))).collect();
    if peer_fill {
        let http = reqwest::Client::new();
        for (_, url) in &running {
            let started = Instant::now();
            while !http.get(format!("{url}/admin")).send().await.unwrap().text().await.unwrap().contains("on a ring of 3") {
                assert!(started.elapsed() < Duration::from_secs(20), "the replicas formed no ring");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (running, dirs)
}

/// GETs `keys` through `urls` (round-robin), `concurrency` at a time; nanoseconds per GET, and
/// how many answers said each `X-Cache`.
async fn read_through(
    http: &reqwest::Client,
    urls: &[String],
    keys: &[usize],
    concurrency: usize,
) -> (f64, std::collections::BTreeMap<String, usize>) {
    use futures_util::StreamExt as _;
    let started = Instant::now();
    let answers: Vec<String> = futures_util::stream::iter(keys.iter().enumerate())
        .map(|(i, &k)| {
            let url = format!("{}/v1/artifacts/{}", urls[i % urls.len()], peer_key(k));
            async move {
                let answer = http.get(url).send().await.unwrap();
                assert_eq!(answer.status(), 200);
                let cache = answer.headers().get("x-cache").map_or("none", |v| v.to_str().unwrap()).to_string();
                assert_eq!(answer.bytes().await.unwrap().len(), BODY);
                cache
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut counts = std::collections::BTreeMap::new();
    for cache in answers {
        *counts.entry(cache).or_default() += 1;
    }
    (started.elapsed().as_nanos() as f64 / keys.len() as f64, counts)
}

/// GetObjects of `keys` through aws-sdk-s3, `concurrency` at a time; nanoseconds per GET.
async fn native_gets(s3: &aws_sdk_s3::Client, bucket: &str, keys: &[usize], concurrency: usize) -> f64 {
    use futures_util::StreamExt as _;
    let started = Instant::now();
    futures_util::stream::iter(keys)
        .for_each_concurrent(concurrency, |&k| async move {
            let out = s3.get_object().bucket(bucket).key(peer_key(k)).send().await.unwrap();
            assert_eq!(out.body.collect().await.unwrap().into_bytes().len(), BODY);
        })
        .await;
    started.elapsed().as_nanos() as f64 / keys.len() as f64
}

/// A pseudo-random order of `0..n`, `times` over.
fn shuffled(n: usize, times: usize, mut seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..times).flat_map(|_| 0..n).collect();
    for i in (1..order.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (seed >> 33) as usize % (i + 1));
    }
    order
}

async fn peer_fill(report: &mut Report, log: &str) {
    let root = tempfile::tempdir().unwrap();
    let grant = support::start_s3(root.path(), "bench-peer").await;
    let s3 = grant.client().await.unwrap();
    let body = vec![7u8; BODY];
    for k in 0..PEER_KEYS {
        s3.put_object().bucket("bench-peer").key(peer_key(k)).body(body.clone().into()).send().await.unwrap();
    }
    let http = reqwest::Client::new();
    // One GET at a time on replica 0, once every key sits in its owner's memory: each answer is
    // a local hit (a key replica 0 owns) or a fetch from the owner.
    let (on, _dirs) = replicas(&grant, log, true).await;
    let urls: Vec<String> = on.iter().map(|(_, url)| url.clone()).collect();
    read_through(&http, &urls[1..], &(0..PEER_KEYS).collect::<Vec<_>>(), 8).await;
    let (mut local, mut peer, mut anchor) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..PEER_KEYS.min(600) {
        let url = format!("{}/v1/artifacts/{}", urls[0], peer_key(k));
        let started = Instant::now();
        let answer = http.get(url).send().await.unwrap();
        let cache = answer.headers().get("x-cache").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(answer.bytes().await.unwrap().len(), BODY);
        let took = started.elapsed().as_nanos() as f64;
        match cache.as_deref() {
            Some("peer") => peer.push(took),
            Some("hit") => local.push(took),
            other => panic!("replica 0 answered {other:?}"),
        }
        anchor.push(native_gets(&s3, "bench-peer", &[k], 1).await);
    }
    // The origin read: a host with no cache, on the same bucket.
    let alone_dir = tempfile::tempdir().unwrap();
    let (_alone, alone) = storehost(alone_dir.path(), Some(&peer_manifest(&grant, None, false)));
    let mut origin = Vec::new();
    let mut origin_anchor = Vec::new();
    for k in 0..300 {
        origin.push(read_through(&http, std::slice::from_ref(&alone), &[k], 1).await.0);
        origin_anchor.push(native_gets(&s3, "bench-peer", &[k], 1).await);
    }
    let median = |v: Vec<f64>| percentile(v, 0.5);
    let anchor_median = median(anchor);
    report.add("GET 4 KiB through a replica, one at a time: a local memory hit", "replica 0", "aws-sdk-s3 GetObject", median(local), anchor_median);
    report.add(
        "GET 4 KiB through a replica, one at a time: a fetch from the key's owner",
        "replica 0",
        "aws-sdk-s3 GetObject",
        median(peer),
        anchor_median,
    );
    report.add(
        "GET 4 KiB, one at a time: an origin read (s3 plugin, no cache)",
        "storehost",
        "aws-sdk-s3 GetObject",
        median(origin),
        median(origin_anchor),
    );
    drop(on);

    // Throughput across a working set 2.5 times one replica's budget, read round-robin after a
    // first pass, with peer fill on and off.
    for peer_fill in [true, false] {
        let (running, _dirs) = replicas(&grant, log, peer_fill).await;
        let urls: Vec<String> = running.iter().map(|(_, url)| url.clone()).collect();
        read_through(&http, &urls, &shuffled(PEER_KEYS, 1, 1), READERS).await;
        let (mut ours, mut native) = (Vec::new(), Vec::new());
        let mut answers = std::collections::BTreeMap::new();
        for round in 0..3 {
            let keys = shuffled(PEER_KEYS, 1, 10 + round);
            let (ns, counts) = read_through(&http, &urls, &keys, READERS).await;
            ours.push(ns);
            for (cache, n) in counts {
                *answers.entry(cache).or_insert(0) += n;
            }
            native.push(native_gets(&s3, "bench-peer", &keys, READERS).await);
        }
        let case = format!(
            "3 replicas, {READERS} readers round-robin, {PEER_KEYS} keys of 4 KiB (2.5x one replica's budget), peer fill {} (ns per GET)",
            if peer_fill { "on" } else { "off" }
        );
        report.add(&case, "3 replicas", &format!("aws-sdk-s3, {READERS} at a time"), median(ours), median(native));
        println!("  answers by X-Cache: {answers:?}");
    }
}
