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
mod stream;
mod ui;
mod workspaces;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow};

use crate::base::{Ctx, ErrorKind, StoreError};
use crate::domain::Stores;
use crate::runtime::Interface;

type CaseFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// One behaviour check.
#[derive(Clone)]
pub struct Case {
    /// The interface whose store it needs.
    pub interface: Interface,
    /// Another interface it needs too, if any.
    pub also: Option<Interface>,
    /// The operation (or the rule, such as `keys`) it checks.
    pub operation: &'static str,
    pub name: &'static str,
    run: fn(Stores) -> CaseFuture,
}

/// Declares cases: `suite_cases![Interface, operation; async fn(Stores) -> Result<()>, ...]`.
macro_rules! suite_cases {
    ($interface:ident $(+ $also:ident)?, $operation:literal; $($name:ident),* $(,)?) => {
        pub(super) fn cases() -> Vec<crate::conformance::Case> {
            let also: Option<crate::runtime::Interface> = None $(.or(Some(crate::runtime::Interface::$also)))?;
            vec![$(crate::conformance::Case {
                also,
                ..crate::conformance::Case::new(crate::runtime::Interface::$interface, $operation, stringify!($name), |s| Box::pin($name(s)))
            }),*]
        }
    };
}
pub(crate) use suite_cases;

impl Case {
    pub(crate) fn new(interface: Interface, operation: &'static str, name: &'static str, run: fn(Stores) -> CaseFuture) -> Self {
        Self { interface, also: None, operation, name, run }
    }

    /// `interface::operation::name`: what a test runner calls the case.
    pub fn path(&self) -> String {
        format!("{}::{}::{}", self.interface, self.operation, self.name)
    }

    /// Runs the case on `stores`: skipped when they lack its interface's store.
    pub async fn run(&self, stores: &Stores) -> Outcome {
        if let Some(missing) = [Some(self.interface), self.also].into_iter().flatten().find(|i| !has(stores, *i)) {
            return Outcome::Skipped(format!("the origin does not export {missing}"));
        }
        match tokio::spawn((self.run)(stores.clone())).await {
            Ok(Ok(())) => Outcome::Passed,
            Ok(Err(err)) if err.downcast_ref::<Skip>().is_some() => Outcome::Skipped(err.to_string()),
            Ok(Err(err)) => Outcome::Failed(format!("{err:#}")),
            Err(panic) => Outcome::Failed(format!("panicked: {panic}")),
        }
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
    pub interface: Interface,
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
        writeln!(f, "{:<18} {:<16} {:<40} result", "interface", "operation", "case")?;
        for r in &self.results {
            let outcome = match &r.outcome {
                Outcome::Passed => "pass".to_string(),
                Outcome::Failed(why) => format!("FAIL: {why}"),
                Outcome::Skipped(why) => format!("skip: {why}"),
            };
            writeln!(f, "{:<18} {:<16} {:<40} {outcome}", r.interface.wit_name(), r.operation, r.name)?;
        }
        write!(f, "{} passed, {} failed, {} skipped", self.passed(), self.failed(), self.skipped())
    }
}

fn has(stores: &Stores, interface: Interface) -> bool {
    match interface {
        Interface::Artifacts => stores.artifact.is_some(),
        Interface::Projects => stores.project.is_some(),
        Interface::ProjectArtifacts => stores.project_artifacts.is_some(),
        Interface::UiDocuments => stores.ui.is_some(),
        Interface::Workspaces => stores.workspace.is_some(),
        Interface::RunnerArtifacts => stores.runner.is_some(),
        Interface::Plugin | Interface::MockControl | Interface::ArtifactBodies | Interface::RunnerBodies => false,
    }
}

/// Runs the cases that pass `filter`, one after another.
pub async fn run(stores: &Stores, filter: impl Fn(&Case) -> bool) -> Report {
    let mut report = Report::default();
    for case in cases().into_iter().filter(|c| filter(c)) {
        let outcome = case.run(stores).await;
        report.results.push(CaseResult { interface: case.interface, operation: case.operation, name: case.name, outcome });
    }
    report
}

// ---- helpers shared by the cases ----

/// What a case returns when the target cannot be asked what it tests (a listing a 0.1.0
/// component does not have): the case is skipped, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Skip(pub(crate) String);

/// Every item of a listing ([`every_page`](crate::domain::every_page)); `Skip` when the
/// target's contract cannot list.
pub(crate) async fn all_pages<T, F>(what: &str, page: impl FnMut(Option<String>) -> F) -> Result<Vec<T>>
where
    F: Future<Output = crate::domain::Result<(Vec<T>, Option<String>)>>,
{
    match crate::domain::every_page(page).await {
        Err(e) if crate::origin::listing_refused(&e) => Err(Skip(e.message()).into()),
        result => result.step(what),
    }
}

/// Checks that a listing is in strictly ascending byte order and holds every one of `ours`.
pub(crate) fn ordered_and_holding(what: &str, listed: &[String], ours: &[String]) -> Result<()> {
    anyhow::ensure!(listed.windows(2).all(|w| w[0] < w[1]), "{what} is not in strictly ascending byte order: {listed:?}");
    let missing: Vec<_> = ours.iter().filter(|id| !listed.contains(id)).collect();
    anyhow::ensure!(missing.is_empty(), "{what} lacks {missing:?}");
    Ok(())
}

/// Checks that `got` (what `what` answered) is `want` (what `than` answered), naming the fields
/// that differ and their two values rather than printing both whole.
pub(crate) fn same<T: PartialEq + serde::Serialize>(what: &str, got: &T, than: &str, want: &T) -> Result<()> {
    if got == want {
        return Ok(());
    }
    let (got, want) = (serde_json::to_value(got)?, serde_json::to_value(want)?);
    let differing: Vec<String> = match (got.as_object(), want.as_object()) {
        (Some(g), Some(w)) => w
            .iter()
            .filter(|(field, value)| g.get(*field) != Some(value))
            .map(|(field, value)| format!("{field} is {} (not {value})", g.get(field).unwrap_or(&serde_json::Value::Null)))
            .collect(),
        _ => vec![format!("{got} (not {want})")],
    };
    Err(anyhow!("{what} differs from {than}: {}", differing.join(", ")))
}

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
pub(crate) fn expect_kind<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>, kind: ErrorKind) -> Result<()> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(anyhow!("{what}: expected a {kind} error, got {} ({e})", e.kind())),
        Ok(v) => Err(anyhow!("{what}: expected a {kind} error, got Ok({v:?})")),
    }
}

pub(crate) fn not_found<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>) -> Result<()> {
    expect_kind(what, result, ErrorKind::NotFound)
}

pub(crate) fn conflict<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>) -> Result<()> {
    expect_kind(what, result, ErrorKind::Conflict)
}

pub(crate) fn invalid<T: fmt::Debug>(what: &str, result: crate::domain::Result<T>) -> Result<()> {
    expect_kind(what, result, ErrorKind::Invalid)
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

#[cfg(test)]
mod tests {
    use super::same;
    use crate::domain::ArtifactMeta;

    #[test]
    fn a_mismatch_names_the_fields_that_differ() {
        let meta = ArtifactMeta { key: "k".into(), size: 3, content_type: None, sha256: "ab".into(), created_at: 1_000 };
        let later = ArtifactMeta { created_at: 1_001, ..meta.clone() };
        assert!(same("get", &meta, "put's", &meta).is_ok());
        let message = same("get's metadata", &later, "put's", &meta).unwrap_err().to_string();
        assert_eq!(message, "get's metadata differs from put's: created_at is 1001 (not 1000)");
    }
}
