//! A minimal storehost origin: gateway artifacts kept in the instance's memory.
//!
//! It exports `storehost:origin/plugin` (every plugin does) and `storehost:origin/artifacts`,
//! so it picks the `artifact-origin` world. `describe()` says it is stateful, so the host runs
//! one instance and every call sees the same map. Replace the map with your backend.
//!
//! Bodies also stream (`open-read` and `open-write`, the 0.2.0 contract): a reader hands out a
//! stored body's range in chunks, and a writer gathers chunks and stores them at `finish`. A
//! writer dropped before `finish` stores nothing. A backend that can (a file, an object
//! store) should write the chunks as they come instead of gathering them.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

wit_bindgen::generate!({ world: "storehost:origin/artifact-origin", path: "../../wit", generate_all });

use exports::storehost::origin::artifacts::{
    Artifact, ArtifactMeta, ArtifactPage, BodyReader, BodyWriter, Guest as Artifacts, GuestBodyReader, GuestBodyWriter,
};
use exports::storehost::origin::plugin::{Guest as Plugin, PluginInfo};
use storehost::host::log::{Level, log};
use storehost::origin::types::StoreError;

thread_local! {
    static STORE: RefCell<BTreeMap<String, Artifact>> = RefCell::new(BTreeMap::new());
}

/// The key rules of the contract (see `wit/artifacts.wit`).
fn check(key: &str) -> Result<(), StoreError> {
    let bad = key.is_empty()
        || key.len() > 1024
        || key.contains('\0')
        || key.starts_with('/')
        || key.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad { Err(StoreError::Invalid(format!("bad key {key:?}"))) } else { Ok(()) }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

struct Origin;

impl Plugin for Origin {
    fn describe() -> PluginInfo {
        PluginInfo { name: "rust-origin".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: true, max_key_bytes: None }
    }

    fn init(config: Vec<(String, String)>) -> Result<(), StoreError> {
        log(Level::Info, &format!("rust-origin starting with {} config entries", config.len()));
        Ok(())
    }
}

/// A range of a stored body, read in chunks.
struct Reader {
    body: Vec<u8>,
    next: Cell<usize>,
    end: usize,
}

impl GuestBodyReader for Reader {
    fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let start = self.next.get();
        if start >= self.end || max_len == 0 {
            return Ok(None);
        }
        let end = self.end.min(start + max_len as usize);
        self.next.set(end);
        Ok(Some(self.body[start..end].to_vec()))
    }
}

/// A body being written: invisible until `finish`.
struct Writer {
    key: String,
    content_type: Option<String>,
    body: RefCell<Vec<u8>>,
}

/// Bodies this template keeps in memory at most.
const MAX_BODY: usize = 256 << 20;

impl GuestBodyWriter for Writer {
    fn write(&self, chunk: Vec<u8>) -> Result<(), StoreError> {
        let mut body = self.body.borrow_mut();
        if body.len() + chunk.len() > MAX_BODY {
            return Err(StoreError::Invalid(format!("a body over {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
        Ok(())
    }

    /// The host hands over the SHA-256 of what it wrote.
    fn finish(&self, sha256: String) -> Result<ArtifactMeta, StoreError> {
        let body = std::mem::take(&mut *self.body.borrow_mut());
        let meta =
            ArtifactMeta { key: self.key.clone(), size: body.len() as u64, content_type: self.content_type.clone(), sha256, created_at: now_ms() };
        STORE.with(|s| s.borrow_mut().insert(self.key.clone(), Artifact { meta: meta.clone(), body }));
        Ok(meta)
    }
}

impl Artifacts for Origin {
    type BodyReader = Reader;
    type BodyWriter = Writer;

    fn open_read(key: String, offset: u64, len: Option<u64>) -> Result<(ArtifactMeta, BodyReader), StoreError> {
        let Artifact { meta, body } = Self::get(key)?;
        let start = (offset as usize).min(body.len());
        let end = len.map_or(body.len(), |len| start.saturating_add(len as usize).min(body.len()));
        Ok((meta, BodyReader::new(Reader { body, next: Cell::new(start), end })))
    }

    fn open_write(key: String, content_type: Option<String>, _size_hint: Option<u64>) -> Result<BodyWriter, StoreError> {
        check(&key)?;
        Ok(BodyWriter::new(Writer { key, content_type, body: RefCell::new(Vec::new()) }))
    }

    fn put(key: String, body: Vec<u8>, content_type: Option<String>) -> Result<ArtifactMeta, StoreError> {
        check(&key)?;
        let meta = ArtifactMeta {
            key: key.clone(),
            size: body.len() as u64,
            content_type,
            sha256: Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect(),
            created_at: now_ms(),
        };
        STORE.with(|s| s.borrow_mut().insert(key, Artifact { meta: meta.clone(), body }));
        Ok(meta)
    }

    fn get(key: String) -> Result<Artifact, StoreError> {
        check(&key)?;
        STORE.with(|s| s.borrow().get(&key).cloned()).ok_or_else(|| StoreError::NotFound(key))
    }

    fn head(key: String) -> Result<ArtifactMeta, StoreError> {
        Self::get(key).map(|a| a.meta)
    }

    fn list(prefix: String, cursor: Option<String>, limit: u32) -> Result<ArtifactPage, StoreError> {
        let limit = if limit == 0 { 100 } else { limit.min(1000) as usize };
        STORE.with(|s| {
            let store = s.borrow();
            let mut keys = store.range(prefix.clone()..).map(|(k, _)| k).take_while(|k| k.starts_with(&prefix));
            let mut items = Vec::new();
            let mut more = false;
            for key in keys.by_ref().filter(|k| cursor.as_ref().is_none_or(|c| *k > c)) {
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(store[key].meta.clone());
            }
            let next_cursor = if more { items.last().map(|m: &ArtifactMeta| m.key.clone()) } else { None };
            Ok(ArtifactPage { items, next_cursor })
        })
    }

    fn get_url(key: String, _expires_in_secs: u32) -> Result<Option<String>, StoreError> {
        // No URLs of its own: the host signs one.
        Self::head(key).map(|_| None)
    }

    fn delete(key: String) -> Result<(), StoreError> {
        check(&key)?;
        STORE.with(|s| s.borrow_mut().remove(&key));
        Ok(())
    }
}

export!(Origin);
