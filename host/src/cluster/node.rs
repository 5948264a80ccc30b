//! One host's part in the cluster: it publishes the invalidations of its writes to the log
//! (batched), follows the log (woken by NOTIFY, and polling, so a lost notification is a gap the
//! next read fills), applies other hosts' invalidations to its caches, and knows whether its
//! caches can be trusted: only while its last successful read of the log is recent enough, and
//! only once it has applied what a caller asks it to have seen.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::config::ClusterConfig;
use super::log::{InvalidationLog, Notification};
use super::metrics::{ClusterMetrics, ClusterStats};
use super::peers::Peers;
use crate::base::{Ctx, StoreError};
use crate::cache::{Caches, Invalidation};

/// Events read from the log at a time.
const READ_BATCH: u32 = 5_000;
/// How long a write waits for its invalidation to reach the log (within its own deadline) while
/// the log cannot be reached, before it is answered `unavailable`: a connection to the log that
/// was reset is reconnected well within it.
pub(crate) const PUBLISH_PATIENCE: Duration = Duration::from_secs(10);

/// Invalidations appended in one statement at most.
const APPEND_BATCH: usize = 5_000;

/// A write waiting for its invalidations to be in the log.
struct Pending {
    invalidations: Vec<Invalidation>,
    /// The trace context of the write's append span (with traces on).
    trace: Option<String>,
    reply: oneshot::Sender<Result<u64, String>>,
}

/// What made the follower read the log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// A notification of a new append.
    Notified,
    /// The poll interval, or the listener coming back after a gap: what it reads had no
    /// notification this host acted on.
    Poll,
}

/// The running cluster membership of a host. Dropping it stops its tasks.
pub struct Node {
    inner: Arc<NodeInner>,
    /// Cancelled when the node is dropped: its tasks end.
    stop: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub(crate) struct NodeInner {
    config: ClusterConfig,
    log: InvalidationLog,
    /// Replaced when a reload rebuilds a domain's cache.
    caches: parking_lot::RwLock<Caches>,
    started: Instant,
    /// Every event up to here has been applied (or was this host's own).
    applied: watch::Sender<u64>,
    /// Nanoseconds after `started` at which the last successful read of the log began; 0: never.
    synced_ns: AtomicU64,
    /// The highest position this host has heard of.
    head_seen: AtomicU64,
    notified: Notify,
    poke: Notify,
    /// Set when the listener lost its connection, until the follower has read the log since.
    gap: AtomicBool,
    /// Held while events are applied and the applied position moves: by the follower, and by the
    /// listener applying a notification's events.
    applying: parking_lot::Mutex<()>,
    publish: mpsc::UnboundedSender<Pending>,
    /// Where the disk tier's position in the log is kept: the tier reflects every event up to it.
    position_file: Option<PathBuf>,
    /// The position last written to `position_file`.
    saved: AtomicU64,
    log_id: String,
    pub(crate) metrics: ClusterMetrics,
    /// The ring of key owners, with `peer_secret` set.
    peers: Option<Arc<Peers>>,
}

impl Node {
    /// Joins the cluster: migrates the log's schema, decides what the disk tier may keep (it
    /// replays from its recorded position, or is dropped when the log no longer reaches back
    /// that far), and starts following the log.
    ///
    /// # Errors
    /// An unreachable log database, or a log that cannot be migrated.
    pub async fn start(config: ClusterConfig, caches: Caches, position_file: Option<PathBuf>) -> anyhow::Result<Node> {
        let log = InvalidationLog::connect(&config.log, &config.host_id)?;
        let started = Instant::now();
        log.migrate().await.context("log: migrating the invalidation log")?;
        let head = log.head().await.context("log: reading the invalidation log")?;
        let metrics = ClusterMetrics::default();
        let recorded = position_file.as_ref().and_then(|p| read_position(p, &head.log_id));
        let from = match recorded {
            Some(seq) if seq >= head.pruned_through && seq <= head.head => seq,
            _ => {
                // The disk tier's entries may predate events the log no longer holds (or it has
                // no record at all): it cannot be trusted.
                if caches.holds_disk_entries() {
                    caches.clear();
                    metrics.full_flushes.fetch_add(1, Ordering::Relaxed);
                }
                head.head
            }
        };
        let (publish, queue) = mpsc::unbounded_channel();
        let applied = watch::Sender::new(from);
        let peers = config.peer_secret.as_deref().map(|secret| Arc::new(Peers::new(&config, secret, applied.subscribe())));
        let inner = Arc::new(NodeInner {
            config,
            log,
            caches: parking_lot::RwLock::new(caches),
            started,
            applied,
            synced_ns: AtomicU64::new(0),
            head_seen: AtomicU64::new(head.head),
            notified: Notify::new(),
            poke: Notify::new(),
            gap: AtomicBool::new(false),
            applying: parking_lot::Mutex::new(()),
            publish,
            position_file,
            saved: AtomicU64::new(from),
            log_id: head.log_id,
            metrics,
            peers,
        });
        // Catch up before serving: a restarted host replays what its disk tier missed.
        anyhow::ensure!(inner.catch_up(Trigger::Notified).await, "log: reading the invalidation log failed");
        let stop = CancellationToken::new();
        tokio::spawn(inner.clone().publish_loop(queue, stop.clone()));
        tokio::spawn(inner.clone().follow_loop(stop.clone()));
        tokio::spawn(inner.clone().listen_loop(stop.clone()));
        tokio::spawn(inner.clone().prune_loop(stop.clone()));
        tracing::info!(host = %inner.config.host_id, position = from, "joined the cluster");
        Ok(Node { inner, stop })
    }

    /// The ring of key owners (with `peer_secret` set).
    pub fn peers(&self) -> Option<&Arc<Peers>> {
        self.inner.peers.as_ref()
    }

    /// Joins the ring of key owners, reached at `listening` (unless `advertise` names another
    /// address): registers in the log's database and keeps saying it is alive, and follows who
    /// else is. Without `peer_secret`, nothing.
    pub fn join_ring(&self, listening: std::net::SocketAddr) {
        let Some(peers) = &self.inner.peers else { return };
        let address = self.inner.config.advertise.clone().unwrap_or_else(|| listening.to_string());
        if peers.set_address(&address) {
            tokio::spawn(self.inner.clone().membership_loop(peers.clone(), self.stop.clone()));
        }
    }

    /// Leaves the ring (at shutdown), so that the others stop asking this host at once.
    pub async fn leave_ring(&self) {
        if self.inner.peers.is_some()
            && let Err(e) = self.inner.log.leave(&self.inner.config.host_id).await
        {
            tracing::warn!(error = %e, "leaving the ring of key owners failed; the others see this host gone after member_timeout");
        }
    }

    /// The caches other hosts' invalidations reach from now on (a reload rebuilt some).
    pub fn set_caches(&self, caches: Caches) {
        *self.inner.caches.write() = caches;
    }

    /// The secrets of host-signed URLs every replica shares, current first, with when each was
    /// retired (unix seconds); with `fresh`, stored first (see [`InvalidationLog::url_secrets`]).
    pub(crate) async fn url_secrets(&self, fresh: Option<(Vec<u8>, bool)>, kept: Duration) -> anyhow::Result<Vec<(Vec<u8>, Option<u64>)>> {
        let rows = self.inner.log.url_secrets(fresh, kept).await.context("log: the URL secrets")?;
        Ok(rows.into_iter().map(|(bytes, retired)| (bytes, retired.map(|t| t.max(0) as u64))).collect())
    }

    pub(crate) fn inner(&self) -> &Arc<NodeInner> {
        &self.inner
    }

    pub fn host_id(&self) -> &str {
        &self.inner.config.host_id
    }

    /// The last position applied.
    pub fn applied(&self) -> u64 {
        *self.inner.applied.borrow()
    }

    /// Whether the caches are trusted now (the last successful read of the log is recent).
    pub fn is_synced(&self) -> bool {
        self.inner.is_synced()
    }

    pub fn stats(&self) -> ClusterStats {
        self.inner.stats()
    }

    /// Records the disk tier's position (at shutdown; it is also recorded as the host goes).
    pub fn flush(&self) -> anyhow::Result<()> {
        self.inner.save_position()
    }
}

impl NodeInner {
    fn now_ns(&self) -> u64 {
        (self.started.elapsed().as_nanos() as u64).max(1)
    }

    fn sync_age(&self) -> Option<Duration> {
        match self.synced_ns.load(Ordering::Acquire) {
            0 => None,
            at => Some(Duration::from_nanos(self.now_ns().saturating_sub(at))),
        }
    }

    pub(crate) fn is_synced(&self) -> bool {
        self.sync_age().is_some_and(|age| age < self.config.max_staleness)
    }

    /// Whether a read with `ctx` may be answered from the caches: the host is synced, and it has
    /// applied the position the caller asks for (waiting for it for a while: its notification
    /// is usually milliseconds away).
    pub(crate) async fn caches_usable(&self, ctx: &Ctx) -> bool {
        if let Some(wanted) = ctx.required_log_seq()
            && *self.applied.borrow() < wanted
        {
            let remaining = ctx.get_deadline().map_or(self.config.max_staleness, |d| d.saturating_duration_since(Instant::now()) / 2);
            let mut applied = self.applied.subscribe();
            let reached = tokio::time::timeout(self.config.max_staleness.min(remaining), applied.wait_for(|seq| *seq >= wanted)).await;
            if !matches!(reached, Ok(Ok(_))) {
                self.metrics.min_seq_bypasses.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        if self.is_synced() {
            return true;
        }
        self.metrics.stale_bypasses.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Puts a write's invalidations in the log and returns the position they were published at.
    /// Waits for the append (batched with other writes' appends, and retried every `poll` while
    /// the log cannot be reached) for at most [`PUBLISH_PATIENCE`] within the caller's deadline;
    /// an append still failing then stays queued and is retried until it lands.
    ///
    /// With traces on, the wait is a span (`invalidation log append`) whose context the events
    /// carry, so that their application on other hosts is in the writer's trace.
    pub(crate) async fn publish(&self, ctx: &Ctx, invalidations: Vec<Invalidation>) -> Result<u64, StoreError> {
        let span = append_span(invalidations.len());
        let trace = crate::base::telemetry::traceparent(&span);
        let (reply, answer) = oneshot::channel();
        self.publish
            .send(Pending { invalidations, trace, reply })
            .map_err(|_| StoreError::Unavailable("the host is shutting down: its replication log is closed".into()))?;
        let patience = Instant::now() + PUBLISH_PATIENCE;
        let deadline = ctx.get_deadline().map_or(patience, |deadline| deadline.min(patience));
        let answer = tokio::time::timeout_at(deadline.into(), answer)
            .instrument(span.clone())
            .await
            .map_err(|_| "the log did not take it in the time a write waits".to_string());
        match &answer {
            Ok(Ok(Ok(seq))) => span.record("storehost.log.seq", *seq as i64),
            _ => span.record("otel.status_code", "ERROR"),
        };
        match answer {
            Ok(Ok(Ok(seq))) => {
                ctx.record_write(seq);
                Ok(seq)
            }
            Ok(Ok(Err(why))) | Err(why) => Err(StoreError::Unavailable(format!(
                "the write reached the origin, but its invalidation is not yet in the replication log ({why}); it is retried until it \
                 lands, and other hosts may serve the older value until then"
            ))),
            Ok(Err(_)) => Err(StoreError::Unavailable("the host is shutting down: its replication log is closed".into())),
        }
    }

    async fn publish_loop(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<Pending>, stop: CancellationToken) {
        let mut backlog: Vec<(Invalidation, Option<String>)> = Vec::new();
        // Writes whose append failed and that still wait for it: answered when a retry lands.
        let mut parked: Vec<Pending> = Vec::new();
        let mut retry = tokio::time::interval(self.config.poll);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut waiting = Vec::new();
            tokio::select! {
                _ = stop.cancelled() => return,
                pending = queue.recv() => match pending {
                    Some(pending) => waiting.push(pending),
                    None => return,
                },
                _ = retry.tick(), if !backlog.is_empty() => {}
            }
            while let Ok(pending) = queue.try_recv() {
                waiting.push(pending);
            }
            let mut batch = std::mem::take(&mut backlog);
            let mut seen: HashSet<Invalidation> = batch.iter().map(|(i, _)| i.clone()).collect();
            for pending in &waiting {
                let fresh = pending.invalidations.iter().filter(|i| seen.insert((*i).clone()));
                batch.extend(fresh.map(|i| (i.clone(), pending.trace.clone())));
            }
            match self.append(&batch).await {
                Ok(head) => {
                    self.head_seen.fetch_max(head, Ordering::AcqRel);
                    self.metrics.published.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.metrics.batches.fetch_add(1, Ordering::Relaxed);
                    for pending in parked.drain(..).chain(waiting) {
                        let _ = pending.reply.send(Ok(head));
                    }
                }
                Err(e) => {
                    self.metrics.publish_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, events = batch.len(), "appending to the invalidation log failed; retrying");
                    parked.extend(waiting);
                    parked.retain(|pending| !pending.reply.is_closed());
                    backlog = batch;
                }
            }
            self.metrics.backlog.store(backlog.len() as u64, Ordering::Relaxed);
        }
    }

    /// Appends `batch` in statements of at most [`APPEND_BATCH`]; the last position.
    async fn append(&self, batch: &[(Invalidation, Option<String>)]) -> Result<u64, sqlx::Error> {
        let mut head = 0;
        for chunk in batch.chunks(APPEND_BATCH) {
            head = self.log.append(&self.config.host_id, chunk).await?;
        }
        Ok(head)
    }

    async fn follow_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut poll = tokio::time::interval(self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.notified.notified() => Trigger::Notified,
                _ = self.poke.notified() => Trigger::Poll,
                _ = poll.tick() => Trigger::Poll,
            };
            self.catch_up(trigger).await;
        }
    }

    /// Reads and applies everything after the applied position; true when it caught up.
    async fn catch_up(&self, trigger: Trigger) -> bool {
        let gap = self.gap.swap(false, Ordering::AcqRel);
        let trigger = if gap { Trigger::Poll } else { trigger };
        loop {
            let started = self.now_ns();
            let from = *self.applied.borrow();
            let read = match self.log.read_after(from, READ_BATCH).await {
                Ok(read) => read,
                Err(e) => {
                    self.metrics.read_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "reading the invalidation log failed");
                    if gap {
                        self.gap.store(true, Ordering::Release);
                    }
                    return false;
                }
            };
            let complete = read.events.len() < READ_BATCH as usize;
            let position = {
                let _applying = self.applying.lock();
                // A notification may have applied some of these meanwhile.
                let applied = *self.applied.borrow();
                let mut position = applied;
                if read.pruned_through > applied {
                    // Events this host never applied were pruned: nothing cached can be trusted.
                    tracing::warn!(applied, pruned_through = read.pruned_through, "the log was pruned past this host's position; caches dropped");
                    self.caches.read().clear();
                    self.metrics.full_flushes.fetch_add(1, Ordering::Relaxed);
                    position = read.pruned_through;
                }
                for event in &read.events {
                    if event.seq > position {
                        self.apply(&event.host, event.invalidation.as_ref(), event.committed_at_ms, trigger, event.trace.as_deref());
                        position = event.seq;
                    }
                }
                self.advance(position);
                position
            };
            if complete {
                self.synced_ns.store(started, Ordering::Release);
                if self.saved.swap(position, Ordering::AcqRel) != position
                    && let Err(e) = self.save_position()
                {
                    tracing::warn!(error = %e, "recording the disk tier's log position failed");
                }
                return true;
            }
        }
    }

    /// Applies one event of `host` (under `applying`); with traces on, an event whose write was
    /// traced is applied in a span of the writer's trace, linked to the writer's append span.
    fn apply(&self, host: &str, invalidation: Option<&Invalidation>, committed_at_ms: f64, trigger: Trigger, trace: Option<&str>) {
        if host == self.config.host_id {
            self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let _span = trace.and_then(|trace| apply_span(trace, host, invalidation, trigger)).map(|span| span.entered());
        match invalidation {
            Some(invalidation) => self.caches.read().apply(invalidation),
            None => {
                tracing::warn!("an invalidation of a kind this host does not know; caches dropped");
                self.caches.read().clear();
                self.metrics.full_flushes.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.metrics.applied.fetch_add(1, Ordering::Relaxed);
        if trigger == Trigger::Poll {
            self.metrics.replayed.fetch_add(1, Ordering::Relaxed);
        }
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        self.metrics.apply_latency.record(Duration::from_secs_f64(((now_ms - committed_at_ms) / 1000.0).max(0.0)));
    }

    /// Moves the applied position to `position` (under `applying`).
    fn advance(&self, position: u64) {
        self.head_seen.fetch_max(position, Ordering::AcqRel);
        self.applied.send_if_modified(|applied| {
            let moved = position > *applied;
            *applied = (*applied).max(position);
            moved
        });
    }

    /// Applies a notified batch straight from its notification when it follows the applied
    /// position; false when the log must be read instead (an earlier batch was missed, the
    /// events did not fit in the notification, or it cannot be parsed).
    fn apply_notification(&self, payload: &str) -> bool {
        let Some(note) = Notification::parse(payload) else { return false };
        self.head_seen.fetch_max(note.last, Ordering::AcqRel);
        let _applying = self.applying.lock();
        let applied = *self.applied.borrow();
        if note.last <= applied {
            return true;
        }
        if note.first != applied + 1 {
            return false;
        }
        let (host, at, last) = (note.host.clone(), note.committed_at_ms, note.last);
        let Some(invalidations) = note.invalidations() else { return false };
        for (invalidation, trace) in &invalidations {
            self.apply(&host, invalidation.as_ref(), at, Trigger::Notified, trace.as_deref());
        }
        self.advance(last);
        true
    }

    async fn listen_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut lost = false;
        loop {
            let listener = tokio::select! {
                _ = stop.cancelled() => return,
                listener = self.log.listen() => listener,
            };
            let mut listener = match listener {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::debug!(error = %e, "listening on the invalidation log failed");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(self.config.poll) => continue,
                    }
                }
            };
            if lost {
                // Whatever was appended while the listener was away was not notified: read it.
                self.poke.notify_one();
            }
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    next = listener.try_recv() => next,
                };
                match next {
                    Ok(Some(notification)) => {
                        if !self.apply_notification(notification.payload()) {
                            self.notified.notify_one();
                        }
                    }
                    Ok(None) | Err(_) => {
                        tracing::info!("the invalidation log's listener lost its connection; reconnecting");
                        self.metrics.gaps.fetch_add(1, Ordering::Relaxed);
                        self.gap.store(true, Ordering::Release);
                        self.poke.notify_one();
                        lost = true;
                        break;
                    }
                }
            }
        }
    }

    /// Says this host is alive every heartbeat, and puts the members that are on the ring.
    async fn membership_loop(self: Arc<Self>, peers: Arc<Peers>, stop: CancellationToken) {
        let address = peers.address().unwrap_or_default().to_string();
        let mut beat = tokio::time::interval(self.config.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = beat.tick() => {}
            }
            match self.log.heartbeat(&self.config.host_id, &address, self.config.member_timeout).await {
                Ok(members) => {
                    peers.set_members(members);
                }
                Err(e) => tracing::debug!(error = %e, "the heartbeat to the log's database failed"),
            }
        }
    }

    async fn prune_loop(self: Arc<Self>, stop: CancellationToken) {
        let every = (self.config.retain / 10).clamp(Duration::from_secs(1), Duration::from_secs(300));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.log.prune(self.config.retain).await {
                Ok(Some(through)) => tracing::debug!(through, "pruned the invalidation log"),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "pruning the invalidation log failed"),
            }
        }
    }

    fn save_position(&self) -> anyhow::Result<()> {
        let Some(path) = &self.position_file else { return Ok(()) };
        crate::base::write_replacing(path, format!("{} {}\n", self.log_id, *self.applied.borrow()).as_bytes())
    }

    pub(crate) fn stats(&self) -> ClusterStats {
        let applied = *self.applied.borrow();
        ClusterStats {
            host_id: self.config.host_id.clone(),
            applied,
            lag: self.head_seen.load(Ordering::Acquire).saturating_sub(applied),
            synced: self.is_synced(),
            sync_age: self.sync_age(),
            ..self.metrics.snapshot()
        }
    }
}

/// The span of a write's wait for its invalidations to be in the log (with traces on).
fn append_span(events: usize) -> tracing::Span {
    if !crate::base::telemetry::on() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: "storehost::cluster",
        "invalidation log append",
        otel.kind = "producer",
        storehost.log.events = events as i64,
        storehost.log.seq = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// The span of applying a traced write's event (with traces on): a child of the writer's append
/// span, which it also links to (the application happens in a process of its own).
fn apply_span(trace: &str, writer: &str, invalidation: Option<&Invalidation>, trigger: Trigger) -> Option<tracing::Span> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !crate::base::telemetry::on() {
        return None;
    }
    let writers = crate::base::telemetry::remote(trace)?;
    let span = tracing::info_span!(
        target: "storehost::cluster",
        parent: None,
        "invalidation apply",
        otel.kind = "consumer",
        storehost.cluster.writer = writer,
        storehost.cache.domain = invalidation.map_or("unknown", |i| i.domain().name()),
        storehost.cluster.read = if trigger == Trigger::Notified { "notification" } else { "log" },
    );
    span.add_link(writers.span().span_context().clone());
    let _ = span.set_parent(writers);
    Some(span)
}

/// The position recorded in `path`, if it was recorded in the log `log_id`.
fn read_position(path: &std::path::Path, log_id: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let (id, seq) = text.trim().split_once(' ')?;
    (id == log_id).then(|| seq.parse().ok()).flatten()
}
