//! A portable directory as a side of a copy: the export and backup format.
//!
//! ```text
//! DIR/storehost-export.json            {"format": 1}
//! DIR/<domain>/<h>.json                one record: its Content as JSON (the id inside)
//! DIR/<domain>/<h>.body                an artifact's or a runner file's body
//! ```
//!
//! `<h>` is the hex SHA-256 of the record's id (`RecordId`'s JSON), so any key (spaces,
//! unicode, 1 KiB) makes a short, safe file name. A record is written body first, then its
//! JSON, each to a temporary file renamed into place: a record is visible once its JSON is, and
//! a cut write leaves only a `.partial` file, which the next write of that record replaces.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Content, Listed, RecordId, Side, wrong_kind};
use crate::base::{Domain, Result, StoreError};
use crate::domain::body::{self, BodyStream, CHUNK};

const MARKER: &str = "storehost-export.json";

/// A directory of exported records.
pub struct DirSide {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

impl DirSide {
    /// A directory to export to (created if missing; it must be empty or an export already).
    ///
    /// # Errors
    /// A directory that holds other files, or one that cannot be created.
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| anyhow::anyhow!("creating {}: {e}", root.display()))?;
        let marker = root.join(MARKER);
        if !marker.exists() {
            let foreign = std::fs::read_dir(root)?.next().is_some();
            anyhow::ensure!(!foreign, "{} is not empty and holds no export ({MARKER}): refusing to write into it", root.display());
            std::fs::write(&marker, br#"{"format": 1}"#)?;
        }
        Ok(Self { root: root.to_path_buf() })
    }

    /// An export to import from.
    ///
    /// # Errors
    /// A directory that is not an export.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(root.join(MARKER).is_file(), "{} holds no export ({MARKER} is missing)", root.display());
        Ok(Self { root: root.to_path_buf() })
    }

    fn dir(&self, domain: Domain) -> PathBuf {
        self.root.join(domain.name())
    }

    fn path(&self, id: &RecordId, extension: &str) -> PathBuf {
        let name = hex::encode(Sha256::digest(serde_json::to_vec(id).expect("ids serialize")));
        self.dir(id.domain()).join(format!("{name}.{extension}"))
    }

    /// Writes `path` whole from `body`: to a temporary file, synced, then renamed into place.
    async fn replace(&self, path: &Path, mut body: BodyStream) -> Result<()> {
        let parent = path.parent().expect("record paths have a directory");
        tokio::fs::create_dir_all(parent).await.map_err(|e| io("creating", parent, e))?;
        let partial = path.with_extension(format!("{}.partial", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
        let mut file = tokio::fs::File::create(&partial).await.map_err(|e| io("creating", &partial, e))?;
        while let Some(chunk) = body.next().await {
            file.write_all(&chunk?).await.map_err(|e| io("writing", &partial, e))?;
        }
        file.sync_all().await.map_err(|e| io("syncing", &partial, e))?;
        tokio::fs::rename(&partial, path).await.map_err(|e| io("renaming", &partial, e))
    }
}

#[async_trait]
impl Side for DirSide {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn domains(&self) -> Vec<Domain> {
        Domain::ALL.to_vec()
    }

    async fn list(&self, domain: Domain, prefix: &str) -> Result<Vec<Listed>> {
        let dir = self.dir(domain);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("reading", &dir, e)),
        };
        let mut listed = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(|e| io("reading", &dir, e))? {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = tokio::fs::read(&path).await.map_err(|e| io("reading", &path, e))?;
            let content: Content = serde_json::from_slice(&text).map_err(|e| StoreError::Internal(format!("{}: {e}", path.display())))?;
            let id = content.id();
            if id.domain() == domain && id.path().starts_with(prefix) {
                listed.push(Listed::with(content));
            }
        }
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listed)
    }

    async fn content(&self, id: &RecordId) -> Result<Option<Content>> {
        let path = self.path(id, "json");
        match tokio::fs::read(&path).await {
            Ok(text) => serde_json::from_slice(&text).map(Some).map_err(|e| StoreError::Internal(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &path, e)),
        }
    }

    async fn open_body(&self, content: &Content) -> Result<BodyStream> {
        let id = content.id();
        if !matches!(id, RecordId::Artifact { .. } | RecordId::RunFile { .. }) {
            return Err(wrong_kind(&id));
        }
        let path = self.path(&id, "body");
        let file = tokio::fs::File::open(&path).await.map_err(|e| io("opening", &path, e))?;
        let chunks = tokio_util::io::ReaderStream::with_capacity(file, CHUNK);
        Ok(Box::pin(chunks.map(move |chunk| chunk.map_err(|e| StoreError::Unavailable(format!("reading a body: {e}"))))))
    }

    /// What it holds after is what it wrote: the JSON as given, and a body whose bytes were
    /// checked against the source's SHA-256 as they streamed in.
    async fn write(&self, content: &Content, body: Option<BodyStream>, _existing: Option<&Content>) -> Result<Option<Content>> {
        let id = content.id();
        if let Some(body) = body {
            self.replace(&self.path(&id, "body"), body).await?;
        }
        let json = serde_json::to_vec_pretty(content).expect("contents serialize");
        self.replace(&self.path(&id, "json"), body::once(json.into())).await?;
        Ok(Some(content.clone()))
    }
}
