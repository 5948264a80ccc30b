//! `cargo bench -p storehost --bench origins`: the database and object-store plugins against
//! the same work done by native Rust (sqlx, aws-sdk-s3) on the same servers, one caller at a
//! time, interleaved rounds, medians.
//!
//! PostgreSQL: 127.0.0.1:5432 (or STOREHOST_BENCH_DATABASE_URL), in a database created for the
//! run and dropped after it. S3: an s3s-fs server in this process, over a temporary directory.

mod support;

#[path = "origins/postgres.rs"]
mod postgres;
#[path = "origins/s3.rs"]
mod s3;

use storehost::runtime::{Runtime, RuntimeConfig};
use support::Report;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut report = Report::new("origins");
    postgres::run(&rt, &runtime, &mut report);
    s3::run(&rt, &runtime, &mut report);
    report.finish();
}
