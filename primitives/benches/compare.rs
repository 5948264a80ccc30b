//! `cargo bench -p storehost-primitives --bench compare`: our caches against the crates people
//! reach for, side by side in one run. Prints a table and writes `target/bench/compare.json`
//! (`[{"case","ours","anchor","ours_ns","anchor_ns","speedup"}]`, speedup = anchor_ns / ours_ns).
//!
//! Every timed case runs each contender once per round, interleaved, for several rounds, and
//! reports the median round; so a burst of load from elsewhere on the machine hits all
//! contenders alike. Rows whose unit is not nanoseconds say so in the case name (bytes per entry).

// The counting global allocator must implement the `unsafe` trait `GlobalAlloc`; this file is the
// only place in the crate that needs it.
#![allow(unsafe_code)]

#[path = "../../host/benches/support/baseline.rs"]
mod baseline;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use storehost_primitives::{DiskStore, DiskStoreConfig, FsyncPolicy, MemoryCache};

// ---------------------------------------------------------------------------------------------
// Counting allocator: live bytes requested, counted only while `COUNTING` is set so that the
// timed cases do not pay for a contended counter.

struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

// ---------------------------------------------------------------------------------------------
// Results.

struct Row {
    case: String,
    ours: String,
    anchor: String,
    ours_ns: f64,
    anchor_ns: f64,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, case: &str, ours: &str, anchor: &str, ours_ns: f64, anchor_ns: f64) {
        let row = Row { case: case.to_string(), ours: ours.to_string(), anchor: anchor.to_string(), ours_ns, anchor_ns };
        println!(
            "{:<44} {:<26} {:<34} {:>12} {:>12} {:>8.2}x",
            row.case,
            row.ours,
            row.anchor,
            fmt_num(row.ours_ns),
            fmt_num(row.anchor_ns),
            row.anchor_ns / row.ours_ns
        );
        self.rows.push(row);
    }

    fn header() {
        println!("{:<44} {:<26} {:<34} {:>12} {:>12} {:>9}", "case", "ours", "anchor", "ours_ns", "anchor_ns", "speedup");
        println!("{}", "-".repeat(44 + 26 + 34 + 12 + 12 + 9 + 5));
    }

    /// Each ratio's change against the suite's baseline (and the baseline recorded anew when
    /// asked).
    fn against_baseline(&self) {
        let baseline = baseline::Baseline::load(env!("CARGO_MANIFEST_DIR"), "compare");
        let speedups = || self.rows.iter().map(|r| (baseline::key(&r.case, &r.ours, &r.anchor), r.anchor_ns / r.ours_ns));
        println!("\n{:<44} {:<26} {:<34} {:>9}  against the baseline", "case", "ours", "anchor", "speedup");
        for (r, (key, speedup)) in self.rows.iter().zip(speedups()) {
            println!("{:<44} {:<26} {:<34} {:>8.2}x  {}", r.case, r.ours, r.anchor, speedup, baseline.change(&key, speedup));
        }
        let slid = baseline.slid(speedups());
        if slid > 0 {
            println!("\n{slid} ratio(s) fell more than {:.0}% below the baseline", baseline::SLIDE * 100.0);
        }
        baseline.record_if_asked(speedups());
    }

    fn write_json(&self, path: &Path) {
        let mut out = String::from("[\n");
        for (i, r) in self.rows.iter().enumerate() {
            out.push_str(&format!(
                "  {{\"case\": {}, \"ours\": {}, \"anchor\": {}, \"ours_ns\": {:.3}, \"anchor_ns\": {:.3}, \"speedup\": {:.4}}}{}\n",
                json_str(&r.case),
                json_str(&r.ours),
                json_str(&r.anchor),
                r.ours_ns,
                r.anchor_ns,
                r.anchor_ns / r.ours_ns,
                if i + 1 == self.rows.len() { "" } else { "," }
            ));
        }
        out.push_str("]\n");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, out).unwrap();
    }
}

fn fmt_num(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.0}", x)
    } else if x >= 100.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// The machine's busy fraction over `window`, from /proc/stat (all CPUs); `None` where there is
/// no /proc/stat.
fn busy_fraction(window: Duration) -> Option<f64> {
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
        Some((fields.iter().sum(), idle))
    }
    let (total0, idle0) = sample()?;
    std::thread::sleep(window);
    let (total1, idle1) = sample()?;
    let total = total1.saturating_sub(total0).max(1);
    Some(1.0 - idle1.saturating_sub(idle0) as f64 / total as f64)
}

static WAITED: Mutex<(Duration, u32, u32)> = Mutex::new((Duration::ZERO, 0, 0));
const MAX_TOTAL_WAIT: Duration = Duration::from_secs(30);

/// Before a timed round: waits (a little, and at most `MAX_TOTAL_WAIT` over the whole run) for
/// other processes to leave the CPUs idle, since two-thread cases on a two-core machine measure
/// the other load as much as the code. Counts the rounds that ran busy anyway.
fn wait_for_quiet() {
    let mut waited = WAITED.lock().unwrap();
    waited.1 += 1;
    loop {
        let started = Instant::now();
        let Some(busy) = busy_fraction(Duration::from_millis(40)) else { return };
        waited.0 += started.elapsed();
        if busy < 0.15 {
            return;
        }
        if waited.0 >= MAX_TOTAL_WAIT {
            waited.2 += 1;
            return;
        }
    }
}

/// Runs each contender once per round, interleaved, and returns each one's median ns per op.
/// A contender returns (elapsed, ops) for one round.
fn interleaved(rounds: usize, contenders: &mut [&mut dyn FnMut() -> (Duration, u64)]) -> Vec<f64> {
    let mut samples = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds {
        for (i, c) in contenders.iter_mut().enumerate() {
            wait_for_quiet();
            let (elapsed, ops) = c();
            samples[i].push(elapsed.as_nanos() as f64 / ops as f64);
        }
    }
    samples.into_iter().map(median).collect()
}

/// The `target` directory: `$CARGO_TARGET_DIR`, else the one holding this executable
/// (`target/<profile>/deps/compare-<hash>`), else `target` in the working directory.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    match exe.ancestors().nth(3) {
        Some(dir) if exe.parent().is_some_and(|p| p.ends_with("deps")) => dir.to_path_buf(),
        _ => PathBuf::from("target"),
    }
}

// ---------------------------------------------------------------------------------------------
// Workload: keys, values, zipf-distributed access sequences.

const KEYS: usize = 100_000;
const VALUE_SIZE: usize = 4096;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf(s = 1.0) over `n` ranks, mapped to key indices through a fixed shuffle so that hot keys
/// are spread over the key space.
struct Zipf {
    cdf: Vec<f64>,
    rank_to_key: Vec<u32>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for rank in 1..=n {
            sum += 1.0 / rank as f64;
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        let mut rank_to_key: Vec<u32> = (0..n as u32).collect();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in (1..n).rev() {
            rank_to_key.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        Zipf { cdf, rank_to_key }
    }

    fn sequence(&self, len: usize, seed: u64) -> Vec<u32> {
        let mut rng = XorShift(seed | 1);
        (0..len)
            .map(|_| {
                let u = rng.unit();
                let rank = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
                self.rank_to_key[rank]
            })
            .collect()
    }
}

type Value = Arc<[u8]>;

struct Workload {
    keys: Vec<String>,
    values: Vec<Value>,
    zipf: Zipf,
}

impl Workload {
    fn new() -> Self {
        let keys = (0..KEYS).map(|i| format!("artifact/{i:08}")).collect();
        let values = (0..KEYS)
            .map(|i| {
                let mut v = vec![0u8; VALUE_SIZE];
                v[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Value::from(v)
            })
            .collect();
        Workload { keys, values, zipf: Zipf::new(KEYS) }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory contenders behind one small trait, used through generics (no dynamic dispatch in loops).

trait MemCache: Sync {
    fn get(&self, key: &str) -> Option<Value>;
    fn insert(&self, key: &str, value: &Value);
}

struct Ours(MemoryCache<String, Value>);
struct Moka(moka::sync::Cache<String, Value>);
struct Quick(quick_cache::sync::Cache<String, Value, BytesWeighter>);
struct QuickUnit(quick_cache::sync::Cache<String, Value>);
struct LruMutex(Mutex<lru::LruCache<String, Value>>);

#[derive(Clone)]
struct BytesWeighter;

impl quick_cache::Weighter<String, Value> for BytesWeighter {
    fn weight(&self, key: &String, value: &Value) -> u64 {
        (key.len() + value.len()) as u64
    }
}

impl MemCache for Ours {
    #[inline]
    fn get(&self, key: &str) -> Option<Value> {
        self.0.get(key)
    }
    fn insert(&self, key: &str, value: &Value) {
        self.0.insert(key.to_string(), value.clone());
    }
}

impl MemCache for Moka {
    #[inline]
    fn get(&self, key: &str) -> Option<Value> {
        self.0.get(key)
    }
    fn insert(&self, key: &str, value: &Value) {
        self.0.insert(key.to_string(), value.clone());
    }
}

impl MemCache for Quick {
    #[inline]
    fn get(&self, key: &str) -> Option<Value> {
        self.0.get(key)
    }
    fn insert(&self, key: &str, value: &Value) {
        self.0.insert(key.to_string(), value.clone());
    }
}

impl MemCache for QuickUnit {
    #[inline]
    fn get(&self, key: &str) -> Option<Value> {
        self.0.get(key)
    }
    fn insert(&self, key: &str, value: &Value) {
        self.0.insert(key.to_string(), value.clone());
    }
}

impl MemCache for LruMutex {
    #[inline]
    fn get(&self, key: &str) -> Option<Value> {
        self.0.lock().unwrap().get(key).cloned()
    }
    fn insert(&self, key: &str, value: &Value) {
        self.0.lock().unwrap().put(key.to_string(), value.clone());
    }
}

const TTL: Duration = Duration::from_secs(3600);

fn ours_for_gets() -> Ours {
    Ours(MemoryCache::builder().max_entries(KEYS as u64).default_ttl(TTL).build())
}

fn moka_for_gets() -> Moka {
    Moka(moka::sync::Cache::builder().max_capacity(KEYS as u64).time_to_live(TTL).build())
}

fn quick_for_gets() -> QuickUnit {
    QuickUnit(quick_cache::sync::Cache::new(KEYS))
}

fn lru_for_gets() -> LruMutex {
    LruMutex(Mutex::new(lru::LruCache::new(KEYS.try_into().unwrap())))
}

/// Runs `threads` threads, each through its own sequence, once; returns (wall time, total ops).
/// Each thread first runs an untimed eighth of its sequence (`work(t, true)`), so that a round
/// does not measure a cold core after the idle wait before it.
fn run_threads<F>(threads: usize, ops_per_thread: usize, work: F) -> (Duration, u64)
where
    F: Fn(usize, bool) + Sync,
{
    let barrier = Barrier::new(threads + 1);
    let start = std::thread::scope(|scope| {
        for t in 0..threads {
            let (barrier, work) = (&barrier, &work);
            scope.spawn(move || {
                work(t, true);
                barrier.wait();
                work(t, false);
            });
        }
        barrier.wait();
        Instant::now()
    });
    (start.elapsed(), (threads * ops_per_thread) as u64)
}

fn warm_or_all(seq: &[u32], warm: bool) -> &[u32] {
    if warm { &seq[..seq.len() / 8] } else { seq }
}

fn get_round<C: MemCache>(cache: &C, w: &Workload, seqs: &[Vec<u32>], threads: usize) -> (Duration, u64) {
    run_threads(threads, seqs[0].len(), |t, warm| {
        let mut hits = 0usize;
        for &i in warm_or_all(&seqs[t], warm) {
            hits += cache.get(&w.keys[i as usize]).is_some() as usize;
        }
        black_box(hits);
    })
}

fn hit_ratio<C: MemCache>(cache: &C, w: &Workload, seq: &[u32]) -> f64 {
    let hits = seq.iter().filter(|&&i| cache.get(&w.keys[i as usize]).is_some()).count();
    hits as f64 / seq.len() as f64
}

fn memory_get_hit(report: &mut Report, w: &Workload) {
    let ours = ours_for_gets();
    let moka = moka_for_gets();
    let quick = quick_for_gets();
    let lru = lru_for_gets();
    for (k, v) in w.keys.iter().zip(&w.values) {
        ours.insert(k, v);
        moka.insert(k, v);
        quick.insert(k, v);
        lru.insert(k, v);
    }
    moka.0.run_pending_tasks();
    let ops = 1 << 19;
    let seqs: Vec<Vec<u32>> = (0..2).map(|t| w.zipf.sequence(ops, 17 + t as u64)).collect();
    for (name, ratio) in [
        ("ours", hit_ratio(&ours, w, &seqs[0])),
        ("moka", hit_ratio(&moka, w, &seqs[0])),
        ("quick_cache", hit_ratio(&quick, w, &seqs[0])),
        ("lru", hit_ratio(&lru, w, &seqs[0])),
    ] {
        assert!(ratio > 0.99, "{name} hit ratio {ratio}");
    }
    for threads in [1, 2] {
        let r = interleaved(
            15,
            &mut [
                &mut || get_round(&ours, w, &seqs, threads),
                &mut || get_round(&moka, w, &seqs, threads),
                &mut || get_round(&quick, w, &seqs, threads),
                &mut || get_round(&lru, w, &seqs, threads),
            ],
        );
        let case = format!("memory get-hit {threads}t, 4KiB Arc, 100k zipf");
        report.add(&case, "MemoryCache (ttl)", "moka::sync::Cache (ttl)", r[0], r[1]);
        report.add(&case, "MemoryCache (ttl)", "quick_cache::sync::Cache", r[0], r[2]);
        report.add(&case, "MemoryCache (ttl)", "Mutex<lru::LruCache>", r[0], r[3]);
        if threads == 1 {
            SCALING_1T.lock().unwrap().replace(r[0]);
        } else {
            let one = SCALING_1T.lock().unwrap().unwrap();
            // Per-op wall time: 2 threads do twice the work in the same time when scaling is ideal.
            report.add("memory get-hit scaling (2t throughput / 1t)", "MemoryCache 2 threads", "MemoryCache 1 thread", r[0], one);
        }
    }
}

static SCALING_1T: Mutex<Option<f64>> = Mutex::new(None);

fn mixed_round<C: MemCache>(cache: &C, w: &Workload, seqs: &[Vec<u32>], threads: usize) -> (Duration, u64) {
    run_threads(threads, seqs[0].len(), |t, warm| {
        let mut hits = 0usize;
        for &op in warm_or_all(&seqs[t], warm) {
            let i = (op & !INSERT_BIT) as usize;
            if op & INSERT_BIT != 0 {
                cache.insert(&w.keys[i], &w.values[i]);
            } else {
                hits += cache.get(&w.keys[i]).is_some() as usize;
            }
        }
        black_box(hits);
    })
}

const INSERT_BIT: u32 = 1 << 31;

fn memory_mixed(report: &mut Report, w: &Workload) {
    // Half the working set fits: gets miss and inserts evict.
    let entry_bytes = (w.keys[0].len() + VALUE_SIZE) as u64;
    let budget = entry_bytes * KEYS as u64 / 2;
    let ours = Ours(MemoryCache::builder().max_bytes(budget).weigher(|k: &String, v: &Value| k.len() + v.len()).default_ttl(TTL).build());
    let moka =
        Moka(moka::sync::Cache::builder().max_capacity(budget).weigher(|k: &String, v: &Value| (k.len() + v.len()) as u32).time_to_live(TTL).build());
    let quick = Quick(quick_cache::sync::Cache::with_weighter(KEYS / 2, budget, BytesWeighter));
    let lru = LruMutex(Mutex::new(lru::LruCache::new((KEYS / 2).try_into().unwrap())));
    for (k, v) in w.keys.iter().zip(&w.values) {
        ours.insert(k, v);
        moka.insert(k, v);
        quick.insert(k, v);
        lru.insert(k, v);
    }
    moka.0.run_pending_tasks();
    let ops = 1 << 18;
    let seqs: Vec<Vec<u32>> = (0..2)
        .map(|t| {
            let mut rng = XorShift(99 + t);
            w.zipf.sequence(ops, 1234 + t).into_iter().map(|i| if rng.next().is_multiple_of(10) { i | INSERT_BIT } else { i }).collect()
        })
        .collect();
    for threads in [1, 2] {
        let r = interleaved(
            11,
            &mut [
                &mut || mixed_round(&ours, w, &seqs, threads),
                &mut || mixed_round(&moka, w, &seqs, threads),
                &mut || mixed_round(&quick, w, &seqs, threads),
                &mut || mixed_round(&lru, w, &seqs, threads),
            ],
        );
        let case = format!("memory 90% get/10% insert {threads}t, ttl+bytes");
        report.add(&case, "MemoryCache (ttl, bytes)", "moka::sync::Cache (ttl, bytes)", r[0], r[1]);
        report.add(&case, "MemoryCache (ttl, bytes)", "quick_cache (bytes, no ttl)", r[0], r[2]);
        report.add(&case, "MemoryCache (ttl, bytes)", "Mutex<lru::LruCache> (entries)", r[0], r[3]);
    }
}

/// Live bytes allocated while `fill` inserts `n` entries, minus the keys' heap bytes and the
/// keys' and values' own sizes: what the cache costs per entry beyond key and value.
fn overhead_per_entry(n: usize, keys: &[String], fill: impl FnOnce() -> Box<dyn std::any::Any>) -> f64 {
    let key_heap: usize = keys[..n].iter().map(String::len).sum();
    LIVE_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let cache = fill();
    COUNTING.store(false, Ordering::SeqCst);
    let live = LIVE_BYTES.load(Ordering::SeqCst) as f64;
    drop(cache);
    let per_entry = (live - key_heap as f64) / n as f64;
    per_entry - (size_of::<String>() + size_of::<Value>()) as f64
}

fn memory_overhead(report: &mut Report, w: &Workload) {
    let n = KEYS;
    let value: Value = Value::from(vec![0u8; 16]);
    let keys = &w.keys;
    let ours = overhead_per_entry(n, keys, || {
        let c = ours_for_gets();
        for k in &keys[..n] {
            c.insert(k, &value);
        }
        Box::new(c)
    });
    let moka = overhead_per_entry(n, keys, || {
        let c = moka_for_gets();
        for k in &keys[..n] {
            c.insert(k, &value);
        }
        c.0.run_pending_tasks();
        Box::new(c)
    });
    let quick = overhead_per_entry(n, keys, || {
        let c = quick_for_gets();
        for k in &keys[..n] {
            c.insert(k, &value);
        }
        Box::new(c)
    });
    let lru = overhead_per_entry(n, keys, || {
        let c = lru_for_gets();
        for k in &keys[..n] {
            c.insert(k, &value);
        }
        Box::new(c)
    });
    let case = "memory overhead, bytes/entry (100k), not ns";
    report.add(case, "MemoryCache (ttl)", "moka::sync::Cache (ttl)", ours, moka);
    report.add(case, "MemoryCache (ttl)", "quick_cache::sync::Cache", ours, quick);
    report.add(case, "MemoryCache (ttl)", "Mutex<lru::LruCache>", ours, lru);
}

// ---------------------------------------------------------------------------------------------
// Disk: our store against raw std::fs and cacache, page cache warm for the reads. The directories
// live in the system temporary directory ($TMPDIR), not under the work tree: a work tree may be
// watched by tools (editors, indexers) that make every file creation there slower, which would
// measure them rather than the stores. `$STOREHOST_BENCH_DIR` picks another place.

struct DiskDirs {
    root: tempfile::TempDir,
}

impl DiskDirs {
    fn new() -> Self {
        let root = match std::env::var_os("STOREHOST_BENCH_DIR") {
            Some(dir) => tempfile::tempdir_in(dir),
            None => tempfile::tempdir(),
        }
        .unwrap();
        println!("(disk cases in {})", root.path().display());
        DiskDirs { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        let p = self.root.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

/// Writes back dirty pages left by the setup, so that timed writes are not throttled by
/// write-back of data that an earlier case produced.
fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

fn disk_value(i: usize, size: usize, version: u64) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; size];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v[8..16].copy_from_slice(&version.to_le_bytes());
    v
}

fn disk_get_hit(report: &mut Report, dirs: &DiskDirs, size: usize, keys: usize, ops: usize, rounds: usize) {
    let label = if size >= 1024 { format!("{}KiB", size / 1024) } else { format!("{size}B") };
    let ours_dir = dirs.path(&format!("ours-get-{label}"));
    let raw_dir = dirs.path(&format!("raw-get-{label}"));
    let cacache_dir = dirs.path(&format!("cacache-get-{label}"));
    let store = DiskStore::open(DiskStoreConfig::new(&ours_dir).default_ttl(TTL)).unwrap();
    let names: Vec<String> = (0..keys).map(|i| format!("artifact/{i:08}")).collect();
    let raw_paths: Vec<PathBuf> = (0..keys).map(|i| raw_dir.join(format!("{i:08}"))).collect();
    for i in 0..keys {
        let v = disk_value(i, size, 0);
        store.put(&names[i], &v).unwrap();
        std::fs::write(&raw_paths[i], &v).unwrap();
        cacache::write_sync(&cacache_dir, &names[i], &v).unwrap();
    }
    let mut rng = XorShift(5);
    let seq: Vec<usize> = (0..ops).map(|_| (rng.next() % keys as u64) as usize).collect();
    let mut ours = || {
        let t = Instant::now();
        for &i in &seq {
            let v: Bytes = store.get(&names[i]).unwrap().unwrap();
            black_box(v.len());
        }
        (t.elapsed(), ops as u64)
    };
    let mut raw = || {
        let t = Instant::now();
        for &i in &seq {
            black_box(std::fs::read(&raw_paths[i]).unwrap().len());
        }
        (t.elapsed(), ops as u64)
    };
    let mut cac = || {
        let t = Instant::now();
        for &i in &seq {
            black_box(cacache::read_sync(&cacache_dir, &names[i]).unwrap().len());
        }
        (t.elapsed(), ops as u64)
    };
    // Warm the page cache and the code paths once, untimed.
    ours();
    raw();
    cac();
    settle_disk();
    let r = interleaved(rounds, &mut [&mut ours, &mut raw, &mut cac]);
    let case = format!("disk get-hit {label}, {keys} keys");
    report.add(&case, "DiskStore::get (checksum)", "std::fs::read (no checks)", r[0], r[1]);
    report.add(&case, "DiskStore::get (checksum)", "cacache::read_sync (sha256)", r[0], r[2]);
}

fn disk_put(report: &mut Report, dirs: &DiskDirs, size: usize, keys: usize, ops: usize, rounds: usize) {
    let label = if size >= 1024 { format!("{}KiB", size / 1024) } else { format!("{size}B") };
    let ours_dir = dirs.path(&format!("ours-put-{label}"));
    let raw_dir = dirs.path(&format!("raw-put-{label}"));
    let cacache_dir = dirs.path(&format!("cacache-put-{label}"));
    let store = DiskStore::open(DiskStoreConfig::new(&ours_dir).fsync(FsyncPolicy::Never)).unwrap();
    let names: Vec<String> = (0..keys).map(|i| format!("artifact/{i:08}")).collect();
    // Every put writes new content (a version number inside), so that cacache's content
    // addressing cannot skip a write.
    let values: Vec<Vec<u8>> = (0..keys).map(|i| disk_value(i, size, 0)).collect();
    let mut version = 0u64;
    let mut next_value = |i: usize| {
        version += 1;
        let mut v = values[i].clone();
        v[8..16].copy_from_slice(&version.to_le_bytes());
        v
    };
    let mut batches: Vec<Vec<(usize, Vec<u8>)>> = Vec::new();
    for round in 0..=rounds {
        batches.push((0..ops).map(|j| ((round * ops + j) % keys, next_value((round * ops + j) % keys))).collect());
    }
    let mut ours_round = 0;
    let mut ours = || {
        let batch = &batches[ours_round];
        ours_round += 1;
        let t = Instant::now();
        for (i, v) in batch {
            store.put(&names[*i], v).unwrap();
        }
        (t.elapsed(), ops as u64)
    };
    // The file work of our put without the index: write a temporary file, rename it to a new
    // name, remove the previous version. (Renaming over the previous version instead makes ext4
    // flush the new data first, ~1 ms per put here; that is why our files get fresh names.)
    let mut raw_round = 0;
    let mut raw_names: Vec<Option<PathBuf>> = vec![None; keys];
    let mut raw_seq = 0u64;
    let mut raw = || {
        let batch = &batches[raw_round];
        raw_round += 1;
        let t = Instant::now();
        for (i, v) in batch {
            raw_seq += 1;
            let tmp = raw_dir.join(format!("{raw_seq:016x}.tmp"));
            let dest = raw_dir.join(format!("{raw_seq:016x}"));
            std::fs::write(&tmp, v).unwrap();
            std::fs::rename(&tmp, &dest).unwrap();
            if let Some(old) = raw_names[*i].replace(dest) {
                std::fs::remove_file(old).unwrap();
            }
        }
        (t.elapsed(), ops as u64)
    };
    let mut cac_round = 0;
    let mut cac = || {
        let batch = &batches[cac_round];
        cac_round += 1;
        let t = Instant::now();
        for (i, v) in batch {
            cacache::write_sync(&cacache_dir, &names[*i], v).unwrap();
        }
        (t.elapsed(), ops as u64)
    };
    // The first batch creates the files (and our fan-out directories); untimed.
    ours();
    raw();
    cac();
    settle_disk();
    let r = interleaved(rounds, &mut [&mut ours, &mut raw, &mut cac]);
    let case = format!("disk put {label} overwrite, {keys} keys, no fsync");
    report.add(&case, "DiskStore::put (Never)", "cacache::write_sync (no fsync)", r[0], r[2]);
    report.add(&case, "DiskStore::put (Never)", "std::fs write+rename+unlink", r[0], r[1]);
}

fn disk_reopen(report: &mut Report, dirs: &DiskDirs) {
    const ENTRIES: usize = 100_000;
    let dir = dirs.path("ours-reopen");
    let store = DiskStore::open(DiskStoreConfig::new(&dir).default_ttl(TTL)).unwrap();
    for i in 0..ENTRIES {
        store.put(&format!("artifact/{i:08}"), &disk_value(i, 100, 0)).unwrap();
    }
    drop(store);
    settle_disk();
    let mut samples = Vec::new();
    for _ in 0..5 {
        wait_for_quiet();
        let t = Instant::now();
        let store = DiskStore::open(DiskStoreConfig::new(&dir).default_ttl(TTL)).unwrap();
        samples.push(t.elapsed().as_nanos() as f64);
        assert_eq!(store.recovery().entries, ENTRIES as u64);
        drop(store);
    }
    report.add("disk reopen 100k entries (ns per open)", "DiskStore::open", "target: 500 ms", median(samples), 500e6);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    if smoke {
        println!("compare: not run under `cargo bench`; skipping (use `cargo bench --bench compare`)");
        return;
    }
    // Optional filters: `cargo bench --bench compare -- get-hit` runs only the matching groups.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |group: &str| filters.is_empty() || filters.iter().any(|f| group.contains(f.as_str()));
    let started = Instant::now();
    let mut report = Report::default();
    let w = Workload::new();
    Report::header();
    if wanted("memory get-hit") {
        memory_get_hit(&mut report, &w);
    }
    if wanted("memory mixed") {
        memory_mixed(&mut report, &w);
    }
    if wanted("memory overhead") {
        memory_overhead(&mut report, &w);
    }
    drop(w);
    if wanted("disk") {
        let dirs = DiskDirs::new();
        // Few keys: cacache makes two directory levels per entry and removing thousands of
        // directories at the end would take longer than the measurements.
        let t = Instant::now();
        disk_get_hit(&mut report, &dirs, 4 << 10, 256, 5000, 9);
        // 200 × 256 KiB = 50 MiB, more than the last-level cache, as a disk tier would hold.
        disk_get_hit(&mut report, &dirs, 256 << 10, 200, 500, 9);
        disk_put(&mut report, &dirs, 4 << 10, 256, 200, 9);
        disk_put(&mut report, &dirs, 256 << 10, 64, 40, 9);
        eprintln!("(disk reads and puts: {:.1}s)", t.elapsed().as_secs_f64());
        let t = Instant::now();
        disk_reopen(&mut report, &dirs);
        eprintln!("(disk reopen: {:.1}s)", t.elapsed().as_secs_f64());
        let t = Instant::now();
        drop(dirs);
        eprintln!("(disk cleanup: {:.1}s)", t.elapsed().as_secs_f64());
    }

    let (waited, rounds, busy) = *WAITED.lock().unwrap();
    println!(
        "\n{rounds} timed rounds; {:.1}s spent waiting for idle CPUs; {busy} rounds ran while other processes kept the CPUs busy",
        waited.as_secs_f64()
    );
    report.against_baseline();
    let json = target_dir().join("bench").join("compare.json");
    report.write_json(&json);
    println!("\nwrote {} in {:.1}s", json.display(), started.elapsed().as_secs_f64());
}
