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

use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Postgres, Row, TypeInfo, ValueRef};
use tracing::Instrument as _;
use wasmtime::component::{Linker, Resource};

use super::{Capability, Failure, PluginIdentity, Scoped, ScopedData};
use crate::base::units;

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package storehost:sql-capability; world sql { import storehost:host/sql@0.1.2; }",
        path: "../wit/deps/host",
        imports: { default: async | trappable },
        trappable_error_type: { "storehost:host/sql.sql-error" => crate::capabilities::sql::SqlFailure },
        with: { "storehost:host/sql.transaction": crate::capabilities::sql::SqlTransaction },
    });
}

use bindings::storehost::host::sql::{self as wit, Host, HostTransaction, SqlColumn, SqlError, SqlRow, SqlValue};

/// A host function's failure: a [`SqlError`] for the plugin, or a trap.
pub type SqlFailure = Failure<SqlError>;

/// The manifest's `sql` grant: `sql = { url = "postgres://…", max_connections = 8, connect_timeout = "5s" }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlGrant {
    pub url: String,
    #[serde(default = "SqlGrant::default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "SqlGrant::default_connect_timeout", deserialize_with = "units::duration")]
    pub connect_timeout: Duration,
}

/// The `sql` capability: one sqlx pool per granted plugin.
pub struct Sql;

impl Capability for Sql {
    const INTERFACE: &'static str = "storehost:host/sql";
    type Grant = SqlGrant;
    type State = PgPool;

    async fn open(grant: &SqlGrant, plugin: &PluginIdentity<'_>) -> anyhow::Result<PgPool> {
        grant.pool(plugin.timeout).map_err(|e| anyhow::anyhow!("url: {e:#}"))
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> Scoped<'_, Self>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, ScopedData<Self>>(linker, get)
    }
}

impl SqlGrant {
    fn default_max_connections() -> u32 {
        8
    }

    fn default_connect_timeout() -> Duration {
        Duration::from_secs(5)
    }

    /// A grant of the database at `url`, with the default pool settings.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: Self::default_max_connections(), connect_timeout: Self::default_connect_timeout() }
    }

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
        sqlx::Error::Database(db) => {
            SqlError { code: db.code().map(|c| c.to_string()).unwrap_or_default(), message: db.message().to_string(), unavailable: false }
        }
        e @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_)) => {
            SqlError { code: String::new(), message: format!("database unavailable: {e}"), unavailable: true }
        }
        other => SqlError { code: String::new(), message: other.to_string(), unavailable: false },
    }
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, Postgres, PgArguments>,
    params: Vec<SqlValue>,
) -> Result<sqlx::query::Query<'q, Postgres, PgArguments>, SqlError> {
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
    let span = statement_span(statement);
    let fetched = async { bind(sqlx::query(statement), params)?.fetch_all(executor).await.map_err(error) }.instrument(span.clone()).await;
    let rows = statement_ended(&span, fetched, Vec::len)?;
    rows.iter().map(decode).collect()
}

/// Runs a statement on `executor` and returns the number of rows it affected.
async fn run<'c>(executor: impl sqlx::PgExecutor<'c>, statement: &str, params: Vec<SqlValue>) -> Result<u64, SqlError> {
    let span = statement_span(statement);
    let done = async { bind(sqlx::query(statement), params)?.execute(executor).await.map_err(error) }.instrument(span.clone()).await;
    statement_ended(&span, done.map(|done| done.rows_affected()), |rows| *rows as usize)
}

/// The span of one statement (with traces on): its operation and table, never its text or its
/// parameters.
fn statement_span(statement: &str) -> tracing::Span {
    if !crate::base::telemetry::on() {
        return tracing::Span::none();
    }
    let (operation, table) = described(statement);
    tracing::info_span!(
        target: "storehost::sql",
        "sql",
        otel.name = %format_args!("{operation} {table}"),
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = operation,
        db.collection.name = table,
        db.response.returned_rows = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Records in `span` the rows a statement gave or touched, or its failure.
fn statement_ended<T>(span: &tracing::Span, result: Result<T, SqlError>, rows: impl Fn(&T) -> usize) -> Result<T, SqlError> {
    match &result {
        Ok(done) => span.record("db.response.returned_rows", rows(done) as i64),
        Err(_) => span.record("otel.status_code", "ERROR"),
    };
    result
}

/// A statement's operation (its first word, upper-cased) and the table it names after `FROM`,
/// `INTO` or `UPDATE` (without its schema and quotes; empty when there is none).
fn described(statement: &str) -> (String, String) {
    let mut words = statement.split_whitespace();
    let operation = words.next().unwrap_or_default().to_ascii_uppercase();
    let mut previous = operation.clone();
    for word in words {
        if ["FROM", "INTO", "UPDATE"].contains(&previous.as_str()) {
            let name = word.rsplit('.').next().unwrap_or(word);
            let table: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            return (operation, table);
        }
        previous = word.to_ascii_uppercase();
    }
    (operation, String::new())
}

impl Host for Scoped<'_, Sql> {
    async fn query(&mut self, statement: String, params: Vec<SqlValue>) -> Result<Vec<SqlRow>, SqlFailure> {
        Ok(fetch(self.state, &statement, params).await?)
    }

    async fn execute(&mut self, statement: String, params: Vec<SqlValue>) -> Result<u64, SqlFailure> {
        Ok(run(self.state, &statement, params).await?)
    }

    fn convert_sql_error(&mut self, err: SqlFailure) -> wasmtime::Result<SqlError> {
        err.into_guest()
    }
}

impl HostTransaction for Scoped<'_, Sql> {
    async fn begin(&mut self) -> Result<Resource<SqlTransaction>, SqlFailure> {
        let tx = self.state.begin().await.map_err(error)?;
        self.table.push(SqlTransaction(Some(tx))).map_err(SqlFailure::trap)
    }

    async fn query(&mut self, tx: Resource<SqlTransaction>, statement: String, params: Vec<SqlValue>) -> Result<Vec<SqlRow>, SqlFailure> {
        let conn = self.open(&tx)?;
        Ok(fetch(&mut **conn, &statement, params).await?)
    }

    async fn execute(&mut self, tx: Resource<SqlTransaction>, statement: String, params: Vec<SqlValue>) -> Result<u64, SqlFailure> {
        let conn = self.open(&tx)?;
        Ok(run(&mut **conn, &statement, params).await?)
    }

    async fn commit(&mut self, tx: Resource<SqlTransaction>) -> Result<(), SqlFailure> {
        Ok(self.finish(&tx)?.commit().await.map_err(error)?)
    }

    async fn rollback(&mut self, tx: Resource<SqlTransaction>) -> Result<(), SqlFailure> {
        Ok(self.finish(&tx)?.rollback().await.map_err(error)?)
    }

    async fn drop(&mut self, tx: Resource<SqlTransaction>) -> wasmtime::Result<()> {
        // Dropping an open sqlx transaction rolls it back when its connection returns to the pool.
        self.table.delete(tx)?;
        Ok(())
    }
}

impl Scoped<'_, Sql> {
    /// The transaction's connection, while it is open.
    fn open(&mut self, tx: &Resource<SqlTransaction>) -> Result<&mut sqlx::Transaction<'static, Postgres>, SqlFailure> {
        self.table.get_mut(tx).map_err(SqlFailure::trap)?.0.as_mut().ok_or_else(|| finished().into())
    }

    /// Takes the transaction out for its commit or rollback; later calls on it fail.
    fn finish(&mut self, tx: &Resource<SqlTransaction>) -> Result<sqlx::Transaction<'static, Postgres>, SqlFailure> {
        self.table.get_mut(tx).map_err(SqlFailure::trap)?.0.take().ok_or_else(|| finished().into())
    }
}

fn finished() -> SqlError {
    SqlError { code: "25000".into(), message: "the transaction was already committed or rolled back".into(), unavailable: false }
}

#[cfg(test)]
mod tests {
    use super::described;

    #[test]
    fn a_statement_is_described_by_its_operation_and_table() {
        assert_eq!(described("SELECT body FROM \"s\".artifacts WHERE key = $1"), ("SELECT".into(), "artifacts".into()));
        assert_eq!(described("insert into s.projects (id) values ($1)"), ("INSERT".into(), "projects".into()));
        assert_eq!(described("UPDATE \"s\".\"tabs\" SET x = $1"), ("UPDATE".into(), "tabs".into()));
        assert_eq!(described("BEGIN"), ("BEGIN".into(), String::new()));
    }
}
