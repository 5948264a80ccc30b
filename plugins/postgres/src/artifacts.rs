//! Gateway artifacts: one row per key, the body in `bytea`.

use sha2::{Digest, Sha256};
use storehost_plugin_kit::bindings::exports::storehost::origin::artifact_bodies::{self, Body};
use storehost_plugin_kit::bindings::exports::storehost::origin::artifacts::{
    Artifact, ArtifactMeta, ArtifactPage, BodyReader, BodyWriter, Guest, GuestBodyReader, GuestBodyWriter,
};
use storehost_plugin_kit::bindings::storehost::host::sql::SqlValue;
use storehost_plugin_kit::{Result, StoreError, now_ms, page_limit, prefix_successor, validate_artifact_key};

use crate::db::{Db, Row, int, opt_text, text, ts};
use crate::stream::{BodyRead, Stored, Upload};
use crate::{Postgres, check_body};

const META: &str = "key, size, content_type, sha256, created_at";

fn meta(row: &Row) -> Result<ArtifactMeta> {
    Ok(ArtifactMeta { key: row.text(0)?, size: row.u64(1)?, content_type: row.opt_text(2)?, sha256: row.text(3)?, created_at: row.ts(4)? })
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound(format!("artifact {key:?}"))
}

fn head(key: &str) -> Result<Option<ArtifactMeta>> {
    Db::Pool.query_opt(&format!("SELECT {META} FROM {{s}}.artifacts WHERE key = $1"), &[text(key)])?.map(|r| meta(&Row(r))).transpose()
}

/// A range of an artifact's body, of the version that existed at open.
pub struct PgBodyReader(BodyRead);

impl GuestBodyReader for PgBodyReader {
    fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>> {
        self.0.read(max_len)
    }
}

/// An artifact body being staged.
pub struct PgBodyWriter {
    key: String,
    content_type: Option<String>,
    upload: Upload,
}

impl GuestBodyWriter for PgBodyWriter {
    fn write(&self, chunk: Vec<u8>) -> Result<()> {
        self.upload.write(&chunk)
    }

    fn finish(&self, sha256: String) -> Result<ArtifactMeta> {
        let meta =
            ArtifactMeta { key: self.key.clone(), size: self.upload.size(), content_type: self.content_type.clone(), sha256, created_at: now_ms() };
        self.upload.finish(
            "INSERT INTO {s}.artifacts (key, size, content_type, sha256, created_at, body)
             SELECT $2, $3, $4, $5, $6, body FROM staged
             ON CONFLICT (key) DO UPDATE SET size = excluded.size, content_type = excluded.content_type,
                 sha256 = excluded.sha256, created_at = excluded.created_at, body = excluded.body",
            vec![text(meta.key.as_str()), int(meta.size), opt_text(meta.content_type.clone()), text(meta.sha256.as_str()), ts(meta.created_at)],
        )?;
        Ok(meta)
    }
}

impl Guest for Postgres {
    type BodyReader = PgBodyReader;
    type BodyWriter = PgBodyWriter;

    fn open_read(key: String, offset: u64, len: Option<u64>) -> Result<(ArtifactMeta, BodyReader)> {
        validate_artifact_key(&key)?;
        let stored = Stored { columns: META, column: "body", from: "{s}.artifacts WHERE key = $1", params: vec![text(key.as_str())] };
        let (row, body) = stored.open(offset, len)?.ok_or_else(|| not_found(&key))?;
        Ok((meta(&row)?, BodyReader::new(PgBodyReader(body))))
    }

    fn open_write(key: String, content_type: Option<String>, size_hint: Option<u64>) -> Result<BodyWriter> {
        validate_artifact_key(&key)?;
        if let Some(size) = size_hint {
            check_body(size as usize)?;
        }
        let writer = PgBodyWriter { key, content_type, upload: Upload::start()? };
        Ok(BodyWriter::new(writer))
    }

    fn put(key: String, body: Vec<u8>, content_type: Option<String>) -> Result<ArtifactMeta> {
        validate_artifact_key(&key)?;
        check_body(body.len())?;
        let meta = ArtifactMeta { size: body.len() as u64, sha256: hex::encode(Sha256::digest(&body)), created_at: now_ms(), key, content_type };
        Db::Pool.execute(
            "INSERT INTO {s}.artifacts (key, size, content_type, sha256, created_at, body) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (key) DO UPDATE SET size = excluded.size, content_type = excluded.content_type,
                 sha256 = excluded.sha256, created_at = excluded.created_at, body = excluded.body",
            &[
                text(meta.key.as_str()),
                int(meta.size),
                opt_text(meta.content_type.clone()),
                text(meta.sha256.as_str()),
                ts(meta.created_at),
                SqlValue::Bytes(body),
            ],
        )?;
        Ok(meta)
    }

    fn get(key: String) -> Result<Artifact> {
        validate_artifact_key(&key)?;
        let row = Db::Pool.query_opt(&format!("SELECT {META}, body FROM {{s}}.artifacts WHERE key = $1"), &[text(key.as_str())])?;
        let mut row = Row(row.ok_or_else(|| not_found(&key))?);
        let body = row.take_bytes(5)?;
        Ok(Artifact { meta: meta(&row)?, body })
    }

    fn head(key: String) -> Result<ArtifactMeta> {
        validate_artifact_key(&key)?;
        head(&key)?.ok_or_else(|| not_found(&key))
    }

    fn list(prefix: String, cursor: Option<String>, limit: u32) -> Result<ArtifactPage> {
        let limit = page_limit(limit);
        // The prefix as a key range, so the primary key's index bounds the scan.
        let rows = Db::Pool.query(
            &format!(
                "SELECT {META} FROM {{s}}.artifacts
                 WHERE key >= $1 AND ($2::text IS NULL OR key < $2) AND ($3::text IS NULL OR key > $3)
                 ORDER BY key LIMIT $4"
            ),
            &[text(prefix.as_str()), opt_text(prefix_successor(&prefix)), opt_text(cursor), int(limit as u64 + 1)],
        )?;
        let more = rows.len() > limit;
        let items = rows.into_iter().take(limit).map(|r| meta(&Row(r))).collect::<Result<Vec<_>>>()?;
        let next_cursor = if more { items.last().map(|m| m.key.clone()) } else { None };
        Ok(ArtifactPage { items, next_cursor })
    }

    fn get_url(key: String, _expires_in_secs: u32) -> Result<Option<String>> {
        validate_artifact_key(&key)?;
        // The database has no URL of its own: the host signs one.
        head(&key)?.ok_or_else(|| not_found(&key))?;
        Ok(None)
    }

    fn delete(key: String) -> Result<()> {
        validate_artifact_key(&key)?;
        Db::Pool.execute("DELETE FROM {s}.artifacts WHERE key = $1", &[text(key)])?;
        Ok(())
    }
}

/// Bodies are rows: always read through the plugin, as `open-read` reads them.
impl artifact_bodies::Guest for Postgres {
    fn open(key: String, offset: u64, len: Option<u64>) -> Result<(ArtifactMeta, Body)> {
        <Postgres as Guest>::open_read(key, offset, len).map(|(meta, reader)| (meta, Body::Reader(reader)))
    }
}
