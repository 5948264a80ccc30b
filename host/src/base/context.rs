use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The caller's context, passed to every domain method: an optional deadline and a
/// cancellation token. Both travel into the plugin call, so a caller that gives up stops the
/// work it started.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    deadline: Option<Instant>,
    cancel: CancellationToken,
}

impl Ctx {
    /// No deadline, never cancelled (only the plugins' own timeouts apply).
    pub fn background() -> Self {
        Self::default()
    }

    /// A context that expires `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::default().deadline(Instant::now() + timeout)
    }

    /// The same context with a deadline (the earlier one wins if one is set).
    pub fn deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
        self
    }

    /// The same context, cancelled when `token` is.
    pub fn cancel_with(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    pub fn get_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
