//! `cargo bench -p storehost --bench cluster`: what keeping replicas coherent costs.
//!
//! - from a write committed on one host to its invalidation applied on another (two hosts in
//!   this process, on one database), against a raw LISTEN/NOTIFY round trip through sqlx on the
//!   same database: the floor of any notification-driven scheme;
//! - project-save throughput with 32 concurrent writers, with `[cluster]` against without.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgListener;
use storehost::app::{App, Manifest};
use storehost::domain::{Ctx, ProjectInput};
use support::{BenchDatabase, Report};

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
    rt.block_on(db.drop_database());
    report.finish();
}
