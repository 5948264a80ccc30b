//! The postgres plugin on the real PostgreSQL (each test in a database of its own): concurrent
//! writers, hostile keys, migrations, configuration, outages. The domain rules themselves are
//! the conformance suite's (conformance.rs runs it on this plugin too).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use storehost::domain::Stores;
use storehost::domain::{Ctx, ProjectInput, TabInput, UiNode, UiOp, WorkspaceInput};
use storehost::runtime::{LoadError, Plugin, PluginSpec};
use storehost_tests::pg::{TestDatabase, postgres_spec};
use storehost_tests::{builtin, runtime, stores};

/// The plugin with 16 instances over 16 connections, so 16 callers really run at once.
fn wide(db: &TestDatabase) -> PluginSpec {
    let mut spec = postgres_spec(&db.url);
    spec.settings.instances = 16;
    spec.grants.sql.as_mut().unwrap().max_connections = 16;
    spec
}

fn input(id: &str, state: &str) -> ProjectInput {
    ProjectInput { id: id.into(), name: "race".into(), state: state.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_win_each_version_exactly_once() {
    let db = TestDatabase::create().await;
    let s = stores(&runtime(), wide(&db)).await;
    let projects = s.project.clone().unwrap();
    let ctx = Ctx::background();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for task in 0..16 {
        let projects = projects.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = Ctx::background();
            let (mut won, mut conflicts) = (Vec::new(), 0);
            start.wait().await;
            for round in 0..12 {
                let current = match projects.get(&ctx, "p").await {
                    Ok(p) => p.version,
                    Err(e) if e.kind() == storehost::base::ErrorKind::NotFound => 0,
                    Err(e) => panic!("get: {e}"),
                };
                match projects.save(&ctx, input("p", &format!("{{\"task\":{task},\"round\":{round}}}")), Some(current)).await {
                    Ok(saved) => {
                        assert_eq!(saved.version, current + 1);
                        won.push(saved.version);
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), storehost::base::ErrorKind::Conflict, "a losing writer gets conflict, not {e}");
                        conflicts += 1;
                    }
                }
            }
            (won, conflicts)
        }));
    }
    let mut versions = BTreeSet::new();
    let (mut wins, mut conflicts) = (0u64, 0u64);
    for task in tasks {
        let (won, lost) = task.await.unwrap();
        wins += won.len() as u64;
        conflicts += lost;
        for v in won {
            assert!(versions.insert(v), "version {v} was won twice");
        }
    }
    assert_eq!(wins + conflicts, 16 * 12);
    assert!(conflicts > 0, "the writers never raced");
    let stored = projects.get(&ctx, "p").await.unwrap();
    assert_eq!(stored.version, wins, "final version = number of wins");
    assert_eq!(versions, (1..=wins).collect::<BTreeSet<_>>(), "every version from 1 was won once");
}

fn node(id: String) -> UiNode {
    UiNode { id, parent: None, kind: "cell".into(), props: vec![("v".into(), "1".into())] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_apply_ops_lose_no_op() {
    let db = TestDatabase::create().await;
    let s = stores(&runtime(), wide(&db)).await;
    let ui = s.ui.clone().unwrap();
    let mut tasks = Vec::new();
    for task in 0..16 {
        let ui = ui.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = Ctx::background();
            for i in 0..10 {
                // Two ops per call: both land or neither does.
                let ops = vec![
                    UiOp::InsertNode { node: node(format!("t{task}-{i}")), index: 0 },
                    UiOp::SetProp { node_id: format!("t{task}-{i}"), key: "task".into(), value: task.to_string() },
                ];
                ui.apply_ops(&ctx, "doc", None, ops).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let doc = ui.get(&Ctx::background(), "doc").await.unwrap();
    assert_eq!(doc.version, 160, "one version per apply-ops");
    assert_eq!(doc.nodes.len(), 160, "every inserted node is there");
    let ids: BTreeSet<&str> = doc.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids.len(), 160);
    assert!(doc.nodes.iter().all(|n| n.props.iter().any(|(k, _)| k == "task")), "every set-prop landed with its insert");
    // A failing batch changes nothing: the second op names a missing node.
    let bad = vec![UiOp::InsertNode { node: node("extra".into()), index: 0 }, UiOp::RemoveNode { id: "missing".into() }];
    let err = ui.apply_ops(&Ctx::background(), "doc", None, bad).await.unwrap_err();
    assert_eq!(err.kind(), storehost::base::ErrorKind::Invalid, "{err}");
    let after = ui.get(&Ctx::background(), "doc").await.unwrap();
    assert_eq!((after.version, after.nodes.len()), (160, 160));
}

/// Quotes, semicolons, comment markers, backslashes and unicode in every key and id.
const HOSTILE: &[&str] = &["it's", "a;b", "x--y", "'; DROP TABLE artifacts; --", "\\\"q\"\\", "ünï cödé 🚀", "$1 %s ?"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_and_ids_round_trip_as_data() {
    let db = TestDatabase::create().await;
    let s = stores(&runtime(), postgres_spec(&db.url)).await;
    let ctx = Ctx::background();
    for (i, raw) in HOSTILE.iter().enumerate() {
        let key = format!("k/{raw}");
        let body = Bytes::from(format!("body {i}: {raw}"));
        s.artifact.as_ref().unwrap().put(&ctx, &key, body.clone(), Some(raw.to_string())).await.unwrap();
        let got = s.artifact.as_ref().unwrap().get(&ctx, &key).await.unwrap();
        assert_eq!((got.meta.key.as_str(), &got.body, got.meta.content_type.as_deref()), (key.as_str(), &body, Some(*raw)));

        let project = s.project.as_ref().unwrap().save(&ctx, input(raw, &format!("{{\"s\":{:?}}}", raw)), None).await.unwrap();
        assert_eq!(s.project.as_ref().unwrap().get(&ctx, raw).await.unwrap(), project);

        let doc = s.ui.as_ref().unwrap().apply_ops(&ctx, raw, None, vec![UiOp::InsertNode { node: node(raw.to_string()), index: 0 }]).await.unwrap();
        assert_eq!(doc.unwrap().nodes[0].id, *raw);
        assert_eq!(s.ui.as_ref().unwrap().get(&ctx, raw).await.unwrap().nodes[0].id, *raw);

        let ws = s.workspace.as_ref().unwrap();
        ws.create(&ctx, WorkspaceInput { id: raw.to_string(), project_id: raw.to_string(), name: raw.to_string() }).await.unwrap();
        ws.create_tab(&ctx, raw, TabInput { id: raw.to_string(), title: raw.to_string(), kind: raw.to_string() }).await.unwrap();
        assert_eq!(ws.select_tab(&ctx, raw, raw).await.unwrap().selected_tab.as_deref(), Some(*raw));

        let runner = s.runner.as_ref().unwrap();
        runner.write(&ctx, raw, raw, body.clone()).await.unwrap();
        assert_eq!(runner.read(&ctx, raw, raw).await.unwrap(), body);
        assert_eq!(runner.list(&ctx, raw, "").await.unwrap(), vec![raw.to_string()]);
    }
    let page = s.artifact.as_ref().unwrap().list(&ctx, "k/", None, 0).await.unwrap();
    assert_eq!(page.items.len(), HOSTILE.len(), "every key listed once");
    // The tables are all still there, holding the rows.
    let mut conn = db.connect().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM storehost.artifacts").fetch_one(&mut conn).await.unwrap();
    assert_eq!(rows, HOSTILE.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_starting_at_once_migrate_once() {
    let db = TestDatabase::create().await;
    // Four hosts (runtimes) loading the plugin at the same moment, each with 4 instances.
    let loads: Vec<_> = (0..4)
        .map(|_| {
            let spec = postgres_spec(&db.url);
            tokio::spawn(async move { Plugin::load(&runtime(), spec).await })
        })
        .collect();
    for load in loads {
        load.await.unwrap().expect("every host starts");
    }
    let mut conn = db.connect().await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM storehost.schema_migrations ORDER BY version").fetch_all(&mut conn).await.unwrap();
    assert_eq!(versions, vec![1, 2], "each migration recorded once");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'storehost' ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        tables,
        [
            "artifacts",
            "project_artifacts",
            "projects",
            "runner_files",
            "schema_migrations",
            "ui_documents",
            "upload_chunks",
            "workspace_tabs",
            "workspaces"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_rows_in_the_database_and_survive_a_reload() {
    let db = TestDatabase::create().await;
    let ctx = Ctx::background();
    let body = Bytes::from(vec![0u8, 1, 2, 255, 0, 39, 92]);
    {
        let s = stores(&runtime(), postgres_spec(&db.url)).await;
        s.artifact.as_ref().unwrap().put(&ctx, "bin/blob", body.clone(), None).await.unwrap();
        s.project.as_ref().unwrap().save(&ctx, input("kept", "{}"), None).await.unwrap();
    }
    let mut conn = db.connect().await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT body FROM storehost.artifacts WHERE key = 'bin/blob'").fetch_one(&mut conn).await.unwrap();
    assert_eq!(stored, body.to_vec(), "the acknowledged write is in the origin");
    let s: Stores = stores(&runtime(), postgres_spec(&db.url)).await;
    assert_eq!(s.artifact.as_ref().unwrap().get(&ctx, "bin/blob").await.unwrap().body, body);
    assert_eq!(s.project.as_ref().unwrap().get(&ctx, "kept").await.unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_keep_two_origins_apart_in_one_database() {
    let db = TestDatabase::create().await;
    let ctx = Ctx::background();
    let mut a = postgres_spec(&db.url);
    a.config.insert("schema".into(), "tenant_a".into());
    let mut b = postgres_spec(&db.url);
    b.config.insert("schema".into(), "tenant_b".into());
    let (a, b) = (stores(&runtime(), a).await, stores(&runtime(), b).await);
    a.artifact.as_ref().unwrap().put(&ctx, "only/in/a", Bytes::from_static(b"a"), None).await.unwrap();
    assert_eq!(b.artifact.as_ref().unwrap().get(&ctx, "only/in/a").await.unwrap_err().kind(), storehost::base::ErrorKind::NotFound);
    assert_eq!(a.artifact.as_ref().unwrap().get(&ctx, "only/in/a").await.unwrap().body, Bytes::from_static(b"a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_body_are_refused_and_config_errors_name_the_key() {
    let db = TestDatabase::create().await;
    let ctx = Ctx::background();
    let mut spec = postgres_spec(&db.url);
    spec.config.insert("max_body".into(), "1KiB".into());
    let s = stores(&runtime(), spec).await;
    let artifacts = s.artifact.as_ref().unwrap();
    artifacts.put(&ctx, "fits", Bytes::from(vec![7u8; 1024]), None).await.unwrap();
    let err = artifacts.put(&ctx, "too/big", Bytes::from(vec![7u8; 1025]), None).await.unwrap_err();
    assert_eq!(err.kind(), storehost::base::ErrorKind::Invalid);
    assert!(err.to_string().contains("max_body"), "{err}");
    let err = s.runner.as_ref().unwrap().write(&ctx, "r", "big", Bytes::from(vec![0u8; 2048])).await.unwrap_err();
    assert_eq!(err.kind(), storehost::base::ErrorKind::Invalid);

    for (key, value, expected) in [("schema", "Robert'); DROP", "schema"), ("max_body", "lots", "max_body"), ("shema", "x", "shema")] {
        let mut spec = postgres_spec(&db.url);
        spec.config.insert(key.into(), value.into());
        let err = Plugin::load(&runtime(), spec).await.unwrap_err();
        assert!(matches!(&err, LoadError::Start { error, .. } if error.kind() == storehost::base::ErrorKind::Invalid), "{err}");
        assert!(err.to_string().contains(&format!("`{expected}`")), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_unavailable_within_the_connect_timeout() {
    let mut spec = postgres_spec("postgres://postgres@127.0.0.1:1/postgres");
    spec.grants.sql.as_mut().unwrap().connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = Plugin::load(&runtime(), spec).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(&err, LoadError::Start { error, .. } if error.kind() == storehost::base::ErrorKind::Unavailable), "{err}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_sql_grant_the_plugin_is_refused_naming_the_key() {
    let err = Plugin::load(&runtime(), builtin("postgres")).await.unwrap_err();
    assert!(matches!(&err, LoadError::Ungranted { key: "sql", .. }), "{err}");
    assert!(err.to_string().contains("add `sql` to [plugins.postgres]"), "{err}");
}

/// A statement waiting on a row lock is cut at the caller's deadline, the cut transaction
/// writes nothing, the statement stops waiting in the server by the plugin's timeout, and the
/// plugin and its pool serve the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_deadline_cuts_a_blocked_statement() {
    use sqlx::Connection;
    let db = TestDatabase::create().await;
    let mut spec = postgres_spec(&db.url);
    spec.settings.timeout = Duration::from_secs(1);
    let s = stores(&runtime(), spec).await;
    let ui = s.ui.clone().unwrap();
    ui.apply_ops(&Ctx::background(), "locked", None, vec![UiOp::InsertNode { node: node("a".into()), index: 0 }]).await.unwrap();
    // Another client holds the document's row lock.
    let mut other = db.connect().await;
    let mut holder = other.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM storehost.ui_documents WHERE id = 'locked' FOR UPDATE").execute(&mut *holder).await.unwrap();

    let started = Instant::now();
    let ops = vec![UiOp::InsertNode { node: node("b".into()), index: 0 }];
    let err = ui.apply_ops(&Ctx::with_timeout(Duration::from_millis(300)), "locked", None, ops.clone()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err.kind(), storehost::base::ErrorKind::PluginTimeout | storehost::base::ErrorKind::Unavailable), "{err}");
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1500), "cut after {elapsed:?}");

    // The cut statement does not linger in the server waiting for the lock.
    let mut waiting = 0;
    for _ in 0..50 {
        waiting =
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
                .fetch_one(&mut *holder)
                .await
                .unwrap();
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = started.elapsed();
    assert_eq!(waiting, 0, "the cut statement still waits in the server after {gone_after:?}");
    assert!(gone_after < Duration::from_millis(2500), "the statement waited {gone_after:?} in the server");
    holder.rollback().await.unwrap();
    let doc = ui.get(&Ctx::background(), "locked").await.unwrap();
    assert_eq!((doc.version, doc.nodes.len()), (1, 1), "the cut call wrote nothing");
    let doc = ui.apply_ops(&Ctx::background(), "locked", Some(1), ops).await.unwrap().unwrap();
    assert_eq!((doc.version, doc.nodes.len()), (2, 2), "the next call is served");
}

/// While another host holds the migration lock, a start waits for it, bounded by the plugin's
/// timeout (then `unavailable`), and starts once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_waits_for_the_migration_lock_within_the_timeout() {
    let db = TestDatabase::create().await;
    let mut other = db.connect().await;
    sqlx::query("SELECT pg_advisory_lock(hashtext('storehost migrations \"storehost\"'))").execute(&mut other).await.unwrap();
    let mut spec = postgres_spec(&db.url);
    spec.settings.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = Plugin::load(&runtime(), spec.clone()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(&err, LoadError::Start { error, .. } if error.kind() == storehost::base::ErrorKind::Unavailable), "{err}");
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3), "gave up after {elapsed:?}");
    sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut other).await.unwrap();
    Plugin::load(&runtime(), spec).await.expect("starts once the lock is free");
}
