//! Replicas that stay coherent: `storehost serve` processes on loopback sharing one PostgreSQL
//! database (every domain on the postgres plugin, or artifacts on the fs plugin over one shared
//! directory), their caches kept coherent by the invalidation log.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::Server;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use storehost_tests::pg::{TestDatabase, address_of, with_address};
use storehost_tests::proxy::Proxy;

const MAX_STALENESS: Duration = Duration::from_secs(1);

/// Where the hosts' log lives: the test database itself, or a proxy in front of it.
fn manifest(db_url: &str, log_url: &str, shared: Option<&Path>, host_id: &str, cluster_extra: &str) -> String {
    let compiled = std::env::temp_dir().join("storehost-test-compiled-cache");
    let mut text = format!(
        r#"
[runtime]
compiled_cache = "{compiled}"

[cache.memory]
max_bytes = "64MiB"

[cache.disk]
dir = "cache"

[plugins.pg]
source = "builtin:postgres"
instances = 4
sql = {{ url = "{db_url}", max_connections = 8 }}
"#,
        compiled = compiled.display()
    );
    let artifact_origin = match shared {
        Some(dir) => {
            text.push_str(&format!(
                "\n[plugins.files]\nsource = \"builtin:fs\"\ndirs = {{ \"/data\" = {{ host = \"{}\", mode = \"rw\" }} }}\nconfig = {{ fsync = false }}\n",
                dir.display()
            ));
            "files"
        }
        None => "pg",
    };
    text.push_str(&format!(
        r#"
[domains]
artifact = {{ origin = "{artifact_origin}" }}
project = {{ origin = "pg" }}
ui = {{ origin = "pg" }}
workspace = {{ origin = "pg" }}

[cluster]
log = {{ url = "{log_url}" }}
host_id = "{host_id}"
max_staleness = "{}ms"
poll = "250ms"
{cluster_extra}
"#,
        MAX_STALENESS.as_millis()
    ));
    text
}

/// Three hosts, each in a directory of its own (its caches), on one database.
struct Hosts {
    servers: Vec<Option<Server>>,
    dirs: Vec<tempfile::TempDir>,
    manifests: Vec<String>,
    http: Client,
    db: TestDatabase,
    _shared: tempfile::TempDir,
}

impl Hosts {
    /// The hosts, their log in the test database, reached through `log_via` (a proxy) if given.
    async fn start(artifacts_on_fs: bool, log_via: Option<&Proxy>, cluster_extra: &str) -> Hosts {
        let db = TestDatabase::create().await;
        let shared = tempfile::tempdir().unwrap();
        let log_url = match log_via {
            Some(proxy) => with_address(&db.url, &proxy.addr.to_string()),
            None => db.url.clone(),
        };
        let (mut servers, mut dirs, mut manifests) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let text = manifest(&db.url, &log_url, artifacts_on_fs.then_some(shared.path()), &format!("host-{i}"), cluster_extra);
            servers.push(Some(Server::start(dir.path(), Some(&text), &[])));
            dirs.push(dir);
            manifests.push(text);
        }
        Hosts { servers, dirs, manifests, http: Client::new(), db, _shared: shared }
    }

    fn url(&self, host: usize, path: &str) -> String {
        self.servers[host].as_ref().expect("the host is running").url(path)
    }

    fn stop(&mut self, host: usize) {
        let status = self.servers[host].take().unwrap().stop();
        assert!(status.success(), "host {host} did not stop cleanly: {status}");
    }

    fn restart(&mut self, host: usize) {
        self.servers[host] = Some(Server::start(self.dirs[host].path(), Some(&self.manifests[host]), &[]));
    }

    /// A Prometheus sample of a host, summed over its series.
    async fn metric(&self, host: usize, name: &str) -> f64 {
        let text = self.http.get(self.url(host, "/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// What a host's admin page says of the cluster.
    async fn admin_page_cluster(&self, host: usize) -> String {
        let page = self.http.get(self.url(host, "/admin")).send().await.unwrap().text().await.unwrap();
        let at = page.find("<p id=\"cluster\">").expect("the admin page has a cluster line");
        page[at..].split("</p>").next().unwrap().to_string()
    }

    async fn cluster_state(&self, host: usize) -> Value {
        let ready: Value = self.http.get(self.url(host, "/readyz")).send().await.unwrap().json().await.unwrap();
        ready["cluster"].clone()
    }

    /// Creates what the writes change: a workspace with two tabs, and four documents with a root.
    async fn prepare(&self) {
        let http = &self.http;
        let ws = http.put(self.url(0, "/v1/workspaces/w")).json(&json!({ "project_id": "p", "name": "w" })).send().await.unwrap();
        assert_eq!(ws.status(), StatusCode::CREATED);
        for tab in ["t0", "t1"] {
            let r = http.post(self.url(0, "/v1/workspaces/w/tabs")).json(&json!({ "id": tab, "title": tab, "kind": "log" })).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        for d in 0..4 {
            let root = json!({ "ops": [{ "op": "insert-node", "node": { "id": "root", "parent": null, "kind": "page", "props": [] }, "index": 0 }] });
            let r = http.post(self.url(0, &format!("/v1/ui/documents/d{d}/ops"))).json(&root).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
}

/// One write of the mix, and how to tell that a host serves its value.
#[derive(Clone, Debug)]
enum Write {
    Artifact { key: String, value: String },
    Project { id: String, i: u64 },
    Document { id: String, i: u64 },
    TabRun { run: String },
    Select { tab: String },
}

impl Write {
    /// The `i`th write of a mix over every domain; every write changes what a read returns.
    fn nth(i: u64) -> Write {
        let round = i / 5;
        match i % 5 {
            0 => Write::Artifact { key: format!("k{}", round % 4), value: format!("v{i}") },
            1 => Write::Project { id: format!("p{}", round % 4), i },
            2 => Write::Document { id: format!("d{}", round % 4), i },
            3 => Write::TabRun { run: format!("r{i}") },
            _ => Write::Select { tab: format!("t{}", round % 2) },
        }
    }

    fn read_path(&self) -> String {
        match self {
            Write::Artifact { key, .. } => format!("/v1/artifacts/{key}"),
            Write::Project { id, .. } => format!("/v1/projects/{id}"),
            Write::Document { id, .. } => format!("/v1/ui/documents/{id}"),
            Write::TabRun { .. } => "/v1/workspaces/w/tabs/t1".into(),
            Write::Select { .. } => "/v1/workspaces/w".into(),
        }
    }

    /// Sends the write to `host`; its status and `Storehost-Log-Seq`.
    async fn send(&self, hosts: &Hosts, host: usize) -> (StatusCode, Option<u64>) {
        let http = &hosts.http;
        let url = |p: &str| hosts.url(host, p);
        let response = match self {
            Write::Artifact { key, value } => http.put(url(&format!("/v1/artifacts/{key}"))).body(value.clone()).send().await,
            Write::Project { id, i } => http.put(url(&format!("/v1/projects/{id}"))).json(&json!({ "name": id, "state": { "i": i } })).send().await,
            Write::Document { id, i } => {
                let ops = json!({ "ops": [{ "op": "set-prop", "node_id": "root", "key": "i", "value": i.to_string() }] });
                http.post(url(&format!("/v1/ui/documents/{id}/ops"))).json(&ops).send().await
            }
            Write::TabRun { run } => http.put(url("/v1/workspaces/w/tabs/t1/run")).json(&json!({ "run_id": run })).send().await,
            Write::Select { tab } => http.put(url("/v1/workspaces/w/selected-tab")).json(&json!({ "tab_id": tab })).send().await,
        }
        .unwrap();
        let seq = response.headers().get("storehost-log-seq").and_then(|v| v.to_str().ok()?.parse().ok());
        (response.status(), seq)
    }

    /// Whether `host` answers a read with this write's value (asking for `min_seq` if given).
    async fn seen(&self, hosts: &Hosts, host: usize, min_seq: Option<u64>) -> bool {
        let mut request = hosts.http.get(hosts.url(host, &self.read_path()));
        if let Some(seq) = min_seq {
            request = request.header("storehost-min-seq", seq);
        }
        let response = request.send().await.unwrap();
        if !response.status().is_success() {
            return false;
        }
        match self {
            Write::Artifact { value, .. } => response.text().await.unwrap() == *value,
            Write::Project { i, .. } => response.json::<Value>().await.unwrap()["state"]["i"] == json!(i),
            Write::Document { i, .. } => {
                let doc: Value = response.json().await.unwrap();
                doc["nodes"][0]["props"].as_array().unwrap().iter().any(|p| p[0] == "i" && p[1] == json!(i.to_string()))
            }
            Write::TabRun { run } => response.json::<Value>().await.unwrap()["run_id"] == json!(run),
            Write::Select { tab } => response.json::<Value>().await.unwrap()["selected_tab"] == json!(tab),
        }
    }

    /// Polls `host` until it serves this write's value; how long that took (`None`: not within
    /// `limit`).
    async fn time_until_seen(&self, hosts: &Hosts, host: usize, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.seen(hosts, host, None).await {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }
}

/// A pseudo-random host, from a seed the test advances.
pub(crate) fn pick(seed: &mut u64, n: usize) -> usize {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 33) % n as u64) as usize
}

/// Reads the write's target on every host, so each caches the value before the write.
async fn prime(hosts: &Hosts, write: &Write) {
    for host in 0..3 {
        let _ = hosts.http.get(hosts.url(host, &write.read_path())).send().await.unwrap().bytes().await;
    }
}

/// `n` writes through random hosts, each followed by polling reads on the other two; the time
/// from the write's answer until each serves the new value.
async fn writes_seen_everywhere(hosts: &Hosts, n: u64, seed: &mut u64) -> Vec<Duration> {
    let mut delays = Vec::new();
    for i in 0..n {
        let write = Write::nth(i);
        prime(hosts, &write).await;
        let writer = pick(seed, 3);
        let (status, seq) = write.send(hosts, writer).await;
        assert!(status.is_success(), "write {i} ({write:?}) on host {writer}: {status}");
        assert!(seq.is_some(), "write {i} was answered without its log position");
        for reader in (0..3).filter(|h| *h != writer) {
            let delay = write.time_until_seen(hosts, reader, MAX_STALENESS * 3).await;
            delays.push(delay.unwrap_or_else(|| panic!("host {reader} never served write {i} ({write:?})")));
        }
    }
    delays
}

fn percentile(delays: &mut [Duration], p: f64) -> Duration {
    delays.sort();
    delays[((delays.len() as f64 * p).ceil() as usize).saturating_sub(1).min(delays.len() - 1)]
}

async fn every_host_serves_every_write_within_the_bound(artifacts_on_fs: bool) {
    let hosts = Hosts::start(artifacts_on_fs, None, "").await;
    hosts.prepare().await;
    let mut seed = 7;
    let mut delays = writes_seen_everywhere(&hosts, 300, &mut seed).await;
    let (p50, p99, max) = (percentile(&mut delays, 0.5), percentile(&mut delays, 0.99), *delays.iter().max().unwrap());
    println!("{} reads after 300 writes: p50 {p50:?}, p99 {p99:?}, max {max:?}", delays.len());
    assert!(p99 <= Duration::from_millis(50), "p99 {p99:?} is over 50 ms");
    assert!(max < MAX_STALENESS, "a host served an old value for {max:?}, longer than max_staleness");
    for host in 0..3 {
        assert_eq!(hosts.metric(host, "storehost_cluster_full_flushes_total").await, 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_on_postgres_serve_every_write_within_the_bound() {
    every_host_serves_every_write_within_the_bound(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_with_artifacts_in_a_shared_directory_serve_every_write_within_the_bound() {
    every_host_serves_every_write_within_the_bound(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_with_the_writes_position_is_never_stale_on_another_host() {
    let hosts = Hosts::start(false, None, "").await;
    hosts.prepare().await;
    let mut seed = 11;
    let mut stale = 0;
    for i in 0..1000 {
        let write = Write::nth(i);
        prime(&hosts, &write).await;
        let writer = pick(&mut seed, 3);
        let (status, seq) = write.send(&hosts, writer).await;
        assert!(status.is_success(), "write {i}: {status}");
        let reader = (writer + 1 + pick(&mut seed, 2)) % 3;
        if !write.seen(&hosts, reader, seq).await {
            stale += 1;
        }
    }
    assert_eq!(stale, 0, "reads with Storehost-Min-Seq answered with an older value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_listeners_lose_no_event() {
    let hosts = Hosts::start(false, None, "").await;
    hosts.prepare().await;
    let admin = hosts.db.connect().await;
    let killer = tokio::spawn(async move {
        let mut admin = admin;
        let mut killed = 0u64;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(75)).await;
            let n: i64 = sqlx::query_scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'storehost-cluster-listener:%'",
            )
            .fetch_one(&mut admin)
            .await
            .unwrap();
            killed += n as u64;
        }
        killed
    });
    let mut seed = 13;
    let delays = writes_seen_everywhere(&hosts, 150, &mut seed).await;
    let killed = killer.await.unwrap();
    assert!(killed >= 3, "only {killed} listener connections were killed");
    let max = *delays.iter().max().unwrap();
    assert!(max < MAX_STALENESS, "a host served an old value for {max:?}");
    let (mut gaps, mut replayed) = (0.0, 0.0);
    for host in 0..3 {
        gaps += hosts.metric(host, "storehost_cluster_gaps_total").await;
        replayed += hosts.metric(host, "storehost_cluster_events_replayed_total").await;
        assert_eq!(hosts.metric(host, "storehost_cluster_full_flushes_total").await, 0.0, "host {host} flushed its caches");
    }
    println!("{killed} listener connections killed: {gaps} gaps seen, {replayed} events replayed without a notification");
    assert!(gaps >= 3.0, "the hosts saw {gaps} gaps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_from_the_log_stops_trusting_its_caches_and_recovers() {
    let server = tokio::net::lookup_host(address_of(&storehost_tests::pg::server_url())).await.unwrap().next().unwrap();
    let proxy = Proxy::start(server).await;
    let hosts = Hosts::start(false, Some(&proxy), "").await;
    hosts.prepare().await;
    let mut seed = 17;
    writes_seen_everywhere(&hosts, 10, &mut seed).await;

    proxy.cut();
    // Writes reach the origin but cannot be published: 503, and they are retried.
    let write = Write::Project { id: "cut".into(), i: 1 };
    prime(&hosts, &write).await;
    let (status, _) = write.send(&hosts, 0).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // The others stop answering from their caches within max_staleness, and serve the origin's value.
    for host in [1, 2] {
        let delay = write.time_until_seen(&hosts, host, MAX_STALENESS * 2).await.expect("the origin's value is served");
        assert!(delay <= MAX_STALENESS + Duration::from_millis(300), "host {host} served a cached value for {delay:?}");
    }
    tokio::time::sleep(MAX_STALENESS).await;
    for host in 0..3 {
        assert_eq!(hosts.cluster_state(host).await["synced"], json!(false), "host {host}");
        let line = hosts.admin_page_cluster(host).await;
        assert!(line.contains(": not in sync: answering from the origins"), "host {host}'s admin page: {line}");
    }

    proxy.restore();
    let started = Instant::now();
    loop {
        let mut synced = true;
        for host in 0..3 {
            let state = hosts.cluster_state(host).await;
            synced &= state["synced"] == json!(true) && state["backlog"] == json!(0);
        }
        if synced {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the hosts did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for host in 0..3 {
        let (state, line) = (hosts.cluster_state(host).await, hosts.admin_page_cluster(host).await);
        let shown = format!("Host <code>{}</code>: in sync · applied up to {}", state["host_id"].as_str().unwrap(), state["applied"]);
        assert!(line.contains(&shown) && line.contains(", 0 waiting to publish"), "host {host}'s admin page: {line}");
    }
    // Coherent again, from the caches.
    let delays = writes_seen_everywhere(&hosts, 20, &mut seed).await;
    assert!(delays.iter().all(|d| *d < MAX_STALENESS));
    assert!(write.seen(&hosts, 2, None).await, "the write answered 503 is in the origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_does_not_serve_an_old_value_from_its_disk_tier() {
    let mut hosts = Hosts::start(false, None, "").await;
    let old = Write::Artifact { key: "restart".into(), value: "old".into() };
    assert!(old.send(&hosts, 0).await.0.is_success());
    assert!(old.seen(&hosts, 2, None).await, "host 2 reads (and caches, in memory and on disk) the old value");
    hosts.stop(2);
    let new = Write::Artifact { key: "restart".into(), value: "new".into() };
    assert!(new.send(&hosts, 0).await.0.is_success());
    hosts.restart(2);
    assert!(new.seen(&hosts, 2, None).await, "the restarted host served the old value from its disk tier");
    assert_eq!(hosts.metric(2, "storehost_cluster_full_flushes_total").await, 0.0, "it replayed the log instead of dropping its tier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_back_after_the_log_was_pruned_past_it_drops_its_disk_tier() {
    let mut hosts = Hosts::start(false, None, "retain = \"10s\"").await;
    let old = Write::Artifact { key: "pruned".into(), value: "old".into() };
    assert!(old.send(&hosts, 0).await.0.is_success());
    assert!(old.seen(&hosts, 2, None).await);
    // A host that is not synced (a busy machine can delay its reads of the log) answers from its
    // origin without filling its caches: read until the disk tier holds the value.
    let started = Instant::now();
    while !disk_holds_entries(&hosts, 2).await {
        assert!(started.elapsed() < Duration::from_secs(20), "host 2 never cached the artifact");
        assert!(old.seen(&hosts, 2, None).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hosts.stop(2);
    let new = Write::Artifact { key: "pruned".into(), value: "new".into() };
    let (_, seq) = new.send(&hosts, 0).await;
    let seq = seq.unwrap() as i64;
    let mut admin = hosts.db.connect().await;
    // Age the log so the next prune (every second) removes the new write's event.
    sqlx::query("UPDATE storehost_cluster.log SET committed_at = committed_at - interval '1 hour'").execute(&mut admin).await.unwrap();
    let started = Instant::now();
    loop {
        let through: i64 = sqlx::query_scalar("SELECT pruned_through FROM storehost_cluster.meta").fetch_one(&mut admin).await.unwrap();
        if through >= seq {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the log was not pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hosts.restart(2);
    assert!(new.seen(&hosts, 2, None).await, "the host served a value its log position could no longer vouch for");
    assert_eq!(hosts.metric(2, "storehost_cluster_full_flushes_total").await, 1.0);
}

/// Whether a host's artifact disk tier holds an entry.
async fn disk_holds_entries(hosts: &Hosts, host: usize) -> bool {
    let cache: Value = hosts.http.get(hosts.url(host, "/v1/admin/cache")).send().await.unwrap().json().await.unwrap();
    cache["domains"].as_array().unwrap().iter().any(|d| d["domain"] == "artifact" && d["disk"]["entries"].as_u64().unwrap_or(0) > 0)
}

/// A fill that began before a remote invalidation does not cache its older value: the mock
/// holds the read back while another host's invalidation of the key is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_that_began_before_a_remote_invalidation_is_not_cached() {
    use storehost::app::{App, Manifest};
    use storehost::domain::{ArtifactStore, Ctx};
    use storehost::origin::PluginArtifactStore;
    use storehost::origin::mock::MockControl;

    let db = TestDatabase::create().await;
    let text = format!(
        r#"
[plugins.mock]
source = "builtin:mock"
instances = 1
config = {{ "fault.artifacts.get.k" = "delay-ms=600" }}
[domains]
artifact = {{ origin = "mock" }}
[cluster]
log = {{ url = "{}" }}
host_id = "here"
"#,
        db.url
    );
    let app = App::build(Manifest::parse(&text, "fill.toml", ".".into(), |_| None).unwrap()).await.unwrap();
    let plugin = app.plugins["mock"].clone();
    let control = MockControl::new(plugin.clone()).unwrap();
    PluginArtifactStore::new(plugin).unwrap().put(&Ctx::background(), "k", "v1".into(), None).await.unwrap();
    let store = app.stores.artifact.clone().unwrap();
    let fill = tokio::spawn({
        let store = store.clone();
        async move { store.get(&Ctx::background(), "k").await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Another host's write of the key, as it appears in the log.
    let mut conn = db.connect().await;
    sqlx::query(
        "WITH e AS (INSERT INTO storehost_cluster.log (host_id, domain, what, key) VALUES ('there', 'artifact', 'artifact', 'k') RETURNING seq)
         SELECT pg_notify('storehost_cluster', (SELECT seq FROM e)::text)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let started = Instant::now();
    while app.cluster.as_ref().unwrap().stats().applied_events == 0 {
        assert!(started.elapsed() < Duration::from_secs(2), "the invalidation was not applied");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!fill.is_finished(), "the fill must still be running when the invalidation lands");
    assert_eq!(&fill.await.unwrap().unwrap().body[..], b"v1");
    // The fill's value was not cached: the next read goes to the origin again.
    control.clear_faults().await.unwrap();
    store.get(&Ctx::background(), "k").await.unwrap();
    assert_eq!(control.call_count("artifacts.get").await.unwrap(), 2);
}

/// `examples/manifests/replicas.toml` as its comment runs it: three replicas on one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replicas_example_keeps_three_replicas_coherent() {
    let db = TestDatabase::create().await;
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests/replicas.toml")).unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let env = [("DATABASE_URL", db.url.as_str()), ("STOREHOST_PEER_SECRET", "a-secret-every-replica-shares")];
    let servers: Vec<Server> = dirs.iter().map(|d| Server::start(d.path(), Some(&text), &env)).collect();
    let http = Client::new();
    let read = |i: usize| http.get(servers[i].url("/v1/projects/example")).send();
    let put = |i: usize, v: u32| http.put(servers[i].url("/v1/projects/example")).json(&json!({ "name": "e", "state": { "v": v } })).send();
    assert!(put(0, 1).await.unwrap().status().is_success());
    for i in 0..3 {
        assert_eq!(read(i).await.unwrap().json::<Value>().await.unwrap()["state"]["v"], 1);
    }
    let write = put(1, 2).await.unwrap();
    let seq: u64 = write.headers()["storehost-log-seq"].to_str().unwrap().parse().unwrap();
    for i in [0, 2] {
        let again = http.get(servers[i].url("/v1/projects/example")).header("storehost-min-seq", seq).send().await.unwrap();
        assert_eq!(again.json::<Value>().await.unwrap()["state"]["v"], 2, "replica {i}");
    }
    // Artifacts are filled from their owners once the three are on each other's rings.
    for server in &servers {
        let started = Instant::now();
        while !http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap().contains("storehost_peer_members{host=")
            || !http.get(server.url("/admin")).send().await.unwrap().text().await.unwrap().contains("on a ring of 3")
        {
            assert!(started.elapsed() < Duration::from_secs(10), "the replicas never formed a ring of three");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut served = std::collections::BTreeMap::<String, usize>::new();
    for k in 0..30 {
        let path = format!("/v1/artifacts/example/{k}");
        assert!(http.put(servers[0].url(&path)).body(format!("body {k}")).send().await.unwrap().status().is_success());
        let read = http.get(servers[1].url(&path)).send().await.unwrap();
        let cache = read.headers().get("x-cache").map_or("none".into(), |v| v.to_str().unwrap().to_string());
        assert_eq!(read.text().await.unwrap(), format!("body {k}"));
        *served.entry(cache).or_default() += 1;
    }
    assert!(served.get("peer").is_some_and(|n| *n >= 5), "replica 1 read no key from its owner: {served:?}");
}

/// The CLI records the position its writes were answered with and sends it with its reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_carries_its_writes_position_to_later_reads() {
    let hosts = Hosts::start(false, None, "").await;
    let dir = tempfile::tempdir().unwrap();
    let positions = dir.path().join("positions");
    let file = dir.path().join("body.txt");
    std::fs::write(&file, "from the cli").unwrap();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(crate::support::binary()).args(args).env("STOREHOST_LOG_POSITIONS", &positions).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let (first, second) = (hosts.url(0, ""), hosts.url(1, ""));
    cli(&["artifact", "put", "cli/key", file.to_str().unwrap(), "--server", &first]);
    let recorded = std::fs::read_to_string(&positions).unwrap();
    let seq: u64 = recorded.trim().strip_prefix(&format!("{first} ")).expect("the position of the write's server").parse().unwrap();
    assert!(seq > 0);
    // A position the second host has not reached: its read waits, then answers from the origin.
    std::fs::write(&positions, format!("{second} {}\n", seq + 1000)).unwrap();
    let before = hosts.metric(1, "storehost_cluster_min_seq_bypasses_total").await;
    assert_eq!(cli(&["artifact", "get", "cli/key", "--server", &second]), "from the cli");
    assert_eq!(hosts.metric(1, "storehost_cluster_min_seq_bypasses_total").await, before + 1.0);
}
