//! A read racing writes of the same key answers one whole version that was written, or an
//! error before its first byte: never a `200`/`206` whose body stops short of its
//! `Content-Length`, and never bytes of two versions under one `ETag`. On the real binary, per
//! origin (fs, postgres, s3, memory), without and with the caches, and on a `[cluster]` host
//! whose invalidation log is cut twice during the race.
//!
//! Every body names its key and version and carries the SHA-256 of the rest of itself, so a
//! whole body is checked on its own; a range cannot be, so it is checked against the bytes of
//! the version its `ETag` names, which the writers registered before sending it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::Server;
use parking_lot::Mutex;
use reqwest::{Client, StatusCode, header};
use sha2::{Digest, Sha256};
use storehost_tests::origin::Origin;
use storehost_tests::pg::{TestDatabase, address_of, with_address};
use storehost_tests::proxy::Proxy;

/// How long each configuration races; eight of them run side by side under nextest.
const RACE: Duration = Duration::from_secs(8);
/// The cluster's race: long enough for two cuts of the log of [`LOG_CUT`] each, and a recovery.
const CLUSTER_RACE: Duration = Duration::from_secs(11);
const LOG_CUT: Duration = Duration::from_secs(3);

const WRITERS: usize = 4;
const READERS: usize = 8;
const KEYS: usize = 8;

/// The host moves bodies in chunks of this size: the sizes written straddle its boundaries,
/// where a read that is not pinned to one version would switch to another.
const CHUNK: usize = storehost::domain::body::CHUNK;
const SIZES: [usize; 7] = [1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 17, 3 * CHUNK];

/// Bodies at least this long start with their header line; shorter ones (1 and 100 bytes) are
/// only checked through their `ETag` and the versions written.
const HEADER_ROOM: usize = 256;
const MAGIC: &[u8] = b"storehost-race ";

/// A GET that does not finish in this long is counted as a cut answer (it stalled mid-body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn compiled_cache() -> String {
    std::env::temp_dir().join("storehost-test-compiled-cache").display().to_string()
}

fn key_path(key: usize) -> String {
    format!("/v1/artifacts/race/k{key}")
}

/// SplitMix64: the bytes of a version, derived from its seed and position alone.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bytes `start..end` of the filler of `seed`: any slice can be produced without the rest, so a
/// range is checked without rebuilding its whole body.
fn filler(seed: u64, start: usize, end: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(end - start);
    let mut at = start;
    while at < end {
        let word = mix(seed ^ (at / 8) as u64).to_le_bytes();
        let from = at % 8;
        let take = (8 - from).min(end - at);
        out.extend_from_slice(&word[from..from + take]);
        at += take;
    }
    out
}

/// One body written to one key.
struct Version {
    key: usize,
    writer: usize,
    n: u64,
    len: usize,
    seed: u64,
    /// The header line that replaces the filler's first bytes (empty for short bodies).
    header: Vec<u8>,
}

impl Version {
    /// The body of the `n`th write of `writer`, with its header line; and its SHA-256.
    fn build(key: usize, writer: usize, n: u64, len: usize) -> (Version, Vec<u8>, String) {
        let seed = mix(((key as u64) << 48) ^ ((writer as u64) << 32) ^ n);
        let mut body = filler(seed, 0, len);
        let mut header = Vec::new();
        if len >= HEADER_ROOM {
            let line = |sha: &str| format!("storehost-race key=k{key} version={writer}:{n} len={len} sha256={sha}\n");
            let header_len = line(&"0".repeat(64)).len();
            let rest = hex::encode(Sha256::digest(&body[header_len..]));
            header = line(&rest).into_bytes();
            body[..header_len].copy_from_slice(&header);
        }
        let sha = hex::encode(Sha256::digest(&body));
        (Version { key, writer, n, len, seed, header }, body, sha)
    }

    /// Bytes `start..end` of this version's body.
    fn slice(&self, start: usize, end: usize) -> Vec<u8> {
        let mut out = filler(self.seed, start, end);
        let header_end = end.min(self.header.len());
        if start < header_end {
            out[..header_end - start].copy_from_slice(&self.header[start..header_end]);
        }
        out
    }

    fn name(&self) -> String {
        format!("k{} {}:{} ({} bytes)", self.key, self.writer, self.n, self.len)
    }
}

/// Checks a whole body by itself: its header line names its length and the SHA-256 of what
/// follows it. A body too short to carry one passes (its `ETag` and the written versions check
/// it).
fn self_check(key: usize, body: &[u8]) -> Result<(), String> {
    if body.len() < HEADER_ROOM {
        return Ok(());
    }
    if !body.starts_with(MAGIC) {
        return Err(format!("a body of {} bytes without its header line", body.len()));
    }
    let end = body.iter().position(|b| *b == b'\n').ok_or("a header line without its end")?;
    let line = std::str::from_utf8(&body[..end]).map_err(|_| "a header line that is not text")?;
    let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name)).ok_or(format!("no {name} in {line:?}"));
    if field("key=")? != format!("k{key}") {
        return Err(format!("the body of another key: {line:?}"));
    }
    let len: usize = field("len=")?.parse().map_err(|_| format!("a bad length in {line:?}"))?;
    if len != body.len() {
        return Err(format!("{} bytes of a body of {len}: {line:?}", body.len()));
    }
    let rest = hex::encode(Sha256::digest(&body[end + 1..]));
    if field("sha256=")? != rest {
        return Err(format!("a body whose bytes after its header are not its own (mixed versions?): {line:?}"));
    }
    Ok(())
}

/// What the writers sent to each key, by the SHA-256 of the body; a version is registered
/// before its `PUT` is sent, so any body a reader can get is there.
struct Written {
    versions: Vec<Mutex<HashMap<String, Arc<Version>>>>,
    /// Whether a write of the key was answered `200` (a `404` after that is wrong: nothing is
    /// deleted).
    acknowledged: Vec<AtomicBool>,
}

impl Written {
    fn new() -> Written {
        Written {
            versions: (0..KEYS).map(|_| Mutex::new(HashMap::new())).collect(),
            acknowledged: (0..KEYS).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn version(&self, key: usize, sha: &str) -> Option<Arc<Version>> {
        self.versions[key].lock().get(sha).cloned()
    }

    fn has_length(&self, key: usize, len: usize) -> bool {
        self.versions[key].lock().values().any(|v| v.len == len)
    }
}

/// The race's figures, and the first few answers that were not right.
#[derive(Default)]
struct Tally {
    gets: AtomicU64,
    whole: AtomicU64,
    partial: AtomicU64,
    absent: AtomicU64,
    unsatisfiable: AtomicU64,
    /// GETs answered with another status (a 503, say): no body was promised.
    other: AtomicU64,
    /// GETs that got no answer at all.
    failed: AtomicU64,
    cut: AtomicU64,
    wrong: AtomicU64,
    puts: AtomicU64,
    put_ok: AtomicU64,
    put_unavailable: AtomicU64,
    put_failed: AtomicU64,
    /// The slowest write, in milliseconds (a cluster host holds writes while its log is away).
    put_max_ms: AtomicU64,
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

    fn summary(&self, origin: &str, cache: &str) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "origin={origin} cache={cache} gets={} 200={} 206={} 404={} 416={} other={} failed={} cut={} wrong={} puts={} put_ok={} put_503={} put_failed={} put_max_ms={}",
            n(&self.gets),
            n(&self.whole),
            n(&self.partial),
            n(&self.absent),
            n(&self.unsatisfiable),
            n(&self.other),
            n(&self.failed),
            n(&self.cut),
            n(&self.wrong),
            n(&self.puts),
            n(&self.put_ok),
            n(&self.put_unavailable),
            n(&self.put_failed),
            n(&self.put_max_ms),
        )
    }

    /// The summary line, then the answers noted (the first few that were not a clean body).
    fn print(&self, summary: &str) {
        println!("{summary}");
        for note in self.notes.lock().iter() {
            println!("  {note}");
        }
    }

    /// No cut answer and no wrong body; and the race did race: keys were written and bodies
    /// were read back.
    fn assert_clean(&self, summary: &str) {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let notes = self.notes.lock().join("\n  ");
        assert_eq!(n(&self.cut), 0, "answers cut mid-body: {summary}\n  {notes}");
        assert_eq!(n(&self.wrong), 0, "bodies that are not one written version: {summary}\n  {notes}");
        assert!(n(&self.put_ok) >= KEYS as u64, "too few writes landed for a race: {summary}\n  {notes}");
        assert!(n(&self.whole) + n(&self.partial) >= n(&self.gets) / 2, "most GETs were answered without a body: {summary}\n  {notes}");
    }
}

/// A pseudo-random number generator per task, from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = mix(self.0);
        (self.0 % n as u64) as usize
    }
}

/// One `Range` a reader asks for.
#[derive(Clone, Copy, Debug)]
enum Ask {
    Span(usize, usize),
    From(usize),
    Suffix(usize),
}

impl Ask {
    /// Ranges that start and end near the chunk boundaries, where a read changes chunks.
    fn pick(rng: &mut Rng) -> Ask {
        let near = |rng: &mut Rng| (rng.below(4) * CHUNK + rng.below(9)).saturating_sub(4);
        let lengths = [1, 2, 100, CHUNK - 1, CHUNK + 2, 2 * CHUNK + 5];
        match rng.below(4) {
            0 | 1 => {
                let start = near(rng);
                Ask::Span(start, start + lengths[rng.below(lengths.len())] - 1)
            }
            2 => Ask::From(near(rng)),
            _ => Ask::Suffix(lengths[rng.below(lengths.len())]),
        }
    }

    fn header(self) -> String {
        match self {
            Ask::Span(a, b) => format!("bytes={a}-{b}"),
            Ask::From(a) => format!("bytes={a}-"),
            Ask::Suffix(n) => format!("bytes=-{n}"),
        }
    }

    /// The bytes `first..=last` this asks of a body of `size`; `None`: unsatisfiable.
    fn resolve(self, size: usize) -> Option<(usize, usize)> {
        match self {
            Ask::Span(a, _) | Ask::From(a) if a >= size => None,
            Ask::Span(a, b) => Some((a, b.min(size - 1))),
            Ask::From(a) => Some((a, size - 1)),
            Ask::Suffix(n) if n == 0 || size == 0 => None,
            Ask::Suffix(n) => Some((size - n.min(size), size - 1)),
        }
    }
}

/// `Content-Range: bytes first-last/size` (or `bytes */size`).
fn content_range(response: &reqwest::Response) -> Option<(Option<(usize, usize)>, usize)> {
    let value = response.headers().get(header::CONTENT_RANGE)?.to_str().ok()?.strip_prefix("bytes ")?;
    let (span, size) = value.split_once('/')?;
    let size = size.parse().ok()?;
    if span == "*" {
        return Some((None, size));
    }
    let (first, last) = span.split_once('-')?;
    Some((Some((first.parse().ok()?, last.parse().ok()?)), size))
}

fn etag_of(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get(header::ETAG)?.to_str().ok()?;
    Some(value.strip_prefix('"')?.strip_suffix('"')?.to_string())
}

/// The body of an answer, read as it streams: `Err` when it stops short of its
/// `Content-Length`, the connection fails mid-body, or it stalls.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let declared: Option<usize> = response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    loop {
        match tokio::time::timeout(REQUEST_TIMEOUT, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(format!("failed after {} of {declared:?} bytes: {e:?}", body.len())),
            Err(_) => return Err(format!("stalled after {} of {declared:?} bytes", body.len())),
        }
    }
    match declared {
        Some(n) if n != body.len() => Err(format!("{} bytes of a declared {n}", body.len())),
        _ => Ok(body),
    }
}

/// Replaces random keys with bodies of every size until `until`.
async fn writer(http: Client, base: String, written: Arc<Written>, tally: Arc<Tally>, id: usize, until: Instant) {
    let mut rng = Rng(mix(1000 + id as u64));
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let key = rng.below(KEYS);
        let (version, body, sha) = Version::build(key, id, n, SIZES[rng.below(SIZES.len())]);
        let name = version.name();
        written.versions[key].lock().insert(sha, Arc::new(version));
        tally.puts.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let sent = http.put(format!("{base}{}", key_path(key))).header(header::CONTENT_TYPE, "application/octet-stream").body(body).send().await;
        tally.put_max_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        match sent {
            Ok(r) if r.status() == StatusCode::OK => {
                written.acknowledged[key].store(true, Ordering::Release);
                tally.put_ok.fetch_add(1, Ordering::Relaxed);
            }
            // The origin has the write, but it could not be published (a cluster cut from its log).
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                tally.put_unavailable.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                tally.note(&tally.put_failed, format!("PUT {name}: {status} {text}"));
            }
            Err(e) => tally.note(&tally.put_failed, format!("PUT {name}: {e:?}")),
        }
    }
}

/// GETs random keys, whole or a range, until `until`, and checks every answer.
async fn reader(http: Client, base: String, written: Arc<Written>, tally: Arc<Tally>, id: usize, until: Instant) {
    let mut rng = Rng(mix(2000 + id as u64));
    while Instant::now() < until {
        let key = rng.below(KEYS);
        let ask = (rng.below(3) == 0).then(|| Ask::pick(&mut rng));
        let acknowledged = written.acknowledged[key].load(Ordering::Acquire);
        let mut request = http.get(format!("{base}{}", key_path(key)));
        if let Some(ask) = ask {
            request = request.header(header::RANGE, ask.header());
        }
        tally.gets.fetch_add(1, Ordering::Relaxed);
        let what = format!("GET k{key} {}", ask.map_or("whole".into(), Ask::header));
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                tally.note(&tally.failed, format!("{what}: no answer: {e:?}"));
                continue;
            }
        };
        match response.status() {
            StatusCode::OK => {
                tally.whole.fetch_add(1, Ordering::Relaxed);
                let etag = etag_of(&response);
                match read_body(response).await {
                    Ok(body) => {
                        if let Err(why) = check_whole(&written, key, etag, &body) {
                            tally.note(&tally.wrong, format!("{what}: 200: {why}"));
                        }
                    }
                    Err(why) => tally.note(&tally.cut, format!("{what}: 200 cut: {why}")),
                }
            }
            StatusCode::PARTIAL_CONTENT => {
                tally.partial.fetch_add(1, Ordering::Relaxed);
                let (etag, range) = (etag_of(&response), content_range(&response));
                match read_body(response).await {
                    Ok(body) => {
                        if let Err(why) = check_range(&written, key, ask, etag, range, &body) {
                            tally.note(&tally.wrong, format!("{what}: 206: {why}"));
                        }
                    }
                    Err(why) => tally.note(&tally.cut, format!("{what}: 206 cut: {why}")),
                }
            }
            StatusCode::NOT_FOUND if !acknowledged => {
                tally.absent.fetch_add(1, Ordering::Relaxed);
            }
            StatusCode::NOT_FOUND => tally.note(&tally.wrong, format!("{what}: 404 after a write of the key was acknowledged")),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                tally.unsatisfiable.fetch_add(1, Ordering::Relaxed);
                // Unsatisfiable for the size of a version that was written, or it is wrong.
                let fits = match (ask, content_range(&response)) {
                    (Some(ask), Some((None, size))) => ask.resolve(size).is_none() && written.has_length(key, size),
                    _ => false,
                };
                if !fits {
                    let range = response.headers().get(header::CONTENT_RANGE).cloned();
                    tally.note(&tally.wrong, format!("{what}: 416 with Content-Range {range:?}"));
                }
            }
            status => {
                let text = response.text().await.unwrap_or_default();
                tally.note(&tally.other, format!("{what}: {status} {text}"));
            }
        }
    }
}

/// A `200`'s body: its `ETag` is its SHA-256, it checks by itself, and it is a version that was
/// written to the key.
fn check_whole(written: &Written, key: usize, etag: Option<String>, body: &[u8]) -> Result<(), String> {
    let sha = hex::encode(Sha256::digest(body));
    self_check(key, body)?;
    let Some(version) = written.version(key, &sha) else {
        return Err(format!("a body of {} bytes that was never written to k{key}", body.len()));
    };
    if etag.as_deref() != Some(sha.as_str()) {
        let named = etag.as_deref().and_then(|e| written.version(key, e)).map_or("no version".into(), |v| v.name());
        return Err(format!("the body of {} under the ETag of {named} ({etag:?})", version.name()));
    }
    Ok(())
}

/// A `206`'s body: the `ETag` names a version written to the key, the `Content-Range` is what
/// was asked of that version's size, and the bytes are that version's.
fn check_range(
    written: &Written,
    key: usize,
    ask: Option<Ask>,
    etag: Option<String>,
    range: Option<(Option<(usize, usize)>, usize)>,
    body: &[u8],
) -> Result<(), String> {
    let ask = ask.ok_or("206 to a request without a Range")?;
    let etag = etag.ok_or("206 without an ETag")?;
    let version = written.version(key, &etag).ok_or_else(|| format!("the ETag {etag} of no version written to k{key}"))?;
    let Some((Some((first, last)), size)) = range else { return Err(format!("206 with a bad Content-Range {range:?}")) };
    if size != version.len {
        return Err(format!("Content-Range size {size} under the ETag of {}", version.name()));
    }
    if ask.resolve(size) != Some((first, last)) {
        return Err(format!("bytes {first}-{last} of {size} for {ask:?}"));
    }
    if body.len() != last - first + 1 {
        return Err(format!("{} bytes for bytes {first}-{last}", body.len()));
    }
    if body != version.slice(first, last + 1) {
        let at = body.iter().zip(version.slice(first, last + 1)).position(|(a, b)| *a != b).unwrap_or(0) + first;
        return Err(format!("bytes {first}-{last} differ from {}'s from byte {at}", version.name()));
    }
    Ok(())
}

/// Writers and readers on `base` for `length`; the figures.
async fn race(base: &str, length: Duration) -> Arc<Tally> {
    let http = Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
    let (written, tally) = (Arc::new(Written::new()), Arc::new(Tally::default()));
    let until = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..WRITERS {
        tasks.spawn(writer(http.clone(), base.to_string(), written.clone(), tally.clone(), id, until));
    }
    for id in 0..READERS {
        tasks.spawn(reader(http.clone(), base.to_string(), written.clone(), tally.clone(), id, until));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a racing task panicked");
    }
    tally
}

/// Artifacts on `plugin`; with `cached`, the memory tier and the disk tier (as the embedded
/// default has them), else no cache at all; `extra` appended.
fn manifest(plugin: &str, cached: bool, extra: &str) -> String {
    let (caches, domain) = if cached {
        ("[cache.memory]\nmax_bytes = \"64MiB\"\n\n[cache.disk]\ndir = \"cache\"\n", "{ origin = \"origin\" }")
    } else {
        ("", "{ origin = \"origin\", cache = false }")
    };
    format!("[runtime]\ncompiled_cache = \"{}\"\n\n{caches}\n[plugins.origin]\n{plugin}\n[domains]\nartifact = {domain}\n{extra}", compiled_cache())
}

async fn reads_racing_writes(origin: &str, cached: bool) {
    let backing = Origin::start(origin).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&backing.plugin(), cached, "")), &[]);
    let tally = race(&server.base, RACE).await;
    let summary = tally.summary(origin, if cached { "on" } else { "off" });
    tally.print(&summary);
    assert_eq!(tally.put_unavailable.load(Ordering::Relaxed), 0, "writes answered 503 on a host without a cluster: {summary}");
    tally.assert_clean(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_fs_without_caches_answer_whole_written_versions() {
    reads_racing_writes("fs", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_fs_with_caches_answer_whole_written_versions() {
    reads_racing_writes("fs", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_postgres_without_caches_answer_whole_written_versions() {
    reads_racing_writes("postgres", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_postgres_with_caches_answer_whole_written_versions() {
    reads_racing_writes("postgres", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_s3_without_caches_answer_whole_written_versions() {
    reads_racing_writes("s3", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_s3_with_caches_answer_whole_written_versions() {
    reads_racing_writes("s3", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_memory_without_caches_answer_whole_written_versions() {
    reads_racing_writes("memory", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_memory_with_caches_answer_whole_written_versions() {
    reads_racing_writes("memory", true).await
}

/// A replica whose invalidation log goes away twice mid-race answers from its origin (writes
/// that cannot be published are `503`), and no read is cut or mixed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_puts_on_a_cluster_host_cut_off_from_its_log_answer_whole_written_versions() {
    let db = TestDatabase::create().await;
    let server_addr = tokio::net::lookup_host(address_of(&storehost_tests::pg::server_url())).await.unwrap().next().unwrap();
    let proxy = Proxy::start(server_addr).await;
    // The log goes through the proxy; the origin reaches the same database directly, so only
    // the log is cut.
    let log_url = with_address(&db.url, &proxy.addr.to_string());
    let cluster = format!("\n[cluster]\nlog = {{ url = \"{log_url}\" }}\nhost_id = \"racer\"\nmax_staleness = \"1s\"\npoll = \"250ms\"\n");
    let origin = Origin::Postgres(db);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&origin.plugin(), true, &cluster)), &[]);
    let http = Client::new();
    // Whether the host knew, near the end of each cut, that it was not in sync: the race did
    // run against a host cut off from its log.
    let cuts = async {
        let mut unsynced = 0;
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            proxy.cut();
            tokio::time::sleep(LOG_CUT - Duration::from_millis(500)).await;
            let ready: serde_json::Value = http.get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
            unsynced += u32::from(ready["cluster"]["synced"] == serde_json::json!(false));
            tokio::time::sleep(Duration::from_millis(500)).await;
            proxy.restore();
        }
        unsynced
    };
    let (tally, unsynced) = tokio::join!(race(&server.base, CLUSTER_RACE), cuts);
    let summary = format!("{} unsynced_in_cuts={unsynced}/2", tally.summary("postgres+cluster", "on"));
    tally.print(&summary);
    assert_eq!(unsynced, 2, "the host did not notice that its log was cut: {summary}");
    tally.assert_clean(&summary);
}

/// An artifact store whose bodies fail where a test says: at once (key `at-once`), or after
/// their first chunk (any other key).
struct FailingBodies(std::sync::Arc<dyn storehost::domain::ArtifactStore>);

#[async_trait::async_trait]
impl storehost::domain::ArtifactStore for FailingBodies {
    async fn put(
        &self,
        ctx: &storehost::domain::Ctx,
        key: &str,
        body: bytes::Bytes,
        content_type: Option<String>,
    ) -> storehost::domain::Result<storehost::domain::ArtifactMeta> {
        self.0.put(ctx, key, body, content_type).await
    }
    async fn get(&self, ctx: &storehost::domain::Ctx, key: &str) -> storehost::domain::Result<storehost::domain::Artifact> {
        self.0.get(ctx, key).await
    }
    async fn head(&self, ctx: &storehost::domain::Ctx, key: &str) -> storehost::domain::Result<storehost::domain::ArtifactMeta> {
        self.0.head(ctx, key).await
    }
    async fn list(
        &self,
        ctx: &storehost::domain::Ctx,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> storehost::domain::Result<storehost::domain::ArtifactPage> {
        self.0.list(ctx, prefix, cursor, limit).await
    }
    async fn get_url(&self, ctx: &storehost::domain::Ctx, key: &str, expires_in_secs: u32) -> storehost::domain::Result<Option<String>> {
        self.0.get_url(ctx, key, expires_in_secs).await
    }
    async fn delete(&self, ctx: &storehost::domain::Ctx, key: &str) -> storehost::domain::Result<()> {
        self.0.delete(ctx, key).await
    }
    async fn open_read(
        &self,
        ctx: &storehost::domain::Ctx,
        key: &str,
        range: storehost::domain::ByteRange,
    ) -> storehost::domain::Result<storehost::domain::ArtifactReader> {
        use futures_util::StreamExt;
        let mut reader = self.0.open_read(ctx, key, range).await?;
        let cut = || Err(storehost::domain::StoreError::Unavailable("the origin went away mid-body".into()));
        // At most one chunk (1 MiB) of the body before the failure.
        let first = if key == "at-once" { None } else { reader.body.next().await.map(|r| r.map(|b| b.slice(..b.len().min(1 << 20)))) };
        reader.body = futures_util::stream::iter(first.into_iter().chain([cut()])).boxed();
        Ok(reader)
    }
    fn streams(&self) -> bool {
        self.0.streams()
    }
}

/// A body that fails before its head went out is a JSON error; one that fails after closes the
/// connection short (never other bytes), and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_fails_is_an_error_before_its_head_and_a_counted_cut_after() {
    let text = "[plugins.mem]\nsource = \"builtin:memory\"\n[domains]\nartifact = { origin = \"mem\", cache = false }\n";
    let manifest = storehost::app::Manifest::parse(text, "cut.toml", std::env::temp_dir(), |_| None).unwrap();
    let mut app = storehost::app::App::build(manifest).await.unwrap();
    let inner = app.stores.artifact.clone().unwrap();
    app.stores.artifact = Some(Arc::new(FailingBodies(inner)));
    let state = Arc::new(storehost::http::ServerState::new(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, storehost::http::router(state)).await.unwrap() });
    let http = Client::new();
    let big = vec![7u8; 3 << 20];
    for key in ["at-once", "after-a-chunk"] {
        let put = http.put(format!("{base}/v1/artifacts/{key}")).body(big.clone()).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
    }
    let at_once = http.get(format!("{base}/v1/artifacts/at-once")).send().await.unwrap();
    assert_eq!(at_once.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error: serde_json::Value = at_once.json().await.unwrap();
    assert_eq!(error["error"]["kind"], "unavailable");

    let cut = http.get(format!("{base}/v1/artifacts/after-a-chunk")).send().await.unwrap();
    assert_eq!(cut.status(), StatusCode::OK);
    assert_eq!(cut.content_length(), Some(big.len() as u64));
    match cut.bytes().await {
        Ok(body) => panic!("a cut body came whole: {} bytes", body.len()),
        Err(e) => assert!(e.is_body() || e.is_decode() || e.is_request(), "{e}"),
    }
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("storehost_http_bodies_cut_total{domain=\"artifact\"} 1"), "{metrics}");
    assert!(metrics.contains("storehost_http_bodies_cut_total{domain=\"runner\"} 0"), "{metrics}");
}
