//! Read-your-writes across hosts: a write's answer carries the position its invalidations were
//! published at in the cluster's log (`Storehost-Log-Seq`), and a read that sends a position
//! (`Storehost-Min-Seq`) is answered from a host's caches only once that host has applied it.

use std::sync::atomic::AtomicU64;

use axum::http::HeaderValue;
use axum::response::Response;

use super::ApiError;

/// The header of a write's answer: the log position it was published at.
pub const LOG_SEQ: &str = "storehost-log-seq";
/// The header of a read: the log position the answering host must have applied.
pub const MIN_SEQ: &str = "storehost-min-seq";
/// [`LOG_SEQ`] as documents write it.
pub const LOG_SEQ_HEADER: &str = "Storehost-Log-Seq";
/// [`MIN_SEQ`] as documents write it.
pub const MIN_SEQ_HEADER: &str = "Storehost-Min-Seq";

/// The position a request's `Storehost-Min-Seq` asks for; 400 when it is not a number.
pub(crate) fn min_seq(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(MIN_SEQ).map(|v| v.to_str().ok().and_then(|t| t.trim().parse::<u64>().ok())) {
        None => Ok(None),
        Some(Some(seq)) => Ok(Some(seq)),
        Some(None) => Err(ApiError::invalid(format!("{MIN_SEQ} must be a log position (a number)"))),
    }
}

/// `Storehost-Log-Seq` on the answer of a request that wrote (at the position in `written`).
pub(crate) fn answer(written: &AtomicU64, response: &mut Response) {
    let seq = written.load(std::sync::atomic::Ordering::Acquire);
    if seq > 0 {
        response.headers_mut().insert(LOG_SEQ, HeaderValue::from(seq));
    }
}
