//! Plugins reach only what the manifest grants.

use std::os::unix::fs::symlink;

use storehost::domain::{ArtifactStore, Ctx, RunnerStore, StoreError};
use storehost::origin::mock::MockControl;
use storehost::runtime::{LoadError, Plugin, PluginSpec};
use storehost_tests::{builtin, fs_spec, load, runtime, stores};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_root_outside_its_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    for root in ["/data/../..", "/data/..", "/", outside.path().to_str().unwrap(), "/etc"] {
        let mut spec = fs_spec(dir.path());
        spec.config.insert("root".into(), root.into());
        match Plugin::load(&runtime(), spec).await {
            Err(LoadError::Start { error: StoreError::Unavailable(msg), .. }) => {
                assert!(msg.contains("cannot create"), "root {root}: {msg}")
            }
            Err(other) => panic!("root {root}: unexpected error {other}"),
            Ok(_) => panic!("the fs plugin started with root {root:?}, outside its preopened directory"),
        }
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "something was written outside the grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_keys_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(&runtime(), fs_spec(dir.path())).await;
    let ctx = Ctx::background();
    for key in ["../escape", "a/../../escape", "/etc/passwd"] {
        let err = s.artifact.as_ref().unwrap().put(&ctx, key, "x".into(), None).await.unwrap_err();
        assert_eq!(err.kind(), storehost::base::ErrorKind::Invalid, "{key}: {err}");
        let err = s.runner.as_ref().unwrap().read(&ctx, "..", key).await.unwrap_err();
        assert_eq!(err.kind(), storehost::base::ErrorKind::Invalid, "{key}: {err}");
    }
    assert!(!dir.path().parent().unwrap().join("escape").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_pointing_out_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let s = stores(&runtime(), fs_spec(dir.path())).await;
    let ctx = Ctx::background();
    // A secret outside the grant, and links to it planted where the plugin stores data.
    std::fs::write(outside.path().join("secret"), b"top secret").unwrap();
    std::fs::create_dir_all(dir.path().join("runs/run1")).unwrap();
    symlink(outside.path().join("secret"), dir.path().join("runs/run1/leak=")).unwrap();
    symlink(outside.path(), dir.path().join("runs/run2")).unwrap();
    let runner: &dyn RunnerStore = s.runner.as_deref().unwrap();
    let read = runner.read(&ctx, "run1", "leak").await;
    assert!(read.is_err(), "a symlink out of the grant was followed: {read:?}");
    let listed = runner.list(&ctx, "run2", "").await;
    assert!(!matches!(&listed, Ok(names) if names.iter().any(|n| n.contains("secret"))), "listed outside: {listed:?}");
    let wrote = runner.write(&ctx, "run2", "planted", "x".into()).await;
    assert!(wrote.is_err(), "writing through a symlinked directory succeeded");
    assert!(!outside.path().join("planted=").exists(), "a file was written outside the grant");
    // A read-only grant cannot be written.
    let mut spec = fs_spec(dir.path());
    spec.dirs[0].mode = storehost::capabilities::files::DirMode::Ro;
    let err = Plugin::load(&runtime(), spec).await.unwrap_err().to_string();
    assert!(err.contains("cannot create"), "{err}");
    let _: Option<&dyn ArtifactStore> = s.artifact.as_deref();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_capability_is_refused_at_load() {
    let wasm = std::fs::read(storehost::test_fixture("sql-user").unwrap()).unwrap();
    let spec = PluginSpec::new("reports", "sql-user.wasm", wasm.clone());
    let err = Plugin::load(&runtime(), spec).await.unwrap_err();
    assert!(matches!(err, LoadError::Ungranted { .. }), "{err}");
    let msg = err.to_string();
    for part in ["plugin reports", "storehost:host/sql", "`sql`", "[plugins.reports]"] {
        assert!(msg.contains(part), "{msg:?} does not mention {part}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_see_no_environment() {
    // SAFETY-free: the variable is set before any thread of this test reads the environment.
    let before: Vec<_> = std::env::vars().collect();
    assert!(!before.is_empty(), "the test process itself has an environment");
    let mock = MockControl::new(load(&runtime(), builtin("mock")).await).unwrap();
    let seen = mock.environment().await.unwrap();
    assert!(seen.is_empty(), "the plugin saw {seen:?}");
}
