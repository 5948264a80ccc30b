//! Bodies of the byte domains (artifacts, runner files): `Range` requests answered with 206 and
//! `Content-Range` (416 outside the body), and uploads streamed into a store's sink chunk by
//! chunk, never held whole, under the domain's body limit.

use std::ops::Range;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{ApiError, ApiResult, Shared};
use crate::base::{Ctx, Domain, StoreError};
use crate::domain::body::CHUNK;
use crate::domain::{BodySink, BodyStream, ByteRange};

/// One range of a `Range: bytes=…` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// `bytes=first-` or `bytes=first-last` (inclusive).
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// The range a request asks for. A header that is not one well-formed `bytes` range (another
/// unit, several ranges, bad syntax) is ignored, as RFC 9110 allows: the whole body is sent.
pub(crate) fn requested(headers: &HeaderMap) -> Option<RangeSpec> {
    let value = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> { if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) { None } else { s.parse().ok() } };
    match (first.trim(), last.trim()) {
        ("", n) => Some(RangeSpec::Suffix(number(n)?)),
        (f, "") => Some(RangeSpec::From { first: number(f)?, last: None }),
        (f, l) => {
            let (first, last) = (number(f)?, number(l)?);
            (last >= first).then_some(RangeSpec::From { first, last: Some(last) })
        }
    }
}

impl RangeSpec {
    /// What to ask the store for, when that does not depend on the body's size.
    pub(crate) fn byte_range(self) -> Option<ByteRange> {
        match self {
            RangeSpec::From { first, last } => Some(ByteRange::new(first, last.map(|l| l - first + 1))),
            RangeSpec::Suffix(_) => None,
        }
    }

    /// The bytes it covers of a body of `size`; `None`: not satisfiable (416).
    pub(crate) fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            RangeSpec::From { first, .. } if first >= size => None,
            RangeSpec::From { first, last } => Some(first..last.map_or(size, |l| l.min(size - 1) + 1)),
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(_) if size == 0 => None,
            RangeSpec::Suffix(n) => Some(size.saturating_sub(n)..size),
        }
    }
}

/// The headers of a ranged answer: 206 with `Content-Range` and the part's length.
pub(crate) fn partial(headers: &mut HeaderMap, range: &Range<u64>, size: u64) -> StatusCode {
    let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
    headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&content_range).expect("digits are a valid header"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
    StatusCode::PARTIAL_CONTENT
}

/// 416, with the body's size as `Content-Range: bytes */size`.
pub(crate) fn unsatisfiable(size: u64) -> ApiError {
    ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range-not-satisfiable", format!("the range is outside the body of {size} bytes"))
        .with_header(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("digits are a valid header"))
}

/// `Accept-Ranges: bytes`.
pub(crate) fn accept_ranges(headers: &mut HeaderMap) {
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

/// The body of an answer of `len` bytes, read from `body` up to its first [`CHUNK`] before the
/// status line goes out: a body that fits in one chunk is in hand whole, so any failure of it is
/// a JSON error answer rather than a `200` that stops short. A longer body that fails after the
/// head went out closes the connection (the client sees fewer bytes than `Content-Length`, never
/// other bytes), and is logged at WARN with where it came from and counted
/// (`storehost_http_bodies_cut_total`).
///
/// `key` names the body in the log line; it is made only for a body longer than a chunk.
pub(crate) async fn primed(state: &Shared, domain: Domain, key: impl FnOnce() -> String, len: u64, mut body: BodyStream) -> ApiResult<Body> {
    let mut first: Vec<Bytes> = Vec::new();
    let mut held: u64 = 0;
    while held < len && held < CHUNK as u64 {
        match body.next().await {
            Some(Ok(chunk)) => {
                held += chunk.len() as u64;
                first.push(chunk);
            }
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }
    if held > len || (held < len && held < CHUNK as u64) {
        return Err(StoreError::Internal(format!("the origin gave {held} bytes of a body of {len}")).into());
    }
    if held == len {
        return Ok(match first.len() {
            0 => Body::empty(),
            1 => Body::from(first.pop().expect("one chunk")),
            _ => Body::from(first.concat()),
        });
    }
    let mut cut = CutWatch { state: state.clone(), domain, key: key(), len, sent: held };
    let rest = body.map(move |item| {
        match &item {
            Ok(chunk) => cut.sent += chunk.len() as u64,
            Err(e) => cut.report(e),
        }
        item
    });
    Ok(Body::from_stream(futures_util::stream::iter(first.into_iter().map(Ok)).chain(rest)))
}

/// What a body that fails after its head went out is reported with.
struct CutWatch {
    state: Shared,
    domain: Domain,
    key: String,
    len: u64,
    sent: u64,
}

impl CutWatch {
    fn report(&self, error: &StoreError) {
        self.state.bodies_cut[self.domain as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let app = self.state.app();
        let origin = app.manifest.domains.get(self.domain).map_or("", |d| d.origin.as_str());
        tracing::warn!(
            domain = %self.domain, key = %self.key, origin, sent = self.sent, len = self.len, %error,
            "a body failed after its head was sent: the connection is closed short"
        );
    }
}

/// The `Content-Length` a request declares.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Streams a request body into `sink` and finishes it. The body may not exceed `limit` bytes
/// (413), and the client may not pause longer than `idle` between two chunks (408). On any
/// failure, or if the client goes away (the handler is then dropped), the sink is dropped
/// unfinished: the store keeps nothing.
pub(crate) async fn upload<Done: Send + 'static>(
    ctx: &Ctx,
    body: Body,
    mut sink: Box<dyn BodySink<Done>>,
    limit: u64,
    idle: Duration,
) -> ApiResult<Done> {
    let stream_ctx = ctx.without_deadline();
    let mut frames = body.into_data_stream();
    let mut received: u64 = 0;
    loop {
        let next = tokio::time::timeout(idle, frames.next())
            .await
            .map_err(|_| ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", format!("the client sent nothing for {idle:?} mid-upload")))?;
        let chunk = match next {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(ApiError::invalid(format!("the upload was cut: {e}"))),
        };
        received += chunk.len() as u64;
        if received > limit {
            return Err(too_large(limit));
        }
        sink.write(&stream_ctx, chunk).await?;
    }
    Ok(sink.finish(&stream_ctx).await?)
}

/// 413 for a body over the domain's limit.
pub(crate) fn too_large(limit: u64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", format!("the request body is over this domain's max_body ({limit} bytes)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: &str) -> Option<RangeSpec> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        requested(&headers)
    }

    #[test]
    fn ranges_parse_and_resolve_as_rfc_9110_says() {
        assert_eq!(spec("bytes=0-0").unwrap().resolve(10), Some(0..1));
        assert_eq!(spec("bytes=9-9").unwrap().resolve(10), Some(9..10));
        assert_eq!(spec("bytes=5-").unwrap().resolve(10), Some(5..10));
        assert_eq!(spec("bytes=5-100").unwrap().resolve(10), Some(5..10));
        assert_eq!(spec("bytes=-3").unwrap().resolve(10), Some(7..10));
        assert_eq!(spec("bytes=-30").unwrap().resolve(10), Some(0..10));
        assert_eq!(spec("bytes=10-").unwrap().resolve(10), None);
        assert_eq!(spec("bytes=-0").unwrap().resolve(10), None);
        assert_eq!(spec("bytes=0-").unwrap().resolve(0), None);
        assert_eq!(spec("bytes=-1").unwrap().resolve(0), None);
        for ignored in ["items=0-1", "bytes=1-0", "bytes=0-1,3-4", "bytes=a-", "bytes=-", "bytes=+1-2", "bytes 0-1"] {
            assert_eq!(spec(ignored), None, "{ignored}");
        }
    }
}
