//! The contract's rules for keys, ids and runs, checked by the host before any origin call (a
//! plugin written in any language may not check them). The rules themselves are the
//! `storehost-plugin-rules` crate's, the one definition plugins use too.

use crate::base::{Result, StoreError};

/// The longest artifact key and runner file name, in bytes.
pub const MAX_KEY_BYTES: usize = storehost_plugin_rules::MAX_KEY;

/// Artifact keys and runner file names: 1–1024 bytes, `/`-separated, no empty, `.` or `..`
/// segment, no NUL, no leading `/`.
///
/// # Errors
/// `invalid`, saying which rule the key breaks.
pub fn validate_key(key: &str) -> Result<()> {
    storehost_plugin_rules::validate_artifact_key(key).map_err(StoreError::Invalid)
}

/// Ids of projects, documents, workspaces and tabs (`what` names which): 1–256 bytes, no NUL,
/// no `/`.
///
/// # Errors
/// `invalid`, saying which rule the id breaks.
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    storehost_plugin_rules::validate_id(what, id).map_err(StoreError::Invalid)
}

/// A run: one path segment, by the id rules.
///
/// # Errors
/// `invalid`, saying which rule the run breaks.
pub fn validate_run(run: &str) -> Result<()> {
    storehost_plugin_rules::validate_run(run).map_err(StoreError::Invalid)
}

/// The id rules as a regular expression (ECMA-262, as JSON Schema has it): not empty, no `/` or
/// NUL, not `.` or `..`. The length in bytes (at most 256 of UTF-8) a pattern cannot state.
pub const ID_PATTERN: &str = r"^(?:[^/\x00.][^/\x00]*|\.[^/\x00.][^/\x00]*|\.\.[^/\x00]+)$";

/// The key rules as a regular expression: `/`-separated segments, none empty, `.` or `..`, no
/// NUL (and at most 1024 bytes of UTF-8). In a URL a key's `/` may be sent as is or as `%2F`.
pub const KEY_PATTERN: &str =
    r"^(?:[^/\x00.][^/\x00]*|\.[^/\x00.][^/\x00]*|\.\.[^/\x00]+)(?:/(?:[^/\x00.][^/\x00]*|\.[^/\x00.][^/\x00]*|\.\.[^/\x00]+))*$";

/// The id rules in words.
pub const ID_RULES: &str = "1–256 bytes, no `/` or NUL, not `.` or `..`";

/// The key rules in words.
pub const KEY_RULES: &str = "1–1024 bytes of `/`-separated segments, none empty, `.` or `..`, no NUL";

/// The schema of an id in a body: [`ID_PATTERN`].
pub fn id_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .pattern(Some(ID_PATTERN))
        .description(Some(ID_RULES))
        .build()
}
