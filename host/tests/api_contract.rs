//! The API's contract, on the real binary: the OpenAPI document against what the router answers
//! (every path and method), schemathesis against the running server, and the admin page in a
//! real browser (headless Chromium through its DevTools protocol).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use reqwest::Client;
use serde_json::{Value, json};
use support::{Server, target_dir, tool};
use tokio_tungstenite::tungstenite::Message;

/// A path of the document with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{key}", "some/key").replace("{name}", "some/file").replace("{id}", "id1").replace("{tab}", "tab1").replace("{run}", "run1")
}

const METHODS: [&str; 7] = ["get", "head", "put", "post", "delete", "patch", "options"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_names_every_path_and_method_the_router_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let http = Client::new();
    let served = http.get(server.url("/openapi.json")).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/json");
    let doc: Value = served.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);

    // `storehost openapi` writes the same document, its `servers` entry the manifest's listen
    // address (the embedded default's) where the served one has the address it answers on.
    assert_eq!(doc["servers"], json!([{ "url": server.base, "description": "This server" }]));
    let out = Command::new(support::binary()).arg("openapi").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut written: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written["servers"], json!([{ "url": "http://127.0.0.1:7070", "description": "This server" }]));
    written["servers"] = doc["servers"].clone();
    assert_eq!(written, doc);

    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let mut ids = BTreeSet::new();
    for (path, item) in paths {
        let documented: BTreeSet<String> = METHODS.iter().filter(|m| item.get(**m).is_some()).map(|m| m.to_uppercase()).collect();
        assert!(!documented.contains("PATCH"), "PATCH is the method no route takes, to probe with");
        for method in &documented {
            let operation = &item[method.to_lowercase()];
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
            assert!(operation["responses"].as_object().is_some_and(|r| r.keys().any(|s| s.starts_with('2'))), "{method} {path} documents no success");
        }
        // The router answers a method it does not route with 405 and the methods it does.
        let probe = http.patch(server.url(&concrete(path))).send().await.unwrap();
        assert_eq!(probe.status(), 405, "PATCH {path}");
        let allowed: BTreeSet<String> = probe.headers()["allow"].to_str().unwrap().split(',').map(|m| m.trim().to_uppercase()).collect();
        assert_eq!(allowed, documented, "the methods the router answers on {path}, and those the document names");
    }
    // Every error answer is the documented shape.
    let schema = &doc["components"]["schemas"]["Error"];
    assert_eq!(schema["required"], json!(["error"]));
    // A server without tokens asks for no credentials, and its document says so.
    assert!(doc.get("security").is_none() && doc["components"].get("securitySchemes").is_none(), "{}", doc["security"]);
    let paths = doc["paths"].as_object().unwrap().values();
    assert!(paths.flat_map(|item| item.as_object().unwrap().values()).all(|op| op["responses"].get("401").is_none()), "401 without tokens");
    // One with tokens declares the bearer scheme.
    let manifest = dir.path().join("tokens.toml");
    std::fs::write(&manifest, MANIFEST_WITH_TOKENS).unwrap();
    let out = Command::new(support::binary()).arg("openapi").arg("--manifest").arg(&manifest).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secured: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(secured["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(secured["security"], json!([{ "bearer": [] }]));
}

/// Every domain on the memory plugin, under memory and disk caches, behind tokens.
const MANIFEST_WITH_TOKENS: &str = r#"
[server]
tokens = [{ token = "all-scopes", scopes = ["read", "write", "admin"] }, { token = "reader", scopes = ["read"] }]

[cache.memory]
max_bytes = "64MiB"

[cache.disk]
dir = "cache"
max_bytes = "1GiB"

[plugins.store]
source = "builtin:memory"
instances = 1

[domains]
artifact = { origin = "store" }
project = { origin = "store", artifacts = "store" }
ui = { origin = "store" }
workspace = { origin = "store" }
runner = { origin = "store" }
"#;

/// Runs schemathesis against `server` (`args` added to its `run`), with every default check on
/// every operation as `schemathesis.toml` sets them, and asserts it found no failure and tested
/// every operation of the document. `name` names the run's directory under
/// `<target>/schemathesis/` (its JUnit report and its cache), so that runs do not share one.
async fn schemathesis_passes(server: &Server, name: &str, args: &[&str]) {
    let schemathesis = tool("STOREHOST_SCHEMATHESIS", target_dir().join("tools/schemathesis/bin/schemathesis"));
    let reports = target_dir().join("schemathesis").join(name);
    std::fs::create_dir_all(&reports).unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let started = Instant::now();
    let run = tokio::task::spawn_blocking({
        let url = server.url("/openapi.json");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let reports = reports.clone();
        move || {
            Command::new(&schemathesis)
                .arg("--config-file")
                .arg(config)
                .args(["run", &url, "--no-color", "--seed", "1"])
                .args(&args)
                .args(["--report", "junit", "--report-dir"])
                .arg(&reports)
                // It keeps a cache of its own in its working directory.
                .current_dir(&reports)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let summary: Vec<&str> = stdout.lines().skip_while(|l| !l.contains("SUMMARY")).collect();
    println!("schemathesis ({name}) ran for {:.0} s:\n{}", started.elapsed().as_secs_f64(), summary.join("\n"));
    assert!(run.status.success(), "schemathesis ({name}) failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let doc: Value = Client::new().get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count()).sum();
    let line = |label: &str| summary.iter().find_map(|l| l.trim().strip_prefix(label)).map(str::trim).unwrap_or_default().to_string();
    assert_eq!(line("Selected:"), format!("{operations}/{operations}"), "schemathesis ({name}) did not select every operation");
    assert_eq!(line("Tested:"), operations.to_string(), "schemathesis ({name}) did not test every operation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_on_any_route_of_the_memory_origin_behind_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(MANIFEST_WITH_TOKENS), &[]);
    schemathesis_passes(&server, "memory-tokens", &["--header", "Authorization: Bearer all-scopes"]).await;
}

/// The embedded default: every domain on the fs plugin, no tokens (the document declares no
/// security), every key and id the contract allows stored as files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_on_any_route_of_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    schemathesis_passes(&server, "embedded-default", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_opens_the_admin_page_with_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(MANIFEST_WITH_TOKENS), &[]);
    let http = Client::new();
    let page = || http.get(server.url("/admin"));
    let anonymous = page().send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"), "a browser is asked for credentials");
    assert_eq!(page().basic_auth("me", Some("reader")).send().await.unwrap().status(), 403, "the page needs the admin scope");
    let basic = page().basic_auth("me", Some("all-scopes")).send().await.unwrap();
    assert_eq!(basic.status(), 200);
    assert!(basic.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(page().bearer_auth("all-scopes").send().await.unwrap().status(), 200);
    assert_eq!(http.get(server.url("/metrics")).basic_auth("x", Some("nope")).send().await.unwrap().status(), 401);
    // Elsewhere a missing token is asked for as a bearer token.
    assert_eq!(http.get(server.url("/metrics")).send().await.unwrap().headers()["www-authenticate"], "Bearer");
}

/// One value of a Prometheus text exposition: the series `name{labels}`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series}"))
        .parse()
        .unwrap()
}

/// The upper bound of the bucket of a histogram's `q` quantile, from its cumulative buckets.
fn quantile_bound(text: &str, name: &str, labels: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{{labels},le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (le, count) = rest.split_once("\"} ").unwrap();
            (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, count.parse().unwrap())
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = (total * q).ceil().max(1.0);
    buckets.iter().find(|(_, cumulative)| *cumulative >= rank).map(|(le, _)| *le)
}

/// A latency cell of the page (`≤ 250 µs`, `≤ 2.5 ms`, `> 10 s`, `–`) as seconds.
fn shown_bound(cell: &str) -> Option<f64> {
    if cell == "–" {
        return None;
    }
    if cell.starts_with('>') {
        return Some(f64::INFINITY);
    }
    let (number, unit) = cell.trim_start_matches('≤').trim().split_once(' ').unwrap();
    let scale = match unit {
        "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        other => panic!("unit {other}"),
    };
    Some(number.parse::<f64>().unwrap() * scale)
}

/// A page in headless Chromium, driven through the DevTools protocol.
struct Browser {
    child: std::process::Child,
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = tool("STOREHOST_CHROMIUM", PathBuf::from("/usr/bin/chromium"));
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromium");
        // Chromium writes the port it took into the profile directory.
        let port_file = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|t| t.lines().next().map(str::to_string)).filter(|p| !p.is_empty())
            {
                break port;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "chromium did not open its DevTools port");
            if let Some(status) = child.try_wait().unwrap() {
                panic!("chromium exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let target: Value = Client::new().put(format!("http://127.0.0.1:{port}/json/new?about:blank")).send().await.unwrap().json().await.unwrap();
        let (socket, _) = tokio_tungstenite::connect_async(target["webSocketDebuggerUrl"].as_str().unwrap()).await.unwrap();
        Browser { child, socket, next_id: 0, _profile: profile }
    }

    /// Sends a command and returns its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.socket.send(Message::text(json!({ "id": id, "method": method, "params": params }).to_string())).await.unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next()).await.expect("DevTools answers").unwrap().unwrap();
            let Message::Text(text) = message else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {}", answer["error"]);
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true })).await;
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    /// Opens `url` and waits until its tables are there.
    async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        let started = Instant::now();
        while self.eval("document.readyState === 'complete' && !!document.getElementById('live')").await != json!(true) {
            assert!(started.elapsed() < Duration::from_secs(20), "the page did not load");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The rows of a table of the page: the row's key, and each cell's text by its column.
    async fn table(&mut self, id: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let rows = self
            .eval(&format!(
                "[...document.querySelectorAll('#{id} tbody tr')].map(tr => [tr.dataset.row, Object.fromEntries([...tr.children].map(c => [c.dataset.label, c.textContent]))])"
            ))
            .await;
        serde_json::from_value::<Vec<(String, BTreeMap<String, String>)>>(rows).unwrap().into_iter().collect()
    }

    /// A PNG of the page: the whole of it, or what the screen shows.
    async fn screenshot(&mut self, path: &std::path::Path, whole: bool) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": whole })).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the page's plugin and cache tables against `/metrics`.
fn check_against_metrics(metrics: &str, plugins: &BTreeMap<String, BTreeMap<String, String>>, caches: &BTreeMap<String, BTreeMap<String, String>>) {
    assert!(!plugins.is_empty() && !caches.is_empty());
    for (plugin, cells) in plugins {
        let labels = format!("plugin=\"{plugin}\"");
        let value = |name: &str| metric(metrics, &format!("{name}{{{labels}}}"));
        assert_eq!(cells["Calls"], value("storehost_plugin_calls_total").to_string(), "{plugin} calls");
        assert_eq!(cells["Generation"], value("storehost_plugin_generation").to_string(), "{plugin} generation");
        assert_eq!(cells["In use"], value("storehost_plugin_pool_in_use").to_string(), "{plugin} in use");
        assert_eq!(cells["Idle"], format!("{} of {}", value("storehost_plugin_pool_idle"), value("storehost_plugin_pool_size")), "{plugin} idle");
        assert_eq!(cells["Traps"], value("storehost_plugin_traps_total").to_string());
        assert_eq!(cells["Timeouts"], value("storehost_plugin_timeouts_total").to_string());
        let errors: f64 = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("storehost_plugin_errors_total{{{labels},")))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum();
        assert!(cells["Errors"].starts_with(&(errors as u64).to_string()), "{plugin} errors: {} against {errors}", cells["Errors"]);
        for (column, q) in [("p50", 0.5), ("p99", 0.99)] {
            let expected = quantile_bound(metrics, "storehost_plugin_call_duration_seconds", &labels, q);
            let shown = shown_bound(&cells[column]);
            assert!(
                match (shown, expected) {
                    (Some(a), Some(b)) => (a - b).abs() <= b * 1e-9,
                    (a, b) => a == b,
                },
                "{plugin} {column}: the page shows {} and /metrics gives {expected:?}",
                cells[column]
            );
        }
    }
    for (row, cells) in caches {
        let (domain, cache) = row.split_once('/').unwrap();
        let labels = format!("domain=\"{domain}\",cache=\"{cache}\"");
        let requests = |result: &str| metric(metrics, &format!("storehost_cache_requests_total{{{labels},result=\"{result}\"}}"));
        let (hits, misses) = (requests("hit"), requests("miss"));
        let ratio = if hits + misses == 0.0 { "–".to_string() } else { format!("{:.1} %", hits * 100.0 / (hits + misses)) };
        assert_eq!(cells["Hit ratio"], ratio, "{row} hit ratio");
        assert_eq!(cells["Hits"], hits.to_string(), "{row} hits");
        assert_eq!(cells["Misses"], misses.to_string(), "{row} misses");
        assert_eq!(cells["Entries"], metric(metrics, &format!("storehost_cache_entries{{{labels}}}")).to_string(), "{row} entries");
        assert_eq!(cells["Evictions"], metric(metrics, &format!("storehost_cache_evictions_total{{{labels}}}")).to_string(), "{row} evictions");
        assert_eq!(cells["Coalesced"], metric(metrics, &format!("storehost_cache_coalesced_total{{{labels}}}")).to_string(), "{row} coalesced");
    }
}

/// Some reads and writes of every kind: hits, misses, a not-found.
async fn traffic(http: &Client, server: &Server, round: usize) {
    for i in 0..4 {
        let key = format!("/v1/artifacts/page/{round}/{i}.txt");
        assert_eq!(http.put(server.url(&key)).body(vec![b'x'; 100 * (i + 1)]).send().await.unwrap().status(), 200);
        for _ in 0..=i {
            assert_eq!(http.get(server.url(&key)).send().await.unwrap().status(), 200);
        }
    }
    assert_eq!(http.get(server.url(&format!("/v1/artifacts/page/{round}/missing"))).send().await.unwrap().status(), 404);
    let project = format!("/v1/projects/p{round}");
    assert_eq!(http.put(server.url(&project)).json(&json!({ "name": "P", "state": { "n": round } })).send().await.unwrap().status(), 200);
    for _ in 0..3 {
        assert_eq!(http.get(server.url(&project)).send().await.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_in_chromium_shows_the_numbers_metrics_gives_and_keeps_them_current() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let http = Client::new();
    traffic(&http, &server, 0).await;
    let mut browser = Browser::start().await;
    browser.call("Emulation.setDeviceMetricsOverride", json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false })).await;
    browser.open(&server.url("/admin")).await;
    let (plugins, caches) = (browser.table("plugins").await, browser.table("caches").await);
    // Nothing calls a plugin between the page and /metrics: the numbers are the same.
    let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    check_against_metrics(&metrics, &plugins, &caches);
    assert_eq!(plugins.keys().collect::<Vec<_>>(), ["files"]);
    assert!(caches.contains_key("artifact/blob") && caches.contains_key("artifact/disk") && caches.contains_key("project/project"), "{caches:?}");
    assert_ne!(caches["artifact/blob"]["Hits"], "0");
    assert_ne!(caches["project/project"]["Hits"], "0");
    let shots = target_dir().join("admin-page");
    std::fs::create_dir_all(&shots).unwrap();
    browser.screenshot(&shots.join("desktop.png"), true).await;

    // More traffic: the open page catches up by itself (it fetches itself every 2 s).
    let before = caches["artifact/blob"]["Hits"].clone();
    traffic(&http, &server, 1).await;
    let started = Instant::now();
    loop {
        let now = browser.table("caches").await;
        if now["artifact/blob"]["Hits"] != before {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the page did not refresh within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (plugins, caches) = (browser.table("plugins").await, browser.table("caches").await);
    let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    check_against_metrics(&metrics, &plugins, &caches);
    assert_eq!(browser.eval("document.getElementById('state').textContent.startsWith('live, ')").await, json!(true));

    // On a phone-sized screen: no sideways scrolling, one card per row.
    browser.call("Emulation.setDeviceMetricsOverride", json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true })).await;
    browser.open(&server.url("/admin")).await;
    assert_eq!(browser.eval("document.documentElement.scrollWidth <= window.innerWidth").await, json!(true), "the page scrolls sideways on a phone");
    assert_eq!(browser.eval("getComputedStyle(document.querySelector('#plugins thead')).display").await, "none");
    assert_eq!(browser.eval("getComputedStyle(document.querySelector('#caches tbody tr')).display").await, "grid");
    browser.screenshot(&shots.join("phone.png"), false).await;
    browser.screenshot(&shots.join("phone-whole.png"), true).await;
    println!("screenshots: {}", shots.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_of_ten_plugins_and_every_domain_renders_in_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let server = Server::start(dir.path(), Some(include_str!("ten-plugins.toml")), &[]);
    let http = Client::new();
    traffic(&http, &server, 0).await;
    let mut took = Vec::new();
    for _ in 0..50 {
        let page = http.get(server.url("/admin")).send().await.unwrap();
        let timing = page.headers()["server-timing"].to_str().unwrap().to_string();
        let ms: f64 = timing.strip_prefix("render;dur=").unwrap().parse().unwrap();
        let html = page.text().await.unwrap();
        assert_eq!(html.matches("<tr data-row=\"memory").count(), 9);
        for row in ["files", "artifact/blob", "artifact/disk", "project/project", "ui/document", "workspace/tab", "runner"] {
            assert!(html.contains(&format!("<tr data-row=\"{row}\"")), "no row {row}");
        }
        took.push(ms);
    }
    took.sort_by(f64::total_cmp);
    println!("admin page, 10 plugins, every domain: render median {:.3} ms, max {:.3} ms (Server-Timing, 50 requests)", took[25], took[49]);
}
