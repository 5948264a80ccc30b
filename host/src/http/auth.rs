//! Bearer tokens with scopes: `read` for GET and HEAD, `write` for the rest, `admin` for
//! `/v1/admin/*` and `/metrics`. Without configured tokens the API is open (loopback only).

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Shared};
use crate::app::manifest::Scope;

fn needed(method: &Method, path: &str) -> Scope {
    if path.starts_with("/v1/admin") || path == "/metrics" {
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

pub async fn require_scope(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        return next.run(request).await;
    }
    let scope = needed(request.method(), request.uri().path());
    let presented = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(presented) = presented else {
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a bearer token is required").into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        return response;
    };
    match state.tokens.iter().find(|t| same(&t.token, presented)) {
        None => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown bearer token").into_response(),
        Some(token) if !token.scopes.contains(&scope) => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("this token lacks the {scope:?} scope").to_lowercase()).into_response()
        }
        Some(_) => next.run(request).await,
    }
}
