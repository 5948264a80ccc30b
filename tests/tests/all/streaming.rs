//! Artifacts of any size over HTTP, through the real binary: range reads on every backend,
//! uploads cut by the client, and a 2 GiB body through the fs and s3 plugins with the host's
//! peak memory measured.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::Server;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use sha2::{Digest, Sha256};
use storehost_tests::pg::TestDatabase;
use storehost_tests::s3::{BUCKET, S3Server};
use tokio::io::AsyncWriteExt;

/// The size the host carries per plugin call: ranges are chosen around it.
const CHUNK: u64 = 1 << 20;

fn compiled_cache() -> String {
    std::env::temp_dir().join("storehost-test-compiled-cache").display().to_string()
}

/// A manifest with artifacts on `plugin` (a `[plugins.origin]` table's body), the caches on, and
/// `extra` appended.
fn manifest(plugin: &str, extra: &str) -> String {
    format!(
        "[runtime]\ncompiled_cache = \"{}\"\n\n[cache.memory]\nmax_bytes = \"64MiB\"\n\n[cache.disk]\ndir = \"cache\"\n\n[plugins.origin]\n{plugin}\n\n[domains]\nartifact = {{ origin = \"origin\" }}\n{extra}",
        compiled_cache()
    )
}

fn fs_plugin(extra: &str) -> String {
    format!("source = \"builtin:fs\"\ndirs = {{ \"/data\" = {{ host = \"data\", mode = \"rw\" }} }}\nconfig = {{ fsync = false }}\n{extra}")
}

fn s3_plugin(server: &S3Server, extra: &str) -> String {
    format!(
        "source = \"builtin:s3\"\ntimeout = \"60s\"\nobject_store = {{ bucket = \"{BUCKET}\", endpoint = \"{}\", region = \"us-east-1\", path_style = true, access_key_id = \"{}\", secret_access_key = \"{}\", timeout = \"60s\" }}\nconfig = {{ prefix = \"artifacts/\" }}\n{extra}",
        server.endpoint, server.access_key, server.secret_key
    )
}

/// `len` bytes in which nearby offsets differ, so a shifted range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

async fn ranged(http: &Client, url: &str, range: &str) -> reqwest::Response {
    http.get(url).header("range", range).send().await.unwrap()
}

/// Every range case on one running server, twice (the second time the cache may answer).
async fn check_ranges(server: &Server, what: &str) {
    let http = Client::new();
    let body = pattern(2 * CHUNK as usize + 4321);
    let n = body.len() as u64;
    let url = server.url("/v1/artifacts/ranges/body.bin");
    let put = http.put(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(put.status(), 200, "{what}: put");

    for round in 0..2 {
        let whole = http.get(&url).send().await.unwrap();
        assert_eq!(whole.status(), 200, "{what}");
        assert_eq!(whole.headers()["accept-ranges"], "bytes", "{what}");
        assert_eq!(whole.bytes().await.unwrap(), body, "{what}: whole body, round {round}");

        let cases: [(String, u64, u64); 6] = [
            ("bytes=0-0".into(), 0, 0),
            (format!("bytes={}-{}", n - 1, n - 1), n - 1, n - 1),
            (format!("bytes={}-{}", CHUNK - 10, CHUNK + 9), CHUNK - 10, CHUNK + 9),
            (format!("bytes={}-{}", CHUNK - 1, 2 * CHUNK), CHUNK - 1, 2 * CHUNK),
            ("bytes=-100".into(), n - 100, n - 1),
            ("bytes=1000-".into(), 1000, n - 1),
        ];
        for (range, first, last) in cases {
            let response = ranged(&http, &url, &range).await;
            assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{what}: {range}, round {round}");
            assert_eq!(response.headers()["content-range"], format!("bytes {first}-{last}/{n}").as_str(), "{what}: {range}");
            assert_eq!(response.headers()["content-length"], (last - first + 1).to_string().as_str(), "{what}: {range}");
            let got = response.bytes().await.unwrap();
            assert!(got == body[first as usize..=last as usize], "{what}: {range}, round {round}: {} bytes, not the expected ones", got.len());
        }
        for range in [format!("bytes={n}-"), format!("bytes={}-{}", n + 10, n + 20)] {
            let response = ranged(&http, &url, &range).await;
            assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{what}: {range}");
            assert_eq!(response.headers()["content-range"], format!("bytes */{n}").as_str(), "{what}: {range}");
            let error: serde_json::Value = response.json().await.unwrap();
            assert_eq!(error["error"]["kind"], "range-not-satisfiable", "{what}: {range}");
        }
        let head = http.head(&url).header("range", "bytes=10-19").send().await.unwrap();
        assert_eq!(head.status(), StatusCode::PARTIAL_CONTENT, "{what}: HEAD with a range");
        assert_eq!(head.headers()["content-length"], "10", "{what}: HEAD with a range");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_on_fs_s3_postgres_and_memory() {
    let s3 = S3Server::start().await;
    let db = TestDatabase::create().await;
    let backends = [
        ("fs", fs_plugin("")),
        ("s3", s3_plugin(&s3, "")),
        ("postgres", format!("source = \"builtin:postgres\"\nsql = {{ url = \"{}\" }}\n", db.url)),
        ("memory", "source = \"builtin:memory\"\n".to_string()),
    ];
    for (what, plugin) in backends {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), Some(&manifest(&plugin, "")), &[]);
        check_ranges(&server, what).await;
    }
}

/// Sends the head of a `PUT` of `declared` bytes and `sent` bytes of its body, then drops the
/// connection.
async fn cut_upload(server: &Server, key: &str, declared: usize, sent: usize) {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("PUT /v1/artifacts/{key} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {declared}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let piece = pattern(1 << 20);
    let mut left = sent;
    while left > 0 {
        let n = left.min(piece.len());
        stream.write_all(&piece[..n]).await.unwrap();
        left -= n;
    }
    stream.flush().await.unwrap();
    // Let the host take in what was sent before the connection goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
}

/// Waits up to 10 s for `check`; the failure message says what was still there.
async fn eventually(mut check: impl AsyncFnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(why) if started.elapsed() > Duration::from_secs(10) => panic!("{why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_mid_upload_leaves_nothing_on_fs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&fs_plugin(""), "")), &[]);
    let http = Client::new();
    http.put(server.url("/v1/artifacts/kept")).body("kept").send().await.unwrap();
    cut_upload(&server, "cut/big.bin", 50 << 20, 20 << 20).await;
    cut_upload(&server, "kept", 50 << 20, 3 << 20).await;
    eventually(async || {
        let temps = files_under(&dir.path().join("data/.tmp"));
        if temps.is_empty() { Ok(()) } else { Err(format!("temporary files left: {temps:?}")) }
    })
    .await;
    assert_eq!(http.get(server.url("/v1/artifacts/cut/big.bin")).send().await.unwrap().status(), 404);
    assert_eq!(http.get(server.url("/v1/artifacts/kept")).send().await.unwrap().text().await.unwrap(), "kept");
    let listed: serde_json::Value = http.get(server.url("/v1/artifacts?prefix=cut/")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["items"], serde_json::json!([]), "a cut upload is listed");
    // Nothing of the cut bodies reached the disk cache either.
    let cached: u64 = files_under(&dir.path().join("cache")).iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
    assert!(cached < 1 << 20, "the disk cache holds {cached} bytes after cut uploads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_mid_upload_leaves_nothing_on_s3() {
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&s3_plugin(&s3, ""), "")), &[]);
    let http = Client::new();
    // 20 MiB sent: past the first multipart part, so an upload is open on the bucket when the
    // client goes; 3 MiB: still below one part.
    cut_upload(&server, "cut/big.bin", 50 << 20, 20 << 20).await;
    cut_upload(&server, "cut/small.bin", 50 << 20, 3 << 20).await;
    let client = s3.client().await;
    eventually(async || {
        let uploads = client.list_multipart_uploads().bucket(BUCKET).send().await.map_err(|e| e.to_string())?;
        match uploads.uploads() {
            [] => Ok(()),
            open => Err(format!("multipart uploads left open: {open:?}")),
        }
    })
    .await;
    let objects = client.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert!(objects.contents().is_empty(), "objects after cut uploads: {:?}", objects.contents());
    assert_eq!(http.get(server.url("/v1/artifacts/cut/big.bin")).send().await.unwrap().status(), 404);
}

/// Peak resident memory of a process, from `/proc/<pid>/status` (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

const BIG: u64 = 2 << 30;
const PEAK_RSS_LIMIT: u64 = 300 << 20;

/// `BIG` bytes as a request body of 1 MiB chunks, hashed as they are sent.
fn big_body(hash: std::sync::Arc<parking_lot::Mutex<Sha256>>) -> reqwest::Body {
    let piece = Bytes::from(pattern(1 << 20));
    let chunks = futures_util::stream::iter(0..BIG / piece.len() as u64).map(move |i| {
        let mut chunk = piece.to_vec();
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        hash.lock().update(&chunk);
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    reqwest::Body::wrap_stream(chunks)
}

/// PUTs and GETs a 2 GiB artifact through the server, checks the digests, and returns the
/// host's peak RSS.
async fn two_gib_round_trip(server: &Server, what: &str) -> u64 {
    let http = Client::builder().timeout(Duration::from_secs(600)).build().unwrap();
    let url = server.url("/v1/artifacts/big/2gib.bin");
    let sent = std::sync::Arc::new(parking_lot::Mutex::new(Sha256::new()));
    let put = http.put(&url).header("content-length", BIG.to_string()).body(big_body(sent.clone())).send().await.unwrap();
    assert_eq!(put.status(), 200, "{what}: put: {}", put.text().await.unwrap());
    let meta: serde_json::Value = put.json().await.unwrap();
    let sent = hex::encode(sent.lock().clone().finalize());
    assert_eq!((meta["size"].as_u64(), meta["sha256"].as_str()), (Some(BIG), Some(sent.as_str())), "{what}: the stored digest");

    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 200, "{what}: get");
    assert_eq!(get.headers()["content-length"], BIG.to_string().as_str());
    let mut received = Sha256::new();
    let mut len = 0u64;
    let mut body = get.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        len += chunk.len() as u64;
        received.update(&chunk);
    }
    assert_eq!(len, BIG, "{what}: bytes read back");
    assert_eq!(hex::encode(received.finalize()), sent, "{what}: the body read back differs");
    let peak = peak_rss(server.child.id());
    let _ = writeln!(std::io::stderr(), "{what}: 2 GiB PUT and GET, host peak RSS {} MiB", peak >> 20);
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_gib_artifact_through_fs_with_the_host_under_300_mib() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&fs_plugin("memory_limit = \"64MiB\""), "")), &[]);
    let peak = two_gib_round_trip(&server, "fs").await;
    assert!(peak < PEAK_RSS_LIMIT, "fs: the host's peak RSS was {} MiB", peak >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_gib_artifact_through_s3_with_the_host_under_300_mib() {
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&s3_plugin(&s3, "memory_limit = \"64MiB\""), "")), &[]);
    let peak = two_gib_round_trip(&server, "s3").await;
    assert!(peak < PEAK_RSS_LIMIT, "s3: the host's peak RSS was {} MiB", peak >> 20);
    let uploads = s3.client().await.list_multipart_uploads().bucket(BUCKET).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "uploads left open after a finished one");
}

/// Drains a body into one buffer.
async fn drain(mut body: storehost::domain::body::BodyStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// The fs plugin hands the host the artifact's file (`artifact-bodies`): a read of several
/// chunks is one plugin call, its instance is back in the pool before the body is read, and the
/// bytes are the range asked for, also when the artifact is replaced or deleted mid-read (the
/// file opened is the one read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fs_plugin_hands_the_host_its_files_so_the_bytes_skip_the_plugin() {
    use storehost::domain::{ArtifactStore, ByteRange, Ctx};
    use storehost::origin::PluginArtifactStore;
    use storehost::runtime::Interface;

    let runtime = storehost_tests::runtime();
    let dir = tempfile::tempdir().unwrap();
    let body = pattern(4 * CHUNK as usize + 17);
    let ctx = Ctx::background();
    let plugin = storehost_tests::load(&runtime, storehost_tests::fs_spec(dir.path())).await;
    assert!(plugin.exports().contains(Interface::ArtifactBodies));
    let store = std::sync::Arc::new(PluginArtifactStore::new(plugin.clone()).unwrap());
    let mut sink = store.clone().open_write(&ctx, "big/body.bin", None, Some(body.len() as u64)).await.unwrap();
    for piece in body.chunks(300_000) {
        sink.write(&ctx, Bytes::copy_from_slice(piece)).await.unwrap();
    }
    let meta = sink.finish(&ctx).await.unwrap();
    assert_eq!(meta.size, body.len() as u64);

    let before = plugin.stats().calls;
    let reader = store.open_read(&ctx, "big/body.bin", ByteRange::new(CHUNK - 3, Some(3 * CHUNK + 5))).await.unwrap();
    assert_eq!(reader.meta, meta);
    assert_eq!(reader.range, CHUNK - 3..4 * CHUNK + 2);
    assert_eq!(plugin.stats().calls - before, 1, "opening is one call");
    assert_eq!(plugin.stats().pool_in_use, 0, "no instance is held while the body is read");
    // Replaced while being read: the reader keeps the version it opened.
    store.put(&ctx, "big/body.bin", Bytes::from_static(b"new"), None).await.unwrap();
    let got = drain(reader.body).await;
    assert!(got == body[(CHUNK - 3) as usize..(4 * CHUNK + 2) as usize], "{} bytes, not the range", got.len());
    assert_eq!(plugin.stats().calls - before, 2, "reading four chunks called the plugin");

    let reader = store.open_read(&ctx, "big/body.bin", ByteRange::ALL).await.unwrap();
    store.delete(&ctx, "big/body.bin").await.unwrap();
    assert_eq!(drain(reader.body).await, b"new", "read after the delete");
    let past_end = store.open_read(&ctx, "big/body.bin", ByteRange::new(10, None)).await;
    assert!(matches!(past_end, Err(e) if e.kind() == storehost::base::ErrorKind::NotFound));

    // A run's file, the same way (`runner-bodies`).
    use storehost::domain::RunnerStore;
    assert!(plugin.exports().contains(Interface::RunnerBodies));
    let runner = storehost::origin::PluginRunnerStore::new(plugin.clone()).unwrap();
    runner.write(&ctx, "run-1", "logs/out.txt", Bytes::from(body.clone())).await.unwrap();
    let before = plugin.stats().calls;
    let reader = runner.open_read(&ctx, "run-1", "logs/out.txt", ByteRange::new(2 * CHUNK + 1, None)).await.unwrap();
    assert_eq!((reader.size, plugin.stats().pool_in_use), (body.len() as u64, 0));
    assert!(drain(reader.body).await == body[2 * CHUNK as usize + 1..], "the run's file, from an offset");
    assert_eq!(plugin.stats().calls - before, 1, "reading a run's file called the plugin");
}

/// A small artifact of the fs plugin is read from its file in one read, however its record is
/// laid out (written whole or in chunks, metadata short or longer than the first read): the
/// bytes are the version opened, also when it is replaced before its body is read; and a
/// damaged record is an error that says so, never another body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_fs_records_are_read_whole_and_damaged_ones_are_refused() {
    use storehost::base::ErrorKind;
    use storehost::domain::{ArtifactStore, ByteRange, Ctx};
    use storehost::origin::PluginArtifactStore;

    let dir = tempfile::tempdir().unwrap();
    let ctx = Ctx::background();
    let plugin = storehost_tests::load(&storehost_tests::runtime(), storehost_tests::fs_spec(dir.path())).await;
    let store = std::sync::Arc::new(PluginArtifactStore::new(plugin).unwrap());
    let streamed = |key: &'static str, body: Vec<u8>, content_type: Option<String>| {
        let store = store.clone();
        let ctx = ctx.clone();
        async move {
            let mut sink = store.open_write(&ctx, key, content_type, None).await.unwrap();
            sink.write(&ctx, Bytes::from(body)).await.unwrap();
            sink.finish(&ctx).await.unwrap()
        }
    };
    let long_type = format!("text/plain; note={}", "x".repeat(3000));
    let body = pattern(5000);
    let cases = [
        ("small/streamed.bin", streamed("small/streamed.bin", body.clone(), None).await),
        ("small/streamed-long-meta.bin", streamed("small/streamed-long-meta.bin", body.clone(), Some(long_type.clone())).await),
        ("small/whole.bin", store.put(&ctx, "small/whole.bin", Bytes::from(body.clone()), None).await.unwrap()),
        (
            "small/whole-long-meta.bin",
            store.put(&ctx, "small/whole-long-meta.bin", Bytes::from(body.clone()), Some(long_type.clone())).await.unwrap(),
        ),
    ];
    for (key, meta) in &cases {
        let reader = store.open_read(&ctx, key, ByteRange::ALL).await.unwrap();
        assert_eq!(&reader.meta, meta, "{key}");
        store.put(&ctx, key, Bytes::from_static(b"replaced"), None).await.unwrap();
        assert!(drain(reader.body).await == body, "{key}: not the version opened");
        let reader = store.open_read(&ctx, key, ByteRange::new(5, None)).await.unwrap();
        assert_eq!(drain(reader.body).await, b"ced", "{key}: the range of the new version");
    }
    assert_eq!(cases[1].1.content_type.as_deref(), Some(long_type.as_str()));

    // Damaged records of one written in chunks: the trailing length cut off, and a body length
    // past the end of the file.
    let file = dir.path().join("artifacts/damaged/a.bin=");
    let damaged = |key: &'static str, damage: fn(&mut Vec<u8>)| {
        let (store, ctx, file) = (store.clone(), ctx.clone(), file.clone());
        async move {
            streamed(key, pattern(300), None).await;
            let mut record = std::fs::read(&file).unwrap();
            damage(&mut record);
            std::fs::write(&file, record).unwrap();
            match store.open_read(&ctx, key, ByteRange::ALL).await {
                Err(e) => (e.kind(), e.to_string()),
                Ok(reader) => panic!("a damaged record was read: {:?}", reader.meta),
            }
        }
    };
    let (kind, message) = damaged("damaged/a.bin", |record| {
        record.pop();
    })
    .await;
    assert_eq!(kind, ErrorKind::Internal, "{message}");
    assert!(message.contains("artifact record lengths disagree"), "{message}");
    let (kind, message) = damaged("damaged/a.bin", |record| record[4..12].copy_from_slice(&u64::MAX.to_le_bytes())).await;
    assert_eq!(kind, ErrorKind::Internal, "{message}");
    assert!(message.contains("artifact record lengths disagree"), "{message}");
}

/// A component built against 0.2.0 (the fs plugin with its exports renamed to 0.2.0's, the two
/// interfaces 0.2.1 adds renamed out of the contract) loads as 0.2.0, and its bodies stream
/// through its readers, a call per chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_0_2_0_streams_through_its_readers() {
    use storehost::domain::{ArtifactStore, ByteRange, Ctx};
    use storehost::origin::PluginArtifactStore;
    use storehost::runtime::{Interface, OriginVersion};

    /// Replaces `from` by `to` (as long) where no digit follows (`@0.2.1`, not `@0.2.12`).
    fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
        assert_eq!(from.len(), to.len());
        let mut n = 0;
        let mut i = 0;
        while let Some(at) = bytes[i..].windows(from.len()).position(|w| w == from) {
            let (start, end) = (i + at, i + at + from.len());
            if !bytes.get(end).is_some_and(u8::is_ascii_digit) {
                bytes[start..end].copy_from_slice(to);
                n += 1;
            }
            i = end;
        }
        n
    }
    let mut wasm = storehost::builtin("fs").unwrap().to_vec();
    assert!(replace(&mut wasm, b"storehost:origin/artifact-bodies", b"storehost:origin/artifact-bodiez") > 0);
    assert!(replace(&mut wasm, b"storehost:origin/runner-bodies", b"storehost:origin/runner-bodiez") > 0);
    assert!(replace(&mut wasm, b"@0.2.1", b"@0.2.0") > 0);
    let dir = tempfile::tempdir().unwrap();
    let mut spec = storehost_tests::fs_spec(dir.path());
    spec.wasm = wasm.into();
    let plugin = storehost_tests::load(&storehost_tests::runtime(), spec).await;
    assert_eq!(plugin.exports().version(), OriginVersion::V0_2);
    assert!(!plugin.exports().contains(Interface::ArtifactBodies) && !plugin.exports().contains(Interface::RunnerBodies));

    let ctx = Ctx::background();
    let store = std::sync::Arc::new(PluginArtifactStore::new(plugin.clone()).unwrap());
    let body = pattern(3 * CHUNK as usize + 5);
    let mut sink = store.clone().open_write(&ctx, "old/contract.bin", None, None).await.unwrap();
    sink.write(&ctx, Bytes::from(body.clone())).await.unwrap();
    assert_eq!(sink.finish(&ctx).await.unwrap().size, body.len() as u64);
    let before = plugin.stats().calls;
    let reader = store.open_read(&ctx, "old/contract.bin", ByteRange::new(7, None)).await.unwrap();
    assert!(drain(reader.body).await == body[7..]);
    assert!(plugin.stats().calls - before >= 4, "{} calls for four chunks", plugin.stats().calls - before);
}
