//! Statements through the host's `sql` capability: error mapping, parameters and row decoding.

use storehost_plugin_kit::bindings::storehost::host::sql::{self, SqlError, SqlRow, SqlValue, Transaction};
use storehost_plugin_kit::{Result, StoreError};

use crate::schema;

/// SQLSTATEs after which retrying may succeed: serialization failure, deadlock, statement
/// timeout or cancel, lock not available, too many connections, and the connection classes.
fn transient(code: &str) -> bool {
    matches!(code, "40001" | "40P01" | "57014" | "55P03" | "53300" | "57P01" | "57P03") || code.starts_with("08")
}

/// A database error as a store error: `unavailable` when the database could not be reached or
/// the failure is transient, `internal` otherwise (with the SQLSTATE).
pub fn store_error(e: SqlError) -> StoreError {
    if e.unavailable || transient(&e.code) {
        StoreError::Unavailable(format!("postgres: {}", e.message))
    } else if e.code.is_empty() {
        StoreError::Internal(format!("postgres: {}", e.message))
    } else {
        StoreError::Internal(format!("postgres (SQLSTATE {}): {}", e.code, e.message))
    }
}

/// Where statements run: on any pooled connection, or inside a transaction.
pub enum Db<'a> {
    Pool,
    Tx(&'a Transaction),
}

impl Db<'_> {
    /// Runs `statement` (with `{s}` standing for the configured schema) and returns its rows.
    pub fn query(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<SqlRow>> {
        let statement = schema::qualify(statement);
        match self {
            Db::Pool => sql::query(&statement, params),
            Db::Tx(tx) => tx.query(&statement, params),
        }
        .map_err(store_error)
    }

    /// The first row, if any.
    pub fn query_opt(&self, statement: &str, params: &[SqlValue]) -> Result<Option<SqlRow>> {
        Ok(self.query(statement, params)?.into_iter().next())
    }

    /// Runs `statement` and returns the number of rows it affected.
    pub fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<u64> {
        let statement = schema::qualify(statement);
        match self {
            Db::Pool => sql::execute(&statement, params),
            Db::Tx(tx) => tx.execute(&statement, params),
        }
        .map_err(store_error)
    }
}

/// Begins a transaction; dropped without [`commit`] it is rolled back.
pub fn begin() -> Result<Transaction> {
    Transaction::begin().map_err(store_error)
}

pub fn commit(tx: Transaction) -> Result<()> {
    tx.commit().map_err(store_error)
}

pub fn text(v: impl Into<String>) -> SqlValue {
    SqlValue::Text(v.into())
}

pub fn opt_text(v: Option<String>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Text)
}

pub fn int(v: u64) -> SqlValue {
    SqlValue::Int64(v as i64)
}

pub fn ts(ms: u64) -> SqlValue {
    SqlValue::Timestamp(ms as i64)
}

/// Typed access to a row's columns by position, failing as `internal` on a type the schema
/// does not produce.
pub struct Row(pub SqlRow);

impl Row {
    fn value(&self, i: usize) -> Result<&SqlValue> {
        self.0.get(i).map(|c| &c.value).ok_or_else(|| StoreError::Internal(format!("postgres: row has no column {i}")))
    }

    fn mismatch(&self, i: usize, want: &str) -> StoreError {
        let name = self.0.get(i).map_or("?", |c| c.name.as_str());
        StoreError::Internal(format!("postgres: column {name:?} is not {want}"))
    }

    pub fn text(&self, i: usize) -> Result<String> {
        match self.value(i)? {
            SqlValue::Text(s) => Ok(s.clone()),
            _ => Err(self.mismatch(i, "text")),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.value(i)? {
            SqlValue::Null => Ok(None),
            SqlValue::Text(s) => Ok(Some(s.clone())),
            _ => Err(self.mismatch(i, "text or null")),
        }
    }

    pub fn u64(&self, i: usize) -> Result<u64> {
        match self.value(i)? {
            SqlValue::Int64(v) if *v >= 0 => Ok(*v as u64),
            _ => Err(self.mismatch(i, "a non-negative integer")),
        }
    }

    pub fn ts(&self, i: usize) -> Result<u64> {
        match self.value(i)? {
            SqlValue::Timestamp(ms) if *ms >= 0 => Ok(*ms as u64),
            _ => Err(self.mismatch(i, "a timestamp")),
        }
    }

    pub fn json(&self, i: usize) -> Result<String> {
        match self.value(i)? {
            SqlValue::Json(s) => Ok(s.clone()),
            _ => Err(self.mismatch(i, "json")),
        }
    }

    /// Takes a bytea column out of the row.
    pub fn take_bytes(&mut self, i: usize) -> Result<Vec<u8>> {
        match self.0.get_mut(i).map(|c| std::mem::replace(&mut c.value, SqlValue::Null)) {
            Some(SqlValue::Bytes(b)) => Ok(b),
            _ => Err(self.mismatch(i, "bytea")),
        }
    }
}
