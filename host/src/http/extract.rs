//! Extractors of the handlers: a domain's store (404 when the manifest does not bind the
//! domain), the request's [`Ctx`], and path, query and body extractors whose rejections are the
//! API's JSON errors.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::{ApiError, Shared, Slots};
use crate::base::{Ctx, Domain};
use crate::domain::{ArtifactStore, ProjectArtifactStore, ProjectStore, RunnerStore, Stores, UiStore, WorkspaceStore};

/// A domain store of the server's [`Stores`].
pub(crate) trait Bound: Send + Sync + 'static {
    const DOMAIN: Domain;
    fn of(stores: &Stores) -> Option<&Arc<Self>>;
}

macro_rules! bound {
    ($($trait:ident => $field:ident, $domain:ident;)*) => {
        $(impl Bound for dyn $trait {
            const DOMAIN: Domain = Domain::$domain;
            fn of(stores: &Stores) -> Option<&Arc<Self>> {
                stores.$field.as_ref()
            }
        })*
    };
}

bound! {
    ArtifactStore => artifact, Artifact;
    ProjectStore => project, Project;
    ProjectArtifactStore => project_artifacts, Project;
    UiStore => ui, Ui;
    WorkspaceStore => workspace, Workspace;
    RunnerStore => runner, Runner;
}

/// The store of a domain: `Store<dyn ArtifactStore>`.
pub(crate) struct Store<S: ?Sized>(pub Arc<S>);

impl<S: Bound + ?Sized> FromRequestParts<Shared> for Store<S> {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        S::of(&state.app().stores)
            .cloned()
            .map(Store)
            .ok_or_else(|| ApiError::not_found(format!("the {} domain is not configured in the manifest", S::DOMAIN)))
    }
}

/// The context of one request: the server's request timeout is its deadline, and it carries
/// the request's log positions (`Storehost-Min-Seq`, and where its writes record theirs).
impl FromRequestParts<Shared> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Slots>().map_or_else(|| state.ctx(), |slots| slots.ctx(state)))
    }
}

/// Wraps one of axum's extractors so that its rejection is the API's JSON error.
macro_rules! json_rejection {
    ($(#[$doc:meta])* $name:ident($inner:ident), $via:ident) => {
        $(#[$doc])*
        pub(crate) struct $name<T>(pub T);

        impl<T: DeserializeOwned + Send> $via<Shared> for $name<T> {
            type Rejection = ApiError;

            json_rejection!(@method $via, $inner);
        }
    };
    (@method FromRequestParts, $inner:ident) => {
        async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
            axum::extract::$inner::<T>::from_request_parts(parts, state).await.map(|v| Self(v.0)).map_err(ApiError::from)
        }
    };
    (@method FromRequest, $inner:ident) => {
        async fn from_request(request: Request, state: &Shared) -> Result<Self, ApiError> {
            axum::extract::$inner::<T>::from_request(request, state).await.map(|v| Self(v.0)).map_err(ApiError::from)
        }
    };
}

/// A route that takes no query parameters refuses any (a misspelled one must not be ignored).
pub(crate) struct NoQuery;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl FromRequestParts<Shared> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        ApiQuery::<Empty>::from_request_parts(parts, state).await.map(|_| NoQuery)
    }
}

/// The query of a conditional write: only `expected_version`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionQuery {
    /// Write only if the stored version is this one.
    pub(crate) expected_version: Option<u64>,
}

/// The header of a conditional write, read by [`super::expected_version`].
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct VersionHeaders {
    /// `"<version>"` (an `ETag` this API gave): write only if the stored version is this one.
    /// Where the query or the body gives a version too, they must agree.
    #[param(rename = "If-Match", value_type = String, required = false, pattern = r#"^\s*(W/)?("[0-9]{1,19}"|[0-9]{1,19})\s*$"#)]
    if_match: Option<String>,
}

json_rejection!(
    /// Path parameters.
    ApiPath(Path),
    FromRequestParts
);
json_rejection!(
    /// The query string.
    ApiQuery(Query),
    FromRequestParts
);
/// A JSON body. A number with a zero fraction (`5.0`) is the integer it equals, as JSON Schema
/// has it, so an integer field takes it.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<Shared> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, ApiError> {
        let axum::Json(mut value) = axum::Json::<serde_json::Value>::from_request(request, state).await?;
        integral_numbers(&mut value);
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|e| ApiError::invalid(format!("Failed to deserialize the JSON body into the target type: {e}")))
    }
}

/// Turns every number of `value` that is a float with no fraction, within the integers' range,
/// into that integer.
fn integral_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if (0.0..u64::MAX as f64).contains(&f) {
                    *n = (f as u64).into();
                } else if (i64::MIN as f64..0.0).contains(&f) {
                    *n = (f as i64).into();
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}
