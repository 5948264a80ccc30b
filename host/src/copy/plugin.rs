//! A plugin's stores as a side of a copy: listed through the contracts' list calls, read and
//! written through the same calls the server makes.

use async_trait::async_trait;

use super::{Content, Listed, RecordId, Side, TabRecord, digest, same_record, wrong_kind};
use crate::base::{Ctx, Domain, ErrorKind, Result, StoreError};
use crate::domain::body::{self, BodyStream, ByteRange, CHUNK};
use crate::domain::{ArtifactMeta, ProjectArtifact, ProjectInput, Stores, TabInput, UiNode, UiOp, WorkspaceInput, every_page};
use crate::origin::stores_of;
use crate::runtime::Plugin;

/// Records per page of a listing.
const PAGE: u32 = 1000;

/// Every store a loaded plugin exports.
pub struct PluginSide {
    name: String,
    stores: Stores,
}

impl PluginSide {
    pub fn new(plugin: &Plugin) -> Self {
        Self { name: plugin.name().to_string(), stores: stores_of(plugin) }
    }

    fn ctx() -> Ctx {
        Ctx::background()
    }
}

/// `Ok(None)` for `not-found`.
fn found<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}

fn artifact_content(m: ArtifactMeta) -> Content {
    Content::Artifact { key: m.key, size: m.size, content_type: m.content_type, sha256: m.sha256 }
}

fn missing(name: &str, domain: Domain) -> StoreError {
    StoreError::Invalid(format!("plugin {name} does not export the {domain} domain"))
}

/// The ops that turn a document holding `existing`'s nodes into one holding `nodes`: every
/// top-level node removed (with its subtree), then every node inserted, parents first, each
/// after its siblings before it.
fn rebuild(existing: &[UiNode], nodes: &[UiNode]) -> Result<Vec<UiOp>> {
    let mut ops: Vec<UiOp> = existing.iter().filter(|n| n.parent.is_none()).map(|n| UiOp::RemoveNode { id: n.id.clone() }).collect();
    let mut inserted: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut siblings: std::collections::HashMap<Option<&str>, u32> = std::collections::HashMap::new();
    let mut left: Vec<&UiNode> = nodes.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|node| {
            let ready = node.parent.as_deref().is_none_or(|p| inserted.contains(p));
            if ready {
                let index = siblings.entry(node.parent.as_deref()).or_insert(0);
                ops.push(UiOp::InsertNode { node: (*node).clone(), index: *index });
                *index += 1;
                inserted.insert(&node.id);
            }
            !ready
        });
        if left.len() == before {
            return Err(StoreError::Invalid(format!(
                "the document's nodes {:?} have parents it does not hold",
                left.iter().map(|n| &n.id).collect::<Vec<_>>()
            )));
        }
    }
    Ok(ops)
}

#[async_trait]
impl Side for PluginSide {
    fn describe(&self) -> String {
        format!("plugin {}", self.name)
    }

    fn domains(&self) -> Vec<Domain> {
        let s = &self.stores;
        let held = [
            (Domain::Artifact, s.artifact.is_some()),
            (Domain::Project, s.project.is_some() && s.project_artifacts.is_some()),
            (Domain::Ui, s.ui.is_some()),
            (Domain::Workspace, s.workspace.is_some()),
            (Domain::Runner, s.runner.is_some()),
        ];
        held.into_iter().filter(|(_, held)| *held).map(|(d, _)| d).collect()
    }

    async fn list(&self, domain: Domain, prefix: &str) -> Result<Vec<Listed>> {
        let (s, ctx, name) = (&self.stores, Self::ctx(), self.name.as_str());
        let listed: Vec<Listed> = match domain {
            Domain::Artifact => {
                let st = s.artifact.as_ref().ok_or_else(|| missing(name, domain))?;
                every_page(|cursor: Option<String>| {
                    let (st, ctx, prefix) = (st.clone(), ctx.clone(), prefix.to_string());
                    async move {
                        let page = st.list(&ctx, &prefix, cursor.as_deref(), PAGE).await?;
                        Ok((page.items.into_iter().map(|m| Listed::with(artifact_content(m))).collect(), page.next_cursor))
                    }
                })
                .await?
            }
            Domain::Project => {
                let st = s.project.as_ref().ok_or_else(|| missing(name, domain))?;
                every_page(|cursor: Option<String>| {
                    let (st, ctx) = (st.clone(), ctx.clone());
                    async move {
                        let page = st.list(&ctx, cursor.as_deref(), PAGE).await?;
                        Ok((page.items.into_iter().map(|p| Listed::id(RecordId::Project { id: p.id })).collect(), page.next_cursor))
                    }
                })
                .await?
            }
            Domain::Ui => {
                let st = s.ui.as_ref().ok_or_else(|| missing(name, domain))?;
                every_page(|cursor: Option<String>| {
                    let (st, ctx) = (st.clone(), ctx.clone());
                    async move {
                        let page = st.list(&ctx, cursor.as_deref(), PAGE).await?;
                        Ok((page.ids.into_iter().map(|id| Listed::id(RecordId::Document { id })).collect(), page.next_cursor))
                    }
                })
                .await?
            }
            Domain::Workspace => {
                let st = s.workspace.as_ref().ok_or_else(|| missing(name, domain))?;
                every_page(|cursor: Option<String>| {
                    let (st, ctx) = (st.clone(), ctx.clone());
                    async move {
                        let page = st.list(&ctx, cursor.as_deref(), PAGE).await?;
                        Ok((page.items.into_iter().map(|w| Listed::id(RecordId::Workspace { id: w.id })).collect(), page.next_cursor))
                    }
                })
                .await?
            }
            Domain::Runner => {
                let st = s.runner.as_ref().ok_or_else(|| missing(name, domain))?;
                let runs = every_page(|cursor: Option<String>| {
                    let (st, ctx) = (st.clone(), ctx.clone());
                    async move {
                        let page = st.list_runs(&ctx, cursor.as_deref(), PAGE).await?;
                        Ok((page.runs, page.next_cursor))
                    }
                })
                .await?;
                let mut files = Vec::new();
                for run in runs {
                    // Only the files the prefix can take: a path is `run/name`.
                    let names = if run.starts_with(prefix) { Some("") } else { prefix.strip_prefix(run.as_str()).and_then(|r| r.strip_prefix('/')) };
                    let Some(names) = names else { continue };
                    for name in st.list(&ctx, &run, names).await? {
                        files.push(Listed::id(RecordId::RunFile { run: run.clone(), name }));
                    }
                }
                files
            }
        };
        Ok(listed.into_iter().filter(|l| l.id.path().starts_with(prefix)).collect())
    }

    async fn content(&self, id: &RecordId) -> Result<Option<Content>> {
        let (s, ctx, name) = (&self.stores, Self::ctx(), self.name.as_str());
        Ok(match id {
            RecordId::Artifact { key } => {
                let st = s.artifact.as_ref().ok_or_else(|| missing(name, id.domain()))?;
                found(st.head(&ctx, key).await)?.map(artifact_content)
            }
            RecordId::Project { id: pid } => {
                let (st, meta) = s.project.as_ref().zip(s.project_artifacts.as_ref()).ok_or_else(|| missing(name, id.domain()))?;
                match found(st.get(&ctx, pid).await)? {
                    Some(p) => Some(Content::Project { id: p.id, name: p.name, state: p.state, artifacts: meta.list(&ctx, pid).await? }),
                    None => None,
                }
            }
            RecordId::Document { id: doc } => {
                let st = s.ui.as_ref().ok_or_else(|| missing(name, id.domain()))?;
                found(st.get(&ctx, doc).await)?.map(|d| Content::Document { id: d.id.clone(), nodes: d.nodes.clone() })
            }
            RecordId::Workspace { id: ws } => {
                let st = s.workspace.as_ref().ok_or_else(|| missing(name, id.domain()))?;
                match found(st.get(&ctx, ws).await)? {
                    Some(w) => {
                        let mut tabs = st.list_tabs(&ctx, ws).await?;
                        tabs.sort_by_key(|t| t.position);
                        let tabs = tabs.into_iter().map(|t| TabRecord { id: t.id, title: t.title, kind: t.kind, run_id: t.run_id }).collect();
                        Some(Content::Workspace { id: w.id, project_id: w.project_id, name: w.name, selected_tab: w.selected_tab, tabs })
                    }
                    None => None,
                }
            }
            RecordId::RunFile { run, name: file } => {
                let st = s.runner.as_ref().ok_or_else(|| missing(name, id.domain()))?;
                match found(st.open_read(&ctx, run, file, ByteRange::ALL).await)? {
                    Some(reader) => {
                        let (size, sha256) = digest(reader.body).await?;
                        Some(Content::RunFile { run: run.clone(), name: file.clone(), size, sha256 })
                    }
                    None => None,
                }
            }
        })
    }

    async fn open_body(&self, content: &Content) -> Result<BodyStream> {
        let (s, ctx, name) = (&self.stores, Self::ctx(), self.name.as_str());
        match content {
            Content::Artifact { key, size, .. } => {
                let st = s.artifact.as_ref().ok_or_else(|| missing(name, Domain::Artifact))?;
                // A body of one chunk in one call, without a stream's session.
                if *size <= CHUNK as u64 {
                    return Ok(body::once(st.get(&ctx, key).await?.body));
                }
                Ok(st.open_read(&ctx, key, ByteRange::ALL).await?.body)
            }
            Content::RunFile { run, name: file, .. } => {
                Ok(s.runner.as_ref().ok_or_else(|| missing(name, Domain::Runner))?.open_read(&ctx, run, file, ByteRange::ALL).await?.body)
            }
            other => Err(wrong_kind(&other.id())),
        }
    }

    async fn write(&self, content: &Content, body: Option<BodyStream>, existing: Option<&Content>) -> Result<Option<Content>> {
        let (s, ctx, name) = (&self.stores, Self::ctx(), self.name.as_str());
        let body = body.unwrap_or_else(|| Box::pin(futures_util::stream::empty()));
        match content {
            Content::Artifact { key, size, content_type, .. } => {
                let st = s.artifact.clone().ok_or_else(|| missing(name, Domain::Artifact))?;
                // A body of one chunk in one call; a larger one streamed.
                if *size <= CHUNK as u64 {
                    let whole = body::collect(body).await?;
                    return st.put(&ctx, key, whole, content_type.clone()).await.map(|m| Some(artifact_content(m)));
                }
                let sink = st.open_write(&ctx, key, content_type.clone(), Some(*size)).await?;
                body::pump(&ctx, sink, body).await.map(|m| Some(artifact_content(m)))
            }
            Content::RunFile { run, name: file, size, .. } => {
                let st = s.runner.clone().ok_or_else(|| missing(name, Domain::Runner))?;
                let sink = st.open_write(&ctx, run, file, Some(*size)).await?;
                body::pump(&ctx, sink, body).await.map(|_| None)
            }
            Content::Project { id, name: title, state, artifacts } => {
                let (st, meta) = s.project.as_ref().zip(s.project_artifacts.as_ref()).ok_or_else(|| missing(name, Domain::Project))?;
                let have: &[ProjectArtifact] = match existing {
                    Some(Content::Project { artifacts, .. }) => artifacts,
                    _ => &[],
                };
                if let Some(extra) = have.iter().find(|h| !artifacts.iter().any(|a| a.name == h.name)) {
                    return Err(StoreError::Conflict(format!(
                        "the destination's project has an artifact record {:?} the source lacks (records cannot be removed)",
                        extra.name
                    )));
                }
                st.save(&ctx, ProjectInput { id: id.clone(), name: title.clone(), state: state.clone() }, None).await?;
                for record in artifacts.iter().filter(|a| !have.iter().any(|h| same_record(h, a))) {
                    meta.add(&ctx, id, record.clone()).await?;
                }
                Ok(None)
            }
            Content::Document { id, nodes } => {
                let st = s.ui.as_ref().ok_or_else(|| missing(name, Domain::Ui))?;
                let (current, version) = match found(st.get(&ctx, id).await)? {
                    Some(doc) => (doc.nodes.clone(), doc.version),
                    None => (Vec::new(), 0),
                };
                // One atomic batch, on the version read: a concurrent writer makes it a conflict.
                st.apply_ops(&ctx, id, Some(version), rebuild(&current, nodes)?).await.map(|_| None)
            }
            Content::Workspace { id, project_id, name: title, selected_tab, tabs } => {
                let st = s.workspace.as_ref().ok_or_else(|| missing(name, Domain::Workspace))?;
                let have: Vec<TabRecord> = match existing {
                    Some(Content::Workspace { project_id: p, name: n, tabs, .. }) => {
                        if p != project_id || n != title {
                            return Err(StoreError::Conflict(format!(
                                "the destination holds workspace {id:?} with another name or project (workspaces cannot be rewritten)"
                            )));
                        }
                        tabs.clone()
                    }
                    _ => {
                        st.create(&ctx, WorkspaceInput { id: id.clone(), project_id: project_id.clone(), name: title.clone() }).await?;
                        Vec::new()
                    }
                };
                // A cut run leaves a workspace with the first of its tabs: the rest follow.
                for (i, tab) in tabs.iter().enumerate() {
                    match have.get(i) {
                        Some(h) if h.id == tab.id && h.title == tab.title && h.kind == tab.kind => {}
                        Some(h) => {
                            return Err(StoreError::Conflict(format!(
                                "the destination's tab {} is {:?}, the source's {:?} (tabs cannot be rewritten)",
                                i, h.id, tab.id
                            )));
                        }
                        None => {
                            st.create_tab(&ctx, id, TabInput { id: tab.id.clone(), title: tab.title.clone(), kind: tab.kind.clone() })
                                .await
                                .map(drop)?;
                        }
                    }
                    if have.get(i).and_then(|h| h.run_id.as_ref()) != tab.run_id.as_ref() {
                        st.update_tab_run(&ctx, id, &tab.id, tab.run_id.clone()).await?;
                    }
                }
                let selected = match existing {
                    Some(Content::Workspace { selected_tab, .. }) => selected_tab.clone(),
                    _ => None,
                };
                if let Some(tab) = selected_tab
                    && selected.as_ref() != Some(tab)
                {
                    st.select_tab(&ctx, id, tab).await?;
                }
                Ok(None)
            }
        }
    }
}
