//! The S3 origin: gateway artifacts and runner artifacts as objects in the bucket the manifest
//! grants (`object_store = { bucket = ... }`), through the host's `storehost:host/object-store`.
//! The host owns the client and the credentials; this plugin owns the key layout.
//!
//! Config (`[plugins.NAME].config`):
//! - `prefix` (default empty): the artifact `KEY` is the object `{prefix}KEY`;
//! - `runs_prefix` (default `runs/`): the file `NAME` of run `RUN` is the object
//!   `{runs_prefix}RUN/NAME`.
//!
//! An artifact's body is the object's body and its content type the object's; its SHA-256 is the
//! checksum the store keeps (the host computes it on put and the store verifies it), and its
//! creation time is the user metadata `created-at`. A body written in chunks large enough to be
//! uploaded in parts has no whole-body checksum in S3: its SHA-256 is kept in a small object of
//! its own, `{sums_prefix}<SHA-256 of the key>` (`sums_prefix` default `.storehost-sha256/`;
//! artifact keys under it are refused, and listings pass over it). `get-url` is a presigned GET
//! URL. S3 keys are at most 1024 bytes, so the longest artifact key is 1024 bytes less the prefix
//! (`describe()` says so).

wit_bindgen::generate!({
    world: "object-store-blob-origin",
    path: "../../wit",
    generate_all,
});

use std::cell::RefCell;
use std::sync::OnceLock;

use exports::storehost::origin::artifacts::{
    Artifact, ArtifactMeta, ArtifactPage, BodyReader, BodyWriter, Guest as Artifacts, GuestBodyReader, GuestBodyWriter,
};
use exports::storehost::origin::plugin::{Guest as Plugin, PluginInfo};
use exports::storehost::origin::runner_artifacts::{FileReader, FileWriter, Guest as RunnerArtifacts, GuestFileReader, GuestFileWriter, RunPage};
use sha2::{Digest, Sha256};
use storehost::host::object_store::{self, ObjectError, ObjectMeta, ObjectReader, ObjectUpload};
use storehost::origin::types::StoreError;
use storehost_plugin_rules::{page_limit, validate_artifact_key, validate_run};

type Result<T> = std::result::Result<T, StoreError>;

/// S3's longest key, in bytes.
const MAX_OBJECT_KEY: usize = 1024;
/// User metadata: when the artifact was written, unix milliseconds.
const CREATED_AT: &str = "created-at";
/// User metadata: set when the artifact was put without a content type (S3 would report its
/// default type for it).
const UNTYPED: &str = "content-type-unset";
/// Keys per listing call when all of a run's names are wanted.
const LIST_BATCH: u32 = 1000;
/// Longest lifetime of a presigned URL; a longer one is left to the host to sign.
const MAX_URL_SECS: u32 = 7 * 24 * 3600;

/// Where each domain's objects live in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Layout {
    prefix: String,
    runs_prefix: String,
    sums_prefix: String,
}

impl Default for Layout {
    fn default() -> Self {
        Self { prefix: String::new(), runs_prefix: "runs/".into(), sums_prefix: ".storehost-sha256/".into() }
    }
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

fn layout() -> &'static Layout {
    LAYOUT.get_or_init(Layout::default)
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

fn store_error(e: ObjectError) -> StoreError {
    match e {
        ObjectError::Unavailable(m) => StoreError::Unavailable(m),
        ObjectError::Denied(m) => StoreError::Internal(format!("the object store refused: {m}")),
        ObjectError::Other(m) => StoreError::Internal(m),
    }
}

fn check_prefix(name: &str, value: &str) -> Result<()> {
    if value.starts_with('/') || value.contains('\0') {
        return Err(invalid(format!("config {name} = {value:?}: must not start with '/' or contain NUL")));
    }
    if value.split('/').any(|s| s == "." || s == "..") {
        return Err(invalid(format!("config {name} = {value:?}: must not have a '.' or '..' segment")));
    }
    if value.len() >= MAX_OBJECT_KEY {
        return Err(invalid(format!("config {name} = {value:?}: leaves no room for a key within S3's {MAX_OBJECT_KEY} bytes")));
    }
    Ok(())
}

/// `{prefix}{rest}`, or `invalid` when S3 cannot hold it.
fn object_key(prefix: &str, rest: &str) -> Result<String> {
    let key = format!("{prefix}{rest}");
    if key.len() > MAX_OBJECT_KEY {
        return Err(invalid(format!(
            "{rest:?} is {} bytes; under the prefix {prefix:?} its object key would be {} bytes, over S3's {MAX_OBJECT_KEY}",
            rest.len(),
            key.len()
        )));
    }
    Ok(key)
}

fn artifact_object(key: &str) -> Result<String> {
    validate_artifact_key(key).map_err(invalid)?;
    let object = object_key(&layout().prefix, key)?;
    if object.starts_with(&layout().sums_prefix) {
        return Err(invalid(format!("{key:?} is under {:?}, where the plugin keeps checksums", layout().sums_prefix)));
    }
    Ok(object)
}

/// Where the SHA-256 of the artifact at `key` is kept when the store has none of its own.
fn sum_object(key: &str) -> String {
    format!("{}{}", layout().sums_prefix, hex::encode(Sha256::digest(key.as_bytes())))
}

/// The SHA-256 kept for the artifact at `key`, if it was kept for a body of `size` bytes.
fn kept_sum(key: &str, size: u64) -> Result<Option<String>> {
    let Some(kept) = object_store::get(&sum_object(key)).map_err(store_error)? else { return Ok(None) };
    let text = String::from_utf8_lossy(&kept.body);
    let (kept_size, sha256) = text.trim().split_once(' ').unwrap_or(("", ""));
    Ok((kept_size.parse() == Ok(size) && sha256.len() == 64).then(|| sha256.to_string()))
}

fn run_base(run: &str) -> Result<String> {
    validate_run(run).map_err(invalid)?;
    Ok(format!("{}{run}/", layout().runs_prefix))
}

fn run_object(run: &str, name: &str) -> Result<String> {
    let base = run_base(run)?;
    validate_artifact_key(name).map_err(invalid)?;
    object_key(&base, name)
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound(format!("artifact {key:?}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn metadata<'a>(meta: &'a ObjectMeta, name: &str) -> Option<&'a str> {
    meta.metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The artifact an object holds. `sha256` is the store's checksum, which `get` always has, or
/// else the one kept beside it (a body uploaded in parts); `head` and `list` read the object
/// for an object stored with neither (written by another tool).
fn artifact_meta(key: String, meta: &ObjectMeta) -> Result<ArtifactMeta> {
    let sha256 = match &meta.sha256 {
        Some(sha256) => sha256.clone(),
        None => match kept_sum(&key, meta.size)? {
            Some(sha256) => sha256,
            None => {
                let object = object_store::get(&meta.key).map_err(store_error)?.ok_or_else(|| not_found(&key))?;
                object.meta.sha256.ok_or_else(|| StoreError::Internal(format!("the host returned {key:?} without its SHA-256")))?
            }
        },
    };
    let content_type = if metadata(meta, UNTYPED).is_some() { None } else { meta.content_type.clone() };
    let created_at = metadata(meta, CREATED_AT).and_then(|v| v.parse().ok()).unwrap_or(meta.last_modified);
    Ok(ArtifactMeta { key, size: meta.size, content_type, sha256, created_at })
}

struct S3;

/// A range of an object, read by the host from one GET: the version that existed at open.
struct S3Reader(ObjectReader);

impl GuestBodyReader for S3Reader {
    fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>> {
        self.0.read(max_len).map_err(store_error)
    }
}

impl GuestFileReader for S3Reader {
    fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>> {
        self.0.read(max_len).map_err(store_error)
    }
}

/// A new object uploaded by the host as it is written; dropped unfinished, the host aborts it.
struct S3Writer {
    key: String,
    upload: RefCell<Option<ObjectUpload>>,
    content_type: Option<String>,
    created_at: u64,
}

impl S3Writer {
    fn begin(key: String, object: &str, content_type: Option<String>) -> Result<S3Writer> {
        let created_at = now_ms();
        let upload = ObjectUpload::begin(object, content_type.as_deref(), &user_metadata(created_at, content_type.is_none())).map_err(store_error)?;
        Ok(S3Writer { key, upload: RefCell::new(Some(upload)), content_type, created_at })
    }

    fn write(&self, chunk: &[u8]) -> Result<()> {
        let upload = self.upload.borrow();
        upload.as_ref().ok_or_else(|| invalid("the writer was already finished"))?.write(chunk).map_err(store_error)
    }

    fn finish(&self) -> Result<object_store::Uploaded> {
        let upload = self.upload.borrow_mut().take().ok_or_else(|| invalid("the writer was already finished"))?;
        ObjectUpload::finish(&upload).map_err(store_error)
    }
}

impl GuestBodyWriter for S3Writer {
    fn write(&self, chunk: Vec<u8>) -> Result<()> {
        S3Writer::write(self, &chunk)
    }

    /// The host hashed the upload too (`uploaded.sha256`), from the same bytes.
    fn finish(&self, _sha256: String) -> Result<ArtifactMeta> {
        let uploaded = S3Writer::finish(self)?;
        let sum = sum_object(&self.key);
        if uploaded.checksum_stored {
            object_store::delete(&sum).map_err(store_error)?;
        } else {
            let kept = format!("{} {}", uploaded.size, uploaded.sha256);
            object_store::put(&sum, kept.as_bytes(), Some("text/plain"), &[]).map_err(store_error)?;
        }
        Ok(ArtifactMeta {
            key: self.key.clone(),
            size: uploaded.size,
            content_type: self.content_type.clone(),
            sha256: uploaded.sha256,
            created_at: self.created_at,
        })
    }
}

impl GuestFileWriter for S3Writer {
    fn write(&self, chunk: Vec<u8>) -> Result<()> {
        S3Writer::write(self, &chunk)
    }

    fn finish(&self) -> Result<u64> {
        Ok(S3Writer::finish(self)?.size)
    }
}

/// The user metadata of an artifact's object.
fn user_metadata(created_at: u64, untyped: bool) -> Vec<(String, String)> {
    let mut user = vec![(CREATED_AT.to_string(), created_at.to_string())];
    if untyped {
        user.push((UNTYPED.to_string(), "true".into()));
    }
    user
}

impl Plugin for S3 {
    fn describe() -> PluginInfo {
        let max_key_bytes = (MAX_OBJECT_KEY - layout().prefix.len()) as u32;
        PluginInfo { name: "s3".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: false, max_key_bytes: Some(max_key_bytes) }
    }

    fn init(config: Vec<(String, String)>) -> Result<()> {
        let mut layout = Layout::default();
        for (key, value) in config {
            match key.as_str() {
                "prefix" => layout.prefix = value,
                "runs_prefix" => layout.runs_prefix = value,
                "sums_prefix" => layout.sums_prefix = value,
                other => return Err(invalid(format!("unknown config key {other:?} (the s3 plugin knows prefix, runs_prefix and sums_prefix)"))),
            }
        }
        check_prefix("prefix", &layout.prefix)?;
        check_prefix("runs_prefix", &layout.runs_prefix)?;
        check_prefix("sums_prefix", &layout.sums_prefix)?;
        if layout.sums_prefix.is_empty() {
            return Err(invalid("config sums_prefix must not be empty"));
        }
        let stored = LAYOUT.get_or_init(|| layout.clone());
        if *stored != layout {
            return Err(invalid("init was called again with another configuration"));
        }
        Ok(())
    }
}

impl Artifacts for S3 {
    type BodyReader = S3Reader;
    type BodyWriter = S3Writer;

    fn put(key: String, body: Vec<u8>, content_type: Option<String>) -> Result<ArtifactMeta> {
        let object = artifact_object(&key)?;
        let created_at = now_ms();
        let user = user_metadata(created_at, content_type.is_none());
        let size = body.len() as u64;
        let sha256 = object_store::put(&object, &body, content_type.as_deref(), &user).map_err(store_error)?;
        Ok(ArtifactMeta { key, size, content_type, sha256, created_at })
    }

    fn open_read(key: String, offset: u64, len: Option<u64>) -> Result<(ArtifactMeta, BodyReader)> {
        let object = artifact_object(&key)?;
        let (meta, reader) = object_store::get_range(&object, offset, len).map_err(store_error)?.ok_or_else(|| not_found(&key))?;
        Ok((artifact_meta(key, &meta)?, BodyReader::new(S3Reader(reader))))
    }

    fn open_write(key: String, content_type: Option<String>, _size_hint: Option<u64>) -> Result<BodyWriter> {
        let object = artifact_object(&key)?;
        Ok(BodyWriter::new(S3Writer::begin(key, &object, content_type)?))
    }

    fn get(key: String) -> Result<Artifact> {
        let object = artifact_object(&key)?;
        let found = object_store::get(&object).map_err(store_error)?.ok_or_else(|| not_found(&key))?;
        let meta = artifact_meta(key, &found.meta)?;
        Ok(Artifact { meta, body: found.body })
    }

    fn head(key: String) -> Result<ArtifactMeta> {
        let object = artifact_object(&key)?;
        let meta = object_store::head(&object).map_err(store_error)?.ok_or_else(|| not_found(&key))?;
        artifact_meta(key, &meta)
    }

    fn list(prefix: String, cursor: Option<String>, limit: u32) -> Result<ArtifactPage> {
        let base = &layout().prefix;
        if let Some(c) = &cursor
            && base.len() + c.len() > MAX_OBJECT_KEY
        {
            return Err(invalid(format!("a cursor of {} bytes is longer than any key", c.len())));
        }
        let within = format!("{base}{prefix}");
        if within.len() > MAX_OBJECT_KEY {
            // No object key is that long.
            return Ok(ArtifactPage { items: Vec::new(), next_cursor: None });
        }
        let page = object_store::list(&within, cursor.map(|c| format!("{base}{c}")).as_deref(), page_limit(limit) as u32).map_err(store_error)?;
        let mut items = Vec::with_capacity(page.items.len());
        for meta in &page.items {
            // Objects other tools wrote under keys an artifact cannot have are not artifacts.
            let Some(key) = meta.key.strip_prefix(base.as_str()) else { continue };
            if validate_artifact_key(key).is_err() || meta.key.starts_with(&layout().sums_prefix) {
                continue;
            }
            items.push(artifact_meta(key.to_string(), meta)?);
        }
        let next_cursor = page.next_cursor.and_then(|c| c.strip_prefix(base.as_str()).map(String::from));
        Ok(ArtifactPage { items, next_cursor })
    }

    fn get_url(key: String, expires_in_secs: u32) -> Result<Option<String>> {
        let object = artifact_object(&key)?;
        object_store::head(&object).map_err(store_error)?.ok_or_else(|| not_found(&key))?;
        if expires_in_secs == 0 || expires_in_secs > MAX_URL_SECS {
            return Ok(None);
        }
        object_store::presign_get(&object, expires_in_secs).map(Some).map_err(store_error)
    }

    fn delete(key: String) -> Result<()> {
        let object = artifact_object(&key)?;
        object_store::delete(&object).map_err(store_error)?;
        object_store::delete(&sum_object(&key)).map_err(store_error)
    }
}

impl RunnerArtifacts for S3 {
    type FileReader = S3Reader;
    type FileWriter = S3Writer;

    fn list_runs(cursor: Option<String>, limit: u32) -> Result<RunPage> {
        let base = &layout().runs_prefix;
        let cursor = cursor.map(|c| format!("{base}{c}/"));
        let page = object_store::list_dirs(base, cursor.as_deref(), page_limit(limit) as u32).map_err(store_error)?;
        let runs: Vec<String> = page.keys.iter().filter_map(|k| k.strip_prefix(base.as_str())?.strip_suffix('/')).map(String::from).collect();
        let next_cursor = page.next_cursor.and_then(|c| Some(c.strip_prefix(base.as_str())?.trim_end_matches('/').to_string()));
        Ok(RunPage { runs, next_cursor })
    }

    fn open_read(run: String, name: String, offset: u64, len: Option<u64>) -> Result<(u64, FileReader)> {
        let object = run_object(&run, &name)?;
        let Some((meta, reader)) = object_store::get_range(&object, offset, len).map_err(store_error)? else {
            return Err(StoreError::NotFound(format!("runner artifact {name:?} of run {run:?}")));
        };
        Ok((meta.size, FileReader::new(S3Reader(reader))))
    }

    fn open_write(run: String, name: String, _size_hint: Option<u64>) -> Result<FileWriter> {
        let object = run_object(&run, &name)?;
        let created_at = now_ms();
        let upload = ObjectUpload::begin(&object, None, &[]).map_err(store_error)?;
        Ok(FileWriter::new(S3Writer { key: name, upload: RefCell::new(Some(upload)), content_type: None, created_at }))
    }

    fn read(run: String, name: String) -> Result<Vec<u8>> {
        let object = run_object(&run, &name)?;
        match object_store::get(&object).map_err(store_error)? {
            Some(found) => Ok(found.body),
            None => Err(StoreError::NotFound(format!("runner artifact {name:?} of run {run:?}"))),
        }
    }

    fn write(run: String, name: String, data: Vec<u8>) -> Result<()> {
        let object = run_object(&run, &name)?;
        object_store::put(&object, &data, None, &[]).map(drop).map_err(store_error)
    }

    fn remove(run: String, name: String) -> Result<()> {
        let object = run_object(&run, &name)?;
        object_store::delete(&object).map_err(store_error)
    }

    fn list(run: String, prefix: String) -> Result<Vec<String>> {
        let base = run_base(&run)?;
        let within = format!("{base}{prefix}");
        let mut names = Vec::new();
        if within.len() > MAX_OBJECT_KEY {
            // No object key is that long.
            return Ok(names);
        }
        let mut cursor: Option<String> = None;
        loop {
            let page = object_store::list_keys(&within, cursor.as_deref(), LIST_BATCH).map_err(store_error)?;
            names.extend(page.keys.iter().filter_map(|k| k.strip_prefix(base.as_str())).map(String::from));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(names),
            }
        }
    }
}

export!(S3);
