//! One cache across the replicas (peer fill). Every live member of the cluster registers in the
//! log's database (its address and a heartbeat); a consistent-hash ring over the live members'
//! addresses gives each key an owner, and the ring changes only between neighbours when a member
//! joins or leaves. A replica that misses on a key it does not own asks the owner over an
//! internal route ([`ROUTE`], outside the API, each request signed with the shared secret); the
//! owner answers from its caches or fills them once from the origin (its loads are coalesced, so
//! concurrent misses across the cluster are one origin read). The asking replica keeps a hot copy
//! of one answer in [`HOT_SAMPLE`] (a key it reads often is soon among them).
//!
//! Coherence: the owner answers only once it has applied every invalidation the asking replica
//! had applied when it asked (the request carries that position as `Storehost-Min-Seq`), so a peer
//! answer is never older than what the asking replica would have served itself; hot copies are
//! evicted by the log as every entry is. An owner that does not answer within the bound is
//! skipped (the replica reads the origin itself) and left alone for a while.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use hashring::HashRing;
use tokio::sync::watch;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::ClusterConfig;
use crate::base::{Ctx, StoreError, now_secs};
use crate::cache::{PeerAnswer, PeerSource};
use crate::domain::{Artifact, ArtifactMeta, ArtifactReader, ByteRange, Served};

/// The internal route's prefix; the key follows, percent-encoded as in the API's paths.
pub const ROUTE: &str = "/_storehost/peer/artifacts/";
/// The request's signature: `EXPIRES.HEX` (HMAC-SHA256 of the key and the expiry).
pub const AUTH_HEADER: &str = "storehost-peer";
/// The answer's metadata of the whole artifact: base64 (URL alphabet) of its JSON.
pub const META_HEADER: &str = "storehost-peer-meta";
/// The range asked for (`START-END`, end exclusive, or `START-` for the rest), and answered.
pub const RANGE_HEADER: &str = "storehost-peer-range";
/// Says that a 404 is the owner's answer (no such key), not a missing route.
pub const NOT_FOUND_HEADER: &str = "storehost-peer-not-found";

/// Places of each member on the ring: enough for an even share of the keys.
const VNODES: u32 = 64;
/// One answer from an owner in this many is kept as a hot copy.
pub const HOT_SAMPLE: u64 = 10;
/// How long a signed request stays valid (clocks of replicas differ by less).
const SIGNATURE_LIFETIME: u64 = 60;
/// The API's `Storehost-Min-Seq`: the log position the owner must have applied to answer.
const MIN_SEQ: &str = "storehost-min-seq";

/// One place of a member on the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    address: Arc<str>,
    index: u32,
}

impl Hash for Place {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.address.hash(state);
        self.index.hash(state);
    }
}

/// The live members and their ring.
#[derive(Default)]
struct Ring {
    /// Addresses, sorted.
    members: Vec<Arc<str>>,
    ring: HashRing<Place>,
}

impl Ring {
    fn of(members: Vec<Arc<str>>) -> Ring {
        let mut ring = HashRing::new();
        ring.batch_add(members.iter().flat_map(|address| (0..VNODES).map(|index| Place { address: address.clone(), index })).collect());
        Ring { members, ring }
    }
}

/// The counters of peer fill.
#[derive(Default)]
pub(crate) struct PeerMetrics {
    /// Reads answered by their key's owner.
    pub(crate) ok: AtomicU64,
    /// Reads the owner answered with "no such key".
    pub(crate) not_found: AtomicU64,
    /// Reads whose owner failed (could not be reached, refused, or cut the answer).
    pub(crate) error: AtomicU64,
    /// Reads whose owner did not answer within the bound.
    pub(crate) timeout: AtomicU64,
    /// Reads not sent to their owner, which had failed a moment before.
    pub(crate) skipped: AtomicU64,
    /// Reads this host answered for other members.
    pub(crate) served: AtomicU64,
    /// Answers kept as hot copies.
    pub(crate) hot: AtomicU64,
    /// Changes of the ring seen.
    pub(crate) ring_changes: AtomicU64,
}

/// A snapshot of peer fill on one host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerStats {
    /// Live members' addresses, this host's among them.
    pub members: Vec<String>,
    /// This host's address on the ring (empty until it registered).
    pub address: String,
    /// Requests to owners by result: `ok`, `not_found`, `error`, `timeout`, `skipped`.
    pub requests: [(&'static str, u64); 5],
    pub served: u64,
    pub hot: u64,
    pub ring_changes: u64,
}

/// This host's view of the ring, and its client to the other members.
pub struct Peers {
    secret: Vec<u8>,
    /// Where the other members reach this one: set once it listens.
    address: OnceLock<Arc<str>>,
    ring: parking_lot::RwLock<Arc<Ring>>,
    /// Members that failed a request, left alone until the instant given.
    resting: parking_lot::Mutex<HashMap<Arc<str>, Instant>>,
    client: reqwest::Client,
    timeout: Duration,
    /// How long a member that failed a request is left alone.
    rest: Duration,
    /// The position this host has applied, which an owner must have applied to answer.
    applied: watch::Receiver<u64>,
    answers: AtomicU64,
    pub(crate) metrics: PeerMetrics,
}

impl Peers {
    pub(crate) fn new(config: &ClusterConfig, secret: &str, applied: watch::Receiver<u64>) -> Peers {
        let client = reqwest::Client::builder()
            .connect_timeout(config.peer_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client without TLS builds");
        Peers {
            secret: secret.as_bytes().to_vec(),
            address: OnceLock::new(),
            ring: parking_lot::RwLock::new(Arc::new(Ring::default())),
            resting: parking_lot::Mutex::new(HashMap::new()),
            client,
            timeout: config.peer_timeout,
            rest: config.member_timeout,
            applied,
            answers: AtomicU64::new(0),
            metrics: PeerMetrics::default(),
        }
    }

    /// Sets the address this host is reached on (once); false if one was set already.
    pub(crate) fn set_address(&self, address: &str) -> bool {
        self.address.set(address.into()).is_ok()
    }

    pub(crate) fn address(&self) -> Option<&str> {
        self.address.get().map(|a| &**a)
    }

    /// Replaces the live members (addresses); true when the ring changed.
    pub(crate) fn set_members(&self, mut members: Vec<String>) -> bool {
        members.sort();
        members.dedup();
        if self.ring.read().members.iter().map(|m| &**m).eq(members.iter().map(String::as_str)) {
            return false;
        }
        let members: Vec<Arc<str>> = members.into_iter().map(Arc::from).collect();
        self.resting.lock().retain(|address, _| members.contains(address));
        tracing::info!(members = ?members, "the ring of key owners changed");
        *self.ring.write() = Arc::new(Ring::of(members));
        self.metrics.ring_changes.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The address of `key`'s owner, when it is another member (not this host, and the ring is
    /// not empty).
    pub(crate) fn owner_of(&self, key: &str) -> Option<Arc<str>> {
        let ring = self.ring.read().clone();
        let owner = &ring.ring.get(&key)?.address;
        (Some(&**owner) != self.address()).then(|| owner.clone())
    }

    /// The signature of a request for `key` that expires at `expires` (unix seconds).
    fn mac(&self, key: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(format!("peer\n{expires}\n{key}").as_bytes());
        mac
    }

    fn signed(&self, key: &str) -> String {
        let expires = now_secs() + SIGNATURE_LIFETIME;
        format!("{expires}.{}", hex::encode(self.mac(key, expires).finalize().into_bytes()))
    }

    /// Whether `header` is a valid signature of a request for `key`, not expired (checked in
    /// constant time).
    pub(crate) fn verify(&self, key: &str, header: Option<&str>) -> bool {
        let Some((expires, sig)) = header.and_then(|h| h.split_once('.')) else { return false };
        let (Ok(expires), Ok(sig)) = (expires.parse::<u64>(), hex::decode(sig)) else { return false };
        let now = now_secs();
        now < expires && expires <= now + 2 * SIGNATURE_LIFETIME && self.mac(key, expires).verify_slice(&sig).is_ok()
    }

    /// A failed request to `owner`: counted, and the owner left alone for a while.
    fn failed(&self, owner: &Arc<str>, timed_out: bool, why: &dyn std::fmt::Display) -> PeerAnswer {
        let counter = if timed_out { &self.metrics.timeout } else { &self.metrics.error };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%owner, %why, "a key's owner did not answer; reading the origin, and leaving the owner alone for a while");
        self.resting.lock().insert(owner.clone(), Instant::now() + self.rest);
        PeerAnswer::Failed
    }

    pub fn stats(&self) -> PeerStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let m = &self.metrics;
        PeerStats {
            members: self.ring.read().members.iter().map(|m| m.to_string()).collect(),
            address: self.address().unwrap_or_default().to_string(),
            requests: [
                ("ok", load(&m.ok)),
                ("not_found", load(&m.not_found)),
                ("error", load(&m.error)),
                ("timeout", load(&m.timeout)),
                ("skipped", load(&m.skipped)),
            ],
            served: load(&m.served),
            hot: load(&m.hot),
            ring_changes: load(&m.ring_changes),
        }
    }
}

#[async_trait]
impl PeerSource for Peers {
    /// The member to ask for `key`: its owner, unless that is this host or it failed a moment
    /// ago (then this host reads the key itself).
    fn ask(&self, key: &str) -> Option<Arc<str>> {
        let owner = self.owner_of(key)?;
        let mut resting = self.resting.lock();
        match resting.get(&owner) {
            Some(until) if *until > Instant::now() => {
                self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
                None
            }
            Some(_) => {
                resting.remove(&owner);
                Some(owner)
            }
            None => Some(owner),
        }
    }

    fn owned_elsewhere(&self, key: &str) -> bool {
        self.owner_of(key).is_some()
    }

    /// Asks `owner` for `range` of `key`. The answer's head must come within the bound (the
    /// configured timeout, at most a quarter of what is left of `ctx`'s deadline); a body of at
    /// most `hold` bytes is read whole before it is answered, so that an owner failing half-way
    /// costs nothing but the origin read that replaces it.
    async fn read(&self, ctx: &Ctx, owner: &Arc<str>, key: &str, range: ByteRange, hold: u64) -> PeerAnswer {
        let bound = ctx.get_deadline().map_or(self.timeout, |d| self.timeout.min(d.saturating_duration_since(Instant::now()) / 4));
        let min_seq = ctx.required_log_seq().unwrap_or(0).max(*self.applied.borrow());
        let asked = match range.len {
            Some(len) => format!("{}-{}", range.offset, range.offset.saturating_add(len)),
            None => format!("{}-", range.offset),
        };
        let mut request = self
            .client
            .get(format!("http://{owner}{ROUTE}{}", crate::base::encode_path(key)))
            .header(AUTH_HEADER, self.signed(key))
            .header(MIN_SEQ, min_seq)
            .header(RANGE_HEADER, asked);
        // With traces on, the owner's request span continues this read's trace.
        if let Some(parent) = crate::base::telemetry::traceparent(&tracing::Span::current()) {
            request = request.header("traceparent", parent);
        }
        let request = request.send();
        let response = match tokio::time::timeout(bound, request).await {
            Err(_) => return self.failed(owner, true, &format!("no answer in {bound:?}")),
            Ok(Err(e)) => return self.failed(owner, e.is_timeout(), &crate::base::chain(&e)),
            Ok(Ok(response)) => response,
        };
        if response.status() == reqwest::StatusCode::NOT_FOUND && response.headers().contains_key(NOT_FOUND_HEADER) {
            self.metrics.not_found.fetch_add(1, Ordering::Relaxed);
            return PeerAnswer::NotFound;
        }
        if response.status() != reqwest::StatusCode::OK {
            return self.failed(owner, false, &format!("status {}", response.status()));
        }
        let Some((meta, answered)) = answer_head(response.headers()) else {
            return self.failed(owner, false, &"an answer without its metadata");
        };
        let len = answered.end - answered.start;
        if len > hold {
            self.metrics.ok.fetch_add(1, Ordering::Relaxed);
            let body = response.bytes_stream().map(|chunk| chunk.map_err(|e| StoreError::Unavailable(format!("the key's owner: {e}"))));
            return PeerAnswer::Read(ArtifactReader { meta, range: answered, body: body.boxed(), served: Served::Peer });
        }
        let body = match tokio::time::timeout(bound, response.bytes()).await {
            Ok(Ok(body)) if body.len() as u64 == len => body,
            Ok(Ok(body)) => return self.failed(owner, false, &format!("{} bytes of {len}", body.len())),
            Ok(Err(e)) => return self.failed(owner, false, &crate::base::chain(&e)),
            Err(_) => return self.failed(owner, true, &format!("the body took more than {bound:?}")),
        };
        self.metrics.ok.fetch_add(1, Ordering::Relaxed);
        if answered.start == 0 && len == meta.size {
            return PeerAnswer::Whole(Artifact { meta, body, served: Served::Peer });
        }
        PeerAnswer::Read(ArtifactReader { meta, range: answered, body: crate::domain::body::once(body), served: Served::Peer })
    }

    /// Whether to keep an owner's answer as a hot copy: one in [`HOT_SAMPLE`].
    fn admit(&self) -> bool {
        let admitted = self.answers.fetch_add(1, Ordering::Relaxed).is_multiple_of(HOT_SAMPLE);
        if admitted {
            self.metrics.hot.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }
}

/// The metadata and the range of an owner's answer.
fn answer_head(headers: &reqwest::header::HeaderMap) -> Option<(ArtifactMeta, std::ops::Range<u64>)> {
    let meta = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(headers.get(META_HEADER)?.as_bytes()).ok()?;
    let meta: ArtifactMeta = serde_json::from_slice(&meta).ok()?;
    let (start, end) = headers.get(RANGE_HEADER)?.to_str().ok()?.split_once('-')?;
    let (start, end) = (start.parse().ok()?, end.parse().ok()?);
    (start <= end && end <= meta.size).then_some((meta, start..end))
}

/// The headers of an owner's answer: the whole artifact's metadata and the range that follows.
pub(crate) fn answer_headers(meta: &ArtifactMeta, range: &std::ops::Range<u64>) -> [(&'static str, String); 2] {
    let meta = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(meta).expect("metadata serializes"));
    [(META_HEADER, meta), (RANGE_HEADER, format!("{}-{}", range.start, range.end))]
}

/// The range a request asked for ([`RANGE_HEADER`]); `None` when it is malformed.
pub(crate) fn asked_range(header: Option<&str>) -> Option<ByteRange> {
    let Some(text) = header else { return Some(ByteRange::ALL) };
    let (start, end) = text.split_once('-')?;
    let start: u64 = start.parse().ok()?;
    match end {
        "" => Some(ByteRange::new(start, None)),
        end => {
            let end: u64 = end.parse().ok()?;
            (end >= start).then(|| ByteRange::new(start, Some(end - start)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(address: &str) -> Peers {
        let (_, applied) = watch::channel(0);
        let peers = Peers::new(&ClusterConfig::new("postgres://unused"), "a secret of sixteen bytes", applied);
        peers.set_address(address);
        peers
    }

    #[test]
    fn every_member_agrees_on_each_key_s_owner_and_keys_move_only_to_or_from_a_changed_member() {
        let members = |n: usize| (0..n).map(|i| format!("10.0.0.{i}:8080")).collect::<Vec<_>>();
        let views: Vec<Peers> = members(3).iter().map(|a| peers(a)).collect();
        for view in &views {
            view.set_members(members(3));
        }
        let owner = |view: &Peers, key: &str| view.owner_of(key).map(|o| o.to_string()).unwrap_or_else(|| view.address().unwrap().to_string());
        let keys: Vec<String> = (0..3000).map(|i| format!("runs/{i}/log.txt")).collect();
        let mut shares = HashMap::<String, usize>::new();
        for key in &keys {
            let owners: Vec<String> = views.iter().map(|v| owner(v, key)).collect();
            assert!(owners.windows(2).all(|w| w[0] == w[1]), "{key}: {owners:?}");
            *shares.entry(owners[0].clone()).or_default() += 1;
        }
        assert_eq!(shares.len(), 3);
        assert!(shares.values().all(|&n| n > 600), "uneven shares: {shares:?}");
        // A fourth member joins: a key moves only to it.
        let before: Vec<String> = keys.iter().map(|k| owner(&views[0], k)).collect();
        views[0].set_members(members(4));
        let moved =
            keys.iter().zip(&before).filter(|(k, b)| owner(&views[0], k) != **b).inspect(|(k, _)| assert_eq!(owner(&views[0], k), "10.0.0.3:8080"));
        let moved = moved.count();
        assert!(moved > 400 && moved < 1200, "{moved} of 3000 keys moved to the new member");
        // It leaves again: every key is back where it was.
        views[0].set_members(members(3));
        assert!(keys.iter().zip(&before).all(|(k, b)| owner(&views[0], k) == *b));
    }

    #[test]
    fn a_signature_verifies_for_its_key_only_and_not_with_another_secret() {
        let (a, b) = (peers("10.0.0.1:1"), peers("10.0.0.2:1"));
        let signed = a.signed("a/key");
        assert!(b.verify("a/key", Some(&signed)));
        assert!(!b.verify("another/key", Some(&signed)));
        assert!(!b.verify("a/key", None));
        assert!(!b.verify("a/key", Some("123.abc")));
        let (_, applied) = watch::channel(0);
        let other = Peers::new(&ClusterConfig::new("postgres://unused"), "another secret, sixteen", applied);
        assert!(!other.verify("a/key", Some(&signed)));
    }

    #[test]
    fn asked_ranges_parse_and_malformed_ones_do_not() {
        assert_eq!(asked_range(None), Some(ByteRange::ALL));
        assert_eq!(asked_range(Some("0-")), Some(ByteRange::ALL));
        assert_eq!(asked_range(Some("10-20")), Some(ByteRange::new(10, Some(10))));
        assert_eq!(asked_range(Some("20-10")), None);
        assert_eq!(asked_range(Some("x-")), None);
    }
}
