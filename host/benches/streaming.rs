//! `cargo bench -p storehost --bench streaming`: 1 GiB artifacts streamed through the fs and
//! s3 plugins (the store calls the HTTP layer makes: `open-write` fed 1 MiB pieces, `open-read`
//! drained) against native Rust doing the same work on the same storage, interleaved rounds,
//! medians. The speedup column is the plugin's throughput over the native one.
//!
//! The same work: a write hashes the body (SHA-256, which the host computes for every streamed
//! artifact) and makes it visible at once at the end (fs: a temporary file renamed into place,
//! without fsync on either side; s3: a multipart upload of 8 MiB parts, four in flight, and the
//! digest's sidecar object); a read returns every byte (fs: one descriptor read in 1 MiB pieces;
//! s3: one streamed GET that also answers the metadata).

mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::domain::{ArtifactStore, ByteRange, Ctx};
use storehost::origin::PluginArtifactStore;
use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
use support::{Report, compare, time_async};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

const SIZE: u64 = 1 << 30;
const PIECE: usize = 1 << 20;
const PART: u64 = 8 << 20;
const ROUNDS: usize = 3;
const BUCKET: &str = "bench";
/// Where the 1 MiB range read starts: the middle of the body.
const RANGE: ByteRange = ByteRange { offset: SIZE / 2 + 12345, len: Some(PIECE as u64) };

fn piece() -> Bytes {
    (0..PIECE).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

async fn plugin_put(store: &Arc<PluginArtifactStore>, key: &str, piece: &Bytes) {
    let ctx = Ctx::background();
    let mut sink = store.clone().open_write(&ctx, key, None, Some(SIZE)).await.unwrap();
    for _ in 0..SIZE / PIECE as u64 {
        sink.write(&ctx, piece.clone()).await.unwrap();
    }
    black_box(sink.finish(&ctx).await.unwrap());
}

async fn plugin_get(store: &PluginArtifactStore, key: &str, range: ByteRange) -> u64 {
    let mut reader = store.open_read(&Ctx::background(), key, range).await.unwrap();
    let mut n = 0;
    while let Some(chunk) = reader.body.next().await {
        n += black_box(chunk.unwrap()).len() as u64;
    }
    n
}

async fn native_fs_put(dir: &Path, piece: &Bytes) {
    let (temp, path) = (dir.join("native.tmp"), dir.join("native.bin"));
    let mut file = tokio::fs::File::create(&temp).await.unwrap();
    let mut hash = Sha256::new();
    for _ in 0..SIZE / PIECE as u64 {
        hash.update(piece);
        file.write_all(piece).await.unwrap();
    }
    file.flush().await.unwrap();
    drop(file);
    tokio::fs::rename(&temp, &path).await.unwrap();
    black_box(hash.finalize());
}

async fn native_fs_get(path: &Path, range: ByteRange) -> u64 {
    let mut file = tokio::fs::File::open(path).await.unwrap();
    let size = file.metadata().await.unwrap().len();
    let range = range.within(size);
    file.seek(std::io::SeekFrom::Start(range.start)).await.unwrap();
    let mut buf = vec![0u8; PIECE];
    let mut left = range.end - range.start;
    while left > 0 {
        let want = (left as usize).min(PIECE);
        let n = file.read(&mut buf[..want]).await.unwrap();
        assert!(n > 0);
        black_box(&buf[..n]);
        left -= n as u64;
    }
    range.end - range.start
}

fn fs(rt: &tokio::runtime::Runtime, runtime: &Runtime, report: &mut Report) {
    let root = tempfile::tempdir().unwrap();
    let (plugin_dir, native_dir): (PathBuf, PathBuf) = (root.path().join("plugin"), root.path().join("native"));
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::create_dir_all(&native_dir).unwrap();
    let mut spec = PluginSpec::new("fs", "builtin:fs", storehost::builtin("fs").unwrap());
    spec.dirs = vec![DirGrant { guest: "/data".into(), host: plugin_dir, mode: DirMode::Rw }];
    spec.config.insert("fsync".into(), "false".into());
    let store = Arc::new(PluginArtifactStore::new(rt.block_on(Plugin::load(runtime, spec)).unwrap()).unwrap());
    let piece = piece();

    let (ours, anchor) = compare(
        ROUNDS,
        |n| time_async(rt, n, || plugin_put(&store, "bench/1gib", &piece)),
        |n| time_async(rt, n, || native_fs_put(&native_dir, &piece)),
    );
    report.add("fs 1 GiB put (streamed)", "fs plugin", "tokio::fs write + sha256", ours, anchor);
    let native = native_dir.join("native.bin");
    let (ours, anchor) = compare(
        ROUNDS,
        |n| time_async(rt, n, || async { assert_eq!(plugin_get(&store, "bench/1gib", ByteRange::ALL).await, SIZE) }),
        |n| time_async(rt, n, || async { assert_eq!(native_fs_get(&native, ByteRange::ALL).await, SIZE) }),
    );
    report.add("fs 1 GiB get (streamed)", "fs plugin", "tokio::fs read", ours, anchor);
    let (ours, anchor) = compare(
        9,
        |n| {
            time_async(rt, n, || async {
                black_box(plugin_get(&store, "bench/1gib", RANGE).await);
            })
        },
        |n| {
            time_async(rt, n, || async {
                black_box(native_fs_get(&native, RANGE).await);
            })
        },
    );
    report.add("fs 1 MiB range of 1 GiB", "fs plugin", "tokio::fs seek + read", ours, anchor);
}

async fn native_s3_put(client: &aws_sdk_s3::Client, key: &str, piece: &Bytes) {
    let mut hash = Sha256::new();
    let parts: Vec<Bytes> = (0..SIZE / PART)
        .map(|_| {
            let mut part = Vec::with_capacity(PART as usize);
            for _ in 0..PART / PIECE as u64 {
                hash.update(piece);
                part.extend_from_slice(piece);
            }
            part.into()
        })
        .collect();
    support::multipart_upload(client, BUCKET, key, parts).await;
    let digest = hex::encode(hash.finalize());
    client.put_object().bucket(BUCKET).key(format!("{key}.sha256")).body(ByteStream::from(digest.into_bytes())).send().await.unwrap();
}

async fn native_s3_get(client: &aws_sdk_s3::Client, key: &str, range: ByteRange) -> u64 {
    let head = client.head_object().bucket(BUCKET).key(key).send().await.unwrap();
    let range = range.within(head.content_length().unwrap() as u64);
    let mut at = range.start;
    while at < range.end {
        let end = (at + PART).min(range.end);
        let out = client.get_object().bucket(BUCKET).key(key).range(format!("bytes={at}-{}", end - 1)).send().await.unwrap();
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            at += black_box(chunk.unwrap()).len() as u64;
        }
    }
    range.end - range.start
}

fn s3(rt: &tokio::runtime::Runtime, runtime: &Runtime, report: &mut Report) {
    let root = tempfile::tempdir().unwrap();
    let grant = rt.block_on(support::start_s3(root.path(), BUCKET));
    let mut spec = PluginSpec::new("s3", "builtin:s3", storehost::builtin("s3").unwrap());
    spec.grants.object_store = Some(grant.clone());
    spec.settings.timeout = std::time::Duration::from_secs(120);
    let store = Arc::new(PluginArtifactStore::new(rt.block_on(Plugin::load(runtime, spec)).unwrap()).unwrap());
    let client = rt.block_on(grant.client()).unwrap();
    let piece = piece();

    let (ours, anchor) = compare(
        ROUNDS,
        |n| time_async(rt, n, || plugin_put(&store, "bench/1gib", &piece)),
        |n| time_async(rt, n, || native_s3_put(&client, "native/1gib", &piece)),
    );
    report.add("s3 1 GiB put (multipart)", "s3 plugin", "aws-sdk-s3 multipart", ours, anchor);
    let (ours, anchor) = compare(
        ROUNDS,
        |n| time_async(rt, n, || async { assert_eq!(plugin_get(&store, "bench/1gib", ByteRange::ALL).await, SIZE) }),
        |n| time_async(rt, n, || async { assert_eq!(native_s3_get(&client, "native/1gib", ByteRange::ALL).await, SIZE) }),
    );
    report.add("s3 1 GiB get (ranged GETs)", "s3 plugin", "aws-sdk-s3 ranged GETs", ours, anchor);
    let (ours, anchor) = compare(
        9,
        |n| {
            time_async(rt, n, || async {
                black_box(plugin_get(&store, "bench/1gib", RANGE).await);
            })
        },
        |n| {
            time_async(rt, n, || async {
                black_box(native_s3_get(&client, "native/1gib", RANGE).await);
            })
        },
    );
    report.add("s3 1 MiB range of 1 GiB", "s3 plugin", "aws-sdk-s3 HEAD + ranged GET", ours, anchor);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut report = Report::new("streaming");
    fs(&rt, &runtime, &mut report);
    s3(&rt, &runtime, &mut report);
    report.finish();
}
