//! `storehost:host/sql`: SQL on the database a plugin's manifest grants, through one sqlx
//! `PgPool` per plugin that the host owns (the plugin never sees the URL or the credentials).
//!
//! Values are typed both ways (bool, int, float, text, bytea, json/jsonb, timestamptz); errors
//! carry the SQLSTATE, and failures to reach the database are marked `unavailable`. A statement
//! runs under the plugin call's deadline: the call is dropped there, the statement with it (no
//! timer per statement), and the server's `statement_timeout` ends what the client left. Waiting
//! for a connection is bounded by the grant's `connect_timeout`. Transactions are a resource:
//! dropped without `commit`, they roll back.

use std::time::Duration;

use serde_json::value::RawValue;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Postgres, Row, TypeInfo, ValueRef};
use wasmtime::component::Resource;

use crate::runtime::bindings::host::sql::{Host, HostTransaction, SqlColumn, SqlError, SqlRow, SqlValue};
use crate::runtime::state::PluginState;

/// The manifest's `sql` grant.
#[derive(Clone, Debug)]
pub struct SqlGrant {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl SqlGrant {
    /// The pool; it connects on first use, so a host starts even while its database is down.
    ///
    /// Every connection's `statement_timeout` is `max_statement` (the plugin's call timeout, the
    /// longest any call may run): a statement whose call was cut at a shorter caller deadline
    /// stops waiting in the server by then, instead of holding its connection and its place in
    /// a lock queue for as long as the wait lasts.
    pub fn pool(&self, max_statement: Duration) -> anyhow::Result<PgPool> {
        let options: PgConnectOptions = self.url.parse()?;
        let ms = max_statement.as_millis().clamp(1, i32::MAX as u128);
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.connect_timeout)
            .connect_lazy_with(options.options([("statement_timeout", format!("{ms}"))])))
    }
}

/// An open transaction (the `transaction` resource).
pub struct SqlTransaction(Option<sqlx::Transaction<'static, Postgres>>);

fn error(e: sqlx::Error) -> SqlError {
    match e {
        sqlx::Error::Database(db) => SqlError { code: db.code().map(|c| c.to_string()).unwrap_or_default(), message: db.message().to_string(), unavailable: false },
        e @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_)) => {
            SqlError { code: String::new(), message: format!("database unavailable: {e}"), unavailable: true }
        }
        other => SqlError { code: String::new(), message: other.to_string(), unavailable: false },
    }
}

fn no_grant() -> SqlError {
    SqlError { code: String::new(), message: "no sql grant".into(), unavailable: true }
}

fn bind<'q>(mut query: sqlx::query::Query<'q, Postgres, PgArguments>, params: Vec<SqlValue>) -> Result<sqlx::query::Query<'q, Postgres, PgArguments>, SqlError> {
    for (i, p) in params.into_iter().enumerate() {
        query = match p {
            SqlValue::Null => query.bind(None::<String>),
            SqlValue::Boolean(v) => query.bind(v),
            SqlValue::Int64(v) => query.bind(v),
            SqlValue::Float64(v) => query.bind(v),
            SqlValue::Text(v) => query.bind(v),
            SqlValue::Bytes(v) => query.bind(v),
            // Checked and passed through as text: no parse into a tree and back.
            SqlValue::Json(v) => query.bind(sqlx::types::Json(RawValue::from_string(v).map_err(|e| SqlError {
                code: "22P02".into(),
                message: format!("parameter ${} is not JSON: {e}", i + 1),
                unavailable: false,
            })?)),
            SqlValue::Timestamp(ms) => query.bind(chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)),
        };
    }
    Ok(query)
}

fn decode(row: &PgRow) -> Result<SqlRow, SqlError> {
    let mut columns = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(error)?;
        let value = if raw.is_null() {
            SqlValue::Null
        } else {
            let get_err = |e: sqlx::Error| error(e);
            match column.type_info().name() {
                "BOOL" => SqlValue::Boolean(row.try_get(i).map_err(get_err)?),
                "INT2" => SqlValue::Int64(row.try_get::<i16, _>(i).map_err(get_err)?.into()),
                "INT4" => SqlValue::Int64(row.try_get::<i32, _>(i).map_err(get_err)?.into()),
                "INT8" => SqlValue::Int64(row.try_get(i).map_err(get_err)?),
                "FLOAT4" => SqlValue::Float64(row.try_get::<f32, _>(i).map_err(get_err)?.into()),
                "FLOAT8" => SqlValue::Float64(row.try_get(i).map_err(get_err)?),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => SqlValue::Text(row.try_get(i).map_err(get_err)?),
                "BYTEA" => SqlValue::Bytes(row.try_get(i).map_err(get_err)?),
                "JSON" | "JSONB" => SqlValue::Json(row.try_get::<sqlx::types::Json<Box<RawValue>>, _>(i).map_err(get_err)?.0.get().to_string()),
                "TIMESTAMPTZ" => SqlValue::Timestamp(row.try_get::<chrono::DateTime<chrono::Utc>, _>(i).map_err(get_err)?.timestamp_millis()),
                other => {
                    return Err(SqlError {
                        code: String::new(),
                        message: format!("column {} has type {other}, which sql-value cannot carry; cast it in the statement", column.name()),
                        unavailable: false,
                    });
                }
            }
        };
        columns.push(SqlColumn { name: column.name().to_string(), value });
    }
    Ok(columns)
}

/// Runs a statement that returns rows on `executor` (the pool or a transaction's connection).
async fn fetch<'c>(executor: impl sqlx::PgExecutor<'c>, statement: &str, params: Vec<SqlValue>) -> Result<Vec<SqlRow>, SqlError> {
    let rows = bind(sqlx::query(statement), params)?.fetch_all(executor).await.map_err(error)?;
    rows.iter().map(decode).collect()
}

/// Runs a statement on `executor` and returns the number of rows it affected.
async fn run<'c>(executor: impl sqlx::PgExecutor<'c>, statement: &str, params: Vec<SqlValue>) -> Result<u64, SqlError> {
    Ok(bind(sqlx::query(statement), params)?.execute(executor).await.map_err(error)?.rows_affected())
}

impl Host for PluginState {
    async fn query(&mut self, statement: String, params: Vec<SqlValue>) -> wasmtime::Result<Result<Vec<SqlRow>, SqlError>> {
        let Some(pool) = self.sql.clone() else { return Ok(Err(no_grant())) };
        Ok(fetch(&pool, &statement, params).await)
    }

    async fn execute(&mut self, statement: String, params: Vec<SqlValue>) -> wasmtime::Result<Result<u64, SqlError>> {
        let Some(pool) = self.sql.clone() else { return Ok(Err(no_grant())) };
        Ok(run(&pool, &statement, params).await)
    }
}

impl HostTransaction for PluginState {
    async fn begin(&mut self) -> wasmtime::Result<Result<Resource<SqlTransaction>, SqlError>> {
        let Some(pool) = self.sql.clone() else { return Ok(Err(no_grant())) };
        let tx = match pool.begin().await.map_err(error) {
            Ok(tx) => tx,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self.table.push(SqlTransaction(Some(tx)))?))
    }

    async fn query(&mut self, tx: Resource<SqlTransaction>, statement: String, params: Vec<SqlValue>) -> wasmtime::Result<Result<Vec<SqlRow>, SqlError>> {
        let Some(conn) = self.table.get_mut(&tx)?.0.as_mut() else { return Ok(Err(finished())) };
        Ok(fetch(&mut **conn, &statement, params).await)
    }

    async fn execute(&mut self, tx: Resource<SqlTransaction>, statement: String, params: Vec<SqlValue>) -> wasmtime::Result<Result<u64, SqlError>> {
        let Some(conn) = self.table.get_mut(&tx)?.0.as_mut() else { return Ok(Err(finished())) };
        Ok(run(&mut **conn, &statement, params).await)
    }

    async fn commit(&mut self, tx: Resource<SqlTransaction>) -> wasmtime::Result<Result<(), SqlError>> {
        let Some(t) = self.table.get_mut(&tx)?.0.take() else { return Ok(Err(finished())) };
        Ok(t.commit().await.map_err(error))
    }

    async fn rollback(&mut self, tx: Resource<SqlTransaction>) -> wasmtime::Result<Result<(), SqlError>> {
        let Some(t) = self.table.get_mut(&tx)?.0.take() else { return Ok(Err(finished())) };
        Ok(t.rollback().await.map_err(error))
    }

    async fn drop(&mut self, tx: Resource<SqlTransaction>) -> wasmtime::Result<()> {
        // Dropping an open sqlx transaction rolls it back when its connection returns to the pool.
        self.table.delete(tx)?;
        Ok(())
    }
}

fn finished() -> SqlError {
    SqlError { code: "25000".into(), message: "the transaction was already committed or rolled back".into(), unavailable: false }
}
