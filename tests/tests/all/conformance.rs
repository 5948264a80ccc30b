//! The suite itself: what it reports of a target without a domain. The cases run on every plugin
//! in the `conformance` test binary, one test per plugin and case.

use std::time::Instant;

use storehost::conformance::{self, Outcome};
use storehost::domain::{Ctx, RunnerStore, Stores};
use storehost::origin::PluginRunnerStore;
use storehost::runtime::{CompileSource, Interface, Plugin, PluginSpec, Runtime, RuntimeConfig};
use storehost_tests::{builtin, runtime, scratch_dir_spec, stores};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_a_domain_is_reported_as_skipped() {
    let only_artifacts = Stores { artifact: stores(&runtime(), builtin("memory")).await.artifact, ..Stores::default() };
    let report = conformance::run(&only_artifacts, |c| c.interface == Interface::Artifacts || c.interface == Interface::Workspaces).await;
    assert_eq!(report.failed(), 0, "{report}");
    let skipped = report.results.iter().filter(|r| r.interface == Interface::Workspaces).collect::<Vec<_>>();
    assert!(!skipped.is_empty());
    assert!(skipped.iter().all(|r| matches!(&r.outcome, Outcome::Skipped(why) if why.contains("workspaces"))), "{report}");
}

/// The Python example (`examples/python-origin`), built by scripts/test under `<target>/examples/`.
pub(crate) fn python_wasm() -> Vec<u8> {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
    let path = target.join("examples").join("python-origin.wasm");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; scripts/test builds the examples before the tests", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_origin_loads_from_the_compiled_code_cache() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig { compiled_cache: Some(cache.path().into()), ..Default::default() };
    let mut timings = Vec::new();
    for expected in [CompileSource::Compiled, CompileSource::Cache] {
        let runtime = Runtime::new(config()).unwrap();
        let mut spec = PluginSpec::new("python", "python-origin.wasm", python_wasm());
        spec.settings.instances = 1;
        let started = Instant::now();
        let plugin = Plugin::load(&runtime, scratch_dir_spec(spec, dir.path())).await.unwrap();
        let store = PluginRunnerStore::new(plugin.clone()).unwrap();
        let names = RunnerStore::list(&store, &Ctx::background(), "r", "").await.unwrap();
        timings.push(started.elapsed());
        assert!(names.is_empty());
        assert_eq!(plugin.compile_source().0, expected);
    }
    println!("python origin, load + first call: cold {:?}, warm cache {:?}", timings[0], timings[1]);
    assert!(timings[1] < timings[0], "the cached load was not faster: {timings:?}");
}

/// A componentize-py component exports its runtime's own `exports` instance beside the contract's
/// interfaces: inspection keeps it apart from what the host uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_keeps_a_toolchains_own_exports_apart() {
    let report = storehost::runtime::inspect(&runtime(), PluginSpec::new("python", "python-origin.wasm", python_wasm())).await.unwrap();
    assert!(report.exports.iter().all(|e| e.starts_with("storehost:origin/")), "{:?}", report.exports);
    assert!(report.exports.iter().any(|e| e.starts_with("storehost:origin/artifacts@")), "{:?}", report.exports);
    assert!(report.unused_exports.iter().any(|e| e == "exports"), "{:?}", report.unused_exports);
}
