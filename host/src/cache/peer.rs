//! What the artifact cache asks of the other replicas with peer fill: each key has an owner
//! among them, and a read of a key another replica owns is answered by that replica. The
//! cluster implements it (`crate::cluster::Peers`); the cache only asks.

use std::sync::Arc;

use async_trait::async_trait;

use crate::base::Ctx;
use crate::domain::{Artifact, ArtifactReader, ByteRange};

/// What a key's owner answered.
pub enum PeerAnswer {
    /// The whole artifact, read to its end.
    Whole(Artifact),
    /// A range, or a body too large to hold: streamed from the owner.
    Read(ArtifactReader),
    /// The owner says there is no such key.
    NotFound,
    /// No usable answer in time (the owner is down, slow, or refused): read the origin.
    Failed,
}

/// The other replicas, as a cache with peer fill sees them.
#[async_trait]
pub trait PeerSource: Send + Sync {
    /// The replica to ask for `key`: its owner, when that is another replica that can be asked
    /// now.
    fn ask(&self, key: &str) -> Option<Arc<str>>;

    /// Whether another replica owns `key` (whether or not it can be asked now).
    fn owned_elsewhere(&self, key: &str) -> bool;

    /// Asks `owner` for `range` of `key`; a body of at most `hold` bytes is read whole before
    /// it is answered.
    async fn read(&self, ctx: &Ctx, owner: &Arc<str>, key: &str, range: ByteRange, hold: u64) -> PeerAnswer;

    /// Whether to keep an owner's answer as a hot copy (a sample of them).
    fn admit(&self) -> bool;
}
