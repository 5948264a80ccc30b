//! A real S3-protocol server on loopback for the tests, in process: `s3s` (the protocol:
//! routing, SigV4 and presigned-URL checks with expiry, XML, checksums) over `s3s-fs` (objects,
//! metadata, checksums and ETags in a temporary directory), one per test, with its own bucket
//! and access key.
//!
//! s3s-fs stores an object at the path of its key, with its metadata in a file named after the
//! whole key; that cannot hold what S3 can (a key longer than ~170 bytes, or both `a` and `a/z`).
//! So objects are stored under the SHA-256 of their key, and [`KeyedFs`] keeps the bucket's keys
//! in order to answer ListObjectsV2; it also checks a read's `If-Match`, which s3s-fs ignores,
//! and keeps a read from seeing half a write; everything else is s3s-fs's own handling. s3s-fs
//! writes an object into a new file renamed into place, so a GET under way goes on serving the
//! version it opened, as S3 does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use parking_lot::Mutex;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CommonPrefix, CompleteMultipartUploadInput, CompleteMultipartUploadOutput,
    CreateBucketInput, CreateBucketOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteObjectInput, DeleteObjectOutput,
    ETagCondition, GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListMultipartUploadsInput,
    ListMultipartUploadsOutput, ListObjectsV2Input, ListObjectsV2Output, MultipartUpload, Object, PutObjectInput, PutObjectOutput, UploadPartInput,
    UploadPartOutput,
};
use s3s::{S3, S3Request, S3Response, S3Result};
use sha2::{Digest, Sha256};
use storehost::capabilities::object_store::ObjectStoreGrant;
use storehost::runtime::PluginSpec;
use tokio::net::TcpListener;

/// The bucket every test server has.
pub const BUCKET: &str = "storehost-test";
pub const REGION: &str = "us-east-1";

/// s3s-fs with objects stored under the hash of their key (see the module docs).
struct KeyedFs {
    fs: s3s_fs::FileSystem,
    /// `(bucket, key)` of every object.
    keys: Mutex<BTreeSet<(String, String)>>,
    /// Multipart uploads begun and neither completed nor aborted: upload id → `(bucket, key)`.
    /// s3s-fs does not list them; this answers ListMultipartUploads.
    uploads: Mutex<BTreeMap<String, (String, String)>>,
    /// s3s-fs renames a new body into place and writes its checksum and ETag after, and reads
    /// them after opening the body: held shared by a read until its answer is made (the body
    /// then streams from the file opened), and exclusively by a write, so that a read answers
    /// one version's body with that version's metadata, as S3 does.
    versions: tokio::sync::RwLock<()>,
    /// GetObject requests per key (as the client named it), for tests that count origin reads.
    gets: std::sync::Arc<Mutex<BTreeMap<String, u64>>>,
}

fn stored(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl KeyedFs {
    /// A read's `If-Match`, which s3s-fs does not check: 412 unless the object stored at `key`
    /// has that ETag (under [`KeyedFs::versions`], as the read itself).
    async fn check_match<T: Clone>(&self, req: &S3Request<T>, bucket: &str, key: &str, condition: Option<&ETagCondition>) -> S3Result<()> {
        let Some(condition) = condition else { return Ok(()) };
        let head = HeadObjectInput { bucket: bucket.to_string(), key: key.to_string(), ..Default::default() };
        let found = self.fs.head_object(req.clone().map_input(|_| head)).await?.output.e_tag;
        match (condition, found) {
            (ETagCondition::Any, Some(_)) => Ok(()),
            (ETagCondition::ETag(want), Some(have)) if want.value() == have.value() => Ok(()),
            _ => Err(s3s::s3_error!(PreconditionFailed)),
        }
    }
}

#[async_trait::async_trait]
impl S3 for KeyedFs {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let entry = (req.input.bucket.clone(), req.input.key.clone());
        let _writing = self.versions.write().await;
        let out = self.fs.put_object(req.map_input(|mut i| {
            i.key = stored(&i.key);
            i
        }));
        let out = out.await?;
        self.keys.lock().insert(entry);
        Ok(out)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        *self.gets.lock().entry(req.input.key.clone()).or_default() += 1;
        let req = req.map_input(|mut i| {
            i.key = stored(&i.key);
            i
        });
        let _reading = self.versions.read().await;
        self.check_match(&req, &req.input.bucket, &req.input.key, req.input.if_match.as_ref()).await?;
        self.fs.get_object(req).await
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let req = req.map_input(|mut i| {
            i.key = stored(&i.key);
            i
        });
        let _reading = self.versions.read().await;
        self.check_match(&req, &req.input.bucket, &req.input.key, req.input.if_match.as_ref()).await?;
        self.fs.head_object(req).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let entry = (req.input.bucket.clone(), req.input.key.clone());
        let _writing = self.versions.write().await;
        let out = self
            .fs
            .delete_object(req.map_input(|mut i| {
                i.key = stored(&i.key);
                i
            }))
            .await?;
        self.keys.lock().remove(&entry);
        Ok(out)
    }

    async fn create_multipart_upload(&self, req: S3Request<CreateMultipartUploadInput>) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let entry = (req.input.bucket.clone(), req.input.key.clone());
        let mut out = self
            .fs
            .create_multipart_upload(req.map_input(|mut i| {
                i.key = stored(&i.key);
                i
            }))
            .await?;
        if let Some(id) = &out.output.upload_id {
            self.uploads.lock().insert(id.clone(), entry.clone());
        }
        out.output.key = Some(entry.1);
        Ok(out)
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs
            .upload_part(req.map_input(|mut i| {
                i.key = stored(&i.key);
                i
            }))
            .await
    }

    async fn complete_multipart_upload(&self, req: S3Request<CompleteMultipartUploadInput>) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let entry = (req.input.bucket.clone(), req.input.key.clone());
        let id = req.input.upload_id.clone();
        let _writing = self.versions.write().await;
        let out = self
            .fs
            .complete_multipart_upload(req.map_input(|mut i| {
                i.key = stored(&i.key);
                i
            }))
            .await?;
        self.uploads.lock().remove(&id);
        self.keys.lock().insert(entry);
        Ok(out)
    }

    async fn abort_multipart_upload(&self, req: S3Request<AbortMultipartUploadInput>) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        let out = self
            .fs
            .abort_multipart_upload(req.map_input(|mut i| {
                i.key = stored(&i.key);
                i
            }))
            .await?;
        self.uploads.lock().remove(&id);
        Ok(out)
    }

    async fn list_multipart_uploads(&self, req: S3Request<ListMultipartUploadsInput>) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let bucket = req.input.bucket.clone();
        let uploads: Vec<MultipartUpload> = self
            .uploads
            .lock()
            .iter()
            .filter(|(_, (b, _))| *b == bucket)
            .map(|(id, (_, key))| MultipartUpload { key: Some(key.clone()), upload_id: Some(id.clone()), ..Default::default() })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(bucket),
            uploads: Some(uploads),
            is_truncated: Some(false),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input.clone();
        self.fs.head_bucket(req.clone().map_input(|i| HeadBucketInput { bucket: i.bucket, ..Default::default() })).await?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let after = [input.start_after.clone(), input.continuation_token.clone()].into_iter().flatten().max();
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
        // The page and its objects' heads are of one state of the bucket, as S3's are: a key
        // deleted meanwhile is not listed without its object.
        let _reading = self.versions.read().await;
        // With a delimiter, keys with it past the prefix roll up into one common prefix each;
        // both count toward `max_keys`, and a common prefix given as the token is resumed after.
        let (page, prefixes, truncated) = {
            let keys = self.keys.lock();
            let matching = keys
                .range((input.bucket.clone(), prefix.clone())..)
                .take_while(|(bucket, key)| *bucket == input.bucket && key.starts_with(&prefix))
                .map(|(_, key)| key)
                .filter(|key| after.as_ref().is_none_or(|a| key.as_str() > a.as_str() && !(a.ends_with('/') && key.starts_with(a.as_str()))));
            let (mut page, mut prefixes, mut truncated) = (Vec::new(), Vec::<String>::new(), false);
            for key in matching {
                let rolled =
                    delimiter.as_ref().and_then(|d| key[prefix.len()..].find(d.as_str()).map(|i| key[..prefix.len() + i + d.len()].to_string()));
                if let Some(common) = &rolled
                    && prefixes.last() == Some(common)
                {
                    continue;
                }
                if page.len() + prefixes.len() == max_keys {
                    truncated = true;
                    break;
                }
                match rolled {
                    Some(common) => prefixes.push(common),
                    None => page.push(key.clone()),
                }
            }
            (page, prefixes, truncated)
        };
        let last = page.last().into_iter().chain(prefixes.last()).max().cloned();
        let mut contents = Vec::with_capacity(page.len());
        for key in &page {
            let head = HeadObjectInput { bucket: input.bucket.clone(), key: stored(key), ..Default::default() };
            let head = self.fs.head_object(req.clone().map_input(|_| head)).await?.output;
            contents.push(Object {
                key: Some(key.clone()),
                size: head.content_length,
                last_modified: head.last_modified,
                e_tag: head.e_tag,
                ..Default::default()
            });
        }
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            start_after: input.start_after,
            continuation_token: input.continuation_token,
            max_keys: Some(max_keys as i32),
            key_count: Some((contents.len() + prefixes.len()) as i32),
            is_truncated: Some(truncated),
            next_continuation_token: if truncated { last } else { None },
            contents: Some(contents),
            common_prefixes: Some(prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
            delimiter: input.delimiter,
            ..Default::default()
        }))
    }
}

/// A running server. Dropping it stops the server and removes its directory.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
    gets: std::sync::Arc<Mutex<BTreeMap<String, u64>>>,
}

impl S3Server {
    /// Starts a server on 127.0.0.1 (a free port) with the bucket [`BUCKET`], on the current
    /// tokio runtime.
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the directory");
        let (access_key, secret_key) = ("storehost-test-key".to_string(), format!("secret-{}", std::process::id()));
        let gets = std::sync::Arc::new(Mutex::new(BTreeMap::new()));
        let mut builder = s3s::service::S3ServiceBuilder::new(KeyedFs {
            fs,
            keys: Mutex::new(BTreeSet::new()),
            uploads: Mutex::new(BTreeMap::new()),
            versions: tokio::sync::RwLock::new(()),
            gets: gets.clone(),
        });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(access_key.clone(), secret_key.clone()));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, service));
        S3Server { endpoint: format!("http://{addr}"), access_key, secret_key, root, task, gets }
    }

    /// A grant of [`BUCKET`] with this server's key, path-style.
    pub fn grant(&self) -> ObjectStoreGrant {
        self.grant_of(BUCKET)
    }

    /// A grant of another bucket of this server.
    pub fn grant_of(&self, bucket: &str) -> ObjectStoreGrant {
        ObjectStoreGrant {
            endpoint: Some(self.endpoint.clone()),
            region: Some(REGION.into()),
            path_style: true,
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            timeout: std::time::Duration::from_secs(10),
            ..ObjectStoreGrant::new(bucket)
        }
    }

    /// The built-in s3 plugin, granted [`BUCKET`].
    pub fn spec(&self) -> PluginSpec {
        let mut spec = crate::builtin("s3");
        spec.grants.object_store = Some(self.grant());
        spec
    }

    /// The GetObject requests the server has answered (or refused), per key.
    pub fn gets(&self) -> BTreeMap<String, u64> {
        self.gets.lock().clone()
    }

    /// Creates another bucket.
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir(self.root.path().join(name)).unwrap();
    }

    /// An SDK client on [`BUCKET`]'s server, for checks from outside the plugin.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        self.grant().client().await.expect("an S3 client")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; the connections' tasks end with it.
async fn serve(listener: TcpListener, service: s3s::service::S3Service) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // As S3 servers do: without it, a response written in two parts waits for the client's
        // delayed ACK (tens of milliseconds).
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        connections.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
        while connections.try_join_next().is_some() {}
    }
}
