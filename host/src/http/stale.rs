//! Answers from expired cache entries (`stale_if_error`): `X-Cache: stale` and `Age`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Marks an answer that came, in whole or in part, from an entry past its TTL because the
/// origin could not answer (as recorded in `slot`): `X-Cache: stale`, and `Age` in seconds
/// (RFC 9111).
pub(crate) fn mark(slot: &AtomicU64, response: &mut Response) {
    let recorded = slot.load(Ordering::Acquire);
    if recorded > 0 && response.status().is_success() {
        let age_secs = (recorded - 1) / 1000;
        let headers = response.headers_mut();
        headers.insert("x-cache", HeaderValue::from_static("stale"));
        headers.insert(header::AGE, HeaderValue::from(age_secs));
    }
}
