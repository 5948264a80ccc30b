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
//! creation time is the user metadata `created-at`. `get-url` is a presigned GET URL. S3 keys are
//! at most 1024 bytes, so a key whose object key would be longer under the prefix is `invalid`.

wit_bindgen::generate!({
    world: "object-store-blob-origin",
    path: "../../wit",
    generate_all,
});

use std::sync::OnceLock;

use exports::storehost::origin::artifacts::{Artifact, ArtifactMeta, ArtifactPage, Guest as Artifacts};
use exports::storehost::origin::plugin::{Guest as Plugin, PluginInfo};
use exports::storehost::origin::runner_artifacts::Guest as RunnerArtifacts;
use storehost::host::object_store::{self, ObjectError, ObjectMeta};
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
}

impl Default for Layout {
    fn default() -> Self {
        Self { prefix: String::new(), runs_prefix: "runs/".into() }
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
    object_key(&layout().prefix, key)
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

/// The artifact an object holds. `sha256` is the store's checksum, which `get` always has;
/// `head` and `list` read the object for an object stored without one.
fn artifact_meta(key: String, meta: &ObjectMeta) -> Result<ArtifactMeta> {
    let sha256 = match &meta.sha256 {
        Some(sha256) => sha256.clone(),
        None => {
            let object = object_store::get(&meta.key).map_err(store_error)?.ok_or_else(|| not_found(&key))?;
            object.meta.sha256.ok_or_else(|| StoreError::Internal(format!("the host returned {key:?} without its SHA-256")))?
        }
    };
    let content_type = if metadata(meta, UNTYPED).is_some() { None } else { meta.content_type.clone() };
    let created_at = metadata(meta, CREATED_AT).and_then(|v| v.parse().ok()).unwrap_or(meta.last_modified);
    Ok(ArtifactMeta { key, size: meta.size, content_type, sha256, created_at })
}

struct S3;

impl Plugin for S3 {
    fn describe() -> PluginInfo {
        PluginInfo { name: "s3".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: false }
    }

    fn init(config: Vec<(String, String)>) -> Result<()> {
        let mut layout = Layout::default();
        for (key, value) in config {
            match key.as_str() {
                "prefix" => layout.prefix = value,
                "runs_prefix" => layout.runs_prefix = value,
                other => return Err(invalid(format!("unknown config key {other:?} (the s3 plugin knows prefix and runs_prefix)"))),
            }
        }
        check_prefix("prefix", &layout.prefix)?;
        check_prefix("runs_prefix", &layout.runs_prefix)?;
        let stored = LAYOUT.get_or_init(|| layout.clone());
        if *stored != layout {
            return Err(invalid("init was called again with another configuration"));
        }
        Ok(())
    }
}

impl Artifacts for S3 {
    fn put(key: String, body: Vec<u8>, content_type: Option<String>) -> Result<ArtifactMeta> {
        let object = artifact_object(&key)?;
        let created_at = now_ms();
        let mut user = vec![(CREATED_AT.to_string(), created_at.to_string())];
        if content_type.is_none() {
            user.push((UNTYPED.to_string(), "true".into()));
        }
        let size = body.len() as u64;
        let sha256 = object_store::put(&object, &body, content_type.as_deref(), &user).map_err(store_error)?;
        Ok(ArtifactMeta { key, size, content_type, sha256, created_at })
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
            if validate_artifact_key(key).is_err() {
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
        object_store::delete(&object).map_err(store_error)
    }
}

impl RunnerArtifacts for S3 {
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
