//! One cache across the replicas (peer fill): three `storehost serve` processes on loopback, their
//! artifacts on the s3 plugin over the in-process S3 server (which counts GetObject per key), the
//! invalidation log and the ring's membership in the test database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::pick;
use crate::support::Server;
use futures_util::StreamExt as _;
use reqwest::{Client, StatusCode};
use storehost_tests::pg::TestDatabase;
use storehost_tests::s3::{BUCKET, S3Server};

const MAX_STALENESS: Duration = Duration::from_secs(1);
const SECRET: &str = "peer-secret-of-the-test-cluster";
/// The s3 plugin's prefix for artifacts.
const PREFIX: &str = "a/";

/// The manifest of one replica (or, without `cluster`, of a host alone on the same bucket).
fn manifest(s3: &S3Server, cluster: Option<(&str, &str)>, peer_fill: bool, artifact_budget: &str) -> String {
    let compiled = std::env::temp_dir().join("storehost-test-compiled-cache");
    let mut text = format!(
        r#"
[runtime]
compiled_cache = "{compiled}"

# Bodies over 64 KiB stream through (from the owner, as it sends them) instead of being held.
[cache.memory]
max_body = "64KiB"

[plugins.objects]
source = "builtin:s3"
object_store = {{ bucket = "{BUCKET}", endpoint = "{endpoint}", region = "us-east-1", path_style = true, access_key_id = "{key}", secret_access_key = "{secret}" }}
config = {{ prefix = "{PREFIX}" }}

[domains]
artifact = {{ origin = "objects", max_bytes = "{artifact_budget}", peer_fill = {peer_fill} }}
"#,
        compiled = compiled.display(),
        endpoint = s3.endpoint,
        key = s3.access_key,
        secret = s3.secret_key,
    );
    if let Some((log_url, host_id)) = cluster {
        text.push_str(&format!(
            r#"
[cluster]
log = {{ url = "{log_url}" }}
host_id = "{host_id}"
max_staleness = "{}ms"
poll = "250ms"
peer_secret = "{SECRET}"
# Generous for a loaded machine: a late heartbeat or a slow answer would move keys or send
# reads to the origin, and the counts below would show it.
heartbeat = "200ms"
member_timeout = "3s"
peer_timeout = "2s"
"#,
            MAX_STALENESS.as_millis()
        ));
    }
    text
}

/// Three replicas on one bucket and one log.
struct Replicas {
    servers: Vec<Option<Server>>,
    dirs: Vec<tempfile::TempDir>,
    manifests: Vec<String>,
    http: Client,
    _db: TestDatabase,
}

impl Replicas {
    async fn start(s3: &S3Server, peer_fill: bool, artifact_budget: &str) -> Replicas {
        let db = TestDatabase::create().await;
        let (mut servers, mut dirs, mut manifests) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let text = manifest(s3, Some((&db.url, &format!("replica-{i}"))), peer_fill, artifact_budget);
            servers.push(Some(Server::start(dir.path(), Some(&text), &[])));
            dirs.push(dir);
            manifests.push(text);
        }
        let replicas = Replicas { servers, dirs, manifests, http: Client::new(), _db: db };
        if peer_fill {
            replicas.wait_for_ring(&[0, 1, 2], 3).await;
        }
        replicas
    }

    fn url(&self, replica: usize, path: &str) -> String {
        self.servers[replica].as_ref().expect("the replica is running").url(path)
    }

    /// A Prometheus sample of a replica, summed over the series whose labels contain `labels`.
    async fn metric(&self, replica: usize, name: &str, labels: &str) -> f64 {
        let text = self.http.get(self.url(replica, "/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until each of `replicas` sees `members` live members on its ring.
    async fn wait_for_ring(&self, replicas: &[usize], members: usize) {
        let started = Instant::now();
        for &replica in replicas {
            while self.metric(replica, "storehost_peer_members", "").await as usize != members {
                assert!(started.elapsed() < Duration::from_secs(15), "replica {replica} never saw {members} members on its ring");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The body of key `k` at version `v`: 4 KiB that say which they are, so a read that returns
/// another key's or half of one shows.
fn body(k: usize, v: u64) -> Vec<u8> {
    let stamp = format!("key {k} version {v};");
    stamp.bytes().cycle().take(4096).collect()
}

fn key(k: usize) -> String {
    format!("objects/{:04}/blob.bin", k)
}

/// Puts `n` keys through a host alone on the bucket (no cluster, no cache kept by the replicas).
async fn seed(s3: &S3Server, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let seeder = Server::start(dir.path(), Some(&manifest(s3, None, false, "1MiB")), &[]);
    let http = Client::new();
    futures_util::stream::iter(0..n)
        .for_each_concurrent(16, |k| {
            let (http, url) = (&http, seeder.url(&format!("/v1/artifacts/{}", key(k))));
            async move {
                let put = http.put(url).body(body(k, 0)).send().await.unwrap();
                assert_eq!(put.status(), StatusCode::OK);
            }
        })
        .await;
}

/// GetObject requests per key so far, over the artifacts' keys.
fn origin_gets(s3: &S3Server) -> BTreeMap<String, u64> {
    s3.gets().into_iter().filter(|(k, _)| k.starts_with(PREFIX)).collect()
}

/// Reads `keys` (in this order) through the replicas in turn, 16 at a time; every answer is
/// checked whole.
async fn read_round_robin(replicas: &Replicas, keys: &[usize], live: &[usize]) {
    let turn = AtomicU64::new(0);
    futures_util::stream::iter(keys)
        .for_each_concurrent(16, |&k| {
            let replica = live[turn.fetch_add(1, Ordering::Relaxed) as usize % live.len()];
            let request = replicas.http.get(replicas.url(replica, &format!("/v1/artifacts/{}", key(k)))).send();
            async move {
                let response = request.await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "key {k} on replica {replica}");
                assert_eq!(response.bytes().await.unwrap(), body(k, 0), "key {k} on replica {replica}");
            }
        })
        .await;
}

/// A pseudo-random order of `0..n`, each `times` times.
fn shuffled(n: usize, times: usize, mut seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..times).flat_map(|_| 0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, pick(&mut seed, i + 1));
    }
    order
}

/// 1,000 keys read 9 times each, round-robin over three replicas: origin GETs per key.
async fn gets_per_key(peer_fill: bool) -> f64 {
    let s3 = S3Server::start().await;
    seed(&s3, 1000).await;
    let before = origin_gets(&s3);
    let replicas = Replicas::start(&s3, peer_fill, "64MiB").await;
    read_round_robin(&replicas, &shuffled(1000, 9, 11), &[0, 1, 2]).await;
    let after = origin_gets(&s3);
    let gets: u64 = after.iter().map(|(k, n)| n - before.get(k).copied().unwrap_or(0)).sum();
    gets as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_read_from_the_origin_once_across_three_replicas() {
    let (on, off) = (gets_per_key(true).await, gets_per_key(false).await);
    println!("origin GETs per key, 1,000 keys read 9 times round-robin over 3 replicas: peer fill {on:.3}, without {off:.3}");
    assert!(on <= 1.05, "{on:.3} origin GETs per key with peer fill");
    assert!(off > 2.5, "{off:.3} origin GETs per key without peer fill: the test does not measure what it says");
}

/// A working set 2.5 times one replica's body budget, read in random order round-robin after a
/// first pass: the share of reads no origin GET answered.
async fn hit_ratio(peer_fill: bool) -> f64 {
    // The artifact domain's budget is 4 MiB; its blob tier holds 70 % with peer fill (2.8 MiB)
    // and 80 % without. Bodies of 4 KiB weigh a little more with their metadata.
    let keys = (2.5 * 2.8 * 1024.0 * 1024.0 / 4096.0) as usize;
    let s3 = S3Server::start().await;
    seed(&s3, keys).await;
    let replicas = Replicas::start(&s3, peer_fill, "4MiB").await;
    read_round_robin(&replicas, &shuffled(keys, 1, 3), &[0, 1, 2]).await;
    let before: u64 = origin_gets(&s3).values().sum();
    let reads = shuffled(keys, 3, 5);
    read_round_robin(&replicas, &reads, &[0, 1, 2]).await;
    let gets = origin_gets(&s3).values().sum::<u64>() - before;
    1.0 - gets as f64 / reads.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_set_larger_than_one_replica_fits_in_the_cluster() {
    let (on, off) = (hit_ratio(true).await, hit_ratio(false).await);
    println!("cluster hit ratio, working set 2.5x one replica's body budget: peer fill {:.1} %, without {:.1} %", on * 100.0, off * 100.0);
    assert!(on >= 0.90, "hit ratio {:.1} % with peer fill", on * 100.0);
    assert!(off < 0.6, "hit ratio {:.1} % without peer fill: the working set does not outgrow one replica", off * 100.0);
}

/// What a background reader saw: `(key, when the read began, the version it answered)`.
type Seen = Arc<parking_lot::Mutex<Vec<(usize, Instant, u64)>>>;

/// The version a whole body of key `k` says it is; panics on a body that is not one whole
/// version of `k`.
fn version_of(k: usize, bytes: &[u8]) -> u64 {
    let text = std::str::from_utf8(&bytes[..bytes.len().min(64)]).expect("a body of text");
    let stamp = text.split(';').next().unwrap();
    let v: u64 = stamp.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("key {k}: a body that is no version: {text:?}"));
    assert_eq!(bytes, body(k, v).as_slice(), "key {k}: not one whole version");
    v
}

/// Readers that read random keys of `0..keys` from the replicas at `bases` until `stop`, each
/// with a 5 s deadline; they record what they saw and count failures.
fn background_readers(bases: Vec<String>, keys: usize, stop: Arc<std::sync::atomic::AtomicBool>) -> (tokio::task::JoinHandle<(u64, Duration)>, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let task = tokio::spawn(async move {
        let http = Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let (failures, slowest) = (AtomicU64::new(0), parking_lot::Mutex::new(Duration::ZERO));
        futures_util::stream::iter(0..8u64)
            .for_each_concurrent(8, |worker| {
                let (http, bases, stop, record, failures, slowest) = (&http, &bases, &stop, &record, &failures, &slowest);
                async move {
                    let mut seed = worker + 1;
                    while !stop.load(Ordering::Relaxed) {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let (k, base) = ((seed >> 33) as usize % keys, &bases[(seed >> 20) as usize % bases.len()]);
                        let started = Instant::now();
                        let answer = match http.get(format!("{base}/v1/artifacts/{}", key(k))).send().await {
                            Ok(r) if r.status() == StatusCode::OK => r.bytes().await.ok(),
                            Ok(r) => {
                                eprintln!("key {k} on {base}: {}", r.status());
                                None
                            }
                            Err(e) => {
                                eprintln!("key {k} on {base}: {e}");
                                None
                            }
                        };
                        let took = started.elapsed();
                        let mut slow = slowest.lock();
                        *slow = (*slow).max(took);
                        drop(slow);
                        match answer {
                            Some(bytes) => record.lock().push((k, started, version_of(k, &bytes))),
                            None => {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
            .await;
        (failures.into_inner(), slowest.into_inner())
    });
    (task, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_killed_mid_run_costs_no_request_and_rejoins_after_restart() {
    let s3 = S3Server::start().await;
    seed(&s3, 600).await;
    let mut replicas = Replicas::start(&s3, true, "64MiB").await;
    read_round_robin(&replicas, &shuffled(300, 1, 1), &[0, 1, 2]).await;
    assert!(replicas.metric(2, "storehost_peer_served_total", "").await > 0.0, "replica 2 answered no other replica: it owns no key?");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (readers, seen) = background_readers(vec![replicas.url(0, ""), replicas.url(1, "")], 300, stop.clone());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut owner = replicas.servers[2].take().unwrap();
    owner.child.kill().unwrap();
    let _ = owner.child.wait();
    // Past member_timeout: replica 2 has left the others' rings, and its keys have new owners.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let (failures, slowest) = readers.await.unwrap();
    let reads = seen.lock().len();
    println!("{reads} reads on replicas 0 and 1 while replica 2 was killed: {failures} failed, the slowest took {slowest:?}");
    assert_eq!(failures, 0);
    assert!(reads > 100, "only {reads} reads ran");
    assert!(slowest < Duration::from_secs(5));
    replicas.wait_for_ring(&[0, 1], 2).await;
    assert!(
        replicas.metric(0, "storehost_peer_requests_total", "result=\"error\"").await
            + replicas.metric(1, "storehost_peer_requests_total", "result=\"error\"").await
            + replicas.metric(0, "storehost_peer_requests_total", "result=\"skipped\"").await
            + replicas.metric(1, "storehost_peer_requests_total", "result=\"skipped\"").await
            > 0.0,
        "no read met the killed owner"
    );
    // Restarted, it joins the ring again and owns keys again (keys the others have not read:
    // those they read while it was away are in their own caches now).
    replicas.servers[2] = Some(Server::start(replicas.dirs[2].path(), Some(&replicas.manifests[2]), &[]));
    replicas.wait_for_ring(&[0, 1, 2], 3).await;
    let fresh: Vec<usize> = shuffled(300, 1, 2).into_iter().map(|k| k + 300).collect();
    read_round_robin(&replicas, &fresh, &[0, 1, 2]).await;
    assert!(replicas.metric(2, "storehost_peer_served_total", "").await > 0.0, "the restarted replica owns no key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_owners_are_never_staler_than_the_bound_nor_stale_with_the_writes_position() {
    const KEYS: usize = 20;
    let s3 = S3Server::start().await;
    seed(&s3, KEYS).await;
    let replicas = Replicas::start(&s3, true, "64MiB").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (readers, seen) = background_readers((0..3).map(|r| replicas.url(r, "")).collect(), KEYS, stop.clone());
    // Each key's acknowledged writes: (version, when its answer came).
    let mut acked: Vec<Vec<(u64, Instant)>> = vec![vec![(0, Instant::now())]; KEYS];
    let mut seed = 5;
    let mut stale_with_position = 0;
    for i in 1..=1000u64 {
        let k = i as usize % KEYS;
        let writer = pick(&mut seed, 3);
        let reader = (writer + 1 + pick(&mut seed, 2)) % 3;
        let put = replicas.http.put(replicas.url(writer, &format!("/v1/artifacts/{}", key(k)))).body(body(k, i)).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
        acked[k].push((i, Instant::now()));
        let seq: u64 = put.headers()["storehost-log-seq"].to_str().unwrap().parse().unwrap();
        let get =
            replicas.http.get(replicas.url(reader, &format!("/v1/artifacts/{}", key(k)))).header("storehost-min-seq", seq).send().await.unwrap();
        assert_eq!(get.status(), StatusCode::OK);
        if version_of(k, &get.bytes().await.unwrap()) != i {
            stale_with_position += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (failures, _) = readers.await.unwrap();
    let seen = seen.lock().clone();
    // A read is stale when a newer write was acknowledged more than max_staleness before it began.
    let stale = seen.iter().filter(|(k, began, v)| acked[*k].iter().any(|(newer, at)| newer > v && *at + MAX_STALENESS < *began)).count();
    let peer_answers = (0..3).map(|r| replicas.metric(r, "storehost_peer_requests_total", "result=\"ok\""));
    let peer_answers: f64 = futures_util::future::join_all(peer_answers).await.into_iter().sum();
    println!(
        "1,000 writes through random replicas: {stale_with_position} stale reads with the write's position; {} background reads, {stale} staler than {MAX_STALENESS:?}, {failures} failed; {peer_answers} reads answered by owners",
        seen.len()
    );
    assert_eq!(stale_with_position, 0);
    assert_eq!(stale, 0);
    assert_eq!(failures, 0);
    assert!(seen.len() > 500, "only {} background reads ran", seen.len());
    assert!(peer_answers > 100.0, "owners answered only {peer_answers} reads: peer fill was not exercised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_route_wants_the_secret_and_is_not_part_of_the_api() {
    let s3 = S3Server::start().await;
    seed(&s3, 1).await;
    let replicas = Replicas::start(&s3, true, "64MiB").await;
    let http = &replicas.http;
    let route = format!("/_storehost/peer/artifacts/{}", key(0));
    let unsigned = http.get(replicas.url(0, &route)).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.json::<serde_json::Value>().await.unwrap()["error"]["kind"], "unauthorized");
    let forged = http.get(replicas.url(0, &route)).header("storehost-peer", "99999999999.00ff").send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let document = http.get(replicas.url(0, "/openapi.json")).send().await.unwrap().text().await.unwrap();
    assert!(!document.contains("_storehost"), "the owners' route is in the API's document");
    let page = http.get(replicas.url(0, "/admin")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"peers\"") && page.contains("on a ring of 3"), "the admin page does not show the ring");
    // A host alone (no cluster) has no such route.
    let dir = tempfile::tempdir().unwrap();
    let alone = Server::start(dir.path(), Some(&manifest(&s3, None, false, "1MiB")), &[]);
    assert_eq!(http.get(alone.url(&route)).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_bodies_too_large_to_hold_come_from_the_owner_byte_for_byte() {
    let s3 = S3Server::start().await;
    let replicas = Replicas::start(&s3, true, "64MiB").await;
    let large: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i: u32| (i % 251) as u8).collect();
    let small: Vec<u8> = (0..4096u32).map(|i| (i % 13) as u8).collect();
    let http = &replicas.http;
    let mut from_owner = 0;
    for k in 0..6 {
        for (name, bytes) in [("large", &large), ("small", &small)] {
            let path = format!("/v1/artifacts/sizes/{k}/{name}");
            assert_eq!(http.put(replicas.url(k % 3, &path)).body(bytes.clone()).send().await.unwrap().status(), StatusCode::OK);
            for replica in 0..3 {
                let whole = http.get(replicas.url(replica, &path)).send().await.unwrap();
                assert_eq!(whole.status(), StatusCode::OK);
                from_owner += usize::from(whole.headers().get("x-cache").is_some_and(|v| v == "peer"));
                assert_eq!(whole.bytes().await.unwrap().as_ref(), bytes.as_slice(), "{path} on replica {replica}");
                let (first, last) = (bytes.len() as u64 / 3, bytes.len() as u64 / 3 + 1000);
                let part = http.get(replicas.url(replica, &path)).header("range", format!("bytes={first}-{last}")).send().await.unwrap();
                assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
                assert_eq!(part.headers()["content-range"], format!("bytes {first}-{last}/{}", bytes.len()).as_str());
                assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[first as usize..=last as usize], "{path} range on replica {replica}");
                let suffix = http.get(replicas.url(replica, &path)).header("range", "bytes=-100").send().await.unwrap();
                assert_eq!(suffix.bytes().await.unwrap().as_ref(), &bytes[bytes.len() - 100..]);
            }
        }
    }
    for m in 0..30 {
        let missing = http.get(replicas.url(m % 3, &format!("/v1/artifacts/sizes/missing/{m}"))).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
    println!("{from_owner} of 36 whole reads answered by the key's owner");
    assert_eq!(from_owner, 24, "each body's two other replicas read it whole from its owner first");
    let not_found: f64 = futures_util::future::join_all((0..3).map(|r| replicas.metric(r, "storehost_peer_requests_total", "result=\"not_found\"")))
        .await
        .into_iter()
        .sum();
    assert!(not_found >= 10.0, "owners said only {not_found} times that a missing key is missing");
}
