use std::time::Duration;

/// Why a domain operation failed. The first five kinds come from the origin itself; the rest
/// are the host's verdict on the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
    /// The plugin trapped (a panic, an out-of-bounds access, its memory cap); its instance was
    /// replaced.
    #[error("plugin {plugin} trapped in {method}: {message}")]
    PluginTrapped { plugin: String, method: String, message: String },
    /// The call outlived its deadline (the plugin's `timeout` or the caller's, whichever came
    /// first); its instance was replaced.
    #[error("plugin {plugin} timed out in {method} after {elapsed:?}")]
    PluginTimeout { plugin: String, method: String, elapsed: Duration },
    /// The caller gave up (its cancellation token fired).
    #[error("cancelled")]
    Cancelled,
}

impl StoreError {
    /// A short, stable name of the kind, for metrics labels and JSON errors.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::NotFound(_) => "not-found",
            StoreError::Conflict(_) => "conflict",
            StoreError::Invalid(_) => "invalid",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Internal(_) => "internal",
            StoreError::PluginTrapped { .. } => "plugin-trapped",
            StoreError::PluginTimeout { .. } => "plugin-timeout",
            StoreError::Cancelled => "cancelled",
        }
    }

    /// True when a write that failed this way may nevertheless have happened, so cached
    /// copies of what it touched can no longer be trusted.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Internal(_)
                | StoreError::PluginTrapped { .. }
                | StoreError::PluginTimeout { .. }
                | StoreError::Cancelled
        )
    }

    /// True when retrying the same request later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::PluginTimeout { .. } | StoreError::PluginTrapped { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
