//! Gateway artifacts. A stored record is `[u32 LE header length][ArtifactMeta JSON][body]`, one
//! value, so a put is one atomic write.

use sha2::{Digest, Sha256};

use crate::bindings::exports::storehost::origin::artifacts::{Artifact, ArtifactMeta, ArtifactPage, Guest};
use crate::{Backend, Origin, Result, StoreError, Table, decode, internal, now_ms, page_limit, validate_artifact_key};

/// Largest body the built-in backends accept.
pub const MAX_BODY: usize = 256 << 20;

fn encode_record(meta: &ArtifactMeta, body: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(meta).expect("metadata serialises");
    let mut out = Vec::with_capacity(4 + header.len() + body.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

/// Splits a record into its metadata and the offset where the body starts; `None` when the
/// bytes hold less than the whole header.
fn decode_header(key: &str, bytes: &[u8]) -> Result<Option<(ArtifactMeta, usize)>> {
    let Some(len) = bytes.get(..4) else { return Ok(None) };
    let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
    let Some(header) = bytes.get(4..4 + len) else { return Ok(None) };
    let meta: ArtifactMeta = decode(Table::Artifacts, key, header)?;
    Ok(Some((meta, 4 + len)))
}

fn read_meta<B: Backend>(b: &mut B, key: &str) -> Result<Option<ArtifactMeta>> {
    // Metadata is small; read a prefix first, and the whole record only for a huge header.
    let Some(prefix) = b.get_prefix(Table::Artifacts, key, 4096)? else { return Ok(None) };
    if let Some((meta, _)) = decode_header(key, &prefix)? {
        return Ok(Some(meta));
    }
    let Some(all) = b.get(Table::Artifacts, key)? else { return Ok(None) };
    match decode_header(key, &all)? {
        Some((meta, _)) => Ok(Some(meta)),
        None => Err(internal("corrupt artifact record", key)),
    }
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound(format!("artifact {key:?}"))
}

impl<B: Backend> Guest for Origin<B> {
    fn put(key: String, body: Vec<u8>, content_type: Option<String>) -> Result<ArtifactMeta> {
        B::with(|b| {
            b.before_call("artifacts.put", &key)?;
            validate_artifact_key(&key)?;
            if body.len() > MAX_BODY {
                return Err(StoreError::Invalid(format!("body of {} bytes is over the {MAX_BODY}-byte limit", body.len())));
            }
            let meta = ArtifactMeta {
                key: key.clone(),
                size: body.len() as u64,
                content_type,
                sha256: hex::encode(Sha256::digest(&body)),
                created_at: now_ms(),
            };
            b.put(Table::Artifacts, &key, &encode_record(&meta, &body))?;
            Ok(meta)
        })
    }

    fn get(key: String) -> Result<Artifact> {
        B::with(|b| {
            b.before_call("artifacts.get", &key)?;
            validate_artifact_key(&key)?;
            let mut bytes = b.get(Table::Artifacts, &key)?.ok_or_else(|| not_found(&key))?;
            let (meta, start) = decode_header(&key, &bytes)?.ok_or_else(|| internal("truncated artifact record", &key))?;
            bytes.drain(..start);
            if bytes.len() as u64 != meta.size {
                return Err(internal("artifact body length differs from its metadata", &key));
            }
            Ok(Artifact { meta, body: bytes })
        })
    }

    fn head(key: String) -> Result<ArtifactMeta> {
        B::with(|b| {
            b.before_call("artifacts.head", &key)?;
            validate_artifact_key(&key)?;
            read_meta(b, &key)?.ok_or_else(|| not_found(&key))
        })
    }

    fn list(prefix: String, cursor: Option<String>, limit: u32) -> Result<ArtifactPage> {
        B::with(|b| {
            b.before_call("artifacts.list", &prefix)?;
            let limit = page_limit(limit);
            // One more than asked tells whether another page follows.
            let keys = b.keys(Table::Artifacts, &prefix, cursor.as_deref(), limit + 1)?;
            let more = keys.len() > limit;
            let mut items = Vec::with_capacity(keys.len().min(limit));
            for key in keys.into_iter().take(limit) {
                // A key deleted between the listing and the read is skipped.
                if let Some(meta) = read_meta(b, &key)? {
                    items.push(meta);
                }
            }
            let next_cursor = if more { items.last().map(|m| m.key.clone()) } else { None };
            Ok(ArtifactPage { items, next_cursor })
        })
    }

    fn get_url(key: String, _expires_in_secs: u32) -> Result<Option<String>> {
        B::with(|b| {
            b.before_call("artifacts.get-url", &key)?;
            validate_artifact_key(&key)?;
            // Local storage has no URL of its own: the host signs one.
            read_meta(b, &key)?.ok_or_else(|| not_found(&key))?;
            Ok(None)
        })
    }

    fn delete(key: String) -> Result<()> {
        B::with(|b| {
            b.before_call("artifacts.delete", &key)?;
            validate_artifact_key(&key)?;
            b.delete(Table::Artifacts, &key)
        })
    }
}
