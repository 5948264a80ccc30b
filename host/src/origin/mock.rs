//! A handle on the test plugin's `mock-control` export: scripted faults and call counters.

use std::collections::BTreeMap;

use super::{for_each_version, plugin_call, require_export};
use crate::base::{Ctx, Result, StoreError};
use crate::runtime::{Interface, Plugin};

/// A scripted fault.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Return this error (origin kinds only: not-found, conflict, invalid, unavailable, internal).
    Fail(StoreError),
    Trap,
    EndlessLoop,
    GrowMemory(u64),
    DelayMs(u32),
}

/// A fault applied to the calls of `method` (`interface.function` or `*`), optionally only to
/// those whose first argument is `key`, for `times` calls (0: every call).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    pub method: String,
    pub key: Option<String>,
    pub fault: Fault,
    pub times: u32,
}

impl FaultRule {
    pub fn new(method: impl Into<String>, fault: Fault) -> Self {
        Self { method: method.into(), key: None, fault, times: 0 }
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }
}

for_each_version!(mock_control =>
    impl From<FaultRule> for wit::FaultRule {
        fn from(r: FaultRule) -> Self {
            let fault = match r.fault {
                Fault::Fail(e) => wit::Fault::Fail(match e {
                    StoreError::NotFound(m) => wit::StoreError::NotFound(m),
                    StoreError::Conflict(m) => wit::StoreError::Conflict(m),
                    StoreError::Invalid(m) => wit::StoreError::Invalid(m),
                    StoreError::Unavailable(m) => wit::StoreError::Unavailable(m),
                    StoreError::Internal(m) => wit::StoreError::Internal(m),
                    other => wit::StoreError::Internal(other.to_string()),
                }),
                Fault::Trap => wit::Fault::Trap,
                Fault::EndlessLoop => wit::Fault::EndlessLoop,
                Fault::GrowMemory(n) => wit::Fault::GrowMemory(n),
                Fault::DelayMs(n) => wit::Fault::DelayMs(n),
            };
            wit::FaultRule { method: r.method, key: r.key, fault, times: r.times }
        }
    }
);

/// Controls a plugin exporting `storehost:origin/mock-control`. Each call reaches one pooled
/// instance: run the mock with `instances = 1` when a test needs one view of its state.
#[derive(Clone, Debug)]
pub struct MockControl {
    plugin: Plugin,
}

macro_rules! control_call {
    ($self:ident, $method:literal, |$g:ident, $s:ident| $body:expr) => {
        plugin_call!($self.plugin, &Ctx::background(), $method, mock_control, |$g, $s| async { $body.await.map(Ok::<_, StoreError>) }).await
    };
}

impl MockControl {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::MockControl)?;
        Ok(Self { plugin })
    }

    pub async fn add_fault(&self, rule: FaultRule) -> Result<()> {
        control_call!(self, "mock-control.add-fault", |g, s| g.call_add_fault(s, &rule.into()))
    }

    pub async fn clear_faults(&self) -> Result<()> {
        control_call!(self, "mock-control.clear-faults", |g, s| g.call_clear_faults(s))
    }

    pub async fn call_count(&self, method: &str) -> Result<u64> {
        let method = method.to_string();
        control_call!(self, "mock-control.call-count", |g, s| g.call_call_count(s, &method))
    }

    pub async fn call_counts(&self) -> Result<BTreeMap<String, u64>> {
        let counts: Vec<(String, u64)> = control_call!(self, "mock-control.call-counts", |g, s| g.call_call_counts(s))?;
        Ok(counts.into_iter().collect())
    }

    pub async fn reset_counts(&self) -> Result<()> {
        control_call!(self, "mock-control.reset-counts", |g, s| g.call_reset_counts(s))
    }

    /// The environment variables and arguments the plugin instance sees.
    pub async fn environment(&self) -> Result<Vec<(String, String)>> {
        control_call!(self, "mock-control.environment", |g, s| g.call_environment(s))
    }
}
