//! Reloading plugins in place: `storehost serve` processes on loopback, their plugin's component
//! file swapped between two builds of the files origin (`describe().version` 0.1.0 and 0.1.1)
//! under a steady load of reads and writes; refused reloads (a file that is not a component, a
//! component without the bound export, an unknown manifest key); and `serve --watch`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::Server;
use reqwest::{Client, StatusCode};
use serde_json::Value;

/// The two builds a plugin's file alternates between, with the version each describes.
fn builds() -> [(Vec<u8>, &'static str); 2] {
    let next = storehost::test_fixture("fs-next").expect("the fs-next fixture is built with the host");
    [(storehost::builtin("fs").expect("built-in fs").to_vec(), "0.1.0"), (std::fs::read(next).unwrap(), "0.1.1")]
}

/// Replaces `path` at once (a rename), as a build tool or a deploy does.
fn install(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("partial");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn manifest(extra_plugin_keys: &str) -> String {
    let compiled = std::env::temp_dir().join("storehost-test-compiled-cache");
    format!(
        r#"
[runtime]
compiled_cache = "{compiled}"

[cache.memory]
max_bytes = "64MiB"

[plugins.store]
source = "store.wasm"
instances = 4
dirs = {{ "/data" = {{ host = "data", mode = "rw" }} }}
config = {{ fsync = false }}
{extra_plugin_keys}

[domains]
artifact = {{ origin = "store", ttl = "2s" }}
project = {{ origin = "store" }}
"#,
        compiled = compiled.display()
    )
}

/// A server on the first build, with `keys` artifacts written.
async fn start(dir: &Path, args: &[&str], keys: usize) -> (Server, Client) {
    install(&dir.join("store.wasm"), &builds()[0].0);
    let server = Server::start_with(dir, Some(&manifest("")), &[], args);
    let http = Client::new();
    for i in 0..keys {
        let put = http.put(server.url(&format!("/v1/artifacts/load/{i}"))).body(format!("value {i} 0")).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK, "{}", put.text().await.unwrap());
    }
    (server, http)
}

async fn plugin(http: &Client, server: &Server) -> Value {
    let plugins: Value = http.get(server.url("/v1/admin/plugins")).send().await.unwrap().json().await.unwrap();
    plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "store").cloned().expect("plugin store")
}

async fn metric(http: &Client, server: &Server, name: &str) -> f64 {
    let text = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// Requests and failures counted by [`Load`].
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    failed: AtomicU64,
}

/// `clients` loops of reads and writes (one write in four) on `keys` artifacts until stopped; a
/// failure is any answer but 200 or a body that is not one the key was written with.
struct Load {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
    started: Instant,
}

impl Load {
    fn start(http: &Client, base: &str, clients: usize, keys: usize) -> Load {
        let (counts, stop) = (Arc::new(Counts::default()), Arc::new(AtomicBool::new(false)));
        let tasks = (0..clients)
            .map(|c| {
                let (http, base, counts, stop) = (http.clone(), base.to_string(), counts.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut problems = Vec::new();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let key = (c * 7 + n as usize * 13) % keys;
                        let url = format!("{base}/v1/artifacts/load/{key}");
                        let outcome = if n.is_multiple_of(4) {
                            match http.put(&url).body(format!("value {key} {c}-{n}")).send().await {
                                Ok(r) if r.status() == StatusCode::OK => Ok(()),
                                Ok(r) => Err(format!("PUT {key}: {} {}", r.status(), r.text().await.unwrap_or_default())),
                                Err(e) => Err(format!("PUT {key}: {e}")),
                            }
                        } else {
                            match http.get(&url).send().await {
                                Ok(r) if r.status() == StatusCode::OK => {
                                    let body = r.text().await.unwrap_or_default();
                                    if body.starts_with(&format!("value {key} ")) { Ok(()) } else { Err(format!("GET {key}: body {body:?}")) }
                                }
                                Ok(r) => Err(format!("GET {key}: {} {}", r.status(), r.text().await.unwrap_or_default())),
                                Err(e) => Err(format!("GET {key}: {e}")),
                            }
                        };
                        counts.sent.fetch_add(1, Ordering::Relaxed);
                        if let Err(problem) = outcome {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                            if problems.len() < 5 {
                                problems.push(problem);
                            }
                        }
                    }
                    problems
                })
            })
            .collect();
        Load { counts, stop, tasks, started: Instant::now() }
    }

    /// Stops the clients: requests sent, the rate, and the first problems seen.
    async fn finish(self) -> (u64, f64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut problems = Vec::new();
        for task in self.tasks {
            problems.extend(task.await.unwrap());
        }
        let sent = self.counts.sent.load(Ordering::Relaxed);
        (sent, sent as f64 / self.started.elapsed().as_secs_f64(), self.counts.failed.load(Ordering::Relaxed), problems)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let keys = 64;
    let (server, http) = start(dir.path(), &[], keys).await;
    let builds = builds();
    assert_eq!(plugin(&http, &server).await["describe"]["version"], builds[0].1);
    let load = Load::start(&http, &server.base, 12, keys);
    let started = Instant::now();
    for i in 1..=20u64 {
        let (bytes, version) = &builds[(i % 2) as usize];
        install(&dir.path().join("store.wasm"), bytes);
        let reload = http.post(server.url("/v1/admin/reload")).send().await.unwrap();
        assert_eq!(reload.status(), StatusCode::OK);
        let report: Value = reload.json().await.unwrap();
        assert_eq!(report["report"]["loaded"], serde_json::json!(["store"]), "{report}");
        assert_eq!(report["report"]["cleared"], serde_json::json!(["artifact", "project"]), "{report}");
        let now = plugin(&http, &server).await;
        assert_eq!(now["generation"], i + 1, "{now}");
        assert_eq!(now["describe"]["version"], *version, "{now}");
        // One reload a second, for 20 s.
        tokio::time::sleep_until((started + Duration::from_secs(i)).into()).await;
    }
    let (sent, rate, failed, problems) = load.finish().await;
    eprintln!("20 reloads under load: {sent} requests, {rate:.0}/s, {failed} failed");
    assert_eq!(failed, 0, "failed requests: {problems:?}");
    assert!(rate >= 500.0, "the load ran at {rate:.0} requests/s, under the 500/s asked for");
    assert_eq!(metric(&http, &server, "storehost_reloads_total").await, 20.0);
    assert_eq!(metric(&http, &server, "storehost_plugin_generation{plugin=\"store\"}").await, 21.0);
    // What was written under the reloads is all there.
    for i in 0..keys {
        let get = http.get(server.url(&format!("/v1/artifacts/load/{i}"))).send().await.unwrap();
        assert_eq!(get.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_changes_nothing_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let keys = 16;
    let (server, http) = start(dir.path(), &[], keys).await;
    let before = plugin(&http, &server).await;
    let load = Load::start(&http, &server.base, 4, keys);
    let refused = |want_key: &'static str, want_message: &'static str| {
        let (http, url) = (http.clone(), server.url("/v1/admin/reload"));
        async move {
            let reload = http.post(url).send().await.unwrap();
            assert_eq!(reload.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let body: Value = reload.json().await.unwrap();
            assert!(body["error"]["key"].as_str().is_some_and(|k| k.starts_with(want_key)), "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(want_message), "{message:?} does not say {want_message:?}");
        }
    };
    let path = dir.path().join("store.wasm");
    // Not a component at all.
    install(&path, b"this is not wasm");
    refused("plugins.store", "is not a WebAssembly file").await;
    // A component of another world: it does not export the artifacts interface bound to it.
    install(&path, &std::fs::read(storehost::test_fixture("other-world").unwrap()).unwrap());
    refused("plugins.store", "storehost:origin").await;
    // The first build back, and a manifest with a misspelled key.
    install(&path, &builds()[0].0);
    std::fs::write(dir.path().join("storehost.toml"), manifest("instancez = 2")).unwrap();
    refused("plugins.store", "unknown field `instancez`").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sent, _, failed, problems) = load.finish().await;
    assert_eq!(failed, 0, "failed requests during refused reloads: {problems:?}");
    assert!(sent > 0);
    let after = plugin(&http, &server).await;
    assert_eq!((&after["generation"], &after["sha256"]), (&before["generation"], &before["sha256"]), "the old plugin still serves");
    assert_eq!(metric(&http, &server, "storehost_reload_failures_total").await, 3.0);
    assert_eq!(metric(&http, &server, "storehost_reloads_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_setting_reloads_and_a_listen_change_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start(dir.path(), &[], 4).await;
    let manifest_path = dir.path().join("storehost.toml");
    // The same component with another queue length: loaded anew, so the caches of both domains
    // bound to it start empty.
    std::fs::write(&manifest_path, manifest("queue = 16")).unwrap();
    let x_cache = |key: &'static str| {
        let (http, url) = (http.clone(), server.url(&format!("/v1/artifacts/load/{key}")));
        async move { http.get(url).send().await.unwrap().headers()["x-cache"].to_str().unwrap().to_string() }
    };
    assert_eq!(x_cache("1").await, "hit", "written through");
    let report: Value = http.post(server.url("/v1/admin/reload")).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["report"]["loaded"], serde_json::json!(["store"]), "{report}");
    assert_eq!(plugin(&http, &server).await["settings"]["queue"], 16);
    assert_eq!(x_cache("1").await, "miss", "the reloaded origin's cache starts empty");
    assert_eq!(x_cache("1").await, "hit");
    // Nothing changed: everything is kept, the caches' entries too.
    let report: Value = http.post(server.url("/v1/admin/reload")).send().await.unwrap().json().await.unwrap();
    assert_eq!((&report["report"]["loaded"], &report["report"]["kept"]), (&serde_json::json!([]), &serde_json::json!(["store"])), "{report}");
    assert_eq!(report["report"]["cleared"], serde_json::json!([]), "{report}");
    assert_eq!(x_cache("1").await, "hit", "an unchanged domain keeps its cache");
    // A new listen address needs a restart: reported, and the server stays where it is.
    let text = format!("[server]\nlisten = \"127.0.0.1:1\"\n{}", manifest("queue = 16"));
    std::fs::write(&manifest_path, text).unwrap();
    let report: Value = http.post(server.url("/v1/admin/reload")).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["report"]["restart_required"], serde_json::json!(["server"]), "{report}");
    assert_eq!(http.get(server.url("/v1/artifacts/load/1")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_domain_starts_empty_and_the_others_keep_their_caches() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start(dir.path(), &[], 1).await;
    let put = http.put(server.url("/v1/projects/p")).json(&serde_json::json!({ "name": "P", "state": {} })).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let hit = http.get(server.url("/v1/artifacts/load/0")).send().await.unwrap();
    assert_eq!(hit.headers()["x-cache"], "hit");
    // The project domain moves to a new plugin; the artifact domain stays where it was.
    let rebound = manifest("")
        .replace("[domains]", "[plugins.mem]\nsource = \"builtin:memory\"\n\n[domains]")
        .replace("project = { origin = \"store\" }", "project = { origin = \"mem\" }");
    let manifest_path = dir.path().join("storehost.toml");
    std::fs::write(&manifest_path, &rebound).unwrap();
    let report: Value = http.post(server.url("/v1/admin/reload")).send().await.unwrap().json().await.unwrap();
    let r = &report["report"];
    assert_eq!(
        (&r["loaded"], &r["kept"], &r["cleared"]),
        (&serde_json::json!(["mem"]), &serde_json::json!(["store"]), &serde_json::json!(["project"])),
        "{report}"
    );
    let kept = http.get(server.url("/v1/artifacts/load/0")).send().await.unwrap();
    assert_eq!(kept.headers()["x-cache"], "hit", "the artifact cache was kept");
    let moved = http.get(server.url("/v1/projects/p")).send().await.unwrap();
    assert_eq!(moved.status(), StatusCode::NOT_FOUND, "the project domain reads its new origin");
    // And back: the memory plugin is removed, the project domain reads the files again.
    std::fs::write(&manifest_path, manifest("")).unwrap();
    let report: Value = http.post(server.url("/v1/admin/reload")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&report["report"]["removed"], &report["report"]["cleared"]),
        (&serde_json::json!(["mem"]), &serde_json::json!(["project"])),
        "{report}"
    );
    let back: Value = http.get(server.url("/v1/projects/p")).send().await.unwrap().json().await.unwrap();
    assert_eq!(back["name"], "P");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start(dir.path(), &[], 1).await;
    install(&dir.path().join("store.wasm"), &builds()[1].0);
    std::process::Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    let started = Instant::now();
    while plugin(&http, &server).await["describe"]["version"] != "0.1.1" {
        assert!(started.elapsed() < Duration::from_secs(20), "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http.get(server.url("/v1/artifacts/load/0")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_serves_a_replaced_component_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start(dir.path(), &["--watch"], 1).await;
    let builds = builds();
    for round in 1..=2 {
        let (bytes, version) = &builds[round % 2];
        install(&dir.path().join("store.wasm"), bytes);
        let replaced = Instant::now();
        loop {
            let now = plugin(&http, &server).await;
            if now["describe"]["version"] == *version {
                assert_eq!(now["generation"], round as u64 + 1);
                break;
            }
            let waited = replaced.elapsed();
            assert!(waited < Duration::from_secs(2), "round {round}: still {} after {waited:?}", now["describe"]["version"]);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        eprintln!("--watch round {round}: the new build served {:?} after the file was replaced", replaced.elapsed());
        assert_eq!(http.get(server.url("/v1/artifacts/load/0")).send().await.unwrap().status(), StatusCode::OK);
    }
}
