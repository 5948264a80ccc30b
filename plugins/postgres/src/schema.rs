//! Configuration and the schema: its tables, created and migrated by `init` under an advisory
//! lock so that hosts starting at once migrate exactly once.

use std::sync::OnceLock;

use storehost_plugin_kit::{Result, StoreError};

use crate::db::{self, Db, text};

/// Settings from the plugin's manifest table.
pub struct Settings {
    /// The PostgreSQL schema holding the tables (`schema`, default `storehost`).
    pub schema: String,
    /// `schema` as a quoted identifier, which every statement names.
    quoted: String,
    /// The largest artifact body or runner file accepted (`max_body`, default 64 MiB, at most
    /// 256 MiB; bodies live in `bytea` columns, read and written whole).
    pub max_body: usize,
}

pub const DEFAULT_MAX_BODY: usize = 64 << 20;
pub const MAX_MAX_BODY: usize = 256 << 20;

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub fn settings() -> &'static Settings {
    SETTINGS.get().expect("init runs before any other call")
}

/// `statement` with `{s}` replaced by the quoted schema name.
pub fn qualify(statement: &str) -> String {
    statement.replace("{s}", &settings().quoted)
}

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

/// A schema name: lower-case letters, digits and `_`, not starting with a digit, at most 63
/// bytes (PostgreSQL's identifier length).
fn parse_schema(value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && !value.starts_with(|c: char| c.is_ascii_digit())
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(invalid(format!("config `schema` = {value:?}: use 1 to 63 lower-case letters, digits and '_', not starting with a digit")));
    }
    Ok(value.to_string())
}

/// A size in bytes: `1048576`, `512KiB`, `64MiB`.
fn parse_size(key: &str, value: &str) -> Result<usize> {
    let v = value.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], v[i..].trim()),
        None => (v, ""),
    };
    let scale = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(invalid(format!("config `{key}` = {value:?}: a size is a number of bytes, or with KiB, MiB or GiB"))),
    };
    let n: usize = digits.parse().map_err(|_| invalid(format!("config `{key}` = {value:?} is not a size")))?;
    n.checked_mul(scale).ok_or_else(|| invalid(format!("config `{key}` = {value:?} is too large")))
}

pub fn parse_settings(config: &[(String, String)]) -> Result<Settings> {
    let mut settings = Settings { schema: "storehost".into(), quoted: String::new(), max_body: DEFAULT_MAX_BODY };
    for (key, value) in config {
        match key.as_str() {
            "schema" => settings.schema = parse_schema(value)?,
            "max_body" => {
                settings.max_body = parse_size(key, value)?;
                if settings.max_body > MAX_MAX_BODY {
                    return Err(invalid(format!("config `max_body` = {value:?} is over the {MAX_MAX_BODY}-byte limit")));
                }
            }
            other => return Err(invalid(format!("unknown config key `{other}` (known: schema, max_body)"))),
        }
    }
    settings.quoted = format!("\"{}\"", settings.schema);
    Ok(settings)
}

/// The migrations, in order; migration `i` brings the schema to version `i + 1`. Applied ones
/// never change: a change to the schema is a new entry. Text keys use the "C" collation so that
/// lists are in byte order, as in every other origin.
const MIGRATIONS: &[&[&str]] = &[
    &[
        r#"CREATE TABLE {s}.artifacts (
        key text COLLATE "C" PRIMARY KEY,
        size bigint NOT NULL,
        content_type text,
        sha256 text NOT NULL,
        created_at timestamptz NOT NULL,
        body bytea NOT NULL
    )"#,
        r#"CREATE TABLE {s}.projects (
        id text COLLATE "C" PRIMARY KEY,
        name text NOT NULL,
        state text NOT NULL,
        version bigint NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )"#,
        r#"CREATE TABLE {s}.project_artifacts (
        project_id text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        artifact_key text NOT NULL,
        size bigint NOT NULL,
        kind text NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (project_id, name)
    )"#,
        r#"CREATE TABLE {s}.ui_documents (
        id text COLLATE "C" PRIMARY KEY,
        version bigint NOT NULL,
        nodes jsonb NOT NULL,
        updated_at timestamptz NOT NULL
    )"#,
        r#"CREATE TABLE {s}.workspaces (
        id text COLLATE "C" PRIMARY KEY,
        project_id text NOT NULL,
        name text NOT NULL,
        selected_tab text,
        version bigint NOT NULL,
        updated_at timestamptz NOT NULL
    )"#,
        r#"CREATE TABLE {s}.workspace_tabs (
        workspace_id text COLLATE "C" NOT NULL REFERENCES {s}.workspaces (id) ON DELETE CASCADE,
        id text COLLATE "C" NOT NULL,
        title text NOT NULL,
        kind text NOT NULL,
        run_id text,
        position integer NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (workspace_id, id)
    )"#,
        r#"CREATE TABLE {s}.runner_files (
        run text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (run, name)
    )"#,
    ],
    &[
        // Bodies written in chunks are staged here until their writer finishes.
        r#"CREATE TABLE {s}.upload_chunks (
        upload text NOT NULL,
        seq bigint NOT NULL,
        data bytea NOT NULL,
        staged_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (upload, seq)
    )"#,
    ],
];

/// The schema version this plugin needs.
pub const VERSION: u64 = MIGRATIONS.len() as u64;

/// The applied version, or `None` before the first migration (no bookkeeping table yet).
fn applied(db: &Db) -> Result<Option<u64>> {
    let exists = db.query_opt("SELECT to_regclass($1)::text", &[text(qualify("{s}.schema_migrations"))])?;
    if exists.map(db::Row).map(|r| r.opt_text(0)).transpose()?.flatten().is_none() {
        return Ok(None);
    }
    let row = db.query_opt("SELECT coalesce(max(version), 0) FROM {s}.schema_migrations", &[])?;
    Ok(Some(row.map(db::Row).map(|r| r.u64(0)).transpose()?.unwrap_or(0)))
}

/// Applies `config` and brings the schema to [`VERSION`]. Cheap when it is current (one read);
/// otherwise migrates in one transaction holding an advisory lock keyed by the schema name, so
/// concurrent starts wait for each other and each migration runs once.
pub fn init(config: &[(String, String)]) -> Result<()> {
    let parsed = parse_settings(config)?;
    if let Some(existing) = SETTINGS.get() {
        if existing.schema != parsed.schema {
            return Err(invalid("init called twice with different schemas".into()));
        }
    } else {
        let _ = SETTINGS.set(parsed);
    }
    if applied(&Db::Pool)? != Some(VERSION) {
        migrate()?;
    }
    // Uploads left by instances that died mid-write.
    Db::Pool.execute("DELETE FROM {s}.upload_chunks WHERE staged_at < now() - interval '1 day'", &[])?;
    Ok(())
}

/// Brings the schema to [`VERSION`] in one transaction holding the migration lock.
fn migrate() -> Result<()> {
    let tx = db::begin()?;
    let db = Db::Tx(&tx);
    db.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[text(qualify("storehost migrations {s}"))])?;
    db.execute("CREATE SCHEMA IF NOT EXISTS {s}", &[])?;
    db.execute("CREATE TABLE IF NOT EXISTS {s}.schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", &[])?;
    let from = applied(&db)?.unwrap_or(0);
    if from > VERSION {
        return Err(StoreError::Internal(format!(
            "schema {} is at version {from}, newer than this plugin's {VERSION}: upgrade the plugin",
            settings().schema
        )));
    }
    for (i, statements) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        for statement in *statements {
            db.execute(statement, &[])?;
        }
        db.execute("INSERT INTO {s}.schema_migrations (version) VALUES ($1)", &[db::int(i as u64 + 1)])?;
    }
    db::commit(tx)
}
