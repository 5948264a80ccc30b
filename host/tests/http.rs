//! The real binary on a loopback port: every route, its errors, tokens, restarts, shutdown.

mod support;

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::Server;

async fn error_kind(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("errors are JSON");
    (status, body["error"]["kind"].as_str().expect("error.kind").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let http = Client::new();
    let url = |p: &str| server.url(p);

    let put = http.put(url("/v1/artifacts/docs/a b+c.txt")).header("content-type", "text/plain").body("hello").send().await.unwrap();
    assert_eq!(put.status(), 200);
    let meta: Value = put.json().await.unwrap();
    assert_eq!((meta["key"].as_str(), meta["size"].as_u64()), (Some("docs/a b+c.txt"), Some(5)));
    let sha = meta["sha256"].as_str().unwrap().to_string();

    let get = http.get(url("/v1/artifacts/docs/a%20b+c.txt")).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["content-type"], "text/plain");
    assert_eq!(get.headers()["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(get.headers()["x-cache"], "hit", "a put leaves the blob in the memory cache");
    assert_eq!(get.text().await.unwrap(), "hello");
    let cond = http.get(url("/v1/artifacts/docs/a%20b+c.txt")).header("if-none-match", format!("\"{sha}\"")).send().await.unwrap();
    assert_eq!(cond.status(), 304);

    let head = http.head(url("/v1/artifacts/docs/a%20b+c.txt")).send().await.unwrap();
    assert_eq!((head.status(), head.headers()["content-length"].to_str().unwrap()), (StatusCode::OK, "5"));

    let list: Value = http.get(url("/v1/artifacts?prefix=docs/")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // A host-signed URL works without credentials; tampered or expired ones are refused.
    let signed: Value = http.get(url("/v1/artifact-urls/docs/a%20b+c.txt?expires_in=60")).send().await.unwrap().json().await.unwrap();
    assert_eq!(signed["signed_by"], "host");
    let link = signed["url"].as_str().unwrap().to_string();
    assert_eq!(http.get(&link).send().await.unwrap().text().await.unwrap(), "hello");
    let tampered = link.replace("a%20b", "zz");
    assert_eq!(error_kind(http.get(&tampered).send().await.unwrap()).await, (StatusCode::FORBIDDEN, "forbidden".into()));
    let expired = link.replace(&format!("expires={}", signed["expires_at"]), "expires=1000");
    assert_eq!(http.get(&expired).send().await.unwrap().status(), 403);

    let del = http.delete(url("/v1/artifacts/docs/a%20b+c.txt")).send().await.unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(error_kind(http.get(url("/v1/artifacts/docs/a%20b+c.txt")).send().await.unwrap()).await, (StatusCode::NOT_FOUND, "not-found".into()));
}

/// Sends one request exactly as written and returns the status and body.
async fn raw(server: &Server, request_line: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{request_line} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_bodies_are_4xx_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        Some(
            "[plugins.f]\nsource = \"builtin:fs\"\ndirs = { \"/data\" = { host = \"data\", mode = \"rw\" } }\n[domains]\nartifact = { origin = \"f\", max_body = \"1KiB\" }\n",
        ),
        &[],
    );
    let http = Client::new();
    let long = "k".repeat(1025);
    // Raw requests: HTTP clients resolve `..` segments before sending.
    for key in ["a/../b", "..", "a/%2E%2E/b", "nul%00byte", "a//b", long.as_str()] {
        let (status, body) = raw(&server, &format!("PUT /v1/artifacts/{key}"), "x").await;
        assert_eq!(status, 400, "{key}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["kind"], "invalid", "{key}");
    }
    let response = http.put(server.url("/v1/artifacts/big")).body(vec![0u8; 4096]).send().await.unwrap();
    assert_eq!(error_kind(response).await, (StatusCode::PAYLOAD_TOO_LARGE, "too-large".into()));
    let response = http.get(server.url("/v1/artifacts?limit=ten")).send().await.unwrap();
    assert_eq!(error_kind(response).await.0, StatusCode::BAD_REQUEST);
    // A domain the manifest does not bind is a 404, not a crash.
    assert_eq!(error_kind(http.get(server.url("/v1/projects/p")).send().await.unwrap()).await, (StatusCode::NOT_FOUND, "not-found".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_ui_workspace_and_run_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let http = Client::new();
    let url = |p: &str| server.url(p);

    let p: Value = http.put(url("/v1/projects/p1")).json(&json!({"name": "P", "state": {"n": 1}})).send().await.unwrap().json().await.unwrap();
    assert_eq!((p["version"].as_u64(), &p["state"]), (Some(1), &json!({"n": 1})));
    let stale = http.put(url("/v1/projects/p1")).header("if-match", "\"7\"").json(&json!({"name": "P"})).send().await.unwrap();
    assert_eq!(error_kind(stale).await, (StatusCode::CONFLICT, "conflict".into()));
    let ok = http.put(url("/v1/projects/p1")).json(&json!({"name": "P2", "expected_version": 1})).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(http.get(url("/v1/projects/p1")).send().await.unwrap().json::<Value>().await.unwrap()["name"], "P2");
    let listed: Value = http.get(url("/v1/projects?limit=10")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["items"][0]["id"], "p1");
    let add = http.post(url("/v1/projects/p1/artifacts")).json(&json!({"name": "log", "artifact_key": "k/1", "size": 3})).send().await.unwrap();
    assert_eq!(add.status(), 201);
    let records: Value = http.get(url("/v1/projects/p1/artifacts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(records[0]["artifact_key"], "k/1");
    assert_eq!(http.delete(url("/v1/projects/p1?expected_version=2")).send().await.unwrap().status(), 204);
    assert_eq!(http.get(url("/v1/projects/p1")).send().await.unwrap().status(), 404);
    // A project that is not there has no records to list or add to.
    assert_eq!(error_kind(http.get(url("/v1/projects/p1/artifacts")).send().await.unwrap()).await, (StatusCode::NOT_FOUND, "not-found".into()));
    let orphan = http.post(url("/v1/projects/p1/artifacts")).json(&json!({"name": "log", "artifact_key": "k/1"})).send().await.unwrap();
    assert_eq!(error_kind(orphan).await, (StatusCode::NOT_FOUND, "not-found".into()));

    let ops = json!({"ops": [
        {"op": "insert-node", "node": {"id": "root", "parent": null, "kind": "page", "props": [["title", "\"Home\""]]}, "index": 0},
        {"op": "set-prop", "node_id": "root", "key": "width", "value": "640"}
    ]});
    let doc: Value = http.post(url("/v1/ui/documents/home/ops")).json(&ops).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(http.get(url("/v1/ui/documents/home")).send().await.unwrap().json::<Value>().await.unwrap()["nodes"][0]["id"], "root");
    let bad_json = json!({"ops": [{"op": "set-prop", "node_id": "root", "key": "k", "value": "not json"}]});
    assert_eq!(error_kind(http.post(url("/v1/ui/documents/home/ops")).json(&bad_json).send().await.unwrap()).await.0, StatusCode::BAD_REQUEST);
    let conflict = http.post(url("/v1/ui/documents/home/ops")).json(&json!({"expected_version": 9, "ops": []})).send().await.unwrap();
    assert_eq!(conflict.status(), 409);

    assert_eq!(http.put(url("/v1/workspaces/w")).json(&json!({"project_id": "p1", "name": "W"})).send().await.unwrap().status(), 201);
    assert_eq!(http.put(url("/v1/workspaces/w")).json(&json!({"project_id": "p1", "name": "W"})).send().await.unwrap().status(), 409);
    assert_eq!(http.post(url("/v1/workspaces/w/tabs")).json(&json!({"id": "t", "title": "T", "kind": "log"})).send().await.unwrap().status(), 201);
    let ws: Value = http.put(url("/v1/workspaces/w/selected-tab")).json(&json!({"tab_id": "t"})).send().await.unwrap().json().await.unwrap();
    assert_eq!((ws["selected_tab"].as_str(), ws["version"].as_u64()), (Some("t"), Some(2)));
    let tab: Value = http.put(url("/v1/workspaces/w/tabs/t/run")).json(&json!({"run_id": "r9"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(tab["run_id"], "r9");
    assert_eq!(http.get(url("/v1/workspaces/w/tabs")).send().await.unwrap().json::<Value>().await.unwrap()[0]["run_id"], "r9");
    assert_eq!(http.get(url("/v1/workspaces/w/tabs/t")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url("/v1/workspaces/w")).send().await.unwrap().json::<Value>().await.unwrap()["selected_tab"], "t");

    assert_eq!(http.put(url("/v1/runs/r1/artifacts/out/a.txt")).body("A").send().await.unwrap().status(), 204);
    assert_eq!(http.get(url("/v1/runs/r1/artifacts/out/a.txt")).send().await.unwrap().text().await.unwrap(), "A");
    assert_eq!(http.get(url("/v1/runs/r1/artifacts?prefix=out/")).send().await.unwrap().json::<Value>().await.unwrap(), json!(["out/a.txt"]));
    assert_eq!(http.delete(url("/v1/runs/r1/artifacts/out/a.txt")).send().await.unwrap().status(), 204);
    assert_eq!(http.get(url("/v1/runs/r1/artifacts/out/a.txt")).send().await.unwrap().status(), 404);

    let ready: Value = http.get(url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    let plugins: Value = http.get(url("/v1/admin/plugins")).send().await.unwrap().json().await.unwrap();
    assert_eq!(plugins["plugins"][0]["describe"]["name"], "fs");
    let cache: Value = http.get(url("/v1/admin/cache")).send().await.unwrap().json().await.unwrap();
    assert!(cache["domains"].as_array().unwrap().iter().any(|d| d["domain"] == "workspace"));
    let metrics = http.get(url("/metrics")).send().await.unwrap().text().await.unwrap();
    for family in [
        "storehost_cache_requests_total{domain=\"project\"",
        "storehost_origin_latency_seconds_bucket{domain=\"ui\"",
        "storehost_plugin_calls_total{plugin=\"files\"}",
        "storehost_plugin_pool_size{plugin=\"files\"} 4",
    ] {
        assert!(metrics.contains(family), "/metrics lacks {family}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "[server]\ntokens = [{ token = \"${ADMIN}\", scopes = [\"read\", \"write\", \"admin\"] }, { token = \"reader\", scopes = [\"read\"] }]\n[plugins.m]\nsource = \"builtin:memory\"\n[domains]\nartifact = { origin = \"m\" }\n";
    let server = Server::start(dir.path(), Some(manifest), &[("ADMIN", "s3cret")]);
    let http = Client::new();
    let put = |token: Option<&str>| {
        let mut request = http.put(server.url("/v1/artifacts/k")).body("v");
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    assert_eq!(error_kind(put(None).await.unwrap()).await, (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    assert_eq!(error_kind(put(Some("wrong")).await.unwrap()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(error_kind(put(Some("reader")).await.unwrap()).await, (StatusCode::FORBIDDEN, "forbidden".into()));
    assert_eq!(put(Some("s3cret")).await.unwrap().status(), 200);
    assert_eq!(http.get(server.url("/v1/artifacts/k")).bearer_auth("reader").send().await.unwrap().status(), 200);
    // The hot read (past the router) checks tokens as the routes do.
    let unsigned = http.get(server.url("/v1/artifacts/k")).send().await.unwrap();
    assert_eq!(unsigned.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_eq!(error_kind(unsigned).await, (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    let wrong = http.get(server.url("/v1/artifacts/k")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(error_kind(wrong).await, (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    assert_eq!(http.get(server.url("/v1/artifacts/k")).header("authorization", "Basic eDpyZWFkZXI=").send().await.unwrap().status(), 200);
    assert_eq!(http.get(server.url("/metrics")).bearer_auth("reader").send().await.unwrap().status(), 403);
    assert_eq!(http.get(server.url("/v1/admin/plugins")).bearer_auth("s3cret").send().await.unwrap().status(), 200);
    assert_eq!(http.get(server.url("/healthz")).send().await.unwrap().status(), 200, "health needs no token");
}

#[test]
fn non_loopback_without_tokens_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storehost"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0") && err.contains("tokens"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_fs_data() {
    let dir = tempfile::tempdir().unwrap();
    let http = Client::new();
    let server = Server::start(dir.path(), None, &[]);
    http.put(server.url("/v1/artifacts/kept")).body("still here").send().await.unwrap();
    http.put(server.url("/v1/projects/p")).json(&json!({"name": "P"})).send().await.unwrap();
    assert!(server.stop().success());
    let server = Server::start(dir.path(), None, &[]);
    let get = http.get(server.url("/v1/artifacts/kept")).send().await.unwrap();
    assert_eq!(get.text().await.unwrap(), "still here");
    assert_eq!(http.get(server.url("/v1/projects/p")).send().await.unwrap().json::<Value>().await.unwrap()["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_upload_leaves_no_partial_artifact() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    // Announce 8 MiB, send 1 MiB, then the server is told to stop and the client goes away.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!("PUT /v1/artifacts/partial HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n", 8 << 20);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![7u8; 1 << 20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    Server::terminate(&server.child);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    let mut server = server;
    assert!(support::wait(&mut server.child, Duration::from_secs(10)).is_some(), "the server did not stop");
    drop(server);
    let server = Server::start(dir.path(), None, &[]);
    let get = Client::new().get(server.url("/v1/artifacts/partial")).send().await.unwrap();
    assert_eq!(get.status(), 404, "a partial upload became visible");
    let leftovers: Vec<_> = walk(&dir.path().join(".storehost/data"));
    assert!(leftovers.iter().all(|p| !p.contains("partial")), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_is_504_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "[server]\nrequest_timeout = \"300ms\"\n[plugins.m]\nsource = \"builtin:mock\"\ninstances = 2\nconfig = { \"fault.artifact-bodies.open.slow\" = \"delay-ms=5000\" }\n[domains]\nartifact = { origin = \"m\", cache = false }\n";
    let server = Server::start(dir.path(), Some(manifest), &[]);
    let http = Client::new();
    let started = std::time::Instant::now();
    let response = http.get(server.url("/v1/artifacts/slow")).send().await.unwrap();
    assert_eq!(error_kind(response).await, (StatusCode::GATEWAY_TIMEOUT, "plugin-timeout".into()));
    assert!(started.elapsed() < Duration::from_secs(2), "answered after {:?}", started.elapsed());
    assert_eq!(http.get(server.url("/v1/artifacts/other")).send().await.unwrap().status(), 404);
}

/// The server's threads under load and at shutdown: many connections at once, each answered
/// whole on whichever thread took it; at SIGTERM a download in flight finishes whole, idle
/// connections close, new ones are refused, and the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_served_on_every_thread_and_a_download_outlives_sigterm() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let http = Client::new();
    let small: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let big: Vec<u8> = (0..48u32 << 20).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect();
    assert_eq!(http.put(server.url("/v1/artifacts/small")).body(small.clone()).send().await.unwrap().status(), 200);
    assert_eq!(http.put(server.url("/v1/artifacts/big")).body(big.clone()).send().await.unwrap().status(), 200);

    // 64 connections of their own, 40 requests each: every answer whole.
    let mut clients = Vec::new();
    for _ in 0..64 {
        let (url, small) = (server.url("/v1/artifacts/small"), small.clone());
        clients.push(tokio::spawn(async move {
            let own = Client::builder().pool_max_idle_per_host(1).build().unwrap();
            for _ in 0..40 {
                let answer = own.get(&url).send().await.unwrap();
                assert_eq!(answer.status(), 200);
                assert!(answer.bytes().await.unwrap() == small, "a body came back other than written");
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }

    // An idle keep-alive connection, and a download that has started.
    let idle = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    let mut download = Client::new().get(server.url("/v1/artifacts/big")).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let mut got = download.chunk().await.unwrap().unwrap().to_vec();
    let mut server = server;
    Server::terminate(&server.child);
    // The listener closes: a new connection is refused once the server has taken the signal.
    let address = server.base.trim_start_matches("http://").to_string();
    let started = std::time::Instant::now();
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        assert!(started.elapsed() < Duration::from_secs(5), "the server still accepts connections 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The idle connection is closed by the server.
    let mut idle = idle;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut idle, &mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the idle connection stayed open: {read:?}");
    // The download in flight finishes whole.
    while let Some(chunk) = download.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got.len(), big.len());
    assert_eq!(Sha256::digest(&got), Sha256::digest(&big), "the download in flight came back other than written");
    let status = support::wait(&mut server.child, Duration::from_secs(10)).expect("the server exits within 10 s of SIGTERM");
    assert!(status.success(), "{status}");
}
