//! `cargo bench -p storehost --bench http`: GET of a cached 4 KiB artifact over loopback with
//! many keep-alive connections, against the same server's `/healthz` (the floor of the HTTP
//! stack). Reports nanoseconds per request (1 / throughput) and the p99 latency. And the admin
//! page of a server with ten plugins and every domain, one request at a time, against
//! `/healthz` of the same server, with the server's own render time (`Server-Timing`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use storehost::app::{App, Manifest};
use storehost::http::{ServerState, router};
use support::Report;

const CONNECTIONS: usize = 32;
const ROUND: Duration = Duration::from_secs(2);

/// Requests per second and p99 latency of `CONNECTIONS` clients hammering `url` for `ROUND`.
fn load(client_rt: &tokio::runtime::Runtime, client: &reqwest::Client, url: &str) -> (f64, Duration) {
    client_rt.block_on(async {
        let until = Instant::now() + ROUND;
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (client, url) = (client.clone(), url.to_string());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < until {
                        let started = Instant::now();
                        let response = client.get(&url).send().await.unwrap();
                        assert!(response.status().is_success());
                        response.bytes().await.unwrap();
                        latencies.push(started.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let p99 = all[all.len() * 99 / 100];
        (all.len() as f64 / ROUND.as_secs_f64(), p99)
    })
}

/// A server of `manifest` on a loopback port, on a runtime of one worker thread (kept alive by
/// the caller).
fn serve(manifest: Manifest) -> (tokio::runtime::Runtime, std::net::SocketAddr) {
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let app = server_rt.block_on(App::build(manifest)).unwrap();
    let state = Arc::new(ServerState::new(app));
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    server_rt.spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    (server_rt, addr)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::parse(
        "[cache.memory]\nmax_bytes = \"64MiB\"\n[plugins.files]\nsource = \"builtin:fs\"\ndirs = { \"/data\" = { host = \"data\", mode = \"rw\" } }\nconfig = { fsync = false }\n[domains]\nartifact = { origin = \"files\" }\n",
        "bench.toml",
        dir.path().to_path_buf(),
        |_| None,
    )
    .unwrap();
    let (_server_rt, addr) = serve(manifest);
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();

    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().unwrap();
    let artifact = format!("http://{addr}/v1/artifacts/bench/4k.bin");
    let health = format!("http://{addr}/healthz");
    client_rt.block_on(async {
        client.put(&artifact).body(vec![1u8; 4096]).send().await.unwrap().error_for_status().unwrap();
        let first = client.get(&artifact).send().await.unwrap();
        assert_eq!(first.headers()["x-cache"], "hit");
    });

    let mut report = Report::new("http");
    let (mut rps_a, mut rps_h, mut p99_a, mut p99_h) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let (r, p) = load(&client_rt, &client, &artifact);
        rps_a.push(r);
        p99_a.push(p);
        let (r, p) = load(&client_rt, &client, &health);
        rps_h.push(r);
        p99_h.push(p);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let median_d = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_nanos() as f64
    };
    let (a, h) = (median(rps_a), median(rps_h));
    println!("  cached 4 KiB GET: {a:.0} req/s; /healthz: {h:.0} req/s; ratio {:.2} (target >= 0.7)", a / h);
    report.add(&format!("GET cached 4 KiB, {CONNECTIONS} connections (ns per request)"), "artifact GET", "/healthz", 1e9 / a, 1e9 / h);
    report.add(&format!("GET cached 4 KiB, {CONNECTIONS} connections (p99 latency)"), "artifact GET", "/healthz", median_d(p99_a), median_d(p99_h));
    admin_page(&mut report);
    report.finish();
}

/// `GET /admin` of a server with ten plugins and every domain configured.
fn admin_page(report: &mut Report) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let manifest = Manifest::parse(include_str!("../tests/ten-plugins.toml"), "ten-plugins.toml", dir.path().to_path_buf(), |_| None).unwrap();
    let (_server_rt, addr) = serve(manifest);
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let (page, health) = (format!("http://{addr}/admin"), format!("http://{addr}/healthz"));
    let (took, rendered, floor) = client_rt.block_on(async {
        for i in 0..32 {
            client.put(format!("http://{addr}/v1/artifacts/a/{i}")).body(vec![7u8; 4096]).send().await.unwrap().error_for_status().unwrap();
            client.get(format!("http://{addr}/v1/artifacts/a/{i}")).send().await.unwrap().error_for_status().unwrap();
        }
        let time = |url: String| {
            let client = client.clone();
            async move {
                let mut each = Vec::new();
                let mut server = Vec::new();
                for _ in 0..500 {
                    let started = Instant::now();
                    let answer = client.get(&url).send().await.unwrap();
                    let timing = answer.headers().get("server-timing").map(|v| v.to_str().unwrap().to_string());
                    answer.bytes().await.unwrap();
                    each.push(started.elapsed().as_nanos() as f64);
                    if let Some(ms) = timing.and_then(|t| t.strip_prefix("render;dur=").map(|v| v.parse::<f64>().unwrap())) {
                        server.push(ms * 1e6);
                    }
                }
                each.sort_by(f64::total_cmp);
                server.sort_by(f64::total_cmp);
                (each[each.len() / 2], server.get(server.len() / 2).copied())
            }
        };
        let (took, rendered) = time(page).await;
        let (floor, _) = time(health).await;
        (took, rendered.expect("the page says its render time"), floor)
    });
    println!(
        "  /admin, 10 plugins: {:.3} ms a request ({:.3} ms rendering on the server, target < 100 ms); /healthz {:.3} ms",
        took / 1e6,
        rendered / 1e6,
        floor / 1e6
    );
    report.add("GET /admin, 10 plugins and every domain (median ns per request)", "/admin", "/healthz", took, floor);
    report.add("/admin render on the server (Server-Timing, median ns)", "render", "/healthz request", rendered, floor);
}
