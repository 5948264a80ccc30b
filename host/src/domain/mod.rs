//! The domains (the seed's repository contracts): per domain, its types, its async trait, and
//! the operations of that trait. Nothing here knows how a store is made: origins, meters and
//! caches all implement these traits, and every method takes the caller's [`Ctx`].

pub mod artifact;
pub mod body;
mod operation;
mod paging;
pub mod project;
pub mod runner;
mod stores;
pub mod ui;
mod validate;
pub mod workspace;

pub use artifact::{Artifact, ArtifactMeta, ArtifactOperation, ArtifactPage, ArtifactReader, ArtifactSink, ArtifactStore, Served};
pub use body::{BodySink, BodyStream, ByteRange};
pub use operation::Operation;
pub(crate) use operation::operations;
pub use paging::every_page;
pub use project::{Project, ProjectArtifact, ProjectArtifactStore, ProjectInput, ProjectOperation, ProjectPage, ProjectStore};
pub use runner::{RunPage, RunnerOperation, RunnerReader, RunnerSink, RunnerStore};
pub use stores::Stores;
pub use ui::{DocumentPage, UiDocument, UiNode, UiOp, UiOperation, UiStore};
pub use validate::{ID_PATTERN, ID_RULES, KEY_PATTERN, KEY_RULES, id_schema, validate_id, validate_key, validate_run};
pub use workspace::{Tab, TabInput, Workspace, WorkspaceInput, WorkspaceOperation, WorkspacePage, WorkspaceStore};

pub use crate::base::{Ctx, Domain, ErrorKind, Result, StoreError};
