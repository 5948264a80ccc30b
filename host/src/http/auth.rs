//! Bearer tokens with scopes: `read` for GET and HEAD, `write` for the rest, `admin` for
//! `/v1/admin/*`, `/metrics` and the `/admin` page. Without configured tokens the API is open
//! (loopback only). A browser cannot send a bearer token when it opens a page, so a token is
//! also taken as the password of Basic credentials (any user name), and the admin page's `401`
//! asks for them.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::{ApiError, Shared};
use crate::app::manifest::Scope;

fn needed(method: &Method, path: &str) -> Scope {
    if path.starts_with("/v1/admin") || path == "/metrics" || path == ADMIN_PAGE {
        Scope::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const ADMIN_PAGE: &str = "/admin";

/// The token of an `Authorization` header: `Bearer <token>`, or `Basic` credentials whose
/// password is the token.
fn presented(value: &str) -> Option<String> {
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).ok()?).ok()?;
    decoded.split_once(':').map(|(_, password)| password.to_string())
}

pub async fn require_scope(State(state): State<Shared>, request: Request, next: Next) -> Response {
    match refusal(&state, request.method(), request.uri().path(), request.headers()) {
        None => next.run(request).await,
        Some(refused) => refused,
    }
}

/// The 401 or 403 answer to a request that does not present a token with the scope its method
/// and path need; `None` when it does (or there are no tokens).
pub(crate) fn refusal(state: &Shared, method: &Method, path: &str, headers: &header::HeaderMap) -> Option<Response> {
    if state.tokens.is_empty() {
        return None;
    }
    let scope = needed(method, path);
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(presented);
    let Some(presented) = presented else {
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a bearer token is required").into_response();
        let challenge = if path == ADMIN_PAGE { "Basic realm=\"storehost\", charset=\"UTF-8\"" } else { "Bearer" };
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(challenge));
        return Some(response);
    };
    match state.tokens.iter().find(|t| same(&t.token, &presented)) {
        None => Some(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown bearer token").into_response()),
        Some(token) if !token.scopes.contains(&scope) => {
            Some(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("this token lacks the {scope:?} scope").to_lowercase()).into_response())
        }
        Some(_) => None,
    }
}
