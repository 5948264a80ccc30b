//! The postgres plugin vs the same SQL through sqlx from native Rust: same pool settings, same
//! database and tables.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use sqlx::{PgPool, Row};
use storehost::capabilities::sql::SqlGrant;
use storehost::domain::body::collect;
use storehost::domain::{ArtifactStore, ByteRange, Ctx, ProjectInput, ProjectStore, UiNode, UiOp, UiStore};
use storehost::origin::{PluginArtifactStore, PluginProjectStore, PluginUiStore};
use storehost::runtime::{Plugin, PluginSpec, Runtime};
use storehost_plugin_kit::bindings::exports::storehost::origin::ui_documents as kit_ui;

use crate::support::{BenchDatabase, Report, compare, time_async};

/// What the plugin returns for a get, decoded natively.
#[allow(dead_code)]
struct NativeArtifact {
    key: String,
    size: i64,
    content_type: Option<String>,
    sha256: String,
    created_at: chrono::DateTime<chrono::Utc>,
    body: Vec<u8>,
}

async fn native_get(pool: &PgPool, key: &str) -> NativeArtifact {
    let row = sqlx::query("SELECT key, size, content_type, sha256, created_at, body FROM \"storehost\".artifacts WHERE key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap();
    NativeArtifact { key: row.get(0), size: row.get(1), content_type: row.get(2), sha256: row.get(3), created_at: row.get(4), body: row.get(5) }
}

async fn native_save(pool: &PgPool, id: &str, state: &str) -> (String, String, String, i64) {
    let now = chrono::Utc::now();
    let row = sqlx::query(
        "INSERT INTO \"storehost\".projects AS p (id, name, state, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, state = excluded.state,
             version = p.version + 1, updated_at = excluded.updated_at
         RETURNING id, name, state, version, created_at, updated_at",
    )
    .bind(id)
    .bind("bench")
    .bind(state)
    .bind(now)
    .fetch_one(pool)
    .await
    .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// apply-ops as the plugin does it: lock the row, decode, apply with the same rules, write back.
async fn native_apply(pool: &PgPool, id: &str, op: kit_ui::UiOp) -> usize {
    let mut tx = pool.begin().await.unwrap();
    let row =
        sqlx::query("SELECT version, nodes FROM \"storehost\".ui_documents WHERE id = $1 FOR UPDATE").bind(id).fetch_one(&mut *tx).await.unwrap();
    let version: i64 = row.get(0);
    let sqlx::types::Json(mut nodes): sqlx::types::Json<Vec<kit_ui::UiNode>> = row.get(1);
    storehost_plugin_kit::apply_ui_op(&mut nodes, op).unwrap();
    sqlx::query("UPDATE \"storehost\".ui_documents SET version = $2, nodes = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(version + 1)
        .bind(sqlx::types::Json(&nodes))
        .bind(chrono::Utc::now())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    nodes.len()
}

fn set_prop(value: u64) -> UiOp {
    UiOp::SetProp { node_id: "n7".into(), key: "value".into(), value: value.to_string() }
}

pub fn run(rt: &tokio::runtime::Runtime, runtime: &Runtime, report: &mut Report) {
    let db = rt.block_on(BenchDatabase::create("origins"));
    let grant = SqlGrant { url: db.url.clone(), max_connections: 4, connect_timeout: Duration::from_secs(5) };
    let mut spec = PluginSpec::new("postgres", "builtin:postgres", storehost::builtin("postgres").unwrap());
    spec.grants.sql = Some(grant.clone());
    let plugin = rt.block_on(Plugin::load(runtime, spec)).unwrap();
    // The same pool settings as the plugin's grant.
    let pool = {
        let _runtime = rt.enter();
        grant.pool(storehost::runtime::PluginSettings::default().timeout).unwrap()
    };
    let ctx = Ctx::background();

    let artifacts = PluginArtifactStore::new(plugin.clone()).unwrap();
    rt.block_on(artifacts.put(&ctx, "bench/4k", Bytes::from(vec![5u8; 4096]), Some("application/octet-stream".into()))).unwrap();
    let (ours, anchor) = compare(
        9,
        |n| {
            time_async(rt, n, || async {
                black_box(artifacts.get(&ctx, "bench/4k").await.unwrap());
            })
        },
        |n| {
            time_async(rt, n, || async {
                black_box(native_get(&pool, "bench/4k").await);
            })
        },
    );
    report.add("postgres artifact get 4 KiB", "postgres plugin", "sqlx native", ours, anchor);

    // A streamed read (what the HTTP API serves a GET with): the body of the version that existed
    // at open, whole, against one native SELECT of the row.
    for (label, size) in [("4 KiB", 4 << 10), ("4 MiB", 4 << 20)] {
        let key = format!("bench/read-{label}");
        let body = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
        rt.block_on(artifacts.put(&ctx, &key, body, Some("application/octet-stream".into()))).unwrap();
        let (ours, anchor) = compare(
            9,
            |n| {
                time_async(rt, n, || async {
                    let reader = artifacts.open_read(&ctx, &key, ByteRange::ALL).await.unwrap();
                    black_box(collect(reader.body).await.unwrap());
                })
            },
            |n| {
                time_async(rt, n, || async {
                    black_box(native_get(&pool, &key).await);
                })
            },
        );
        report.add(&format!("postgres artifact open-read {label}"), "postgres plugin", "sqlx native", ours, anchor);
    }

    let projects = PluginProjectStore::new(plugin.clone()).unwrap();
    let state = format!("{{\"cells\":[{}]}}", (0..32).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let (ours, anchor) = compare(
        9,
        |n| {
            time_async(rt, n, || async {
                let input = ProjectInput { id: "bench-plugin".into(), name: "bench".into(), state: state.clone() };
                black_box(projects.save(&ctx, input, None).await.unwrap());
            })
        },
        |n| {
            time_async(rt, n, || async {
                black_box(native_save(&pool, "bench-native", &state).await);
            })
        },
    );
    report.add("postgres project save (upsert)", "postgres plugin", "sqlx native", ours, anchor);

    // A document of 50 nodes; each call sets one property in a transaction.
    let ui = PluginUiStore::new(plugin.clone()).unwrap();
    let inserts = |prefix: &str| {
        (0..50)
            .map(|i| UiOp::InsertNode { node: UiNode { id: format!("n{i}"), parent: None, kind: format!("{prefix}cell"), props: vec![] }, index: i })
            .collect::<Vec<_>>()
    };
    rt.block_on(ui.apply_ops(&ctx, "bench-plugin", None, inserts(""))).unwrap();
    rt.block_on(ui.apply_ops(&ctx, "bench-native", None, inserts(""))).unwrap();
    let mut counter = 0u64;
    let mut native_counter = 0u64;
    let (ours, anchor) = compare(
        9,
        |n| {
            time_async(rt, n, || {
                counter += 1;
                let op = set_prop(counter);
                let ui = &ui;
                let ctx = &ctx;
                async move {
                    black_box(ui.apply_ops(ctx, "bench-plugin", None, vec![op]).await.unwrap());
                }
            })
        },
        |n| {
            time_async(rt, n, || {
                native_counter += 1;
                let op = kit_ui::UiOp::SetProp(kit_ui::SetProp { node_id: "n7".into(), key: "value".into(), value: native_counter.to_string() });
                let pool = &pool;
                async move {
                    black_box(native_apply(pool, "bench-native", op).await);
                }
            })
        },
    );
    report.add("postgres ui apply-ops (1 op, 50 nodes)", "postgres plugin", "sqlx native", ours, anchor);

    drop(pool);
    drop(plugin);
    rt.block_on(db.drop_database());
}
