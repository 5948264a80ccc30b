//! Faults injected with the mock plugin: a trap, an endless loop, memory growth, a slow call,
//! a full queue, a cancelled caller. Each fails only its own call.

use std::time::{Duration, Instant};

use bytes::Bytes;
use storehost::domain::{ArtifactStore, Ctx, StoreError};
use storehost::origin::PluginArtifactStore;
use storehost::origin::mock::{Fault, FaultRule, MockControl};
use storehost::runtime::{Plugin, PluginSpec};
use storehost_tests::{builtin, load, runtime};
use tokio_util::sync::CancellationToken;

fn mock(configure: impl FnOnce(&mut PluginSpec)) -> PluginSpec {
    let mut spec = builtin("mock");
    spec.settings.instances = 1;
    configure(&mut spec);
    spec
}

async fn artifacts(spec: PluginSpec) -> (Plugin, PluginArtifactStore, MockControl) {
    let plugin = load(&runtime(), spec).await;
    (plugin.clone(), PluginArtifactStore::new(plugin.clone()).unwrap(), MockControl::new(plugin).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_fails_only_that_call() {
    let (plugin, store, control) = artifacts(mock(|_| {})).await;
    let ctx = Ctx::background();
    control.add_fault(FaultRule::new("artifacts.get", Fault::Trap).times(1)).await.unwrap();
    let err = store.get(&ctx, "k").await.unwrap_err();
    assert!(matches!(&err, StoreError::PluginTrapped { method, .. } if method == "artifacts.get"), "{err}");
    // The plugin's name quoted, "wasm trap:" once, and what `unreachable` means.
    let message = err.to_string();
    assert!(message.starts_with("plugin \"mock\" trapped in artifacts.get: wasm trap: wasm `unreachable` instruction executed"), "{message}");
    assert_eq!(message.matches("wasm trap:").count(), 1, "{message}");
    assert!(message.contains("abort()") && message.contains("panic") && message.contains("uncaught exception"), "{message}");
    // The next call runs on a fresh instance (the trapped one lost its state, counters included).
    store.put(&ctx, "k", Bytes::from_static(b"v"), None).await.unwrap();
    assert_eq!(&store.get(&ctx, "k").await.unwrap().body[..], b"v");
    assert_eq!(control.call_count("artifacts.get").await.unwrap(), 1, "counters restart on the fresh instance");
    let stats = plugin.stats();
    assert_eq!((stats.traps, stats.instances_discarded), (1, 1), "{stats:?}");
    assert_eq!(stats.instances_created, 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_cut_at_the_deadline_while_other_calls_are_served() {
    let spec = mock(|s| {
        s.settings.instances = 2;
        s.settings.timeout = Duration::from_millis(500);
        // Config faults reach every instance, including replacements.
        s.config.insert("fault.artifacts.get.spin".into(), "loop".into());
    });
    let (plugin, store, _) = artifacts(spec).await;
    let store = std::sync::Arc::new(store);
    let spinning = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = store.get(&Ctx::background(), "spin").await;
            (result, started.elapsed())
        })
    };
    // While one instance spins, the other keeps serving.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut served = 0;
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let ctx = Ctx::background();
        store.put(&ctx, "other", Bytes::from_static(b"x"), None).await.unwrap();
        store.head(&ctx, "other").await.unwrap();
        served += 1;
    }
    assert!(served > 10, "only {served} calls were served while a call was spinning");
    let (result, elapsed) = spinning.await.unwrap();
    assert!(matches!(result, Err(StoreError::PluginTimeout { .. })), "{result:?}");
    assert!(elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(600), "cut after {elapsed:?}");
    assert_eq!(plugin.stats().timeouts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_growth_past_the_cap_is_an_error() {
    let (plugin, store, control) = artifacts(mock(|s| s.settings.memory_limit = 32 << 20)).await;
    let ctx = Ctx::background();
    control.add_fault(FaultRule::new("artifacts.put", Fault::GrowMemory(1 << 30)).times(1)).await.unwrap();
    let err = store.put(&ctx, "k", Bytes::from_static(b"v"), None).await.unwrap_err();
    assert!(matches!(&err, StoreError::PluginTrapped { message, .. } if message.contains("memory limit of 33554432 bytes")), "{err}");
    // Growth within the cap works, and the plugin keeps serving.
    control.add_fault(FaultRule::new("artifacts.put", Fault::GrowMemory(4 << 20)).times(1)).await.unwrap();
    store.put(&ctx, "k", Bytes::from_static(b"v"), None).await.unwrap();
    assert_eq!(&store.get(&ctx, "k").await.unwrap().body[..], b"v");
    assert_eq!(plugin.stats().traps, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_deadline_shorter_than_the_plugin_timeout_wins() {
    let (_, store, control) = artifacts(mock(|s| s.settings.timeout = Duration::from_secs(10))).await;
    for fault in [Fault::DelayMs(5_000), Fault::EndlessLoop] {
        control.clear_faults().await.unwrap();
        control.add_fault(FaultRule::new("artifacts.head", fault.clone()).times(1)).await.unwrap();
        let started = Instant::now();
        let err = store.head(&Ctx::with_timeout(Duration::from_millis(200)), "k").await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, StoreError::PluginTimeout { .. }), "{fault:?}: {err}");
        assert!(elapsed < Duration::from_millis(300), "{fault:?}: the caller's 200ms deadline was honoured only after {elapsed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_stops_its_call() {
    let (plugin, store, control) = artifacts(mock(|_| {})).await;
    control.add_fault(FaultRule::new("artifacts.get", Fault::DelayMs(5_000)).times(1)).await.unwrap();
    let token = CancellationToken::new();
    let ctx = Ctx::background().cancel_with(token.clone());
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
    });
    let started = Instant::now();
    let err = store.get(&ctx, "k").await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(err, StoreError::Cancelled);
    assert!(started.elapsed() < Duration::from_millis(1_000), "cancellation took {:?}", started.elapsed());
    assert_eq!(plugin.stats().cancellations, 1);
}

/// The mock on one instance with room for one waiting call; `get("slow")` takes 400 ms.
async fn one_instance_queue_of_one() -> (Plugin, std::sync::Arc<PluginArtifactStore>) {
    let spec = mock(|s| {
        s.settings.queue = 1;
        s.config.insert("fault.artifacts.get.slow".into(), "delay-ms=400".into());
    });
    let (plugin, store, _) = artifacts(spec).await;
    (plugin, std::sync::Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_queue_fail_fast_with_unavailable() {
    let (plugin, store) = one_instance_queue_of_one().await;
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(&Ctx::background(), "slow").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // One call runs, one waits: a third is refused at once.
    let started = Instant::now();
    let err = store.get(&Ctx::background(), "slow").await.unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable(m) if m.contains("already waiting")), "{err}");
    assert!(started.elapsed() < Duration::from_millis(50));
    for call in slow {
        assert_eq!(call.await.unwrap().unwrap_err().kind(), storehost::base::ErrorKind::NotFound, "the queued calls still complete");
    }
    assert_eq!(plugin.stats().rejected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gone_while_waiting_for_an_instance_leaves_the_queue() {
    let (plugin, store) = one_instance_queue_of_one().await;
    let spawn = |key: &'static str| {
        let store = store.clone();
        tokio::spawn(async move { store.get(&Ctx::background(), key).await })
    };
    let running = spawn("slow");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A caller waits for the one instance, then goes away (a client that hung up).
    let gone = spawn("slow");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(plugin.stats().pool_waiting, 1);
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    assert_eq!(plugin.stats().pool_waiting, 0, "a caller that went away still counts as waiting");
    // Its place in the queue is free: the next caller waits and is answered, not refused.
    let next = store.get(&Ctx::background(), "k").await.unwrap_err();
    assert_eq!(next.kind(), storehost::base::ErrorKind::NotFound, "{next}");
    assert_eq!(running.await.unwrap().unwrap_err().kind(), storehost::base::ErrorKind::NotFound);
    assert_eq!(plugin.stats().rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_reach_the_caller_typed() {
    let (_, store, control) = artifacts(mock(|_| {})).await;
    for (kind, error) in [
        ("unavailable", StoreError::Unavailable("db down".into())),
        ("conflict", StoreError::Conflict("race".into())),
        ("internal", StoreError::Internal("bug".into())),
    ] {
        control.add_fault(FaultRule::new("artifacts.put", Fault::Fail(error.clone())).key("k").times(1)).await.unwrap();
        let err = store.put(&Ctx::background(), "k", Bytes::new(), None).await.unwrap_err();
        assert_eq!(err, error, "{kind}");
    }
    store.put(&Ctx::background(), "k", Bytes::new(), None).await.unwrap();
    assert_eq!(control.call_count("artifacts.put").await.unwrap(), 4);
}

/// A failed body read in the conformance suite is named by the call the origin made: the body
/// interfaces' `open` where the plugin exports them, `open-read` where it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_body_read_is_named_by_the_call_the_origin_made() {
    let dir = tempfile::tempdir().unwrap();
    let fs = storehost_tests::stores(&runtime(), storehost_tests::fs_spec(dir.path())).await;
    assert_eq!(fs.artifact.as_ref().unwrap().read_call(), "artifact-bodies.open");
    assert_eq!(fs.runner.as_ref().unwrap().read_call(), "runner-bodies.open");
    let (plugin, _, control) = artifacts(mock(|_| {})).await;
    let stores = storehost::origin::stores_of(&plugin);
    assert_eq!(stores.artifact.as_ref().unwrap().read_call(), "artifact-bodies.open");
    let python = PluginSpec::new("python", "python-origin.wasm", crate::conformance::python_wasm());
    let python = storehost_tests::stores(&runtime(), storehost_tests::scratch_dir_spec(python, dir.path())).await;
    assert_eq!(python.artifact.as_ref().unwrap().read_call(), "artifacts.open-read", "the Python example streams without the body interfaces");
    control.add_fault(FaultRule::new("artifact-bodies.open", Fault::Fail(StoreError::Internal("disk on fire".into())))).await.unwrap();
    let report = storehost::conformance::run(&stores, |c| c.interface == storehost::runtime::Interface::Artifacts && c.operation == "stream").await;
    let failures: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            storehost::conformance::Outcome::Failed(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    assert!(!failures.is_empty(), "{report}");
    assert!(failures.iter().any(|why| why.starts_with("artifact-bodies.open") && why.contains("disk on fire")), "{failures:?}");
    assert!(failures.iter().all(|why| !why.contains("open-read")), "{failures:?}");
}
