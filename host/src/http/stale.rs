//! Answers from expired cache entries (`stale_if_error`): `X-Cache: stale` and `Age`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Where a request's `Ctx` records a stale answer (see [`crate::base::Ctx::record_stale`]).
#[derive(Clone)]
pub(crate) struct StaleSlot(pub(crate) Arc<AtomicU64>);

/// Marks an answer that came, in whole or in part, from an entry past its TTL because the
/// origin could not answer: `X-Cache: stale`, and `Age` in seconds (RFC 9111).
pub(crate) async fn stale_answers(mut request: Request, next: Next) -> Response {
    let slot = Arc::new(AtomicU64::new(0));
    request.extensions_mut().insert(StaleSlot(slot.clone()));
    let mut response = next.run(request).await;
    let recorded = slot.load(Ordering::Acquire);
    if recorded > 0 && response.status().is_success() {
        let age_secs = (recorded - 1) / 1000;
        let headers = response.headers_mut();
        headers.insert("x-cache", HeaderValue::from_static("stale"));
        headers.insert(header::AGE, HeaderValue::from(age_secs));
    }
    response
}
