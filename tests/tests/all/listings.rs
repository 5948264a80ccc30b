//! Artifact listings on the real binary: paging through a prefix with `next_cursor` gives every
//! key that stays there exactly once, in byte order, while other keys under the same prefix
//! come and go; per origin (fs, postgres, s3, memory), with short, nested and long keys (segments
//! longer than a file name, multi-byte characters). And on the embedded default (the fs plugin),
//! long keys and ids are written, read back and listed from a prefix that ends inside a long
//! segment, before and after a restart.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::Server;
use futures_util::StreamExt;
use parking_lot::Mutex;
use reqwest::{Client, StatusCode, header};
use storehost::http::encode_path;
use storehost_tests::origin::Origin;

/// How long the churn goes on while the reader pages.
const CHURN: Duration = Duration::from_secs(6);
/// Until then the churn stays inside directories made before it began, so that the fs plugin's
/// directory of the prefix settles and its sorted entries are kept between pages; then it also
/// adds and removes keys at the top of the prefix.
const NESTED_ONLY: Duration = Duration::from_secs(4);
const PAGE: usize = 37;
const PREFIX: &str = "ls/";
const STABLE: usize = 300;
/// Keys each churning client keeps at most before it deletes its oldest.
const OUTSTANDING: usize = 6;
/// A listing that takes more pages than this is going round in circles.
const MAX_PAGES: usize = 200;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn compiled_cache() -> String {
    std::env::temp_dir().join("storehost-test-compiled-cache").display().to_string()
}

fn artifact_url(base: &str, key: &str) -> String {
    format!("{base}/v1/artifacts/{}", encode_path(key))
}

/// The keys that stay under [`PREFIX`] while others come and go: most at its top (enough that
/// the fs plugin's directory of it is a large one, whose entries it keeps between pages), the
/// rest nested; among them names that sort around a directory of the same name (`d`, `d!`,
/// `d.txt`, `d/x`, `d0`), names the fs plugin must encode, segments at and past the longest file
/// name, and long multi-byte ones.
fn stable_keys() -> BTreeSet<String> {
    let long_l = "L".repeat(300);
    let long_e = "é".repeat(130);
    let mut keys: BTreeSet<String> = [
        "d".to_string(),
        "d!".into(),
        "d-x".into(),
        "d.txt".into(),
        "d0".into(),
        "dé".into(),
        "d/x".into(),
        "d/y/z".into(),
        format!("d/{}", "q".repeat(260)),
        ".hidden".into(),
        "a=b".into(),
        "%41".into(),
        "x~".into(),
        "plus+sign".into(),
        "sp ace".into(),
        "Zed".into(),
        "~tilde".into(),
        "日本語".into(),
        "日本語/テスト".into(),
        "a".repeat(250),
        "a".repeat(251),
        format!("{}/x", "a".repeat(250)),
        long_l.clone(),
        format!("{long_l}!"),
        format!("{long_l}/x"),
        format!("{long_l}/{}", "M".repeat(300)),
        long_e.clone(),
        format!("{long_e}x"),
        format!("{long_e}/x"),
        format!("{}/{long_e}", "é".repeat(3)),
    ]
    .into_iter()
    .map(|k| format!("{PREFIX}{k}"))
    .collect();
    let specials = keys.len();
    for i in 0..STABLE - specials {
        let key = if i < 230 { format!("{PREFIX}k{i:03}") } else { format!("{PREFIX}n{}/k{i:03}", i % 7) };
        keys.insert(key);
    }
    assert_eq!(keys.len(), STABLE);
    keys
}

/// Whether a key is one the churning clients write (a segment of it starts with `churn-`).
fn is_churn(key: &str) -> bool {
    key.split('/').any(|segment| segment.starts_with("churn-"))
}

/// The `n`th key a churning client writes: nested in directories made before the churn began
/// (`nested_only`), or anywhere under the prefix, short or long.
fn churn_key(client: usize, n: u64, nested_only: bool) -> String {
    let kinds = if nested_only { 5 } else { 8 };
    match n % kinds {
        0 => format!("{PREFIX}churn-{client}/{n}"),
        1 => format!("{PREFIX}churn-{client}/g{}/x{n}", n % 4),
        2 => format!("{PREFIX}d/churn-{client}-{n}"),
        3 => format!("{PREFIX}{}/churn-{client}-{n}", "L".repeat(300)),
        4 => format!("{PREFIX}churn-{client}/{}-{n}", "z".repeat(270)),
        5 => format!("{PREFIX}churn-{client}-{n}"),
        6 => format!("{PREFIX}churn-{client}-{}{n}", "ü".repeat(140)),
        _ => format!("{PREFIX}churn-{client}-{n}/x/y"),
    }
}

/// The figures of a run, and the first few things that were wrong.
#[derive(Default)]
struct Tally {
    listings: AtomicU64,
    pages: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    failed_pages: AtomicU64,
    bad_listings: AtomicU64,
    failed_writes: AtomicU64,
    notes: Mutex<Vec<String>>,
}

impl Tally {
    fn note(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut notes = self.notes.lock();
        if notes.len() < 12 {
            notes.push(what);
        }
    }

    fn summary(&self, origin: &str) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "origin={origin} listings={} pages={} churn_puts={} churn_deletes={} failed_pages={} bad_listings={} failed_writes={}",
            n(&self.listings),
            n(&self.pages),
            n(&self.puts),
            n(&self.deletes),
            n(&self.failed_pages),
            n(&self.bad_listings),
            n(&self.failed_writes),
        )
    }
}

async fn put(http: &Client, base: &str, key: &str) -> Result<(), String> {
    let response = http
        .put(artifact_url(base, key))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(format!("body of {key}"))
        .send()
        .await
        .map_err(|e| format!("PUT {key:?}: {e:?}"))?;
    match response.status() {
        StatusCode::OK => Ok(()),
        status => Err(format!("PUT {key:?}: {status} {}", response.text().await.unwrap_or_default())),
    }
}

async fn delete(http: &Client, base: &str, key: &str) -> Result<(), String> {
    let response = http.delete(artifact_url(base, key)).send().await.map_err(|e| format!("DELETE {key:?}: {e:?}"))?;
    match response.status() {
        StatusCode::NO_CONTENT => Ok(()),
        status => Err(format!("DELETE {key:?}: {status} {}", response.text().await.unwrap_or_default())),
    }
}

/// One page of `GET /v1/artifacts`: its keys and its `next_cursor`.
async fn page(http: &Client, base: &str, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<(Vec<String>, Option<String>), String> {
    let limit = limit.to_string();
    let mut query = vec![("prefix", prefix), ("limit", limit.as_str())];
    if let Some(cursor) = cursor {
        query.push(("cursor", cursor));
    }
    let response = http.get(format!("{base}/v1/artifacts")).query(&query).send().await.map_err(|e| format!("page after {cursor:?}: {e:?}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("page after {cursor:?}: {e:?}"))?;
    if status != StatusCode::OK {
        return Err(format!("page after {cursor:?}: {status} {text}"));
    }
    let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("page after {cursor:?}: {e}: {text}"))?;
    let keys = body["items"]
        .as_array()
        .ok_or_else(|| format!("page after {cursor:?} without items: {text}"))?
        .iter()
        .map(|item| item["key"].as_str().map(String::from).ok_or_else(|| format!("an item without a key: {item}")))
        .collect::<Result<Vec<_>, _>>()?;
    let next = match &body["next_cursor"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(c) => Some(c.clone()),
        other => return Err(format!("a next_cursor that is not a string: {other}")),
    };
    if keys.len() > limit.parse::<usize>().unwrap() {
        return Err(format!("{} items in a page of at most {limit}", keys.len()));
    }
    Ok((keys, next))
}

/// A whole listing of `prefix`, `limit` keys a page: its keys in the order given, and the pages
/// it took; `Err` for a page that failed or a cursor that did not move on.
async fn listing(http: &Client, base: &str, prefix: &str, limit: usize) -> Result<(Vec<String>, usize), String> {
    let (mut keys, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let (page_keys, next) = page(http, base, prefix, cursor.as_deref(), limit).await?;
        pages += 1;
        keys.extend(page_keys);
        match next {
            None => return Ok((keys, pages)),
            Some(next) if cursor.as_ref().is_some_and(|c| next <= *c) => {
                return Err(format!("next_cursor {next:?} does not move on from {cursor:?}"));
            }
            Some(_) if pages >= MAX_PAGES => return Err(format!("still paging after {pages} pages")),
            Some(next) => cursor = Some(next),
        }
    }
}

/// What is wrong with a full listing taken while keys came and went: each stable key exactly
/// once, every key in strictly ascending byte order, under the prefix, and stable or churned.
fn check_listing(keys: &[String], stable: &BTreeSet<String>) -> Result<(), String> {
    if let Some(w) = keys.windows(2).find(|w| w[0].as_bytes() >= w[1].as_bytes()) {
        return Err(format!("{:?} listed before {:?}", w[0], w[1]));
    }
    if let Some(foreign) = keys.iter().find(|k| !k.starts_with(PREFIX) || !(stable.contains(*k) || is_churn(k))) {
        return Err(format!("a key never written: {foreign:?}"));
    }
    let listed: BTreeSet<&String> = keys.iter().filter(|k| stable.contains(*k)).collect();
    if listed.len() != stable.len() {
        let missing: Vec<&String> = stable.iter().filter(|k| !listed.contains(k)).take(5).collect();
        return Err(format!("{} of {} stable keys listed; missing among others {missing:?}", listed.len(), stable.len()));
    }
    Ok(())
}

/// Adds and deletes its own keys until `until`, keeping at most [`OUTSTANDING`]; deletes what
/// is left at the end.
async fn churn(http: Client, base: String, tally: Arc<Tally>, client: usize, started: Instant, until: Instant) {
    let mut live = std::collections::VecDeque::new();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let key = churn_key(client, n, started.elapsed() < NESTED_ONLY);
        tally.puts.fetch_add(1, Ordering::Relaxed);
        match put(&http, &base, &key).await {
            Ok(()) => live.push_back(key),
            Err(e) => tally.note(&tally.failed_writes, e),
        }
        if (live.len() > OUTSTANDING || n.is_multiple_of(3))
            && let Some(old) = live.pop_front()
        {
            tally.deletes.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = delete(&http, &base, &old).await {
                tally.note(&tally.failed_writes, e);
            }
        }
    }
    for old in live {
        tally.deletes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = delete(&http, &base, &old).await {
            tally.note(&tally.failed_writes, e);
        }
    }
}

/// Pages through the prefix again and again until `until`, checking each whole listing.
async fn reader(http: Client, base: String, tally: Arc<Tally>, stable: Arc<BTreeSet<String>>, until: Instant) {
    while Instant::now() < until {
        match listing(&http, &base, PREFIX, PAGE).await {
            Ok((keys, pages)) => {
                tally.listings.fetch_add(1, Ordering::Relaxed);
                tally.pages.fetch_add(pages as u64, Ordering::Relaxed);
                if let Err(why) = check_listing(&keys, &stable) {
                    tally.note(&tally.bad_listings, format!("listing {}: {why}", tally.listings.load(Ordering::Relaxed)));
                }
            }
            Err(why) => tally.note(&tally.failed_pages, why),
        }
    }
}

/// Artifacts on `plugin`, uncached: every page is the origin's.
fn manifest(plugin: &str) -> String {
    format!(
        "[runtime]\ncompiled_cache = \"{}\"\n\n[plugins.origin]\n{plugin}\n[domains]\nartifact = {{ origin = \"origin\", cache = false }}\n",
        compiled_cache()
    )
}

async fn listings_under_churn(origin: &str) {
    let backing = Origin::start(origin).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&backing.plugin())), &[]);
    let http = Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
    let base = server.base.clone();
    let stable = Arc::new(stable_keys());

    // The stable keys, and the directories the churn begins in (made and emptied).
    let mut setup: Vec<String> = stable.iter().cloned().collect();
    for client in 0..2 {
        setup.extend((0..4).map(|g| format!("{PREFIX}churn-{client}/g{g}/seed")));
        setup.push(format!("{PREFIX}churn-{client}/seed"));
    }
    let failed: Vec<String> = futures_util::stream::iter(&setup)
        .map(|key| put(&http, &base, key))
        .buffer_unordered(8)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    assert!(failed.is_empty(), "origin={origin}: writing the keys failed: {failed:?}");
    for key in setup.iter().filter(|k| is_churn(k)) {
        delete(&http, &base, key).await.unwrap();
    }
    let (before, _) = listing(&http, &base, PREFIX, PAGE).await.unwrap_or_else(|e| panic!("origin={origin}: the first listing: {e}"));
    assert_eq!(before, stable.iter().cloned().collect::<Vec<_>>(), "origin={origin}: the listing before the churn");

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + CHURN;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..2 {
        tasks.spawn(churn(http.clone(), base.clone(), tally.clone(), client, started, until));
    }
    tasks.spawn(reader(http.clone(), base.clone(), tally.clone(), stable.clone(), until));
    while let Some(done) = tasks.join_next().await {
        done.expect("a task panicked");
    }
    let summary = tally.summary(origin);
    println!("{summary}");
    let notes = tally.notes.lock().join("\n  ");
    if !notes.is_empty() {
        println!("  {notes}");
    }
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(n(&tally.failed_pages), 0, "listing requests failed: {summary}\n  {notes}");
    assert_eq!(n(&tally.bad_listings), 0, "listings missed, repeated or misordered keys: {summary}\n  {notes}");
    assert_eq!(n(&tally.failed_writes), 0, "churning writes failed: {summary}\n  {notes}");
    assert!(n(&tally.listings) >= 3 && n(&tally.puts) >= 20, "too little happened for a race: {summary}");

    // Once the churn is over and its keys deleted, the listing is the stable keys exactly.
    let (after, _) = listing(&http, &base, PREFIX, PAGE).await.unwrap_or_else(|e| panic!("origin={origin}: the last listing: {e}"));
    assert_eq!(after, stable.iter().cloned().collect::<Vec<_>>(), "origin={origin}: the listing after the churn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_on_fs_while_other_keys_come_and_go_lists_every_stable_key_once_in_byte_order() {
    listings_under_churn("fs").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_on_postgres_while_other_keys_come_and_go_lists_every_stable_key_once_in_byte_order() {
    listings_under_churn("postgres").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_on_s3_while_other_keys_come_and_go_lists_every_stable_key_once_in_byte_order() {
    listings_under_churn("s3").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_on_memory_while_other_keys_come_and_go_lists_every_stable_key_once_in_byte_order() {
    listings_under_churn("memory").await
}

/// The keys under `long/` that share a start of 250 `b`s (a segment at the longest encoded
/// name the fs plugin writes as is, and longer ones it names by their hash), some nested.
fn shared_start_keys() -> Vec<String> {
    let b = "b".repeat(250);
    let suffixes = ["", "a", "b", "bb", "b!", "bé", "b/x", "b/y/z", "c/x", "/x", "/y/z", &format!("b{}", "c".repeat(40)), "é/x"];
    suffixes.iter().map(|s| format!("long/{b}{s}")).collect()
}

/// Every listing of `prefix` on `base`, two keys a page, is `expected` (in byte order).
async fn assert_listed(http: &Client, base: &str, prefix: &str, expected: &[String], when: &str) {
    let (keys, pages) = listing(http, base, prefix, 2).await.unwrap_or_else(|e| panic!("{when}: listing {prefix:?}: {e}"));
    assert_eq!(keys, expected, "{when}: the listing of {prefix:?} in {pages} pages");
    assert!(pages >= expected.len() / 2, "{when}: {} keys in {pages} pages of 2", keys.len());
}

async fn assert_body(http: &Client, base: &str, key: &str, body: &[u8], when: &str) {
    let response = http.get(artifact_url(base, key)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{when}: GET {key:?}");
    assert_eq!(response.bytes().await.unwrap(), body, "{when}: the body of {key:?}");
}

async fn assert_project(http: &Client, base: &str, id: &str, name: &str, state: &serde_json::Value, when: &str) {
    let response = http.get(format!("{base}/v1/projects/{}", encode_path(id))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{when}: GET the project of a 256-byte id");
    let project: serde_json::Value = response.json().await.unwrap();
    assert_eq!(project["id"], id, "{when}");
    assert_eq!(project["name"], name, "{when}");
    assert_eq!(project["state"], *state, "{when}");
    assert_eq!(project["version"], 1, "{when}");
    let projects: serde_json::Value = http.get(format!("{base}/v1/projects")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = projects["items"].as_array().unwrap().iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, [id], "{when}: the projects listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_keys_and_ids_on_the_embedded_default_are_written_read_back_and_listed_from_inside_a_long_segment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let http = Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();

    let a_key = format!("long/{}", "a".repeat(300));
    let e_key = format!("long/{}", "é".repeat(100));
    let project_id = "p".repeat(256);
    let (name, state) = ("a project with the longest id", serde_json::json!({"stage": 1, "note": "é"}));
    for key in [&a_key, &e_key] {
        put(&http, &server.base, key).await.unwrap();
        assert_body(&http, &server.base, key, format!("body of {key}").as_bytes(), "after the write").await;
    }
    let saved =
        http.put(format!("{}/v1/projects/{project_id}", server.base)).json(&serde_json::json!({"name": name, "state": state})).send().await.unwrap();
    assert_eq!(saved.status(), StatusCode::OK, "PUT the project of a 256-byte id: {}", saved.text().await.unwrap_or_default());
    assert_project(&http, &server.base, &project_id, name, &state, "after the write").await;

    let shared = shared_start_keys();
    for key in &shared {
        put(&http, &server.base, key).await.unwrap();
    }
    let mut all: Vec<String> = shared.iter().cloned().chain([a_key.clone(), e_key.clone()]).collect();
    all.sort();
    let b250 = format!("long/{}", "b".repeat(250));
    let b251 = format!("long/{}", "b".repeat(251));
    let prefixes = [b251.clone(), b250.clone(), format!("{b250}/"), "long/".to_string(), format!("long/{}", "é".repeat(50))];
    let expected = |prefix: &str| -> Vec<String> { all.iter().filter(|k| k.starts_with(prefix)).cloned().collect() };
    assert_eq!(expected(&b251).len(), 7, "the keys under the prefix inside the long segment");
    for prefix in &prefixes {
        assert_listed(&http, &server.base, prefix, &expected(prefix), "after the writes").await;
    }

    // Again from the fs plugin's files alone: a new process, and no disk cache.
    assert!(server.stop().success());
    let cache = dir.path().join(".storehost").join("cache");
    if cache.exists() {
        std::fs::remove_dir_all(&cache).unwrap();
    }
    let server = Server::start(dir.path(), None, &[]);
    for key in [&a_key, &e_key] {
        assert_body(&http, &server.base, key, format!("body of {key}").as_bytes(), "after a restart").await;
    }
    assert_project(&http, &server.base, &project_id, name, &state, "after a restart").await;
    for prefix in &prefixes {
        assert_listed(&http, &server.base, prefix, &expected(prefix), "after a restart").await;
    }
}
