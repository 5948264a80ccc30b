use std::fmt;
use std::time::Duration;

/// What kind of failure a [`StoreError`] is: what a caller acts on (retry, report, invalidate),
/// and what metrics and JSON errors are labelled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Invalid,
    Unavailable,
    Internal,
    PluginTrapped,
    PluginTimeout,
    Cancelled,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Invalid,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
        ErrorKind::PluginTrapped,
        ErrorKind::PluginTimeout,
        ErrorKind::Cancelled,
    ];

    /// A short, stable name: metric labels and the `kind` of JSON errors.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::PluginTrapped => "plugin-trapped",
            ErrorKind::PluginTimeout => "plugin-timeout",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// The position in [`ALL`](Self::ALL), for counters kept in arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// True when a write that failed this way may nevertheless have happened, so cached copies
    /// of what it touched can no longer be trusted.
    pub fn outcome_unknown(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Internal | ErrorKind::PluginTrapped | ErrorKind::PluginTimeout | ErrorKind::Cancelled)
    }

    /// True for an origin's answer about the data (`not-found`, `conflict`, `invalid`): an
    /// expected outcome of a call, not a failure of the origin.
    pub fn is_answer(self) -> bool {
        matches!(self, ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::Invalid)
    }

    /// True when retrying the same request later may succeed.
    pub fn is_temporary(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::PluginTimeout | ErrorKind::PluginTrapped)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    #[error("plugin \"{plugin}\" trapped in {method}: {message}")]
    PluginTrapped { plugin: String, method: String, message: String },
    /// The call outlived its deadline (the plugin's `timeout` or the caller's, whichever came
    /// first); its instance was replaced.
    #[error("plugin \"{plugin}\" timed out in {method} after {elapsed:?}")]
    PluginTimeout { plugin: String, method: String, elapsed: Duration },
    /// The caller gave up (its cancellation token fired).
    #[error("cancelled")]
    Cancelled,
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Invalid(_) => ErrorKind::Invalid,
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            StoreError::Internal(_) => ErrorKind::Internal,
            StoreError::PluginTrapped { .. } => ErrorKind::PluginTrapped,
            StoreError::PluginTimeout { .. } => ErrorKind::PluginTimeout,
            StoreError::Cancelled => ErrorKind::Cancelled,
        }
    }

    /// See [`ErrorKind::outcome_unknown`].
    pub fn outcome_unknown(&self) -> bool {
        self.kind().outcome_unknown()
    }

    /// See [`ErrorKind::is_temporary`].
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }

    /// The message alone, without the kind in front (the origin's own words, or the host's
    /// account of a failed call).
    /// The same error with `context` before its message (the host's verdicts, which name the
    /// plugin and the call already, are left as they are).
    pub fn within(self, context: &str) -> StoreError {
        let wrap = |message: String| format!("{context}: {message}");
        match self {
            StoreError::NotFound(m) => StoreError::NotFound(wrap(m)),
            StoreError::Conflict(m) => StoreError::Conflict(wrap(m)),
            StoreError::Invalid(m) => StoreError::Invalid(wrap(m)),
            StoreError::Unavailable(m) => StoreError::Unavailable(wrap(m)),
            StoreError::Internal(m) => StoreError::Internal(wrap(m)),
            verdict => verdict,
        }
    }

    pub fn message(&self) -> String {
        match self {
            StoreError::NotFound(m) | StoreError::Conflict(m) | StoreError::Invalid(m) | StoreError::Unavailable(m) | StoreError::Internal(m) => {
                m.clone()
            }
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An error and its sources, `: `-separated, each said once (a library's top-level error often
/// says little alone, and often repeats its source).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_in_their_index_order() {
        for (i, kind) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind}");
        }
    }
}
