//! The origin conformance suite: one behaviour suite, one module per operation, run against
//! any origin — by the integration tests for every plugin, and by `storehost plugin test` for
//! a plugin author's component.
//!
//! A store the target does not have (the plugin does not export that interface) makes its
//! cases `skipped`, and the report says so. Cases use keys and ids unique to the run, so they
//! can share one origin with other data.

mod artifacts;
mod project_artifacts;
mod projects;
mod runner;
mod ui;
mod workspaces;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow};

use crate::app::Stores;
use crate::domain::{
    Ctx, PluginArtifactStore, PluginProjectArtifactStore, PluginProjectStore, PluginRunnerStore, PluginUiStore, PluginWorkspaceStore,
    StoreError,
};
use crate::runtime::{Interface, Plugin};

type CaseFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// One behaviour check.
#[derive(Clone)]
pub struct Case {
    /// The domain interface it needs: `artifacts`, `projects`, … .
    pub domain: &'static str,
    /// The operation it checks.
    pub operation: &'static str,
    pub name: &'static str,
    run: fn(Stores) -> CaseFuture,
}

/// Declares cases: `suite_cases![domain, operation; name => async fn(Stores) -> Result<()>, ...]`.
macro_rules! suite_cases {
    ($domain:literal, $operation:literal; $($name:ident),* $(,)?) => {
        pub(super) fn cases() -> Vec<crate::conformance::Case> {
            vec![$(crate::conformance::Case::new($domain, $operation, stringify!($name), |s| Box::pin($name(s)))),*]
        }
    };
}
pub(crate) use suite_cases;

impl Case {
    pub(crate) fn new(domain: &'static str, operation: &'static str, name: &'static str, run: fn(Stores) -> CaseFuture) -> Self {
        Self { domain, operation, name, run }
    }
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    [artifacts::cases(), projects::cases(), project_artifacts::cases(), ui::cases(), workspaces::cases(), runner::cases()].concat()
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    pub domain: &'static str,
    pub operation: &'static str,
    pub name: &'static str,
    pub outcome: Outcome,
}

/// The results of a run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub results: Vec<CaseResult>,
}

impl Report {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    pub fn passed(&self) -> usize {
        self.count(|o| *o == Outcome::Passed)
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    pub fn failures(&self) -> Vec<&CaseResult> {
        self.results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18} {:<16} {:<40} result", "domain", "operation", "case")?;
        for r in &self.results {
            let outcome = match &r.outcome {
                Outcome::Passed => "pass".to_string(),
                Outcome::Failed(why) => format!("FAIL: {why}"),
                Outcome::Skipped(why) => format!("skip: {why}"),
            };
            writeln!(f, "{:<18} {:<16} {:<40} {outcome}", r.domain, r.operation, r.name)?;
        }
        write!(f, "{} passed, {} failed, {} skipped", self.passed(), self.failed(), self.skipped())
    }
}

fn has(stores: &Stores, domain: &str) -> bool {
    match domain {
        "artifacts" => stores.artifact.is_some(),
        "projects" => stores.project.is_some(),
        "project-artifacts" => stores.project_artifacts.is_some(),
        "ui-documents" => stores.ui.is_some(),
        "workspaces" => stores.workspace.is_some(),
        "runner-artifacts" => stores.runner.is_some(),
        _ => false,
    }
}

/// Runs the cases whose domain passes `filter`, one after another.
pub async fn run(stores: &Stores, filter: impl Fn(&Case) -> bool) -> Report {
    let mut report = Report::default();
    for case in cases().into_iter().filter(|c| filter(c)) {
        let outcome = if !has(stores, case.domain) {
            Outcome::Skipped(format!("the origin does not export {}", case.domain))
        } else {
            match tokio::spawn((case.run)(stores.clone())).await {
                Ok(Ok(())) => Outcome::Passed,
                Ok(Err(err)) => Outcome::Failed(format!("{err:#}")),
                Err(panic) => Outcome::Failed(format!("panicked: {panic}")),
            }
        };
        report.results.push(CaseResult { domain: case.domain, operation: case.operation, name: case.name, outcome });
    }
    report
}

impl Stores {
    /// A store for every interface `plugin` exports (for testing one plugin on every domain).
    pub fn from_plugin(plugin: &Plugin) -> Stores {
        let exports = plugin.exports();
        let p = || plugin.clone();
        Stores {
            artifact: exports.contains(Interface::Artifacts).then(|| Arc::new(PluginArtifactStore::new(p()).unwrap()) as _),
            project: exports.contains(Interface::Projects).then(|| Arc::new(PluginProjectStore::new(p()).unwrap()) as _),
            project_artifacts: exports
                .contains(Interface::ProjectArtifacts)
                .then(|| Arc::new(PluginProjectArtifactStore::new(p()).unwrap()) as _),
            ui: exports.contains(Interface::UiDocuments).then(|| Arc::new(PluginUiStore::new(p()).unwrap()) as _),
            workspace: exports.contains(Interface::Workspaces).then(|| Arc::new(PluginWorkspaceStore::new(p()).unwrap()) as _),
            runner: exports.contains(Interface::RunnerArtifacts).then(|| Arc::new(PluginRunnerStore::new(p()).unwrap()) as _),
        }
    }
}

// ---- helpers shared by the cases ----

/// A name no other case or run uses.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static RUN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (t.as_nanos() as u64) ^ (std::process::id() as u64) << 32
    });
    format!("{prefix}-{run:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

pub(crate) fn ctx() -> Ctx {
    Ctx::with_timeout(std::time::Duration::from_secs(30))
}

/// Checks that `result` failed with the error kind `kind`.
pub(crate) fn expect_kind<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>, kind: &str) -> Result<()> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(anyhow!("{what}: expected a {kind} error, got {} ({e})", e.kind())),
        Ok(v) => Err(anyhow!("{what}: expected a {kind} error, got Ok({v:?})")),
    }
}

pub(crate) fn not_found<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>) -> Result<()> {
    expect_kind(what, result, "not-found")
}

pub(crate) fn conflict<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>) -> Result<()> {
    expect_kind(what, result, "conflict")
}

pub(crate) fn invalid<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>) -> Result<()> {
    expect_kind(what, result, "invalid")
}

/// Attaches the operation to an unexpected error.
pub(crate) trait Step<T> {
    fn step(self, what: &str) -> Result<T>;
}

impl<T> Step<T> for std::result::Result<T, StoreError> {
    fn step(self, what: &str) -> Result<T> {
        self.map_err(|e| anyhow!("{what}: {e}"))
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
