use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The caller's context, passed to every domain method: an optional deadline and a
/// cancellation token, both of which travel into the plugin call, so a caller that gives up
/// stops the work it started; and, for hosts that replicate their invalidations, the position in
/// the replication log the caller must see ([`min_log_seq`](Self::min_log_seq)) and where its
/// writes record theirs ([`record_write`](Self::record_write)).
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    deadline: Option<Instant>,
    cancel: CancellationToken,
    min_log_seq: Option<u64>,
    written: Option<Arc<AtomicU64>>,
    stale: Option<Arc<AtomicU64>>,
    /// Asked by another replica that owns none of the key (peer fill): answered here, never
    /// passed on to another replica.
    from_peer: bool,
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

    /// The same context, whose reads must see every invalidation up to `seq` of the replication
    /// log (a write the caller made through another host; read-your-writes).
    pub fn min_log_seq(mut self, seq: u64) -> Self {
        self.min_log_seq = Some(seq);
        self
    }

    /// The same context, recording in `slot` the highest log position its writes were published
    /// at (read with [`written_log_seq`](Self::written_log_seq)).
    pub fn record_writes_in(mut self, slot: Arc<AtomicU64>) -> Self {
        self.written = Some(slot);
        self
    }

    /// The same context, recording in `slot` that a read was answered from a cache entry past its
    /// TTL (`stale_if_error`): the oldest such answer's age, in milliseconds plus one.
    pub fn record_stale_in(mut self, slot: Arc<AtomicU64>) -> Self {
        self.stale = Some(slot);
        self
    }

    /// Records that a read made with this context was answered by an expired entry of this age.
    pub fn record_stale(&self, age: Duration) {
        if let Some(slot) = &self.stale {
            slot.fetch_max(u64::try_from(age.as_millis()).unwrap_or(u64::MAX - 1) + 1, Ordering::AcqRel);
        }
    }

    /// The same context, for a read another replica asked this one to answer as the key's owner.
    pub fn from_peer(mut self) -> Self {
        self.from_peer = true;
        self
    }

    /// Whether another replica asked for this read (it must be answered here).
    pub fn is_from_peer(&self) -> bool {
        self.from_peer
    }

    /// The log position the caller's reads must see, if it gave one.
    pub fn required_log_seq(&self) -> Option<u64> {
        self.min_log_seq
    }

    /// Records that a write made with this context was published at `seq`.
    pub fn record_write(&self, seq: u64) {
        if let Some(slot) = &self.written {
            slot.fetch_max(seq, Ordering::AcqRel);
        }
    }

    /// The highest log position this context's writes were published at, if any.
    pub fn written_log_seq(&self) -> Option<u64> {
        self.written.as_ref().map(|s| s.load(Ordering::Acquire)).filter(|seq| *seq > 0)
    }

    /// The same context without its deadline: for the chunks of a stream, which may run far
    /// longer than one request's timeout while each chunk stays bounded by its own call's.
    pub fn without_deadline(&self) -> Self {
        Self { deadline: None, ..self.clone() }
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
