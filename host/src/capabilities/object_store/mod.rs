//! `storehost:host/object-store`: objects in the bucket a plugin's manifest grants, through one
//! aws-sdk-s3 client per plugin that the host owns (the plugin names keys, never a bucket, and
//! never sees the credentials).
//!
//! The host does the work that is cheap natively and dear in wasm: it hashes every body it puts
//! (SHA-256, sent as S3's checksum so the store verifies and keeps it), and it reads the metadata
//! of a listing's objects with concurrent HEADs. Every operation is bounded by the grant's
//! `timeout` (retries included) and by the plugin call's deadline; a store that cannot be
//! reached, or answers too late, is `unavailable`.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ChecksumMode;
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use serde::Deserialize;
use wasmtime::component::{Linker, Resource};

use super::{Capability, Failure, PluginIdentity, Scoped, ScopedData};
use crate::base::{chain, units};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package storehost:object-store-capability; world object-store { import storehost:host/object-store@0.1.2; }",
        path: "../wit/deps/host",
        imports: { default: async | trappable },
        trappable_error_type: { "storehost:host/object-store.object-error" => crate::capabilities::object_store::ObjectFailure },
        with: {
            "storehost:host/object-store.object-reader": crate::capabilities::object_store::ObjectReader,
            "storehost:host/object-store.object-upload": crate::capabilities::object_store::ObjectUpload,
        },
    });
}

mod stream;
mod traced;

use bindings::storehost::host::object_store::{
    self as wit, Host, HostObjectReader, HostObjectUpload, KeyPage, Object, ObjectError, ObjectMeta, ObjectPage, Uploaded,
};
pub use stream::{MIN_PART, ObjectReader, ObjectUpload, PART};

/// A host function's failure: an [`ObjectError`] for the plugin, or a trap.
pub type ObjectFailure = Failure<ObjectError>;

/// S3's longest key, in bytes.
pub const MAX_KEY: usize = storehost_plugin_rules::MAX_KEY;
/// Most objects in one listing (S3's `max-keys` ceiling).
pub const MAX_PAGE: u32 = 1000;
/// Longest lifetime of a presigned URL (SigV4's limit: seven days).
pub const MAX_PRESIGN_SECS: u32 = 7 * 24 * 3600;
/// HEADs in flight at once while a listing reads its objects' metadata.
const LIST_HEADS_IN_FLIGHT: usize = 16;
/// Connecting never waits longer than this, so that retries still fit in the timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The manifest's `object_store` grant: one bucket and how to reach it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreGrant {
    pub bucket: String,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); `None`: AWS's for the region.
    pub endpoint: Option<String>,
    /// `None`: the AWS environment's (`AWS_REGION`, the profile, instance metadata).
    pub region: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need.
    #[serde(default)]
    pub path_style: bool,
    /// An access key, with `secret_access_key`; neither: the standard AWS credential chain
    /// (environment, profile, web identity, container and instance metadata).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Bound of one operation, retries included. Connecting is bounded by the smaller of this
    /// and 3 s.
    #[serde(default = "ObjectStoreGrant::default_timeout", deserialize_with = "units::duration")]
    pub timeout: Duration,
    /// Retries of a failed attempt (throttling, 5xx, connection failures), with backoff.
    #[serde(default = "ObjectStoreGrant::default_max_retries")]
    pub max_retries: u32,
}

impl fmt::Debug for ObjectStoreGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreGrant")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// The `object-store` capability: one aws-sdk-s3 client per granted plugin.
pub struct ObjectStore;

impl Capability for ObjectStore {
    const INTERFACE: &'static str = "storehost:host/object-store";
    type Grant = ObjectStoreGrant;
    type State = Bucket;

    async fn open(grant: &ObjectStoreGrant, _: &PluginIdentity<'_>) -> anyhow::Result<Bucket> {
        grant.connect().await
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> Scoped<'_, Self>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, ScopedData<Self>>(linker, get)
    }
}

impl ObjectStoreGrant {
    /// Default timeout of one operation.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default retries of a failed attempt (three attempts in all, the SDK's standard).
    pub const DEFAULT_MAX_RETRIES: u32 = 2;

    fn default_timeout() -> Duration {
        Self::DEFAULT_TIMEOUT
    }

    fn default_max_retries() -> u32 {
        Self::DEFAULT_MAX_RETRIES
    }

    /// A grant of `bucket` on AWS, with the environment's region and credentials.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            endpoint: None,
            region: None,
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            timeout: Self::DEFAULT_TIMEOUT,
            max_retries: Self::DEFAULT_MAX_RETRIES,
        }
    }

    /// What is wrong with the grant, as `(field, problem)` (no field: the grant as a whole);
    /// checked before any client is built.
    pub fn problem(&self) -> Option<(Option<&'static str>, String)> {
        if self.bucket.is_empty() {
            return Some((Some("bucket"), "must not be empty".into()));
        }
        if let Some(endpoint) = &self.endpoint {
            let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                return Some((Some("endpoint"), format!("{endpoint:?} is not an http:// or https:// URL")));
            }
        }
        if self.timeout.is_zero() {
            return Some((Some("timeout"), "must be more than 0".into()));
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Some((None, "access_key_id and secret_access_key go together (or leave both out for the AWS environment's credentials)".into()));
        }
        None
    }

    /// The S3 client this grant gives: the one the capability uses. Builds no connection; with
    /// no region in the grant, reads the AWS environment's.
    ///
    /// # Errors
    /// A grant with a [`problem`](Self::problem), or no region anywhere.
    pub async fn client(&self) -> anyhow::Result<aws_sdk_s3::Client> {
        if let Some((field, problem)) = self.problem() {
            anyhow::bail!("{}{problem}", field.map(|f| format!("{f}: ")).unwrap_or_default());
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder().connect_timeout(self.timeout.min(MAX_CONNECT_TIMEOUT)).operation_timeout(self.timeout).build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(self.max_retries.saturating_add(1)));
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "storehost manifest"));
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            anyhow::bail!("region: none in the manifest, and none in the AWS environment (AWS_REGION or a profile)");
        }
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(self.path_style)
            .interceptor(traced::Traced { bucket: self.bucket.clone() })
            .build();
        Ok(aws_sdk_s3::Client::from_conf(config))
    }

    /// The capability's handle on the bucket.
    pub(crate) async fn connect(&self) -> anyhow::Result<Bucket> {
        Ok(Bucket { client: self.client().await?, bucket: self.bucket.clone() })
    }
}

/// One plugin's bucket: the client and the bucket's name.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// Refuses keys S3 cannot hold and keys whose path a proxy or server could resolve out of the
/// bucket (the contract's object-key rule).
fn check_key(key: &str) -> Result<(), ObjectError> {
    storehost_plugin_rules::validate_object_key(key).map_err(ObjectError::Other)
}

fn millis(t: Option<&DateTime>) -> u64 {
    t.and_then(|t| t.to_millis().ok()).map_or(0, |ms| ms.max(0) as u64)
}

/// S3's checksum (base64 of the digest) as lower-case hex; `None` for a composite checksum
/// of a multipart upload, which is not the body's SHA-256.
fn sha256_hex(checksum: Option<&str>) -> Option<String> {
    let digest = aws_smithy_types::base64::decode(checksum?).ok()?;
    (digest.len() == 32).then(|| hex::encode(digest))
}

fn sorted(metadata: Option<&HashMap<String, String>>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = metadata.into_iter().flatten().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    pairs.sort();
    pairs
}

impl Bucket {
    fn failed<E>(&self, operation: &str, key: &str, e: SdkError<E, HttpResponse>) -> ObjectError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let what = format!("{operation} {key:?} in bucket {}", self.bucket);
        match &e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                ObjectError::Unavailable(format!("{what}: the store did not answer: {}", chain(&e)))
            }
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let err = service.err();
                let code = err.code().unwrap_or("no error code");
                let message = format!("{what}: HTTP {status} {code}{}", err.message().map(|m| format!(": {m}")).unwrap_or_default());
                match status {
                    403 => ObjectError::Denied(message),
                    503 => ObjectError::Unavailable(message),
                    _ => ObjectError::Other(message),
                }
            }
            _ => ObjectError::Other(format!("{what}: {}", chain(&e))),
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        check_key(key)?;
        let sent = self.client.get_object().bucket(&self.bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
        let out = match sent {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => return Ok(None),
            Err(e) => return Err(self.failed("get", key, e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::Unavailable(format!("get {key:?} in bucket {}: reading the body: {}", self.bucket, chain(&e))))?;
        let body = Vec::from(body.into_bytes());
        let sha256 = sha256_hex(out.checksum_sha256.as_deref()).unwrap_or_else(|| hex::encode(Sha256::digest(&body)));
        let meta = ObjectMeta {
            key: key.to_string(),
            size: body.len() as u64,
            content_type: out.content_type,
            last_modified: millis(out.last_modified.as_ref()),
            sha256: Some(sha256),
            metadata: sorted(out.metadata.as_ref()),
        };
        Ok(Some(Object { meta, body }))
    }

    pub(crate) async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectError> {
        check_key(key)?;
        let sent = self.client.head_object().bucket(&self.bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
        let out = match sent {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => return Ok(None),
            Err(e) => return Err(self.failed("head", key, e)),
        };
        Ok(Some(ObjectMeta {
            key: key.to_string(),
            size: out.content_length.unwrap_or(0).max(0) as u64,
            sha256: sha256_hex(out.checksum_sha256.as_deref()),
            last_modified: millis(out.last_modified.as_ref()),
            metadata: sorted(out.metadata.as_ref()),
            content_type: out.content_type,
        }))
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: Option<String>,
        metadata: Vec<(String, String)>,
    ) -> Result<String, ObjectError> {
        check_key(key)?;
        let digest = Sha256::digest(&body);
        let metadata: HashMap<String, String> = metadata.into_iter().collect();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(content_type)
            .set_metadata((!metadata.is_empty()).then_some(metadata))
            .checksum_sha256(aws_smithy_types::base64::encode(digest))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.failed("put", key, e))?;
        Ok(hex::encode(digest))
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        check_key(key)?;
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(|e| self.failed("delete", key, e))?;
        Ok(())
    }

    pub(crate) async fn list_keys(&self, prefix: &str, cursor: Option<String>, limit: u32) -> Result<KeyPage, ObjectError> {
        if prefix.len() > MAX_KEY || cursor.as_ref().is_some_and(|c| c.len() > MAX_KEY) {
            return Err(ObjectError::Other(format!("a prefix or cursor over {MAX_KEY} bytes is longer than any key")));
        }
        let limit = if limit == 0 { MAX_PAGE } else { limit.min(MAX_PAGE) };
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(cursor)
            .max_keys(limit as i32)
            .send()
            .await
            .map_err(|e| self.failed("list", prefix, e))?;
        let keys: Vec<String> = out.contents.unwrap_or_default().into_iter().filter_map(|o| o.key).collect();
        // Pages are cut by key (`start-after`), which any S3 server honours the same way: the
        // last key listed is where the next page starts.
        let next_cursor = if out.is_truncated == Some(true) { keys.last().cloned() } else { None };
        Ok(KeyPage { keys, next_cursor })
    }

    /// The common prefixes one `/` below `prefix`, after `cursor` (the last common prefix of the
    /// page before, whose keys are all passed over: S3 takes it as `start-after` with its final
    /// `/` bumped to the next byte, `0`, since a continuation token is the store's own).
    pub(crate) async fn list_dirs(&self, prefix: &str, cursor: Option<String>, limit: u32) -> Result<KeyPage, ObjectError> {
        if prefix.len() > MAX_KEY {
            return Err(ObjectError::Other(format!("a prefix over {MAX_KEY} bytes is longer than any key")));
        }
        let limit = if limit == 0 { MAX_PAGE } else { limit.min(MAX_PAGE) };
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_start_after(cursor.map(|c| match c.strip_suffix('/') {
                Some(dir) => format!("{dir}0"),
                None => c,
            }))
            .max_keys(limit as i32)
            .send()
            .await
            .map_err(|e| self.failed("list-dirs", prefix, e))?;
        let keys: Vec<String> = out.common_prefixes.unwrap_or_default().into_iter().filter_map(|p| p.prefix).collect();
        // Keys directly under `prefix` count toward the page too: the next page starts after
        // the greater of the last prefix and the last such key.
        let last_key = out.contents.unwrap_or_default().into_iter().filter_map(|o| o.key).next_back();
        let next_cursor = if out.is_truncated == Some(true) { keys.last().cloned().into_iter().chain(last_key).max() } else { None };
        Ok(KeyPage { keys, next_cursor })
    }

    pub(crate) async fn list(&self, prefix: &str, cursor: Option<String>, limit: u32) -> Result<ObjectPage, ObjectError> {
        let KeyPage { keys, next_cursor } = self.list_keys(prefix, cursor, limit).await?;
        let heads = futures_util::stream::iter(keys).map(|key| async move { self.head(&key).await }).buffered(LIST_HEADS_IN_FLIGHT);
        let items: Vec<Option<ObjectMeta>> = heads.try_collect().await?;
        Ok(ObjectPage { items: items.into_iter().flatten().collect(), next_cursor })
    }

    pub(crate) async fn presign_get(&self, key: &str, expires_in_secs: u32) -> Result<String, ObjectError> {
        check_key(key)?;
        if expires_in_secs == 0 || expires_in_secs > MAX_PRESIGN_SECS {
            return Err(ObjectError::Other(format!("a presigned URL lives 1 to {MAX_PRESIGN_SECS} seconds, not {expires_in_secs}")));
        }
        let config = PresigningConfig::expires_in(Duration::from_secs(expires_in_secs.into()))
            .map_err(|e| ObjectError::Other(format!("presign-get {key:?}: {}", chain(&e))))?;
        let request =
            self.client.get_object().bucket(&self.bucket).key(key).presigned(config).await.map_err(|e| self.failed("presign-get", key, e))?;
        Ok(request.uri().to_string())
    }
}

/// Runs `f` under the call's deadline; past it, `unavailable`.
async fn within<T>(deadline: Option<Instant>, f: impl Future<Output = Result<T, ObjectError>>) -> Result<T, ObjectError> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), f)
            .await
            .unwrap_or_else(|_| Err(ObjectError::Unavailable("object store operation cut at the call's deadline".into()))),
        None => f.await,
    }
}

impl Host for Scoped<'_, ObjectStore> {
    async fn get(&mut self, key: String) -> Result<Option<Object>, ObjectFailure> {
        Ok(within(self.deadline, self.state.get(&key)).await?)
    }

    async fn head(&mut self, key: String) -> Result<Option<ObjectMeta>, ObjectFailure> {
        Ok(within(self.deadline, self.state.head(&key)).await?)
    }

    async fn put(
        &mut self,
        key: String,
        body: Vec<u8>,
        content_type: Option<String>,
        metadata: Vec<(String, String)>,
    ) -> Result<String, ObjectFailure> {
        Ok(within(self.deadline, self.state.put(&key, body, content_type, metadata)).await?)
    }

    async fn delete(&mut self, key: String) -> Result<(), ObjectFailure> {
        Ok(within(self.deadline, self.state.delete(&key)).await?)
    }

    async fn list(&mut self, prefix: String, cursor: Option<String>, limit: u32) -> Result<ObjectPage, ObjectFailure> {
        Ok(within(self.deadline, self.state.list(&prefix, cursor, limit)).await?)
    }

    async fn list_keys(&mut self, prefix: String, cursor: Option<String>, limit: u32) -> Result<KeyPage, ObjectFailure> {
        Ok(within(self.deadline, self.state.list_keys(&prefix, cursor, limit)).await?)
    }

    async fn presign_get(&mut self, key: String, expires_in_secs: u32) -> Result<String, ObjectFailure> {
        Ok(within(self.deadline, self.state.presign_get(&key, expires_in_secs)).await?)
    }

    async fn list_dirs(&mut self, prefix: String, cursor: Option<String>, limit: u32) -> Result<KeyPage, ObjectFailure> {
        Ok(within(self.deadline, self.state.list_dirs(&prefix, cursor, limit)).await?)
    }

    async fn get_range(&mut self, key: String, offset: u64, len: Option<u64>) -> Result<Option<(ObjectMeta, Resource<ObjectReader>)>, ObjectFailure> {
        let Some((meta, reader)) = within(self.deadline, self.state.get_range(&key, offset, len)).await? else { return Ok(None) };
        Ok(Some((meta, self.table.push(reader).map_err(ObjectFailure::trap)?)))
    }

    fn convert_object_error(&mut self, err: ObjectFailure) -> wasmtime::Result<ObjectError> {
        err.into_guest()
    }
}

impl HostObjectReader for Scoped<'_, ObjectStore> {
    async fn read(&mut self, reader: Resource<ObjectReader>, max_len: u32) -> Result<Option<Vec<u8>>, ObjectFailure> {
        let deadline = self.deadline;
        let reader = self.table.get_mut(&reader).map_err(ObjectFailure::trap)?;
        Ok(within(deadline, reader.read(max_len)).await?)
    }

    async fn drop(&mut self, reader: Resource<ObjectReader>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

impl HostObjectUpload for Scoped<'_, ObjectStore> {
    async fn begin(
        &mut self,
        key: String,
        content_type: Option<String>,
        metadata: Vec<(String, String)>,
    ) -> Result<Resource<ObjectUpload>, ObjectFailure> {
        let upload = ObjectUpload::begin(self.state, &key, content_type, metadata)?;
        self.table.push(upload).map_err(ObjectFailure::trap)
    }

    async fn write(&mut self, upload: Resource<ObjectUpload>, chunk: Vec<u8>) -> Result<(), ObjectFailure> {
        let deadline = self.deadline;
        let upload = self.table.get_mut(&upload).map_err(ObjectFailure::trap)?;
        Ok(within(deadline, upload.write(&chunk)).await?)
    }

    async fn finish(&mut self, upload: Resource<ObjectUpload>) -> Result<Uploaded, ObjectFailure> {
        let deadline = self.deadline;
        let upload = self.table.get_mut(&upload).map_err(ObjectFailure::trap)?;
        Ok(within(deadline, upload.finish()).await?)
    }

    /// An unfinished upload is aborted before the guest goes on.
    async fn drop(&mut self, upload: Resource<ObjectUpload>) -> wasmtime::Result<()> {
        let mut upload = self.table.delete(upload)?;
        upload.abort().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_s3_or_with_dot_segments_are_refused() {
        for key in ["", "../other-bucket/secret", "a/./b", "a/..", ".", &"k".repeat(MAX_KEY + 1)] {
            assert!(matches!(check_key(key), Err(ObjectError::Other(_))), "{key:?} was accepted");
        }
        for key in ["a", "a//b", ".hidden/x", "a/..b", "with space/ü+%", &"k".repeat(MAX_KEY)] {
            assert!(check_key(key).is_ok(), "{key:?} was refused");
        }
    }

    #[test]
    fn checksums_are_hex_digests_and_composites_are_none() {
        let digest = Sha256::digest(b"hello");
        let b64 = aws_smithy_types::base64::encode(digest);
        assert_eq!(sha256_hex(Some(&b64)).as_deref(), Some(hex::encode(digest).as_str()));
        assert_eq!(sha256_hex(Some(&format!("{b64}-3"))), None);
        assert_eq!(sha256_hex(None), None);
    }

    #[test]
    fn grant_problems_name_the_field() {
        let mut grant = ObjectStoreGrant::new("");
        assert_eq!(grant.problem().unwrap().0, Some("bucket"));
        grant.bucket = "b".into();
        grant.endpoint = Some("127.0.0.1:9000".into());
        assert_eq!(grant.problem().unwrap().0, Some("endpoint"));
        grant.endpoint = Some("http://127.0.0.1:9000".into());
        assert!(grant.problem().is_none());
        grant.timeout = Duration::ZERO;
        assert_eq!(grant.problem().unwrap().0, Some("timeout"));
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let grant = ObjectStoreGrant { access_key_id: Some("AKID".into()), secret_access_key: Some("s3cr3t".into()), ..ObjectStoreGrant::new("b") };
        let shown = format!("{grant:?}");
        assert!(shown.contains("AKID") && !shown.contains("s3cr3t"), "{shown}");
    }
}
