//! `cargo bench -p storehost --bench listing`: paging through every key of an artifact origin,
//! 1,000 keys a page, at 10,000 and 100,000 keys. The fs plugin walks its directories in key
//! byte order from the cursor and keeps large directories' sorted entries between pages, so a
//! page should cost about the same at any depth of the listing and at any size of the store.
//!
//! Anchors: one native sorted walk of the same tree (the least any listing of it can read), and
//! the same walk reading the first 4 KiB of each file (a listing returns each key's metadata,
//! which the fs plugin keeps at the start of the key's file). The per-page rows (total / pages)
//! at both sizes, and one page deep in the listing against the first, show whether a page's cost
//! stays flat.
//!
//! Two layouts: `bench/<group of 100>/<key>` (keys spread over directories, as real ones are)
//! and `flat/<key>` (every key in one directory: the worst case for a directory walk). The
//! postgres plugin pages the nested layout's keys, against the same SELECT paged natively
//! through sqlx.
//!
//! PostgreSQL: 127.0.0.1:5432 (or STOREHOST_BENCH_DATABASE_URL), in a database created for the
//! run and dropped after it.

mod support;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use sqlx::{PgPool, Row};
use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::capabilities::sql::SqlGrant;
use storehost::domain::{ArtifactStore, Ctx};
use storehost::origin::PluginArtifactStore;
use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
use support::{BenchDatabase, Report, compare, time_async, time_sync};

const PAGE: u32 = 1000;
/// Keys per directory of the nested layout.
const GROUP: usize = 100;
/// How many puts are in flight while filling: the plugin's instances, all busy.
const FILL_JOBS: usize = 4;

#[derive(Clone, Copy)]
enum Layout {
    Nested,
    Flat,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Nested => "nested",
            Layout::Flat => "flat",
        }
    }

    /// The listing prefix, which is also the key's first segment.
    fn prefix(self) -> &'static str {
        match self {
            Layout::Nested => "bench/",
            Layout::Flat => "flat/",
        }
    }

    fn key(self, i: usize) -> String {
        match self {
            Layout::Nested => format!("bench/g{:04}/k{i:06}", i / GROUP),
            Layout::Flat => format!("flat/k{i:06}"),
        }
    }
}

/// Pages through every key under `prefix`; the keys and pages seen.
async fn list_all(store: &dyn ArtifactStore, ctx: &Ctx, prefix: &str) -> (usize, usize) {
    let (mut keys, mut pages) = (0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list(ctx, prefix, cursor.as_deref(), PAGE).await.unwrap();
        pages += 1;
        keys += page.items.len();
        black_box(&page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (keys, pages),
        }
    }
}

/// The file names under `dir`, each directory's entries in name order, as `base/.../name`.
fn native_walk(dir: &Path, base: &str, out: &mut Vec<String>) {
    let mut entries: Vec<(String, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.file_type().unwrap().is_dir())
        })
        .collect();
    entries.sort_unstable();
    for (name, is_dir) in entries {
        if is_dir {
            native_walk(&dir.join(&name), &format!("{base}{name}/"), out);
        } else {
            out.push(format!("{base}{name}"));
        }
    }
}

/// What a listing returns besides the key, natively: the walk, then the first 4 KiB of each
/// file (where the fs plugin keeps an artifact's metadata).
fn native_walk_and_heads(dir: &Path) -> usize {
    use std::io::Read;
    let mut names = Vec::new();
    native_walk(dir, "", &mut names);
    let mut buf = vec![0u8; 4096];
    let mut bytes = 0;
    for name in &names {
        let mut file = std::fs::File::open(dir.join(name)).unwrap();
        bytes += file.read(&mut buf).unwrap();
    }
    black_box(bytes)
}

async fn fill_plugin(store: &dyn ArtifactStore, ctx: &Ctx, layout: Layout, n: usize) {
    let body = Bytes::from_static(b"0123456789abcdef");
    futures_util::stream::iter(0..n)
        .map(|i| {
            let body = body.clone();
            async move {
                store.put(ctx, &layout.key(i), body, Some("application/octet-stream".into())).await.unwrap();
            }
        })
        .buffer_unordered(FILL_JOBS)
        .collect::<()>()
        .await;
}

/// The postgres plugin's artifacts table holding exactly the nested layout's `n` keys, filled by
/// one statement (100,000 puts through the plugin would take longer than the listings).
async fn fill_postgres(pool: &PgPool, n: usize) {
    sqlx::query("TRUNCATE \"storehost\".artifacts").execute(pool).await.unwrap();
    let body = b"0123456789abcdef";
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(body))
    };
    sqlx::query(
        "INSERT INTO \"storehost\".artifacts (key, size, content_type, sha256, created_at, body)
         SELECT format('bench/g%s/k%s', lpad((i / $2)::text, 4, '0'), lpad(i::text, 6, '0')), $3, 'application/octet-stream', $4, now(), $5
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(n as i64)
    .bind(GROUP as i64)
    .bind(body.len() as i64)
    .bind(sha256)
    .bind(&body[..])
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE \"storehost\".artifacts").execute(pool).await.unwrap();
}

/// What the plugin returns for each listed key, decoded natively.
#[allow(dead_code)]
struct NativeMeta {
    key: String,
    size: i64,
    content_type: Option<String>,
    sha256: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// The plugin's list query, paged the same way from native Rust.
async fn native_pg_list_all(pool: &PgPool, prefix: &str) -> (usize, usize) {
    let successor = storehost_plugin_rules::prefix_successor(prefix);
    let (mut keys, mut pages) = (0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let rows = sqlx::query(
            "SELECT key, size, content_type, sha256, created_at FROM \"storehost\".artifacts
             WHERE key >= $1 AND ($2::text IS NULL OR key < $2) AND ($3::text IS NULL OR key > $3)
             ORDER BY key LIMIT $4",
        )
        .bind(prefix)
        .bind(successor.as_deref())
        .bind(cursor.as_deref())
        .bind(PAGE as i64 + 1)
        .fetch_all(pool)
        .await
        .unwrap();
        pages += 1;
        let more = rows.len() > PAGE as usize;
        let items: Vec<NativeMeta> = rows
            .iter()
            .take(PAGE as usize)
            .map(|r| NativeMeta { key: r.get(0), size: r.get(1), content_type: r.get(2), sha256: r.get(3), created_at: r.get(4) })
            .collect();
        keys += items.len();
        if !more {
            return (keys, pages);
        }
        cursor = items.last().map(|item| item.key.clone());
    }
}

fn fs_plugin(rt: &tokio::runtime::Runtime, runtime: &Runtime, dir: &Path) -> Arc<PluginArtifactStore> {
    let mut spec = PluginSpec::new("fs", "builtin:fs", storehost::builtin("fs").unwrap());
    spec.dirs = vec![DirGrant { guest: "/data".into(), host: dir.to_path_buf(), mode: DirMode::Rw }];
    spec.config.insert("fsync".into(), "false".into());
    Arc::new(PluginArtifactStore::new(rt.block_on(Plugin::load(runtime, spec)).unwrap()).unwrap())
}

/// Rounds of a whole listing: fewer for the larger store, each round being one listing.
fn rounds(n: usize) -> usize {
    if n >= 100_000 { 3 } else { 7 }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let ctx = Ctx::background();
    let mut report = Report::new("listing");
    let run_started = Instant::now();
    let mut per_page: Vec<(String, usize, f64, f64)> = Vec::new();

    let db = rt.block_on(BenchDatabase::create("listing"));
    let grant = SqlGrant { url: db.url.clone(), max_connections: 4, connect_timeout: Duration::from_secs(5) };
    let mut pg_spec = PluginSpec::new("postgres", "builtin:postgres", storehost::builtin("postgres").unwrap());
    pg_spec.grants.sql = Some(grant.clone());
    let pg = PluginArtifactStore::new(rt.block_on(Plugin::load(&runtime, pg_spec)).unwrap()).unwrap();
    // The first call creates the plugin's schema, which the native fill writes into.
    rt.block_on(pg.list(&ctx, "", None, 1)).unwrap();
    let pool = {
        let _runtime = rt.enter();
        grant.pool(storehost::runtime::PluginSettings::default().timeout).unwrap()
    };

    for n in [10_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let fs = fs_plugin(&rt, &runtime, dir.path());
        let table = dir.path().join("artifacts");
        for layout in [Layout::Nested, Layout::Flat] {
            let started = Instant::now();
            rt.block_on(fill_plugin(fs.as_ref(), &ctx, layout, n));
            println!("  filled {n} keys ({}) through the fs plugin in {:.1} s", layout.name(), started.elapsed().as_secs_f64());
        }
        // The fill's dirty pages written back under the timings would be measured with them.
        let synced = Instant::now();
        let _ = std::process::Command::new("sync").status();
        println!("  synced the fill to disk in {:.1} s", synced.elapsed().as_secs_f64());
        // A directory changed within its settle time (100 ms where the file system keeps
        // nanoseconds, 3 s where it keeps seconds) is read again on every page (its modification
        // time may not show a later change yet): list settled ones.
        std::thread::sleep(Duration::from_millis(3100));

        let mut walk_ns = [0.0; 2];
        for (l, layout) in [Layout::Nested, Layout::Flat].into_iter().enumerate() {
            let top = table.join(layout.prefix().trim_end_matches('/'));
            let (keys, pages) = rt.block_on(list_all(fs.as_ref(), &ctx, layout.prefix()));
            let mut names = Vec::new();
            native_walk(&top, "", &mut names);
            assert_eq!((keys, names.len()), (n, n), "every key listed once");

            let (ours, anchor) = compare(
                rounds(n),
                |k| {
                    time_async(&rt, k, || async {
                        black_box(list_all(fs.as_ref(), &ctx, layout.prefix()).await);
                    })
                },
                |k| {
                    time_sync(k, || {
                        let mut names = Vec::new();
                        native_walk(&top, "", &mut names);
                        black_box(names);
                    })
                },
            );
            walk_ns[l] = anchor;
            let case = format!("fs list all {n} keys, pages of {PAGE} ({})", layout.name());
            report.add(&case, "fs plugin", "native sorted walk", ours, anchor);
            per_page.push((format!("fs ({})", layout.name()), n, ours / pages as f64, anchor / pages as f64));

            // The same listing against a walk that also reads each key's metadata, as the
            // plugin must to return it (both native, so not interleaved with the listing again).
            let (heads, _) = compare(
                rounds(n),
                |k| {
                    time_sync(k, || {
                        native_walk_and_heads(&top);
                    })
                },
                |k| {
                    time_sync(k, || {
                        let mut names = Vec::new();
                        native_walk(&top, "", &mut names);
                        black_box(names);
                    })
                },
            );
            report.add(&case, "fs plugin", "native sorted walk + 4 KiB head of each file", ours, heads);
        }

        // A page deep in the store costs what the first one does: each against the native walk's
        // cost per page of keys.
        let walk_per_page = |walk: f64| walk / (n as f64 / f64::from(PAGE));
        for (l, layout) in [Layout::Nested, Layout::Flat].into_iter().enumerate() {
            let deep = layout.key(n - 2 * PAGE as usize);
            for (what, cursor) in [("the first page", None), ("the page after key n-2000", Some(deep.as_str()))] {
                let mut times: Vec<f64> = (0..7)
                    .map(|_| {
                        let started = Instant::now();
                        black_box(rt.block_on(fs.list(&ctx, layout.prefix(), cursor, PAGE)).unwrap());
                        started.elapsed().as_nanos() as f64
                    })
                    .collect();
                times.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let case = format!("fs one page of {n} keys ({}): {what}", layout.name());
                report.add(&case, "fs plugin", "native sorted walk, per page of keys", times[times.len() / 2], walk_per_page(walk_ns[l]));
            }
        }

        // The worst case: a write to the flat directory, then a page within the settle time, in
        // which it is read and sorted whole again.
        if n == 100_000 {
            let middle = Layout::Flat.key(n / 2);
            let mut changed: Vec<f64> = (0..5)
                .map(|_| {
                    rt.block_on(fs.put(&ctx, "flat/zz-change", Bytes::from_static(b"x"), None)).unwrap();
                    let started = Instant::now();
                    black_box(rt.block_on(fs.list(&ctx, "flat/", Some(&middle), PAGE)).unwrap());
                    started.elapsed().as_nanos() as f64
                })
                .collect();
            changed.sort_by(|a, b| a.partial_cmp(b).unwrap());
            rt.block_on(fs.delete(&ctx, "flat/zz-change")).unwrap();
            // What the plugin does then, natively: one sorted walk of the directory.
            report.add(
                &format!("fs one page of {n} keys (flat), directory just changed"),
                "fs plugin, page after a write",
                "native sorted walk of the directory",
                changed[changed.len() / 2],
                walk_ns[1],
            );
        }

        // PostgreSQL: the nested layout's keys.
        let started = Instant::now();
        rt.block_on(fill_postgres(&pool, n));
        println!("  filled {n} keys into postgres natively in {:.1} s", started.elapsed().as_secs_f64());
        let (keys, pages) = rt.block_on(list_all(&pg, &ctx, "bench/"));
        assert_eq!(keys, n, "every key listed once");
        let (ours, anchor) = compare(
            rounds(n),
            |k| {
                time_async(&rt, k, || async {
                    black_box(list_all(&pg, &ctx, "bench/").await);
                })
            },
            |k| {
                time_async(&rt, k, || async {
                    black_box(native_pg_list_all(&pool, "bench/").await);
                })
            },
        );
        report.add(&format!("postgres list all {n} keys, pages of {PAGE}"), "postgres plugin", "sqlx native, same query and pages", ours, anchor);
        report.add(
            &format!("postgres list all {n} keys, pages of {PAGE}"),
            "postgres plugin",
            "native sorted walk (nested fs tree)",
            ours,
            walk_ns[0],
        );
        per_page.push(("postgres".into(), n, ours / pages as f64, anchor / pages as f64));

        drop(fs);
        drop(dir);
    }

    for (what, n, ours, anchor) in per_page {
        report.add(&format!("{what} per page at {n} keys"), "plugin, total / pages", "anchor, total / pages", ours, anchor);
    }

    drop(pool);
    drop(pg);
    rt.block_on(db.drop_database());
    println!("  whole run: {:.0} s", run_started.elapsed().as_secs_f64());
    report.finish();
}
