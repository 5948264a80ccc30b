//! The HTTP API's edges, on the real binary: conditional writes wherever they take a version,
//! unknown query parameters, early 413s, malformed paths and headers, `ETag`s that round-trip,
//! and errors counted by kind.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `head` (and nothing else) and returns the status and body of the answer.
async fn raw(server: &Server, head: &[u8]) -> (u16, Value) {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn version_of(http: &Client, server: &Server, id: &str) -> u64 {
    http.get(server.url(&format!("/v1/projects/{id}"))).send().await.unwrap().json::<Value>().await.unwrap()["version"].as_u64().unwrap()
}

fn server(dir: &std::path::Path) -> Server {
    Server::start(
        dir,
        Some(
            "[plugins.f]\nsource = \"builtin:fs\"\ndirs = { \"/data\" = { host = \"data\", mode = \"rw\" } }\n[domains]\nartifact = { origin = \"f\", max_body = \"1KiB\" }\nproject = { origin = \"f\", max_body = \"1KiB\" }\nui = { origin = \"f\", max_body = \"1KiB\" }\nworkspace = { origin = \"f\", max_body = \"1KiB\" }\n",
        ),
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conditional_write_takes_its_version_from_the_query_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let http = Client::new();
    let save = |query: &str, body: Value| http.put(server.url(&format!("/v1/projects/q1{query}"))).json(&body).send();
    assert!(save("", json!({ "name": "q" })).await.unwrap().status().is_success());
    // A stale version in the query is a conflict, and the project stays at version 1.
    assert_eq!(save("?expected_version=7", json!({ "name": "q" })).await.unwrap().status(), StatusCode::CONFLICT);
    assert_eq!(version_of(&http, &server, "q1").await, 1);
    // Query and body, or query and If-Match, must agree.
    let disagree = save("?expected_version=1", json!({ "name": "q", "expected_version": 2 })).await.unwrap();
    assert_eq!(disagree.status(), StatusCode::BAD_REQUEST);
    let disagree =
        http.put(server.url("/v1/projects/q1?expected_version=1")).header("if-match", "\"2\"").json(&json!({ "name": "q" })).send().await.unwrap();
    assert_eq!(disagree.status(), StatusCode::BAD_REQUEST);
    assert_eq!(version_of(&http, &server, "q1").await, 1);
    assert!(save("?expected_version=1", json!({ "name": "q" })).await.unwrap().status().is_success());
    assert_eq!(version_of(&http, &server, "q1").await, 2);
    // UI documents too.
    let ops = json!({ "ops": [{ "op": "insert-node", "node": { "id": "root", "parent": null, "kind": "page", "props": [] }, "index": 0 }] });
    let stale = http.post(server.url("/v1/ui/documents/d1/ops?expected_version=3")).json(&ops).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_query_parameter_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let http = Client::new();
    http.put(server.url("/v1/projects/q2")).json(&json!({ "name": "q" })).send().await.unwrap();
    let typo = http.put(server.url("/v1/projects/q2?expected_versoin=1")).json(&json!({ "name": "changed" })).send().await.unwrap();
    assert_eq!(typo.status(), StatusCode::BAD_REQUEST);
    let body: Value = typo.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("expected_versoin"), "{body}");
    assert_eq!(version_of(&http, &server, "q2").await, 1);
    for path in ["/v1/projects/q2?x=1", "/v1/artifacts/a?x=1", "/v1/workspaces/w?x=1", "/v1/ui/documents/d?x=1", "/v1/projects/q2/artifacts?x=1"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_over_the_limit_is_refused_before_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let started = Instant::now();
    let (status, body) = raw(&server, b"PUT /v1/artifacts/big HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n").await;
    assert_eq!((status, body["error"]["kind"].as_str()), (413, Some("too-large")));
    assert!(started.elapsed() < Duration::from_secs(2), "the 413 took {:?}", started.elapsed());
}

/// A body framed both by `Content-Length` and by `Transfer-Encoding` is refused with 400 and the
/// connection closed (each hop in front of the server may read it the other way), and nothing
/// is written; the connection is not read further, so a request hidden in the body never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_framed_two_ways_is_refused_and_the_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let smuggled = b"PUT /v1/artifacts/ok/smuggle HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nPUT /v1/artifacts/ok/hidden HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nx";
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(smuggled).await.unwrap();
    let mut response = Vec::new();
    // The server closes the connection after its answer: read_to_end ends well before the timeout.
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await.expect("the connection was left open").unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(!text.contains("HTTP/1.1 2"), "a second request was answered: {text}");
    let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["kind"], "invalid");
    let http = Client::new();
    for key in ["ok/smuggle", "ok/hidden"] {
        assert_eq!(http.get(server.url(&format!("/v1/artifacts/{key}"))).send().await.unwrap().status(), 404, "{key} was written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answer_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let cases: [(&[u8], u16); 5] = [
        (b"PATCH /v1/projects/p HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", 405),
        (b"GET /v1/projects/p HTTP/1.1\r\nhost: x\r\nx-bad: a\x01b\r\nconnection: close\r\n\r\n", 400),
        (b"GET /v1/artifacts/%zz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", 400),
        (b"GET /v1/artifacts/a% HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", 400),
        (b"GET /v1/projects/%FF%FE HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", 400),
    ];
    for (request, expected) in cases {
        let (status, body) = raw(&server, request).await;
        let shown = String::from_utf8_lossy(request);
        assert_eq!(status, expected, "{shown}");
        assert!(body["error"]["kind"].is_string() && body["error"]["message"].is_string(), "{shown}: {body}");
    }
    // A malformed escape is refused, not stored as a literal key.
    let (status, _) = raw(&server, b"PUT /v1/artifacts/%zz HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx").await;
    assert_eq!(status, 400);
    assert!(!dir.path().join("data/artifacts").exists() || std::fs::read_dir(dir.path().join("data/artifacts")).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_records_carry_an_etag_that_if_match_takes_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let http = Client::new();
    let etag = |r: &reqwest::Response| r.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
    let saved = http.put(server.url("/v1/projects/e")).json(&json!({ "name": "e" })).send().await.unwrap();
    assert_eq!(etag(&saved).as_deref(), Some("\"1\""));
    let got = http.get(server.url("/v1/projects/e")).send().await.unwrap();
    let tag = etag(&got).unwrap();
    let again = http.put(server.url("/v1/projects/e")).header("if-match", &tag).json(&json!({ "name": "e2" })).send().await.unwrap();
    assert_eq!((again.status(), etag(&again).as_deref()), (StatusCode::OK, Some("\"2\"")));
    let stale = http.put(server.url("/v1/projects/e")).header("if-match", &tag).json(&json!({ "name": "e3" })).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);

    let ws = http.put(server.url("/v1/workspaces/w")).json(&json!({ "project_id": "e", "name": "w" })).send().await.unwrap();
    assert_eq!(etag(&ws).as_deref(), Some("\"1\""));
    assert!(etag(&http.get(server.url("/v1/workspaces/w")).send().await.unwrap()).is_some());
    let ops = json!({ "ops": [{ "op": "insert-node", "node": { "id": "root", "parent": null, "kind": "page", "props": [] }, "index": 0 }] });
    let doc = http.post(server.url("/v1/ui/documents/d/ops")).json(&ops).send().await.unwrap();
    assert_eq!(etag(&doc).as_deref(), Some("\"1\""));
    let doc = http.get(server.url("/v1/ui/documents/d")).send().await.unwrap();
    assert_eq!(etag(&doc).as_deref(), Some("\"1\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_stats_keep_answers_apart_from_failures() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let http = Client::new();
    assert_eq!(http.get(server.url("/v1/projects/missing")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    http.put(server.url("/v1/projects/c")).json(&json!({ "name": "c" })).send().await.unwrap();
    assert_eq!(
        http.put(server.url("/v1/projects/c?expected_version=9")).json(&json!({ "name": "c" })).send().await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let admin: Value = http.get(server.url("/v1/admin/plugins")).send().await.unwrap().json().await.unwrap();
    let stats = &admin["plugins"][0]["stats"];
    assert_eq!(stats["errors"], 0, "{stats}");
    assert_eq!(stats["answers_by_kind"], json!([["not-found", 1], ["conflict", 1]]), "{stats}");
    let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("storehost_plugin_answers_total{plugin=\"f\",kind=\"not-found\"} 1"), "{metrics}");
    assert!(!metrics.lines().any(|l| l.starts_with("storehost_plugin_errors_total{")), "{metrics}");
}
