//! Moving data between origins (`storehost copy`): every record of the chosen domains is read
//! from one side and written to the other through the same store calls the server makes,
//! verified, and skipped on a later run when the destination already holds it identical.
//!
//! A side is a plugin's stores ([`PluginSide`]) or a portable directory ([`DirSide`], also the
//! backup format). Records are compared by content, not by version: versions and timestamps
//! restart at the destination (the contracts write them, they do not take them).
//!
//! What is atomic at the destination: an artifact or a runner file (a streamed write is visible
//! only once it finishes; one cut before is aborted), a UI document (one `apply-ops`), a
//! project's state (one `save`). A project's artifact records and a workspace's tabs are
//! written one call at a time after it: a run cut between them leaves the record short, and the
//! next run completes it.

mod dir;
mod plugin;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use dir::DirSide;
pub use plugin::PluginSide;

use crate::base::{Domain, Result, StoreError};
use crate::domain::body::BodyStream;
use crate::domain::{ProjectArtifact, UiNode};

/// One record, by what names it in its domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "domain", rename_all = "kebab-case")]
pub enum RecordId {
    Artifact { key: String },
    Project { id: String },
    Document { id: String },
    Workspace { id: String },
    RunFile { run: String, name: String },
}

impl RecordId {
    pub fn domain(&self) -> Domain {
        match self {
            RecordId::Artifact { .. } => Domain::Artifact,
            RecordId::Project { .. } => Domain::Project,
            RecordId::Document { .. } => Domain::Ui,
            RecordId::Workspace { .. } => Domain::Workspace,
            RecordId::RunFile { .. } => Domain::Runner,
        }
    }

    /// The id `--prefix` filters on: the key, the id, or `run/name`.
    pub fn path(&self) -> String {
        match self {
            RecordId::Artifact { key } => key.clone(),
            RecordId::Project { id } | RecordId::Document { id } | RecordId::Workspace { id } => id.clone(),
            RecordId::RunFile { run, name } => format!("{run}/{name}"),
        }
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.domain(), self.path())
    }
}

/// A workspace tab as copied: what identifies it and what it shows (its position is its place
/// in the list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabRecord {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub run_id: Option<String>,
}

/// What a record holds, as compared between the sides (versions and times left out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Content {
    /// An artifact's metadata; its body travels as a stream.
    Artifact {
        key: String,
        size: u64,
        content_type: Option<String>,
        sha256: String,
    },
    Project {
        id: String,
        name: String,
        state: String,
        artifacts: Vec<ProjectArtifact>,
    },
    Document {
        id: String,
        nodes: Vec<UiNode>,
    },
    Workspace {
        id: String,
        project_id: String,
        name: String,
        selected_tab: Option<String>,
        tabs: Vec<TabRecord>,
    },
    /// A runner file's size and SHA-256 (computed by reading it); its body travels as a stream.
    RunFile {
        run: String,
        name: String,
        size: u64,
        sha256: String,
    },
}

impl Content {
    /// The record it is the content of.
    pub fn id(&self) -> RecordId {
        match self {
            Content::Artifact { key, .. } => RecordId::Artifact { key: key.clone() },
            Content::Project { id, .. } => RecordId::Project { id: id.clone() },
            Content::Document { id, .. } => RecordId::Document { id: id.clone() },
            Content::Workspace { id, .. } => RecordId::Workspace { id: id.clone() },
            Content::RunFile { run, name, .. } => RecordId::RunFile { run: run.clone(), name: name.clone() },
        }
    }

    /// Bytes of body it carries.
    pub fn bytes(&self) -> u64 {
        match self {
            Content::Artifact { size, .. } | Content::RunFile { size, .. } => *size,
            _ => 0,
        }
    }

    /// Whether `self` at the destination is `source` copied. A project's artifact records are
    /// compared without their creation times (the destination stamps its own).
    fn same_as(&self, source: &Content) -> bool {
        match (self, source) {
            (Content::Project { id, name, state, artifacts }, Content::Project { id: i, name: n, state: s, artifacts: a }) => {
                id == i && name == n && same_json(state, s) && artifacts.len() == a.len() && artifacts.iter().zip(a).all(|(x, y)| same_record(x, y))
            }
            _ => self == source,
        }
    }
}

/// JSON texts equal as values (a backend may store them with other spacing or key order).
/// The same artifact record of a project, but for its creation time (the destination stamps its
/// own).
pub(crate) fn same_record(a: &ProjectArtifact, b: &ProjectArtifact) -> bool {
    a.name == b.name && a.artifact_key == b.artifact_key && a.size == b.size && a.kind == b.kind
}

fn same_json(a: &str, b: &str) -> bool {
    a == b || matches!((serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)), (Ok(x), Ok(y)) if x == y)
}

/// One record as a listing finds it: the body bytes it carries, and its content when the
/// listing gives it whole (an artifact page holds each artifact's metadata).
#[derive(Clone, Debug)]
pub struct Listed {
    pub id: RecordId,
    pub content: Option<Content>,
}

impl Listed {
    pub fn id(id: RecordId) -> Self {
        Self { id, content: None }
    }

    pub fn with(content: Content) -> Self {
        Self { id: content.id(), content: Some(content) }
    }

    /// The body bytes the listing says the record has (none when it gave only the id).
    pub fn bytes(&self) -> u64 {
        self.content.as_ref().map_or(0, Content::bytes)
    }
}

/// Where records are read from and written to.
#[async_trait]
pub trait Side: Send + Sync {
    /// What it is, for messages: `plugin fs`, `directory backup/`.
    fn describe(&self) -> String;
    /// The domains it holds.
    fn domains(&self) -> Vec<Domain>;
    /// Every record of `domain` whose id starts with `prefix`, in id order.
    async fn list(&self, domain: Domain, prefix: &str) -> Result<Vec<Listed>>;
    /// What the record holds, or `None` where it is missing.
    async fn content(&self, id: &RecordId) -> Result<Option<Content>>;
    /// The whole body of an artifact or a runner file, as `content` describes it.
    async fn open_body(&self, content: &Content) -> Result<BodyStream>;
    /// Writes `content` (with `body` for artifacts and runner files) over `existing`, what the
    /// destination holds of it now. Returns what it holds after, when the write's answer says
    /// (an artifact's new metadata); `None`: read it back.
    async fn write(&self, content: &Content, body: Option<BodyStream>, existing: Option<&Content>) -> Result<Option<Content>>;
}

/// What to copy and how.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    pub domains: Vec<Domain>,
    pub prefix: String,
    /// Compare only: count what would be copied, write nothing.
    pub dry_run: bool,
    /// Records in flight at once.
    pub jobs: usize,
}

/// How one record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    /// Already identical at the destination.
    Skipped,
    /// A dry run found it missing or different.
    WouldCopy,
    Failed,
}

/// What a copy did in one domain.
#[derive(Clone, Debug, Serialize)]
pub struct DomainSummary {
    pub domain: Domain,
    pub records: u64,
    pub copied: u64,
    pub skipped: u64,
    pub would_copy: u64,
    pub failed: u64,
    /// Body bytes copied.
    pub bytes: u64,
    /// `record: reason`, for each failure.
    pub failures: Vec<String>,
    /// The copy stopped (an interrupt) before every record was tried.
    pub interrupted: bool,
}

/// What a copy reports as it goes (the CLI draws progress bars from it).
pub trait Progress: Send + Sync {
    /// A domain's listing is done: `records` to go, `bytes` of body among them.
    fn start(&self, domain: Domain, records: u64, bytes: u64);
    /// One record is done.
    fn record(&self, domain: Domain, id: &RecordId, outcome: Outcome, bytes: u64);
    fn finish(&self, domain: Domain);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: Domain, _: u64, _: u64) {}
    fn record(&self, _: Domain, _: &RecordId, _: Outcome, _: u64) {}
    fn finish(&self, _: Domain) {}
}

/// Copies every record of `options.domains` from `from` to `to`, `options.jobs` at a time,
/// until done or `stop` is set (records in flight then finish; no new one starts).
///
/// # Errors
/// Only a listing that fails, or a domain a side does not hold; a record that fails is counted
/// in its domain's summary and the copy goes on.
pub async fn copy(
    from: &dyn Side,
    to: &dyn Side,
    options: &CopyOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<DomainSummary>> {
    for domain in &options.domains {
        for side in [from, to] {
            anyhow::ensure!(side.domains().contains(domain), "{} does not hold the {domain} domain", side.describe());
        }
    }
    let mut summaries = Vec::new();
    for &domain in &options.domains {
        let listed =
            from.list(domain, &options.prefix).await.map_err(|e| anyhow::anyhow!("listing the {domain} domain of {}: {e}", from.describe()))?;
        // What the destination holds, from one listing: a record it lacks needs no read there,
        // and an artifact it holds is compared with the metadata its listing gave.
        let held: HashMap<RecordId, Option<Content>> = to
            .list(domain, &options.prefix)
            .await
            .map_err(|e| anyhow::anyhow!("listing the {domain} domain of {}: {e}", to.describe()))?
            .into_iter()
            .map(|l| (l.id, l.content))
            .collect();
        let held = &held;
        progress.start(domain, listed.len() as u64, listed.iter().map(Listed::bytes).sum());
        let mut summary = DomainSummary {
            domain,
            records: listed.len() as u64,
            copied: 0,
            skipped: 0,
            would_copy: 0,
            failed: 0,
            bytes: 0,
            failures: Vec::new(),
            interrupted: false,
        };
        let results = futures_util::stream::iter(listed.into_iter().take_while(|_| !stop.load(Ordering::Relaxed)))
            .map(|listed| async move {
                let result = copy_one(from, to, &listed, held.get(&listed.id), options.dry_run).await;
                let (outcome, bytes) = match &result {
                    Ok((outcome, bytes)) => (*outcome, *bytes),
                    Err(_) => (Outcome::Failed, 0),
                };
                progress.record(domain, &listed.id, outcome, bytes);
                (listed.id, result)
            })
            .buffer_unordered(options.jobs.max(1))
            .collect::<Vec<_>>()
            .await;
        let tried = results.len() as u64;
        for (id, result) in results {
            match result {
                Ok((Outcome::Copied, bytes)) => {
                    summary.copied += 1;
                    summary.bytes += bytes;
                }
                Ok((Outcome::Skipped, _)) => summary.skipped += 1,
                Ok((Outcome::WouldCopy, _)) => summary.would_copy += 1,
                Ok((Outcome::Failed, _)) => summary.failed += 1,
                Err(reason) => {
                    summary.failed += 1;
                    summary.failures.push(format!("{id}: {reason}"));
                }
            }
        }
        summary.failures.sort();
        summary.interrupted = tried < summary.records;
        progress.finish(domain);
        summaries.push(summary);
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(summaries)
}

/// Copies one record unless the destination holds it identical; verifies what it wrote. `held`
/// is what the destination's listing said of it: `None`, it lacks it; `Some(None)`, it holds it
/// (read it to compare).
async fn copy_one(
    from: &dyn Side,
    to: &dyn Side,
    listed: &Listed,
    held: Option<&Option<Content>>,
    dry_run: bool,
) -> std::result::Result<(Outcome, u64), String> {
    let id = &listed.id;
    let source = match &listed.content {
        Some(content) => content.clone(),
        None => from.content(id).await.map_err(|e| format!("reading the source: {e}"))?.ok_or("gone from the source since it was listed")?,
    };
    let existing = match held {
        None => None,
        Some(Some(content)) => Some(content.clone()),
        Some(None) => to.content(id).await.map_err(|e| format!("reading the destination: {e}"))?,
    };
    if existing.as_ref().is_some_and(|e| e.same_as(&source)) {
        return Ok((Outcome::Skipped, 0));
    }
    if dry_run {
        return Ok((Outcome::WouldCopy, 0));
    }
    let body = match &source {
        Content::Artifact { size, sha256, .. } | Content::RunFile { size, sha256, .. } => {
            let body = from.open_body(&source).await.map_err(|e| format!("reading the source's body: {e}"))?;
            Some(checked(body, *size, sha256.clone()))
        }
        _ => None,
    };
    let answered = to.write(&source, body, existing.as_ref()).await.map_err(|e| format!("writing: {e}"))?;
    let written = match answered {
        Some(content) => Ok(Some(content)),
        None => to.content(id).await,
    };
    match written {
        Ok(Some(written)) if written.same_as(&source) => Ok((Outcome::Copied, source.bytes())),
        Ok(Some(written)) => Err(format!("the destination holds {} after the copy, the source {}", brief(&written), brief(&source))),
        Ok(None) => Err("missing at the destination after the copy".into()),
        Err(e) => Err(format!("verifying: {e}")),
    }
}

/// A short form of a content for a mismatch message.
fn brief(content: &Content) -> String {
    match content {
        Content::Artifact { size, sha256, .. } | Content::RunFile { size, sha256, .. } => format!("{size} bytes, sha256 {sha256}"),
        other => serde_json::to_string(other).unwrap_or_default().chars().take(200).collect(),
    }
}

/// The size and SHA-256 of a body, read to its end.
pub(crate) async fn digest(mut body: BodyStream) -> Result<(u64, String)> {
    let (mut size, mut hash) = (0u64, Sha256::new());
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hash.update(&chunk);
    }
    Ok((size, hex::encode(hash.finalize())))
}

/// A body stream that hashes what passes through, checking at its end that it was `expected`:
/// a body that changed while it was copied fails its write instead of landing.
pub(crate) fn checked(body: BodyStream, expected_size: u64, expected_sha256: String) -> BodyStream {
    struct State {
        body: BodyStream,
        hash: Option<Sha256>,
        size: u64,
        expected: (u64, String),
    }
    let state = State { body, hash: Some(Sha256::new()), size: 0, expected: (expected_size, expected_sha256) };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        let hash = s.hash.as_mut()?;
        match s.body.next().await {
            Some(Ok(chunk)) => {
                hash.update(&chunk);
                s.size += chunk.len() as u64;
                Some((Ok(chunk), s))
            }
            Some(Err(e)) => {
                s.hash = None;
                Some((Err(e), s))
            }
            None => {
                let sha = hex::encode(s.hash.take()?.finalize());
                if (s.size, &sha) == (s.expected.0, &s.expected.1) {
                    None
                } else {
                    let why = format!(
                        "the source body changed while it was copied ({} bytes, sha256 {sha}; listed as {} bytes, {})",
                        s.size, s.expected.0, s.expected.1
                    );
                    Some((Err(StoreError::Conflict(why)), s))
                }
            }
        }
    }))
}

/// Parses `--domains artifact,project,…` (`workspace` and `ui` as in the manifest).
pub fn parse_domains(text: &str) -> anyhow::Result<Vec<Domain>> {
    let mut domains = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let domain = Domain::from_name(name)
            .ok_or_else(|| anyhow::anyhow!("--domains: no domain {name:?} (domains: {})", Domain::ALL.map(Domain::name).join(", ")))?;
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    anyhow::ensure!(!domains.is_empty(), "--domains: name at least one domain");
    Ok(domains)
}

/// The domains both sides hold, in the contracts' order.
pub fn common_domains(a: &dyn Side, b: &dyn Side) -> Vec<Domain> {
    let (x, y) = (a.domains(), b.domains());
    Domain::ALL.into_iter().filter(|d| x.contains(d) && y.contains(d)).collect()
}

/// Shared by the sides: a record a side was asked about that is not of its kind.
fn wrong_kind(id: &RecordId) -> StoreError {
    StoreError::Invalid(format!("{id}: not a record this side holds"))
}
