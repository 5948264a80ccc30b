//! Host-signed artifact URLs shared by replicas: `storehost serve` processes on loopback that
//! serve each other's `/v1/signed` URLs across restarts, reloads and rotations of the secret;
//! without `[cluster]` through one shared state directory, with it through the log's database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{Server, binary};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use storehost_tests::pg::TestDatabase;

/// The log's schema in the clustered tests.
const LOG_SCHEMA: &str = "signed_urls_log";

/// How long a replica may sign with a secret rotated elsewhere before it reads it (the refresh
/// period, and some slack).
const REFRESH_BOUND: Duration = Duration::from_secs(13);

fn compiled_cache() -> PathBuf {
    std::env::temp_dir().join("storehost-test-compiled-cache")
}

/// A replica without `[cluster]`: artifacts on the fs plugin over `shared`, its URL secret under
/// `state_dir` (or `[server] url_secret`, in `server_extra`).
fn local_manifest(shared: &Path, state_dir: &Path, server_extra: &str) -> String {
    format!(
        r#"
[server]
state_dir = "{state}"
{server_extra}

[runtime]
compiled_cache = "{compiled}"

[cache.memory]
max_bytes = "16MiB"

[plugins.files]
source = "builtin:fs"
dirs = {{ "/data" = {{ host = "{shared}", mode = "rw" }} }}
config = {{ fsync = false }}

[domains]
artifact = {{ origin = "files" }}
"#,
        state = state_dir.display(),
        compiled = compiled_cache().display(),
        shared = shared.display(),
    )
}

/// A replica of a cluster: artifacts on the postgres plugin, the log in the same database.
fn cluster_manifest(db_url: &str, host_id: &str) -> String {
    format!(
        r#"
[runtime]
compiled_cache = "{compiled}"

[cache.memory]
max_bytes = "16MiB"

[plugins.pg]
source = "builtin:postgres"
instances = 2
sql = {{ url = "{db_url}", max_connections = 4 }}

[domains]
artifact = {{ origin = "pg" }}

[cluster]
log = {{ url = "{db_url}", schema = "{LOG_SCHEMA}" }}
host_id = "{host_id}"
max_staleness = "1s"
poll = "250ms"
"#,
        compiled = compiled_cache().display(),
    )
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A signed URL without its authority (`/v1/signed/...?expires=..&sig=..`), to be sent to any
/// replica, and when it expires.
#[derive(Clone, Debug)]
struct Signed {
    path: String,
    expires_at: u64,
}

impl Signed {
    fn sig(&self) -> &str {
        self.path.split("sig=").nth(1).expect("a signed URL has a sig")
    }

    /// The same URL with its last signature digit changed.
    fn tampered(&self) -> String {
        let mut path = self.path.clone();
        let last = path.pop().unwrap();
        path.push(if last == '0' { '1' } else { '0' });
        path
    }

    /// The same query on another key's path.
    fn on_key(&self, key: &str) -> String {
        let query = self.path.split_once('?').unwrap().1;
        format!("/v1/signed/{key}?{query}")
    }
}

/// What a read answered, as far as a client of a signed URL can tell.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    etag: Option<String>,
    x_cache: Option<String>,
    content_type: Option<String>,
    content_length: Option<String>,
    content_range: Option<String>,
    accept_ranges: Option<String>,
}

async fn read(http: &Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (etag, x_cache, content_type, content_length, content_range, accept_ranges) =
        (header("etag"), header("x-cache"), header("content-type"), header("content-length"), header("content-range"), header("accept-ranges"));
    let status = response.status();
    let body = response.bytes().await.unwrap().to_vec();
    Answer { status, body, etag, x_cache, content_type, content_length, content_range, accept_ranges }
}

/// Replicas each in a directory of its own, started from their manifests.
struct Replicas {
    servers: Vec<Option<Server>>,
    dirs: Vec<tempfile::TempDir>,
    manifests: Vec<String>,
    http: Client,
}

impl Replicas {
    fn start(manifests: Vec<String>) -> Replicas {
        let dirs: Vec<_> = manifests.iter().map(|_| tempfile::tempdir().unwrap()).collect();
        let servers = dirs.iter().zip(&manifests).map(|(dir, text)| Some(Server::start(dir.path(), Some(text), &[]))).collect();
        Replicas { servers, dirs, manifests, http: Client::new() }
    }

    fn len(&self) -> usize {
        self.servers.len()
    }

    fn base(&self, host: usize) -> &str {
        &self.servers[host].as_ref().expect("the replica is running").base
    }

    fn url(&self, host: usize, path: &str) -> String {
        format!("{}{path}", self.base(host))
    }

    fn restart(&mut self, host: usize) {
        let status = self.servers[host].take().unwrap().stop();
        assert!(status.success(), "replica {host} did not stop cleanly: {status}");
        self.servers[host] = Some(Server::start(self.dirs[host].path(), Some(&self.manifests[host]), &[]));
    }

    async fn put(&self, host: usize, key: &str, body: &[u8]) {
        let r = self
            .http
            .put(self.url(host, &format!("/v1/artifacts/{key}")))
            .header("content-type", "text/plain")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "PUT {key}: {}", r.text().await.unwrap());
    }

    /// A URL replica `host` signs for `key`; it names the replica the request was sent to.
    async fn sign(&self, host: usize, key: &str, expires_in: u32) -> Signed {
        let r = self.http.get(self.url(host, &format!("/v1/artifact-urls/{key}?expires_in={expires_in}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["signed_by"], "host", "{answer}");
        let url = answer["url"].as_str().unwrap();
        let path = url.strip_prefix(self.base(host)).unwrap_or_else(|| panic!("{url} is not on {}", self.base(host)));
        assert!(path.starts_with(&format!("/v1/signed/{key}?")), "{url}");
        let expires_at = answer["expires_at"].as_u64().unwrap();
        assert!(path.contains(&format!("expires={expires_at}&")), "{url}");
        Signed { path: path.to_string(), expires_at }
    }

    /// `POST /v1/admin/url-secret/rotate` on `host`: its status and body.
    async fn rotate(&self, host: usize) -> (StatusCode, Value) {
        let r = self.http.post(self.url(host, "/v1/admin/url-secret/rotate")).send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// `storehost admin rotate-url-secret --server <host>`: whether it succeeded, and its output.
    fn rotate_with_cli(&self, host: usize) -> (bool, String) {
        let out =
            Command::new(binary()).args(["admin", "rotate-url-secret", "--server", self.base(host)]).env_remove("STOREHOST_TOKEN").output().unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    /// Asserts that `host` serves `signed` as it serves a plain GET of `key` with the same
    /// request headers: status, body and headers alike.
    async fn assert_served_like_a_get(&self, host: usize, signed: &Signed, key: &str, body: &[u8]) {
        let plain = self.url(host, &format!("/v1/artifacts/{key}"));
        let via_url = self.url(host, &signed.path);
        // The plain read first, so that both answer from the same cache state.
        let _ = read(&self.http, &plain, &[]).await;
        let got = read(&self.http, &via_url, &[]).await;
        assert_eq!(got.status, StatusCode::OK, "replica {host}, {}: {}", signed.path, String::from_utf8_lossy(&got.body));
        assert_eq!(got.body, body, "replica {host}, {}", signed.path);
        assert_eq!(got, read(&self.http, &plain, &[]).await, "replica {host}: a signed URL and a GET answer alike");
    }

    /// Asserts that `host`, whose cache holds neither `signed`'s key nor `cold_key`, answers
    /// `signed` from its origin as it answers a plain GET of `cold_key`.
    async fn assert_cold_read_like_a_get(&self, host: usize, signed: &Signed, cold_key: &str) {
        let plain = read(&self.http, &self.url(host, &format!("/v1/artifacts/{cold_key}")), &[]).await;
        let got = read(&self.http, &self.url(host, &signed.path), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "replica {host}, {}", signed.path);
        assert_eq!((got.x_cache.as_deref(), plain.x_cache.as_deref()), (Some("miss"), Some("miss")), "replica {host}");
    }

    /// Asserts that every replica serves every URL of `urls` (of `key`, whose body is `body`).
    async fn assert_all_serve(&self, urls: &[Signed], key: &str, body: &[u8]) {
        for host in 0..self.len() {
            for signed in urls {
                self.assert_served_like_a_get(host, signed, key, body).await;
            }
        }
    }

    /// The status of `path` on every replica.
    async fn statuses(&self, path: &str) -> Vec<StatusCode> {
        let mut out = Vec::new();
        for host in 0..self.len() {
            out.push(self.http.get(self.url(host, path)).send().await.unwrap().status());
        }
        out
    }

    /// Waits until replica `host` signs as `with` does (same key, same expiry): it has read the
    /// secret `with` signs with. The time it took.
    async fn time_until_signing_alike(&self, host: usize, with: usize, key: &str) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < REFRESH_BOUND {
            let (a, b) = (self.sign(host, key, 3600).await, self.sign(with, key, 3600).await);
            if a.expires_at == b.expires_at && a.sig() == b.sig() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }
}

/// Two replicas without `[cluster]` on one artifacts directory and one state directory.
struct Local {
    replicas: Replicas,
    state: tempfile::TempDir,
    _shared: tempfile::TempDir,
}

impl Local {
    fn start(server_extra: &str) -> Local {
        let (shared, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let manifest = local_manifest(shared.path(), state.path(), server_extra);
        Local { replicas: Replicas::start(vec![manifest.clone(), manifest]), state, _shared: shared }
    }

    fn secrets_file(&self) -> PathBuf {
        self.state.path().join("url-secrets")
    }

    /// The secrets file's lines (one per secret) and mode.
    fn secrets(&self) -> (usize, u32) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.secrets_file();
        let lines = std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.trim().is_empty()).count();
        (lines, std::fs::metadata(&path).unwrap().permissions().mode() & 0o777)
    }
}

const KEY: &str = "builds/report.txt";
const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_made_on_either_of_two_replicas_sharing_a_state_dir_is_served_by_both_across_restarts_and_a_reload() {
    let mut local = Local::start("");
    let r = &local.replicas;
    r.put(0, KEY, BODY).await;
    r.put(0, "other", b"other").await;
    assert_eq!(local.secrets(), (1, 0o600), "one secret, readable by its owner only");

    let urls = [r.sign(0, KEY, 3600).await, r.sign(1, KEY, 3600).await];
    // Replica 1 has read nothing yet.
    r.assert_cold_read_like_a_get(1, &urls[0], "other").await;
    r.assert_all_serve(&urls, KEY, BODY).await;

    // A range, and a conditional read, as a GET answers them.
    for host in 0..2 {
        for headers in [&[("range", "bytes=2-5")][..], &[("range", "bytes=-4")], &[("range", "bytes=2-5"), ("if-range", "\"stale\"")]] {
            let plain = read(&r.http, &r.url(host, &format!("/v1/artifacts/{KEY}")), headers).await;
            let signed = read(&r.http, &r.url(host, &urls[1 - host].path), headers).await;
            assert_eq!(signed, plain, "replica {host}, {headers:?}");
        }
        let partial = read(&r.http, &r.url(host, &urls[host].path), &[("range", "bytes=2-5")]).await;
        assert_eq!((partial.status, partial.body.as_slice()), (StatusCode::PARTIAL_CONTENT, &BODY[2..6]));
        assert_eq!(partial.content_range.as_deref(), Some(format!("bytes 2-5/{}", BODY.len()).as_str()));
        let etag = partial.etag.clone().unwrap();
        let unchanged = read(&r.http, &r.url(host, &urls[host].path), &[("if-none-match", &etag)]).await;
        assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    }

    for host in 0..2 {
        local.replicas.restart(host);
        local.replicas.assert_cold_read_like_a_get(host, &urls[1 - host], "other").await;
        local.replicas.assert_all_serve(&urls, KEY, BODY).await;
    }
    let r = &local.replicas;
    for host in 0..2 {
        let reload = r.http.post(r.url(host, "/v1/admin/reload")).send().await.unwrap();
        assert_eq!(reload.status(), StatusCode::OK, "{}", reload.text().await.unwrap());
    }
    r.assert_all_serve(&urls, KEY, BODY).await;
    // Made after the restarts and the reload, a URL is served by both as well.
    r.assert_all_serve(&[r.sign(0, KEY, 60).await, r.sign(1, KEY, 60).await], KEY, BODY).await;
    assert_eq!(local.secrets(), (1, 0o600), "restarts and reloads make no new secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_on_one_of_two_replicas_urls_made_before_and_after_it_are_served_by_both() {
    let local = Local::start("");
    let r = &local.replicas;
    r.put(1, KEY, BODY).await;
    let before = [r.sign(0, KEY, 3600).await, r.sign(1, KEY, 3600).await];
    r.assert_all_serve(&before, KEY, BODY).await;

    let (rotated, output) = r.rotate_with_cli(0);
    assert!(rotated, "storehost admin rotate-url-secret: {output}");
    assert_eq!(local.secrets(), (2, 0o600), "the new secret and the one before");
    // Replica 1 learns the new secret, at the latest, when a signature made with it fails to
    // verify there.
    let after = [r.sign(0, KEY, 3600).await, r.sign(1, KEY, 3600).await];
    r.assert_all_serve(&after, KEY, BODY).await;
    r.assert_all_serve(&before, KEY, BODY).await;

    // A second rotation, on the other replica: replica 0 signs with it within the refresh
    // period, without a failed verification to tell it.
    let (status, answer) = r.rotate(1).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["rotated"], true);
    assert_eq!(local.secrets(), (3, 0o600));
    let took = r.time_until_signing_alike(0, 1, KEY).await;
    assert!(took.is_some(), "replica 0 still signs with a rotated secret {REFRESH_BOUND:?} after the rotation");
    let latest = [r.sign(0, KEY, 3600).await, r.sign(1, KEY, 3600).await];
    for urls in [&before, &after, &latest] {
        r.assert_all_serve(urls, KEY, BODY).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_retargeted_and_expired_urls_are_forbidden_and_a_deleted_keys_url_is_not_found_on_both_replicas() {
    let local = Local::start("");
    let r = &local.replicas;
    r.put(0, KEY, BODY).await;
    r.put(0, "secret/other", b"not yours").await;
    r.put(0, "gone", b"soon deleted").await;
    let signed = r.sign(0, KEY, 3600).await;
    let short = [r.sign(0, KEY, 1).await, r.sign(1, KEY, 1).await];
    let short_signed = Instant::now();
    let gone = r.sign(1, "gone", 3600).await;
    let forbidden = vec![StatusCode::FORBIDDEN; 2];

    assert_eq!(r.statuses(&signed.tampered()).await, forbidden, "a changed signature");
    assert_eq!(r.statuses(&signed.on_key("secret/other")).await, forbidden, "another key's path with this URL's signature");
    let later = signed.path.replace(&format!("expires={}", signed.expires_at), &format!("expires={}", signed.expires_at + 3600));
    assert_eq!(r.statuses(&later).await, forbidden, "a later expiry with this URL's signature");
    assert_eq!(r.statuses(&format!("/v1/signed/{KEY}?expires={}&sig=not-hex", signed.expires_at)).await, forbidden);
    assert_eq!(r.statuses(&format!("/v1/signed/{KEY}?expires={}", signed.expires_at)).await, forbidden, "no signature");
    assert_eq!(r.statuses(&format!("/v1/signed/{KEY}")).await, forbidden, "no query");

    // The URL itself is fine.
    r.assert_all_serve(std::slice::from_ref(&signed), KEY, BODY).await;

    // Short-lived URLs, past their expiry.
    let until = short.iter().map(|s| s.expires_at).max().unwrap();
    while unix_now() < until || short_signed.elapsed() < Duration::from_millis(1100) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for url in &short {
        for host in 0..2 {
            let answer = read(&r.http, &r.url(host, &url.path), &[]).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "replica {host}: an expired URL");
            let error: Value = serde_json::from_slice(&answer.body).unwrap();
            assert!(error["error"]["message"].as_str().unwrap().contains("expired"), "{error}");
        }
    }

    // A key deleted after its URL was made: not found, not forbidden.
    let served = read(&r.http, &r.url(0, &gone.path), &[]).await;
    assert_eq!((served.status, served.body.as_slice()), (StatusCode::OK, &b"soon deleted"[..]));
    let deleted = r.http.delete(r.url(0, "/v1/artifacts/gone")).send().await.unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert_eq!(r.statuses(&gone.path).await, vec![StatusCode::NOT_FOUND; 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_secret_set_in_the_manifest_is_shared_by_replicas_and_cannot_be_rotated() {
    // Each replica with a state directory of its own: the manifest's secret is what they share.
    let shared = tempfile::tempdir().unwrap();
    let states = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let manifests = states.iter().map(|s| local_manifest(shared.path(), s.path(), "url_secret = \"a secret both replicas share\"")).collect();
    let r = Replicas::start(manifests);
    r.put(0, KEY, BODY).await;
    let urls = [r.sign(0, KEY, 3600).await, r.sign(1, KEY, 3600).await];
    r.assert_all_serve(&urls, KEY, BODY).await;

    for host in 0..2 {
        let (status, answer) = r.rotate(host).await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert_eq!(answer["error"]["kind"], "conflict", "{answer}");
    }
    let (rotated, output) = r.rotate_with_cli(0);
    assert!(!rotated, "the CLI reports the refused rotation: {output}");
    r.assert_all_serve(&urls, KEY, BODY).await;
    let after = r.sign(1, KEY, 3600).await;
    r.assert_all_serve(std::slice::from_ref(&after), KEY, BODY).await;
    for state in &states {
        assert!(!state.path().join("url-secrets").exists(), "no secret is made when the manifest sets one");
    }
}

/// The URL secrets in the log's database: how many, and how many of them are current.
async fn stored_secrets(db: &TestDatabase) -> (i64, i64) {
    let mut conn = db.connect().await;
    sqlx::query_as(&format!("SELECT count(*), count(*) FILTER (WHERE retired_at IS NULL) FROM {LOG_SCHEMA}.url_secrets"))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clustered_replicas_serve_each_others_urls_across_restarts_and_a_rotation() {
    let db = TestDatabase::create().await;
    let mut r = Replicas::start((0..3).map(|i| cluster_manifest(&db.url, &format!("host-{i}"))).collect());
    r.put(0, KEY, BODY).await;
    let mut urls = Vec::new();
    for host in 0..3 {
        urls.push(r.sign(host, KEY, 3600).await);
    }
    r.assert_all_serve(&urls, KEY, BODY).await;
    assert_eq!(stored_secrets(&db).await, (1, 1), "one secret for the cluster");
    for (host, dir) in r.dirs.iter().enumerate() {
        assert!(!dir.path().join(".storehost/url-secrets").exists(), "replica {host} keeps no secret of its own");
    }

    for host in 0..3 {
        r.restart(host);
        r.assert_all_serve(&urls, KEY, BODY).await;
    }
    assert_eq!(stored_secrets(&db).await, (1, 1), "restarts make no new secret");

    let (status, answer) = r.rotate(1).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(stored_secrets(&db).await, (2, 1), "the new secret and the one before, retired");
    // Replica 2 learns the new secret when its signature fails to verify there...
    let rotated = r.sign(1, KEY, 3600).await;
    r.assert_served_like_a_get(2, &rotated, KEY, BODY).await;
    // ...replica 0, which is sent no URL meanwhile, when it reads the secrets again.
    let took = r.time_until_signing_alike(0, 1, KEY).await;
    assert!(took.is_some(), "replica 0 still signs with a rotated secret {REFRESH_BOUND:?} after the rotation");

    urls.push(rotated);
    for host in 0..3 {
        urls.push(r.sign(host, KEY, 3600).await);
    }
    r.assert_all_serve(&urls, KEY, BODY).await;
    for host in 0..3 {
        let answer = read(&r.http, &r.url(host, &urls[(host + 1) % 3].path), &[("range", "bytes=-3")]).await;
        assert_eq!((answer.status, answer.body.as_slice()), (StatusCode::PARTIAL_CONTENT, &BODY[BODY.len() - 3..]));
    }
    assert_eq!(r.statuses(&urls[0].tampered()).await, vec![StatusCode::FORBIDDEN; 3]);
}
