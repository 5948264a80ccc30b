//! `cargo bench -p storehost --bench copy`: `storehost copy`'s engine (the one the command runs)
//! against native tools doing the same transfer, interleaved rounds, medians, each round into a
//! fresh destination.
//!
//! - 10,000 artifacts of 4 KiB, fs plugin → fs plugin, `--jobs 8`, against `cp -r` of the
//!   source plugin's data directory.
//! - 1 GiB of artifacts (eight of 128 MiB), fs plugin → s3 plugin, `--jobs 4`, against
//!   aws-sdk-s3 uploads from native code of the same bodies read from files: four at once, each
//!   a multipart upload of 8 MiB parts, four in flight, hashed (SHA-256) as they are read, as
//!   the host hashes every streamed artifact.
//!
//! The copy also does what the anchors do not: it compares every record with the destination
//! first (a HEAD on each side) and verifies it after (a HEAD).

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use storehost::base::Domain;
use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::capabilities::object_store::ObjectStoreGrant;
use storehost::copy::{self, CopyOptions, PluginSide, Quiet};
use storehost::domain::{ArtifactStore, Ctx};
use storehost::origin::PluginArtifactStore;
use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
use support::Report;
use tokio::io::AsyncReadExt;

const ROUNDS: usize = 3;
const SMALL: usize = 10_000;
const BIG: usize = 8;
const BIG_SIZE: usize = 128 << 20;
const PART: usize = 8 << 20;
const BUCKET: &str = "bench";

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_nanos() as f64
}

async fn fs_plugin(runtime: &Runtime, dir: &Path) -> Plugin {
    std::fs::create_dir_all(dir).unwrap();
    let mut spec = PluginSpec::new("fs", "builtin:fs", storehost::builtin("fs").unwrap());
    spec.dirs = vec![DirGrant { guest: "/data".into(), host: dir.to_path_buf(), mode: DirMode::Rw }];
    spec.config.insert("fsync".into(), "false".into());
    spec.settings.instances = 8;
    Plugin::load(runtime, spec).await.unwrap()
}

async fn run_copy(from: &Plugin, to: &Plugin, jobs: usize, records: usize) {
    let options = CopyOptions { domains: vec![Domain::Artifact], prefix: String::new(), dry_run: false, jobs };
    let summary = copy::copy(&PluginSide::new(from), &PluginSide::new(to), &options, &Quiet, &AtomicBool::new(false)).await.unwrap();
    assert_eq!((summary[0].copied as usize, summary[0].failed), (records, 0), "{:?}", summary[0].failures);
}

fn small(rt: &tokio::runtime::Runtime, runtime: &Runtime, report: &mut Report) {
    let root = tempfile::tempdir().unwrap();
    let src_dir = root.path().join("src");
    let src = rt.block_on(fs_plugin(runtime, &src_dir));
    let store = std::sync::Arc::new(PluginArtifactStore::new(src.clone()).unwrap());
    rt.block_on(async {
        futures_util::stream::iter(0..SMALL)
            .map(|i| {
                let store = store.clone();
                async move {
                    let body: Bytes = (0..4096).map(|b| (b as u8).wrapping_add(i as u8)).collect::<Vec<u8>>().into();
                    store.put(&Ctx::background(), &format!("small/{i:05}"), body, None).await.unwrap();
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
    });
    let (mut ours, mut anchor) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let dest = rt.block_on(fs_plugin(runtime, &root.path().join(format!("copy-{round}"))));
        let started = Instant::now();
        rt.block_on(run_copy(&src, &dest, 8, SMALL));
        ours.push(started.elapsed());
        let target = root.path().join(format!("cp-{round}"));
        let started = Instant::now();
        let status = std::process::Command::new("cp").arg("-r").arg(&src_dir).arg(&target).status().unwrap();
        anchor.push(started.elapsed());
        assert!(status.success());
    }
    report.add("10,000 × 4 KiB artifacts fs → fs (--jobs 8)", "storehost copy", "cp -r", median(ours), median(anchor));
}

async fn s3_plugin(runtime: &Runtime, root: &Path) -> (Plugin, ObjectStoreGrant) {
    std::fs::create_dir_all(root).unwrap();
    let grant = support::start_s3(root, BUCKET).await;
    let mut spec = PluginSpec::new("s3", "builtin:s3", storehost::builtin("s3").unwrap());
    spec.grants.object_store = Some(grant.clone());
    spec.settings.timeout = Duration::from_secs(120);
    (Plugin::load(runtime, spec).await.unwrap(), grant)
}

/// One file uploaded as aws-sdk-s3 multipart, hashed as it is read.
async fn native_upload(client: &aws_sdk_s3::Client, path: PathBuf, key: String) {
    let mut file = tokio::fs::File::open(&path).await.unwrap();
    let mut hash = Sha256::new();
    let mut parts = Vec::new();
    loop {
        let mut part = vec![0u8; PART];
        let mut filled = 0;
        while filled < PART {
            let n = file.read(&mut part[filled..]).await.unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        part.truncate(filled);
        hash.update(&part);
        parts.push(Bytes::from(part));
    }
    support::multipart_upload(client, BUCKET, &key, parts).await;
    std::hint::black_box(hash.finalize());
}

fn big(rt: &tokio::runtime::Runtime, runtime: &Runtime, report: &mut Report) {
    let root = tempfile::tempdir().unwrap();
    let src = rt.block_on(fs_plugin(runtime, &root.path().join("src")));
    let store = std::sync::Arc::new(PluginArtifactStore::new(src.clone()).unwrap());
    let native = root.path().join("native");
    std::fs::create_dir_all(&native).unwrap();
    let piece: Bytes = (0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    rt.block_on(async {
        let ctx = Ctx::background();
        for i in 0..BIG {
            let mut sink = store.clone().open_write(&ctx, &format!("big/{i}"), None, Some(BIG_SIZE as u64)).await.unwrap();
            let mut file = std::fs::File::create(native.join(format!("{i}"))).unwrap();
            for _ in 0..BIG_SIZE >> 20 {
                sink.write(&ctx, piece.clone()).await.unwrap();
                std::io::Write::write_all(&mut file, &piece).unwrap();
            }
            sink.finish(&ctx).await.unwrap();
        }
    });
    let (mut ours, mut anchor) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (dest, _) = rt.block_on(s3_plugin(runtime, &root.path().join(format!("s3-copy-{round}"))));
        let started = Instant::now();
        rt.block_on(run_copy(&src, &dest, 4, BIG));
        ours.push(started.elapsed());
        drop(dest);
        let (_, grant) = rt.block_on(s3_plugin(runtime, &root.path().join(format!("s3-native-{round}"))));
        let client = rt.block_on(grant.client()).unwrap();
        let started = Instant::now();
        rt.block_on(async {
            futures_util::stream::iter(0..BIG)
                .map(|i| native_upload(&client, native.join(format!("{i}")), format!("big/{i}")))
                .buffer_unordered(4)
                .collect::<Vec<_>>()
                .await
        });
        anchor.push(started.elapsed());
    }
    report.add("1 GiB (8 × 128 MiB) fs → s3 (--jobs 4)", "storehost copy", "aws-sdk-s3 multipart uploads", median(ours), median(anchor));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut report = Report::new("copy");
    small(&rt, &runtime, &mut report);
    big(&rt, &runtime, &mut report);
    report.finish();
}
