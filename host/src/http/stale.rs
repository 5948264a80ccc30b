//! Answers from expired cache entries (`stale_if_error`): `X-Cache: stale` and `Age`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Where a request's `Ctx` records a stale answer (see [`crate::base::Ctx::record_stale`]).
#[derive(Clone)]
pub(crate) struct StaleSlot(pub(crate) Arc<AtomicU64>);

/// Gives `request` a slot to record a stale answer in.
pub(crate) fn slot(request: &mut Request) -> Arc<AtomicU64> {
    let slot = Arc::new(AtomicU64::new(0));
    request.extensions_mut().insert(StaleSlot(slot.clone()));
    slot
}

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
