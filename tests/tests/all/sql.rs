//! The `sql` capability against the real PostgreSQL on 127.0.0.1:5432 (override with
//! STOREHOST_TEST_DATABASE_URL), through the `sql-user` fixture: a runner store whose files are
//! rows. Each test runs in a database of its own.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sqlx::Connection;
use storehost::capabilities::sql::SqlGrant;
use storehost::domain::{Ctx, RunnerStore};
use storehost::origin::PluginRunnerStore;
use storehost::runtime::{LoadError, Plugin, PluginSpec};
use storehost_tests::pg::TestDatabase;
use storehost_tests::runtime;

fn spec(url: &str, connect_timeout: Duration) -> PluginSpec {
    let wasm = std::fs::read(storehost::test_fixture("sql-user").unwrap()).unwrap();
    let mut spec = PluginSpec::new("reports", "sql-user.wasm", wasm);
    spec.grants.sql = Some(SqlGrant { url: url.into(), max_connections: 4, connect_timeout });
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_plugin_reads_and_writes_rows() {
    let db = TestDatabase::create().await;
    let plugin = Plugin::load(&runtime(), spec(&db.url, Duration::from_secs(5))).await.unwrap();
    let store = PluginRunnerStore::new(plugin).unwrap();
    let ctx = Ctx::background();
    let data = Bytes::from((0..=255u8).cycle().take(100_000).collect::<Vec<u8>>());
    store.write(&ctx, "run-1", "it's; -- a name", data.clone()).await.unwrap();
    assert_eq!(store.read(&ctx, "run-1", "it's; -- a name").await.unwrap(), data, "bytea round trip");
    store.remove(&ctx, "run-1", "it's; -- a name").await.unwrap();
    assert_eq!(store.read(&ctx, "run-1", "it's; -- a name").await.unwrap_err().kind(), storehost::base::ErrorKind::NotFound);
    // The rows are really in PostgreSQL, in this test's database.
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'files'").fetch_one(&mut conn).await.unwrap();
    assert_eq!(tables, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_unavailable_within_the_connect_timeout() {
    let started = Instant::now();
    // Nothing listens on port 1.
    let err = Plugin::load(&runtime(), spec("postgres://postgres@127.0.0.1:1/postgres", Duration::from_secs(1))).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(&err, LoadError::Start { error, .. } if error.kind() == storehost::base::ErrorKind::Unavailable), "{err}");
    assert!(err.to_string().contains("database unavailable"), "{err}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
}
