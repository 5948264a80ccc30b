//! Stale-if-error: an expired cache entry answers, marked `X-Cache: stale` with an `Age`, while
//! its origin is unavailable or times out; never one older than the setting, never one a write
//! dropped. With the mock's faults over HTTP in process, and with PostgreSQL cut off from a
//! running `storehost serve` under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::Server;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use storehost::app::{App, Manifest};
use storehost::domain::StoreError;
use storehost::http::{ServerState, router};
use storehost::origin::mock::{Fault, FaultRule, MockControl};
use storehost_tests::pg::{TestDatabase, address_of, with_address};
use storehost_tests::proxy::Proxy;

/// `app` served over loopback in this process.
async fn serve(app: App) -> String {
    let state = Arc::new(ServerState::new(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_entry_answers_while_the_origin_is_unavailable_within_the_setting_only() {
    let text = r#"
[plugins.mock]
source = "builtin:mock"
instances = 1

[domains]
artifact = { origin = "mock", ttl = "300ms", stale_if_error = "1s" }
project = { origin = "mock", ttl = "300ms", stale_if_error = "1s" }
"#;
    let manifest = Manifest::parse(text, "stale.toml", std::env::temp_dir(), |_| None).unwrap();
    let app = App::build(manifest).await.unwrap();
    let control = MockControl::new(app.plugins["mock"].clone()).unwrap();
    let base = serve(app).await;
    let (http, url) = (Client::new(), |path: &str| format!("{base}{path}"));
    let written = Instant::now();
    for key in ["kept", "rewritten", "deleted", "too-old"] {
        let put = http.put(url(&format!("/v1/artifacts/{key}"))).body(format!("body of {key}")).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
    }
    let put = http.put(url("/v1/artifacts/rewritten")).body("the last write").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let put = http.put(url("/v1/projects/p1")).json(&json!({ "name": "P", "state": { "n": 1 } })).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);

    // Expired (300 ms), inside stale_if_error (1 s more); the origin fails every call from now.
    tokio::time::sleep_until((written + Duration::from_millis(450)).into()).await;
    control.add_fault(FaultRule::new("*", Fault::Fail(StoreError::Unavailable("the origin is down".into())))).await.unwrap();

    let stale = http.get(url("/v1/artifacts/kept")).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.headers()["x-cache"], "stale");
    assert_eq!(stale.headers()["age"], "0");
    assert_eq!(stale.text().await.unwrap(), "body of kept");
    let rewritten = http.get(url("/v1/artifacts/rewritten")).send().await.unwrap();
    assert_eq!(rewritten.headers()["x-cache"], "stale");
    assert_eq!(rewritten.text().await.unwrap(), "the last write", "a stale answer is the last acknowledged write");
    let project = http.get(url("/v1/projects/p1")).send().await.unwrap();
    assert_eq!(project.status(), StatusCode::OK);
    assert_eq!(project.headers()["x-cache"], "stale");
    let project: Value = project.json().await.unwrap();
    assert_eq!(project["state"], json!({ "n": 1 }));

    // Never cached: the origin's error.
    let never = http.get(url("/v1/artifacts/never-read")).send().await.unwrap();
    assert_eq!(never.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error: Value = never.json().await.unwrap();
    assert_eq!(error["error"]["kind"], "unavailable");
    // A write whose outcome is unknown (a delete the origin failed) drops the entry: no stale
    // answer after it.
    let delete = http.delete(url("/v1/artifacts/deleted")).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::SERVICE_UNAVAILABLE);
    let after_write = http.get(url("/v1/artifacts/deleted")).send().await.unwrap();
    assert_eq!(after_write.status(), StatusCode::SERVICE_UNAVAILABLE, "an entry a write dropped was served stale");
    assert!(after_write.headers().get("x-cache").is_none_or(|v| v != "stale"));

    // Older than ttl + stale_if_error: the origin's error.
    tokio::time::sleep_until((written + Duration::from_millis(1500)).into()).await;
    let too_old = http.get(url("/v1/artifacts/too-old")).send().await.unwrap();
    assert_eq!(too_old.status(), StatusCode::SERVICE_UNAVAILABLE, "an entry past stale_if_error was served");

    let metrics = http.get(url("/metrics")).send().await.unwrap().text().await.unwrap();
    let stale_answers = |domain: &str, cache: &str| -> f64 {
        let line = format!("storehost_cache_requests_total{{domain=\"{domain}\",cache=\"{cache}\",result=\"stale\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&line)).unwrap_or_else(|| panic!("no {line}")).parse().unwrap()
    };
    assert_eq!(stale_answers("artifact", "blob"), 2.0);
    assert_eq!(stale_answers("project", "project"), 1.0);
}

#[test]
fn stale_if_error_needs_a_cached_domain() {
    let text = r#"
[plugins.files]
source = "builtin:memory"

[domains]
runner = { origin = "files", stale_if_error = "1h" }
"#;
    let err = Manifest::parse(text, "m.toml", ".".into(), |_| None).unwrap_err().to_string();
    assert!(err.contains("domains.runner.stale_if_error") && err.contains("not cached"), "{err}");
}

/// Reads of every key ever cached keep succeeding while PostgreSQL is cut off for 3 s, with
/// TTLs expiring during the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_for_three_seconds_fails_no_read_of_a_cached_key() {
    let db = TestDatabase::create().await;
    let server_addr = tokio::net::lookup_host(address_of(&db.url)).await.unwrap().next().unwrap();
    let proxy = Proxy::start(server_addr).await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = std::env::temp_dir().join("storehost-test-compiled-cache");
    let text = format!(
        r#"
[runtime]
compiled_cache = "{compiled}"

[plugins.pg]
source = "builtin:postgres"
instances = 4
timeout = "1s"
sql = {{ url = "{url}", max_connections = 8, connect_timeout = "500ms" }}

[domains]
artifact = {{ origin = "pg", ttl = "500ms", stale_if_error = "1m" }}
project = {{ origin = "pg", ttl = "500ms", stale_if_error = "1m" }}
"#,
        compiled = compiled.display(),
        url = with_address(&db.url, &proxy.addr.to_string()),
    );
    let server = Server::start(dir.path(), Some(&text), &[]);
    let http = Client::new();
    let keys = 32;
    for i in 0..keys {
        let put = http.put(server.url(&format!("/v1/artifacts/a{i}"))).body(format!("artifact {i}")).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
        let put = http.put(server.url(&format!("/v1/projects/p{i}"))).json(&json!({ "name": "p", "state": { "i": i } })).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
    }
    let (stop, sent, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = (0..8usize)
        .map(|c| {
            let (http, base, stop, sent, failed) = (http.clone(), server.base.clone(), stop.clone(), sent.clone(), failed.clone());
            tokio::spawn(async move {
                let mut problems = Vec::new();
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let i = (n * 7) % keys;
                    let (path, want) = if n.is_multiple_of(2) {
                        (format!("/v1/artifacts/a{i}"), format!("artifact {i}"))
                    } else {
                        (format!("/v1/projects/p{i}"), format!("\"i\":{i}"))
                    };
                    let ok = match http.get(format!("{base}{path}")).send().await {
                        Ok(r) if r.status() == StatusCode::OK => r.text().await.is_ok_and(|body| body.contains(&want)),
                        Ok(r) => {
                            if problems.len() < 5 {
                                problems.push(format!("{path}: {} {}", r.status(), r.text().await.unwrap_or_default()));
                            }
                            false
                        }
                        Err(e) => {
                            problems.push(format!("{path}: {e}"));
                            false
                        }
                    };
                    sent.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                problems
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.cut();
    let cut_at = sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let during = sent.load(Ordering::Relaxed) - cut_at;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut problems = Vec::new();
    for reader in readers {
        problems.extend(reader.await.unwrap());
    }
    let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let stale: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("storehost_cache_requests_total") && l.contains("result=\"stale\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!("postgres cut for 3 s: {} reads ({during} during the cut), {stale} answered stale", sent.load(Ordering::Relaxed));
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed reads: {problems:?}");
    assert!(during > 0, "no read ran during the cut");
    assert!(stale > 0.0, "no read was answered stale: the TTLs did not expire during the cut");
    // The origin is back: writes go through again.
    let put = http.put(server.url("/v1/artifacts/a0")).body("after").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
}
