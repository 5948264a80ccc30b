//! Test databases on the real PostgreSQL on 127.0.0.1:5432 (override the server with
//! STOREHOST_TEST_DATABASE_URL; scripts/setup.sh starts it when it is down).

use std::time::Duration;

use sqlx::Connection;
use storehost::capabilities::sql::SqlGrant;
use storehost::runtime::PluginSpec;

/// The server's maintenance database URL.
pub fn server_url() -> String {
    std::env::var("STOREHOST_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database of its own, dropped (with its connections) when the guard goes, so test
/// runs never see each other's rows.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("storehost_test_{}_{nanos}_{seq}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&server_url()).await.expect("PostgreSQL on 127.0.0.1:5432 (scripts/setup.sh starts it)");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        let base = server_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        TestDatabase { name, url }
    }

    pub async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// The address (`host:port`) of a PostgreSQL URL.
pub fn address_of(url: &str) -> String {
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap().to_string()
}

/// `url` with its address replaced (to reach the server through a proxy).
pub fn with_address(url: &str, address: &str) -> String {
    url.replacen(&address_of(url), address, 1)
}

/// A grant of the database at `url`: 8 connections, a 5 s connect timeout.
pub fn grant(url: &str) -> SqlGrant {
    SqlGrant { url: url.into(), max_connections: 8, connect_timeout: Duration::from_secs(5) }
}

/// The built-in postgres plugin on the database at `url`.
pub fn postgres_spec(url: &str) -> PluginSpec {
    let mut spec = crate::builtin("postgres");
    spec.grants.sql = Some(grant(url));
    spec
}
