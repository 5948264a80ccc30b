//! API errors as JSON: `{ "error": { "kind": "...", "message": "..." } }`.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::base::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// A header the answer carries besides the JSON (`Content-Range` of a 416).
    pub header: Option<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), header: None }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.header = Some((name, value));
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Unavailable(_) | StoreError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::PluginTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            StoreError::Internal(_) | StoreError::PluginTrapped { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.kind().name(), e.message())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "the request body is over this domain's max_body")
        } else {
            Self::new(e.status(), "invalid", e.body_text())
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "the request body is over this domain's max_body")
        } else {
            Self::invalid(e.body_text())
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::invalid(e.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        Self::new(e.status(), if e.status().is_server_error() { "internal" } else { "invalid" }, e.body_text())
    }
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for programs: `invalid`, `not-found`, `conflict`, `unauthorized`,
    /// `forbidden`, `too-large`, `range-not-satisfiable`, `unavailable`, `plugin-timeout`,
    /// `reload-refused`, `internal`, …
    pub kind: String,
    /// What went wrong, for people.
    pub message: String,
    /// The manifest key a refused reload is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl ErrorBody {
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { kind: kind.to_string(), message: message.into(), key: None } }
    }

    /// With the manifest key the error is about.
    pub fn with_key(mut self, key: Option<String>) -> Self {
        self.error.key = key;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody::new(self.kind, self.message))).into_response();
        if let Some((name, value)) = self.header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
