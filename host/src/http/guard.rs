//! What the server does around every request, in one layer (each layer of its own would clone
//! and drop the services under it for every request):
//!
//! - on the way in, it refuses what can be refused from the request line and headers alone (a
//!   body over the limit from its `Content-Length`, 413 before it is read; a path with malformed
//!   percent-encoding, 400; a `Storehost-Min-Seq` that is not a number, 400), and gives the
//!   request the slots its `Ctx` records a stale answer ([`super::stale`]) and its writes' log
//!   positions ([`super::log_seq`]) in;
//! - on the way out, it marks a stale answer, adds the log position of a write, makes every 4xx
//!   and 5xx answer the JSON error shape, whichever layer produced it, and logs one line for the
//!   request: method, path, status, latency in microseconds.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use super::{ApiError, Front, Shared, Slots, log_seq, stale};
use crate::base::access_log;

/// The layer around every request (see the module's documentation). With traces on, the
/// request is a span that continues its caller's trace (`traceparent`) and lasts until its
/// body is sent.
pub(crate) async fn around(front: &Front, request: Request) -> Response {
    if !crate::base::telemetry::on() {
        return handle(front, request, false).await;
    }
    let route = front.state.templates.get().and_then(|t| t.at(request.uri().path()).ok()).map(|found| found.value.as_str());
    let name = match route {
        Some(route) => format!("{} {route}", request.method()),
        None => request.method().to_string(),
    };
    let span = tracing::info_span!(
        target: "storehost::http",
        "request",
        otel.name = name,
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        http.response.body.size = tracing::field::Empty,
        storehost.cache.domain = tracing::field::Empty,
        storehost.cache.name = tracing::field::Empty,
        storehost.cache.tier = tracing::field::Empty,
        storehost.cache.result = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, crate::base::telemetry::caller(request.headers()));
    let bodiless = request.method() == axum::http::Method::HEAD;
    let response = handle(front, request, true).instrument(span.clone()).await;
    span.record("http.response.status_code", i64::from(response.status().as_u16()));
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let (parts, body) = response.into_parts();
    let ended = bodiless || parts.status == StatusCode::NO_CONTENT || parts.status == StatusCode::NOT_MODIFIED;
    Response::from_parts(parts, Body::new(Traced { body, span, sent: 0, ended }))
}

/// A traced request's response body: it counts the bytes sent, and holds the request's span
/// open until the body is done. A body that failed after the head, or that was dropped before
/// its end (the client went away), marks the span an error.
struct Traced {
    body: Body,
    span: tracing::Span,
    sent: u64,
    /// The body was read to its end (or there is none to send: a HEAD, a 204 or a 304).
    ended: bool,
}

impl http_body::Body for Traced {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(None) => self.ended = true,
            std::task::Poll::Ready(Some(Ok(frame))) => self.sent += frame.data_ref().map_or(0, |d| d.len() as u64),
            std::task::Poll::Ready(Some(Err(_))) => {
                self.span.record("otel.status_code", "ERROR");
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        self.span.record("http.response.body.size", self.sent as i64);
        let whole = self.ended || http_body::Body::is_end_stream(&self.body) || http_body::Body::size_hint(&self.body).exact() == Some(self.sent);
        if !whole {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}

/// `traced`: the request is a span (see [`around`]).
async fn handle(front: &Front, request: Request, traced: bool) -> Response {
    let started = Instant::now();
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = match refused(&front.state, &request) {
        Some(error) => error.into_response(),
        None => match log_seq::min_seq(request.headers()) {
            Err(error) => error.into_response(),
            Ok(min_seq) => {
                let slots = Slots::new(min_seq);
                let mut response = front.answer(request, &slots).await;
                stale::mark(&slots.stale, &mut response);
                log_seq::answer(&slots.written, &mut response);
                json_errors(response).await
            }
        },
    };
    let latency_us = started.elapsed().as_micros() as u64;
    let line = access_log::Request { method: method.as_str(), path: uri.path(), status: response.status().as_u16(), latency_us };
    // A traced request's line carries its trace's ids: that takes the event.
    if traced || !access_log::write(&line) {
        tracing::info!(target: "storehost::http", %method, path = %uri.path(), status = line.status, latency_us, "request");
    }
    response
}

/// What can be refused from the request line and headers alone.
fn refused(state: &Shared, request: &Request) -> Option<ApiError> {
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let limit = state.limits.max_body(super::domain_of(request.uri().path()));
    if let Some(declared) = declared.filter(|len| *len > limit) {
        return Some(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the request body ({declared} bytes) is over this domain's max_body ({limit} bytes)"),
        ));
    }
    let at = malformed_escape(request.uri().path())?;
    Some(ApiError::invalid(format!("the path has a malformed percent-encoding at byte {at}: '%' must be followed by two hex digits")))
}

/// The position of the first `%` not followed by two hex digits.
fn malformed_escape(path: &str) -> Option<usize> {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().find_map(|(i, b)| {
        let ok = *b != b'%' || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
        (!ok).then_some(i)
    })
}

/// The `kind` of an error answer that no handler gave one.
fn kind_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::LENGTH_REQUIRED => "length-required",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::RANGE_NOT_SATISFIABLE => "range-not-satisfiable",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_client_error() => "invalid",
        _ => "internal",
    }
}

/// Turns an error answer that is not JSON (axum's 405, a rejection of a layer) into the JSON
/// error shape, keeping its status, its headers and its text as the message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let json = ApiError::new(status, kind_of(status), message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    let (_, body) = json.into_parts();
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_escapes_are_found() {
        assert_eq!(malformed_escape("/v1/artifacts/%zz"), Some(14));
        assert_eq!(malformed_escape("/v1/artifacts/a%"), Some(15));
        assert_eq!(malformed_escape("/v1/artifacts/a%2"), Some(15));
        assert_eq!(malformed_escape("/v1/artifacts/a%20b%2Fc"), None);
        assert_eq!(malformed_escape("/plain"), None);
    }
}
