mod delete;
mod get;
mod get_url;
mod head;
mod keys;
mod list;
mod put;
mod stream;

use std::sync::Arc;

use crate::domain::ArtifactStore;
use crate::domain::Stores;

pub(super) fn cases() -> Vec<super::Case> {
    [put::cases(), get::cases(), head::cases(), list::cases(), get_url::cases(), delete::cases(), keys::cases(), stream::cases()].concat()
}

fn store(s: &Stores) -> Arc<dyn ArtifactStore> {
    s.artifact.clone().expect("the suite skips targets without artifacts")
}

fn sha256_hex(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(body))
}
