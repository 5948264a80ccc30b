//! The s3 plugin and the object-store capability against a real S3-protocol server on loopback
//! (s3s over s3s-fs, started by each test: `storehost_tests::s3`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::Digest;
use storehost::app::{App, Manifest};
use storehost::conformance;
use storehost::domain::body::{BodyStream, CHUNK};
use storehost::domain::{ArtifactStore, ByteRange, Ctx, RunnerStore, StoreError};
use storehost::origin::{PluginArtifactStore, PluginRunnerStore};
use storehost::runtime::{Interface, LoadError, Plugin};
use storehost_tests::proxy::Proxy;
use storehost_tests::s3::{BUCKET, S3Server};
use storehost_tests::{builtin, load, runtime, stores};

fn ctx() -> Ctx {
    Ctx::with_timeout(Duration::from_secs(30))
}

async fn artifacts(server: &S3Server) -> PluginArtifactStore {
    PluginArtifactStore::new(load(&runtime(), server.spec()).await).unwrap()
}

/// The plugin exports artifacts and runner artifacts only; the other domains are reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_domains_are_reported_as_skipped() {
    let server = S3Server::start().await;
    let s = stores(&runtime(), server.spec()).await;
    assert!(s.project.is_none() && s.ui.is_none() && s.workspace.is_none());
    let report = conformance::run(&s, |case| case.interface == Interface::Projects || case.interface == Interface::Workspaces).await;
    assert!(report.skipped() > 0 && report.skipped() == report.results.len(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_url_serves_the_body_until_it_expires() {
    let server = S3Server::start().await;
    let store = artifacts(&server).await;
    let body = Bytes::from_static(b"presigned body \x00\xff");
    store.put(&ctx(), "shared/report.bin", body.clone(), Some("application/x-report".into())).await.unwrap();
    let url = store.get_url(&ctx(), "shared/report.bin", 2).await.unwrap().expect("the s3 plugin presigns");
    assert!(url.starts_with(&format!("{}/{BUCKET}/shared/report.bin?", server.endpoint)), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");

    let http = reqwest::Client::new();
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-report");
    assert_eq!(response.bytes().await.unwrap(), body);

    // The signature covers the key: the same query string on another key is refused.
    let forged = url.replace("report.bin?", "other.bin?");
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 403);

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let expired = http.get(&url).send().await.unwrap();
    assert_eq!(expired.status(), 403, "an expired URL was served");
    let text = expired.text().await.unwrap();
    assert!(text.contains("AccessDenied") && text.contains("expired"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_and_longest_keys_round_trip_as_the_same_object_keys() {
    let server = S3Server::start().await;
    let store = artifacts(&server).await;
    let mut long = String::from("long");
    while long.len() < 1024 {
        let room = 1024 - long.len() - 1;
        long.push('/');
        long.push_str(&"é".repeat(room.min(40) / 2));
        if room.min(40) % 2 == 1 {
            long.push('x');
        }
    }
    assert_eq!(long.len(), 1024);
    let keys = ["with space/and  two", "ünïcødé/日本語/キー", "plus+sign+", "100%/%2F%20", "mixed +%/ é?#&=", long.as_str()];
    for key in keys {
        let body = Bytes::from(format!("body of {key}"));
        let meta = store.put(&ctx(), key, body.clone(), None).await.unwrap_or_else(|e| panic!("put {key:?}: {e}"));
        assert_eq!(meta.key, key);
        let got = store.get(&ctx(), key).await.unwrap_or_else(|e| panic!("get {key:?}: {e}"));
        assert_eq!(got.body, body, "{key:?}");
        assert_eq!(got.meta, meta, "{key:?}");
        assert_eq!(store.head(&ctx(), key).await.unwrap(), meta, "{key:?}");
    }
    // Each is the object of exactly that key in the bucket: the SDK, from outside, sees them.
    let client = server.client().await;
    let listed = client.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let mut in_bucket: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(String::from)).collect();
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    in_bucket.sort();
    expected.sort();
    assert_eq!(in_bucket, expected);
    for key in keys {
        store.delete(&ctx(), key).await.unwrap();
        assert_eq!(store.get(&ctx(), key).await.unwrap_err().kind(), storehost::base::ErrorKind::NotFound, "{key:?}");
    }
    // One byte more than S3 holds is invalid, whatever the prefix.
    let too_long = format!("{long}x");
    assert_eq!(store.put(&ctx(), &too_long, Bytes::new(), None).await.unwrap_err().kind(), storehost::base::ErrorKind::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_over_2500_keys_pages_every_key_once_in_order() {
    let server = S3Server::start().await;
    let mut spec = server.spec();
    spec.settings.instances = 4;
    let store = Arc::new(PluginArtifactStore::new(load(&runtime(), spec).await).unwrap());
    const N: usize = 2500;
    // Written in a scrambled order, with a sibling prefix that must not show up.
    let names: Vec<String> = (0..N).map(|i| format!("many/{:04}", (i * 7919) % N)).collect();
    for chunk in names.chunks(50) {
        let mut writes = tokio::task::JoinSet::new();
        for name in chunk {
            let (store, name) = (store.clone(), name.clone());
            writes.spawn(async move { store.put(&ctx(), &name, Bytes::from(name.clone()), Some("text/plain".into())).await.unwrap() });
        }
        writes.join_all().await;
    }
    store.put(&ctx(), "many-not/0000", Bytes::from_static(b"x"), None).await.unwrap();
    let mut expected = names.clone();
    expected.sort();

    for limit in [1000, 0, 333] {
        let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let page = store.list(&ctx(), "many/", cursor.as_deref(), limit).await.unwrap();
            assert!(page.items.len() <= if limit == 0 { 100 } else { limit as usize });
            for item in &page.items {
                assert_eq!(item.size, item.key.len() as u64);
                assert_eq!(item.content_type.as_deref(), Some("text/plain"));
            }
            seen.extend(page.items.into_iter().map(|m| m.key));
            pages += 1;
            assert!(pages <= N, "paging does not end");
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), N, "limit {limit}: {} keys listed", seen.len());
        assert!(seen == expected, "limit {limit}: keys out of order or repeated");
        let full_pages = N.div_ceil(if limit == 0 { 100 } else { limit as usize });
        assert!(pages == full_pages || pages == full_pages + 1, "limit {limit}: {pages} pages");
    }
}

/// A port with nothing listening.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn store_on(server: &S3Server, endpoint: String, timeout: Duration) -> PluginArtifactStore {
    let mut spec = server.spec();
    let grant = spec.grants.object_store.as_mut().unwrap();
    grant.endpoint = Some(endpoint);
    grant.timeout = timeout;
    grant.max_retries = 5;
    // The plugin's own deadline is far off: what ends the calls is the grant's timeout.
    spec.settings.timeout = Duration::from_secs(30);
    PluginArtifactStore::new(load(&runtime(), spec).await).unwrap()
}

async fn expect_unavailable_within(store: &PluginArtifactStore, timeout: Duration) {
    let started = Instant::now();
    let err = store.get(&ctx(), "any/key").await.unwrap_err();
    let took = started.elapsed();
    println!("after {took:?}: {err}");
    assert!(matches!(&err, StoreError::Unavailable(m) if m.contains("did not answer")), "expected unavailable, got {err}");
    assert!(took <= timeout + Duration::from_millis(500), "took {took:?} with a timeout of {timeout:?}");
    let err = store.put(&ctx(), "any/key", Bytes::from_static(b"x"), None).await.unwrap_err();
    assert_eq!(err.kind(), storehost::base::ErrorKind::Unavailable, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_is_unavailable_within_the_timeout() {
    let server = S3Server::start().await;
    let timeout = Duration::from_millis(1500);
    let store = store_on(&server, format!("http://127.0.0.1:{}", closed_port()), timeout).await;
    expect_unavailable_within(&store, timeout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_is_unavailable_within_the_timeout() {
    let server = S3Server::start().await;
    // Accepts connections and reads nothing: requests hang until the timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let timeout = Duration::from_millis(1500);
    let store = store_on(&server, endpoint, timeout).await;
    expect_unavailable_within(&store, timeout).await;
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_by_the_store() {
    let server = S3Server::start().await;
    let mut spec = server.spec();
    spec.grants.object_store.as_mut().unwrap().secret_access_key = Some("not-the-secret".into());
    let store = PluginArtifactStore::new(load(&runtime(), spec).await).unwrap();
    let err = store.put(&ctx(), "k", Bytes::from_static(b"x"), None).await.unwrap_err();
    assert_eq!(err.kind(), storehost::base::ErrorKind::Internal, "{err}");
    let message = err.to_string();
    assert!(message.contains("refused") && message.contains("HTTP 403 SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains(&server.secret_key) && !message.contains("not-the-secret"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_object_store_without_the_grant_is_refused_at_load() {
    let err = Plugin::load(&runtime(), builtin("s3")).await.unwrap_err();
    assert!(matches!(err, LoadError::Ungranted { .. }), "{err}");
    let msg = err.to_string();
    for part in ["plugin s3", "storehost:host/object-store", "`object_store`", "[plugins.s3]"] {
        assert!(msg.contains(part), "{msg:?} does not mention {part}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_reaches_only_the_granted_bucket() {
    let server = S3Server::start().await;
    server.create_bucket("elsewhere");
    let outside = server.grant_of("elsewhere").client().await.unwrap();
    outside.put_object().bucket("elsewhere").key("secret").body(b"outside".to_vec().into()).send().await.unwrap();
    let store = artifacts(&server).await;
    store.put(&ctx(), "mine", Bytes::from_static(b"inside"), None).await.unwrap();
    let all = store.list(&ctx(), "", None, 0).await.unwrap();
    assert_eq!(all.items.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["mine"]);
    assert_eq!(store.get(&ctx(), "secret").await.unwrap_err().kind(), storehost::base::ErrorKind::NotFound);
    for escape in ["../elsewhere/secret", "/elsewhere/secret"] {
        assert_eq!(store.get(&ctx(), escape).await.unwrap_err().kind(), storehost::base::ErrorKind::Invalid, "{escape}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_metadata_is_the_objects_own() {
    let server = S3Server::start().await;
    let store = artifacts(&server).await;
    let meta = store.put(&ctx(), "meta/typed", Bytes::from_static(b"hello"), Some("text/plain".into())).await.unwrap();
    let untyped = store.put(&ctx(), "meta/untyped", Bytes::from_static(b"hello"), None).await.unwrap();
    assert_eq!(untyped.content_type, None);
    assert_eq!(store.head(&ctx(), "meta/untyped").await.unwrap(), untyped);
    // The object, from outside: its content type, S3's SHA-256 checksum and the creation time.
    let client = server.client().await;
    let head = client.head_object().bucket(BUCKET).key("meta/typed").checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.content_length(), Some(5));
    assert_eq!(head.metadata().unwrap()["created-at"], meta.created_at.to_string());
    let checksum = head.checksum_sha256().expect("the store keeps the SHA-256");
    assert_eq!(meta.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert_eq!(checksum, "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_by_other_tools_are_artifacts_too() {
    let server = S3Server::start().await;
    let client = server.client().await;
    // No checksum, no content type, no metadata; and a key no artifact can have.
    for key in ["foreign/plain.txt", "foreign//empty-segment"] {
        client.put_object().bucket(BUCKET).key(key).body(b"from elsewhere".to_vec().into()).send().await.unwrap();
    }
    let store = artifacts(&server).await;
    let expected = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"from elsewhere"))
    };
    let got = store.get(&ctx(), "foreign/plain.txt").await.unwrap();
    assert_eq!(got.meta.sha256, expected);
    assert_eq!(store.head(&ctx(), "foreign/plain.txt").await.unwrap(), got.meta);
    let page = store.list(&ctx(), "foreign/", None, 0).await.unwrap();
    assert_eq!(page.items, [got.meta], "the key with an empty segment is not an artifact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_place_each_domain_in_the_bucket() {
    let server = S3Server::start().await;
    let mut spec = server.spec();
    spec.config.insert("prefix".into(), "gateway/".into());
    spec.config.insert("runs_prefix".into(), "runner/".into());
    let plugin = load(&runtime(), spec).await;
    let plugin_info = plugin.info().clone();
    let (store, runs) = (PluginArtifactStore::new(plugin.clone()).unwrap(), PluginRunnerStore::new(plugin).unwrap());
    store.put(&ctx(), "a/b", Bytes::from_static(b"artifact"), None).await.unwrap();
    runs.write(&ctx(), "run-1", "logs/out.txt", Bytes::from_static(b"log")).await.unwrap();
    let client = server.client().await;
    let listed = client.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["gateway/a/b", "runner/run-1/logs/out.txt"]);
    assert_eq!(store.list(&ctx(), "", None, 0).await.unwrap().items.len(), 1);
    assert_eq!(runs.list(&ctx(), "run-1", "").await.unwrap(), ["logs/out.txt"]);
    // Under a prefix, S3's 1024 bytes leave less room for the key: the plugin says how much,
    // and the host refuses longer keys before calling it.
    assert_eq!(plugin_info.max_key_bytes, 1024 - "gateway/".len() as u32);
    let err = store.put(&ctx(), &"k".repeat(1020), Bytes::new(), None).await.unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(m) if m.contains("1020 bytes") && m.contains("1016")), "{err}");
    store.put(&ctx(), &"k".repeat(1016), Bytes::from_static(b"longest"), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugin_config_is_named() {
    let server = S3Server::start().await;
    for (key, value, says) in [("prefx", "a/", "unknown config key \"prefx\""), ("prefix", "/abs", "must not start with '/'")] {
        let mut spec = server.spec();
        spec.config.insert(key.into(), value.into());
        let err = Plugin::load(&runtime(), spec).await.unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
}

fn manifest(text: &str) -> Result<Manifest, storehost::app::ManifestError> {
    Manifest::parse(text, "s3.toml", std::env::temp_dir(), |_| None)
}

/// `examples/manifests/s3.toml`, with its `${VAR}`s pointing at the test server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_manifest_serves_artifacts_and_runs_from_the_bucket() {
    let server = S3Server::start().await;
    server.create_bucket("storehost");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests/s3.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let env = |name: &str| match name {
        "S3_ENDPOINT" => Some(server.endpoint.clone()),
        "S3_ACCESS_KEY_ID" => Some(server.access_key.clone()),
        "S3_SECRET_ACCESS_KEY" => Some(server.secret_key.clone()),
        _ => None,
    };
    let manifest = Manifest::parse(&text, "s3.toml", std::env::temp_dir(), env).unwrap();
    let app = App::build(manifest).await.unwrap();
    let artifacts = app.stores.artifact.clone().unwrap();
    artifacts.put(&ctx(), "from/manifest", Bytes::from_static(b"ok"), None).await.unwrap();
    assert_eq!(&artifacts.get(&ctx(), "from/manifest").await.unwrap().body[..], b"ok");
    app.stores.runner.clone().unwrap().write(&ctx(), "run-1", "log.txt", Bytes::from_static(b"ran")).await.unwrap();
    let client = server.grant_of("storehost").client().await.unwrap();
    let listed = client.list_objects_v2().bucket("storehost").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["artifacts/from/manifest", "runs/run-1/log.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grants_name_the_manifest_key() {
    for (grant, says) in [
        (r#"{ bucket = "b", access_key_id = "AKID" }"#, "plugins.objects.object_store: access_key_id and secret_access_key go together"),
        (r#"{ bucket = "", region = "us-east-1" }"#, "plugins.objects.object_store.bucket: must not be empty"),
        (r#"{ bucket = "b", endpoint = "127.0.0.1:9000" }"#, "plugins.objects.object_store.endpoint"),
        (r#"{ bucket = "b", buckt = "c" }"#, "unknown field `buckt`"),
    ] {
        let text = format!("[plugins.objects]\nsource = \"builtin:s3\"\nobject_store = {grant}\n");
        let err = match manifest(&text) {
            Err(e) => e.to_string(),
            Ok(m) => App::build(m).await.err().expect("the grant is refused").to_string(),
        };
        assert!(err.contains(says), "{grant}: {err}");
        assert!(err.contains("s3.toml"), "{err}");
    }
}

/// `storehost plugin test objects --manifest examples/manifests/s3.toml --allow-writes` passes
/// the suite on the test server: the example's `prefix` shortens the longest key the plugin
/// holds, which it reports in `describe()` and the suite honours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_example_manifest_passes_plugin_test() {
    let server = S3Server::start().await;
    server.create_bucket("storehost");
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/manifests/s3.toml");
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("S3_ENDPOINT", server.endpoint.clone()),
        ("S3_ACCESS_KEY_ID", server.access_key.clone()),
        ("S3_SECRET_ACCESS_KEY", server.secret_key.clone()),
    ];
    let run = move |args: Vec<&'static str>, dir: std::path::PathBuf| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(crate::support::binary()).current_dir(dir).args(args).envs(env).env("RUST_LOG", "warn").output().unwrap()
        })
    };
    let refused = run.clone()(vec!["plugin", "test", "objects", "--manifest", manifest], dir.path().into()).await.unwrap();
    assert!(!refused.status.success(), "plugin test wrote into a granted bucket without --allow-writes");
    let suite = run(vec!["plugin", "test", "objects", "--manifest", manifest, "--allow-writes"], dir.path().into()).await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&suite.stdout), String::from_utf8_lossy(&suite.stderr));
    assert!(suite.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(stdout.contains("longest_key_round_trips") && !stdout.contains("FAIL"), "{stdout}");
}

/// The plugin's stores on `endpoint` (`None`: the server's own). An open read holds one of the
/// plugin's instances; writes run on the others.
async fn both_stores(server: &S3Server, endpoint: Option<String>) -> (PluginArtifactStore, PluginRunnerStore) {
    let mut spec = server.spec();
    assert!(spec.settings.instances >= 2);
    if let Some(endpoint) = endpoint {
        spec.grants.object_store.as_mut().unwrap().endpoint = Some(endpoint);
    }
    let plugin = load(&runtime(), spec).await;
    (PluginArtifactStore::new(plugin.clone()).unwrap(), PluginRunnerStore::new(plugin).unwrap())
}

/// `len` bytes that differ from those of any other `seed` at every position.
fn version(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect::<Vec<u8>>().into()
}

fn sha256(body: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(body))
}

/// What happens to an object while a read of it is open.
#[derive(Clone, Copy, Debug)]
enum Change {
    Replace,
    Delete,
}

/// `first` (the bytes taken before a change) and what the stream yields after it; and the error
/// it ended with, if any.
async fn rest(first: BytesMut, mut body: BodyStream) -> (BytesMut, Option<StoreError>) {
    let mut got = first;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

async fn take(body: &mut BodyStream, chunks: usize) -> BytesMut {
    let mut got = BytesMut::new();
    for _ in 0..chunks {
        got.extend_from_slice(&body.next().await.expect("a chunk").unwrap());
    }
    got
}

/// Sizes around the host's chunk: a read replaced or deleted after none or one of its chunks
/// still yields the bytes of the version opened, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_read_is_the_version_opened_whatever_is_written_after() {
    let server = S3Server::start().await;
    let (store, runs) = both_stores(&server, None).await;
    for size in [1, CHUNK, CHUNK + 1, 3 * CHUNK] {
        for change in [Change::Replace, Change::Delete] {
            for before in [0, 1] {
                let case = format!("{size} bytes, {change:?} after {before} chunks");
                let (key, old) = (format!("open/{size}"), version(size, 1));
                let meta = store.put(&ctx(), &key, old.clone(), Some("application/x-old".into())).await.unwrap();
                let mut reader = store.open_read(&ctx(), &key, ByteRange::ALL).await.unwrap();
                assert_eq!(reader.meta, meta, "{case}");
                let first = take(&mut reader.body, before).await;
                match change {
                    Change::Replace => {
                        store.put(&ctx(), &key, version(size, 2), Some("application/x-new".into())).await.unwrap();
                    }
                    Change::Delete => store.delete(&ctx(), &key).await.unwrap(),
                }
                let (got, error) = rest(first, reader.body).await;
                assert!(error.is_none(), "{case}: {error:?}");
                assert!(got == old, "{case}: {} bytes read, not the version opened", got.len());

                // A run's file, the same way.
                runs.write(&ctx(), "run-1", &key, old.clone()).await.unwrap();
                let mut reader = runs.open_read(&ctx(), "run-1", &key, ByteRange::ALL).await.unwrap();
                assert_eq!(reader.size, size as u64, "{case}");
                let first = take(&mut reader.body, before).await;
                match change {
                    Change::Replace => runs.write(&ctx(), "run-1", &key, version(size, 2)).await.unwrap(),
                    Change::Delete => runs.remove(&ctx(), "run-1", &key).await.unwrap(),
                }
                let (got, error) = rest(first, reader.body).await;
                assert!(error.is_none(), "run file, {case}: {error:?}");
                assert!(got == old, "run file, {case}: {} bytes read, not the version opened", got.len());
            }
        }
    }
}

/// A range reports the whole object it was opened on (its size and SHA-256, which a ranged GET
/// does not give), whatever is written after; a range with nothing in it reads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_reports_the_whole_version_it_opened() {
    let server = S3Server::start().await;
    let (store, runs) = both_stores(&server, None).await;
    let size = 3 * CHUNK as u64;
    let old = version(size as usize, 1);
    let ranges = [
        (1, Some(CHUNK as u64)),
        (CHUNK as u64 + 1, None),
        (0, Some(10)),
        (0, Some(size)),
        (size - 1, Some(100)),
        (size, None),
        (size + 5, Some(1)),
        (7, Some(0)),
    ];
    for (offset, len) in ranges {
        let range = ByteRange::new(offset, len);
        let meta = store.put(&ctx(), "ranged/k", old.clone(), None).await.unwrap();
        assert_eq!(meta.sha256, sha256(&old));
        let reader = store.open_read(&ctx(), "ranged/k", range).await.unwrap();
        store.put(&ctx(), "ranged/k", version(size as usize + 3, 2), Some("text/new".into())).await.unwrap();
        assert_eq!(reader.meta, meta, "{range:?}");
        let within = range.within(size);
        assert_eq!(reader.range, within, "{range:?}");
        let (got, error) = rest(BytesMut::new(), reader.body).await;
        assert!(error.is_none(), "{range:?}: {error:?}");
        assert!(got == old[within.start as usize..within.end as usize], "{range:?}: {} bytes, not the range of the version opened", got.len());

        runs.write(&ctx(), "run-1", "ranged", old.clone()).await.unwrap();
        let reader = runs.open_read(&ctx(), "run-1", "ranged", range).await.unwrap();
        runs.remove(&ctx(), "run-1", "ranged").await.unwrap();
        assert_eq!((reader.size, reader.range.clone()), (size, within.clone()), "{range:?}");
        let (got, error) = rest(BytesMut::new(), reader.body).await;
        assert!(error.is_none() && got == old[within.start as usize..within.end as usize], "run file, {range:?}: {error:?}");
    }

    // An empty object, read whole and from a range: nothing, with its metadata.
    let empty = store.put(&ctx(), "ranged/empty", Bytes::new(), None).await.unwrap();
    for range in [ByteRange::ALL, ByteRange::new(0, Some(5)), ByteRange::new(3, None)] {
        let reader = store.open_read(&ctx(), "ranged/empty", range).await.unwrap();
        assert_eq!((&reader.meta, reader.range.clone()), (&empty, 0..0), "{range:?}");
        assert!(rest(BytesMut::new(), reader.body).await.0.is_empty(), "{range:?}");
    }
    for range in [ByteRange::ALL, ByteRange::new(2, Some(3))] {
        let missing = store.open_read(&ctx(), "ranged/missing", range).await.err().expect("no such artifact");
        assert_eq!(missing.kind(), storehost::base::ErrorKind::NotFound, "{range:?}");
    }
}

/// A connection broken mid-body is resumed from the next byte, of the same version: the bytes
/// are whole when it is still there, and the read fails (rather than go on with another
/// body's bytes) when it was replaced in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_cut_mid_body_resumes_on_the_same_version_only() {
    let server = S3Server::start().await;
    let proxy = Proxy::start(server.endpoint.trim_start_matches("http://").parse().unwrap()).await;
    let (store, _) = both_stores(&server, Some(format!("http://{}", proxy.addr))).await;
    // Longer than every buffer between the store and the reader, so that the cut is mid-body.
    let size = 48 << 20;
    let old = version(size, 1);
    for replaced in [false, true] {
        let meta = store.put(&ctx(), "cut/k", old.clone(), None).await.unwrap();
        let mut reader = store.open_read(&ctx(), "cut/k", ByteRange::new(1, None)).await.unwrap();
        assert_eq!(reader.meta, meta);
        let first = take(&mut reader.body, 1).await;
        proxy.cut();
        proxy.restore();
        if replaced {
            store.put(&ctx(), "cut/k", version(size, 2), None).await.unwrap();
        }
        let (got, error) = rest(first, reader.body).await;
        assert!(old.get(1..1 + got.len()) == Some(&got[..]), "replaced {replaced}: bytes of another version after {} bytes", got.len());
        match error {
            None => assert!(!replaced && got.len() == size - 1, "replaced {replaced}: {} bytes, and no error", got.len()),
            Some(e) => {
                assert!(replaced, "{e}");
                assert!(e.to_string().contains("was replaced or deleted while it was read"), "{e}");
            }
        }
    }
}
