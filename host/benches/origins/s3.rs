//! The s3 plugin vs aws-sdk-s3 called from native Rust doing the same artifact work, on the same
//! S3 server: s3s over s3s-fs in a temporary directory, in process on loopback, started here.
//! Both sides use the client the grant builds (same timeouts, retries and checksums).
//!
//! The same work: a put hashes the body (SHA-256, sent as S3's checksum), and stores the content
//! type and the creation time; a get reads the body, its checksum (validated by the SDK) and the
//! metadata into an artifact.

use std::collections::HashMap;
use std::hint::black_box;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use storehost::domain::body::collect;
use storehost::domain::{ArtifactMeta, ArtifactStore, ByteRange, Ctx};
use storehost::origin::PluginArtifactStore;
use storehost::runtime::{Plugin, PluginSpec, Runtime};

use crate::support::{Report, compare, start_s3, time_async};

const BUCKET: &str = "bench";

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A put as the plugin and the capability do it, natively.
async fn native_put(client: &aws_sdk_s3::Client, key: &str, body: Bytes, content_type: &str) -> ArtifactMeta {
    let digest = Sha256::digest(&body);
    let created_at = now_ms();
    let size = body.len() as u64;
    client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .content_type(content_type)
        .set_metadata(Some(HashMap::from([("created-at".to_string(), created_at.to_string())])))
        .checksum_sha256(aws_smithy_types::base64::encode(digest))
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
    ArtifactMeta { key: key.into(), size, content_type: Some(content_type.into()), sha256: hex::encode(digest), created_at }
}

/// A get as the plugin and the capability do it, natively.
async fn native_get(client: &aws_sdk_s3::Client, key: &str) -> (ArtifactMeta, Bytes) {
    let out = client.get_object().bucket(BUCKET).key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
    let created_at = out.metadata().and_then(|m| m.get("created-at")).and_then(|v| v.parse().ok()).unwrap_or(0);
    let sha256 = out.checksum_sha256().and_then(|c| aws_smithy_types::base64::decode(c).ok()).map(hex::encode).unwrap();
    let content_type = out.content_type().map(String::from);
    let body = out.body.collect().await.unwrap().into_bytes();
    (ArtifactMeta { key: key.into(), size: body.len() as u64, content_type, sha256, created_at }, body)
}

pub fn run(rt: &tokio::runtime::Runtime, runtime: &Runtime, report: &mut Report) {
    let root = tempfile::tempdir().unwrap();
    let grant = rt.block_on(start_s3(root.path(), BUCKET));
    let mut spec = PluginSpec::new("s3", "builtin:s3", storehost::builtin("s3").unwrap());
    spec.grants.object_store = Some(grant.clone());
    let plugin = rt.block_on(Plugin::load(runtime, spec)).unwrap();
    let artifacts = PluginArtifactStore::new(plugin).unwrap();
    let client = rt.block_on(grant.client()).unwrap();
    let ctx = Ctx::background();

    for (label, size) in [("4 KiB", 4 << 10), ("1 MiB", 1 << 20)] {
        let body = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
        let (plugin_key, native_key) = (format!("bench/plugin-{label}"), format!("bench/native-{label}"));
        let (ours, anchor) = compare(
            9,
            |n| {
                time_async(rt, n, || async {
                    black_box(artifacts.put(&ctx, &plugin_key, body.clone(), Some("application/octet-stream".into())).await.unwrap());
                })
            },
            |n| {
                time_async(rt, n, || async {
                    black_box(native_put(&client, &native_key, body.clone(), "application/octet-stream").await);
                })
            },
        );
        report.add(&format!("s3 artifact put {label}"), "s3 plugin", "aws-sdk-s3 native", ours, anchor);

        let (ours, anchor) = compare(
            9,
            |n| {
                time_async(rt, n, || async {
                    black_box(artifacts.get(&ctx, &plugin_key).await.unwrap());
                })
            },
            |n| {
                time_async(rt, n, || async {
                    black_box(native_get(&client, &native_key).await);
                })
            },
        );
        report.add(&format!("s3 artifact get {label}"), "s3 plugin", "aws-sdk-s3 native", ours, anchor);
    }

    // A streamed read (what the HTTP API serves a GET with): the body of the version that existed
    // at open, whole, against one native GET of it.
    for (label, size) in [("4 KiB", 4 << 10), ("8 MiB", 8 << 20)] {
        let body = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
        let (plugin_key, native_key) = (format!("bench/read-plugin-{label}"), format!("bench/read-native-{label}"));
        rt.block_on(artifacts.put(&ctx, &plugin_key, body.clone(), Some("application/octet-stream".into()))).unwrap();
        rt.block_on(native_put(&client, &native_key, body, "application/octet-stream"));
        let (ours, anchor) = compare(
            9,
            |n| {
                time_async(rt, n, || async {
                    let reader = artifacts.open_read(&ctx, &plugin_key, ByteRange::ALL).await.unwrap();
                    black_box(collect(reader.body).await.unwrap());
                })
            },
            |n| {
                time_async(rt, n, || async {
                    black_box(native_get(&client, &native_key).await);
                })
            },
        );
        report.add(&format!("s3 artifact open-read {label}"), "s3 plugin", "aws-sdk-s3 native", ours, anchor);
    }
}
