//! The origin conformance suite on every plugin, one test per plugin and domain.

use storehost::app::Stores;
use storehost::conformance::{self, Outcome};
use storehost_tests::pg::{TestDatabase, postgres_spec};
use storehost_tests::{builtin, fs_spec, runtime, stores};

async fn check(stores: Stores, plugin: &str, domain: &str) {
    let report = conformance::run(&stores, |case| case.domain == domain).await;
    println!("{plugin}:\n{report}");
    assert!(report.passed() > 0, "{plugin}: no {domain} case ran:\n{report}");
    assert_eq!(report.failed(), 0, "{plugin}: {domain} failures:\n{report}");
    assert!(report.results.iter().all(|r| r.outcome == Outcome::Passed), "{plugin}: {domain} cases skipped:\n{report}");
}

/// What a suite's target keeps alive while its cases run (a directory, a database).
type Guard = Box<dyn std::any::Any + Send>;

/// One test per domain on the stores of `$target`, an async fn returning the stores and a guard.
macro_rules! suite {
    ($plugin:ident, $target:path) => {
        mod $plugin {
            use super::*;

            async fn target() -> (Stores, Guard) {
                $target().await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn artifacts() {
                let (s, _guard) = target().await;
                check(s, stringify!($plugin), "artifacts").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn projects() {
                let (s, _guard) = target().await;
                check(s, stringify!($plugin), "projects").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn project_artifacts() {
                let (s, _guard) = target().await;
                check(s, stringify!($plugin), "project-artifacts").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ui_documents() {
                let (s, _guard) = target().await;
                check(s, stringify!($plugin), "ui-documents").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn workspaces() {
                let (s, _guard) = target().await;
                check(s, stringify!($plugin), "workspaces").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn runner_artifacts() {
                let (s, _guard) = target().await;
                check(s, stringify!($plugin), "runner-artifacts").await
            }
        }
    };
}

async fn memory_target() -> (Stores, Guard) {
    (stores(&runtime(), builtin("memory")).await, Box::new(()))
}

async fn fs_target() -> (Stores, Guard) {
    let dir = tempfile::tempdir().unwrap();
    (stores(&runtime(), fs_spec(dir.path())).await, Box::new(dir))
}

/// The mock keeps its data in the instance: one instance gives one view of it.
async fn mock_target() -> (Stores, Guard) {
    let mut spec = builtin("mock");
    spec.settings.instances = 1;
    (stores(&runtime(), spec).await, Box::new(()))
}

/// The postgres plugin on a database of the test's own on the real PostgreSQL.
async fn postgres_target() -> (Stores, Guard) {
    let db = TestDatabase::create().await;
    (stores(&runtime(), postgres_spec(&db.url)).await, Box::new(db))
}

suite!(memory, memory_target);
suite!(fs, fs_target);
suite!(mock, mock_target);
suite!(postgres, postgres_target);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_a_domain_is_reported_as_skipped() {
    let only_artifacts = Stores { artifact: stores(&runtime(), builtin("memory")).await.artifact, ..Stores::default() };
    let report = conformance::run(&only_artifacts, |c| c.domain == "artifacts" || c.domain == "workspaces").await;
    assert_eq!(report.failed(), 0, "{report}");
    let skipped = report.results.iter().filter(|r| r.domain == "workspaces").collect::<Vec<_>>();
    assert!(!skipped.is_empty());
    assert!(skipped.iter().all(|r| matches!(&r.outcome, Outcome::Skipped(why) if why.contains("workspaces"))), "{report}");
}

/// An example plugin built by scripts/test under `<target>/examples/`.
fn example(relative: &str) -> Vec<u8> {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
    let path = target.join("examples").join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; scripts/test builds the examples before the tests", path.display()))
}

/// The Rust template (`examples/rust-origin`): artifacts only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_origin_artifacts() {
    let spec = storehost::runtime::PluginSpec::new("rust", "rust-origin.wasm", example("rust-origin/wasm32-wasip2/release/rust_origin.wasm"));
    check(stores(&runtime(), spec).await, "rust-origin", "artifacts").await
}

/// An example plugin with a scratch directory preopened read-write as `/data`.
fn example_spec(name: &str, wasm: Vec<u8>, dir: &std::path::Path) -> storehost::runtime::PluginSpec {
    let mut spec = storehost::runtime::PluginSpec::new(name, format!("{name}.wasm"), wasm);
    spec.dirs = vec![storehost::capabilities::files::DirGrant {
        guest: "/data".into(),
        host: dir.to_path_buf(),
        mode: storehost::capabilities::files::DirMode::Rw,
    }];
    spec
}

/// The JavaScript example (`examples/javascript-origin`), built by its build.sh; several
/// instances share its directory.
mod javascript {
    use super::*;

    async fn target(dir: &std::path::Path) -> Stores {
        stores(&runtime(), example_spec("javascript-origin", example("javascript-origin.wasm"), dir)).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn artifacts() {
        let dir = tempfile::tempdir().unwrap();
        check(target(dir.path()).await, "javascript", "artifacts").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runner_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        check(target(dir.path()).await, "javascript", "runner-artifacts").await
    }
}

/// The Python example (`examples/python-origin`), built by its build.sh.
mod python {
    use super::*;
    use std::time::Instant;

    fn wasm() -> Vec<u8> {
        example("python-origin.wasm")
    }

    async fn target(dir: &std::path::Path) -> Stores {
        let mut spec = storehost::runtime::PluginSpec::new("python", "python-origin.wasm", wasm());
        spec.settings.instances = 1;
        spec.dirs = vec![storehost::capabilities::files::DirGrant {
            guest: "/data".into(),
            host: dir.to_path_buf(),
            mode: storehost::capabilities::files::DirMode::Rw,
        }];
        stores(&runtime(), spec).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn artifacts() {
        let dir = tempfile::tempdir().unwrap();
        check(target(dir.path()).await, "python", "artifacts").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runner_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        check(target(dir.path()).await, "python", "runner-artifacts").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loads_from_the_compiled_code_cache() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = || storehost::runtime::RuntimeConfig { compiled_cache: Some(cache.path().into()), ..Default::default() };
        let mut timings = Vec::new();
        for expected in [storehost::runtime::CompileSource::Compiled, storehost::runtime::CompileSource::Cache] {
            let runtime = storehost::runtime::Runtime::new(config()).unwrap();
            let mut spec = storehost::runtime::PluginSpec::new("python", "python-origin.wasm", wasm());
            spec.settings.instances = 1;
            spec.dirs = vec![storehost::capabilities::files::DirGrant {
                guest: "/data".into(),
                host: dir.path().to_path_buf(),
                mode: storehost::capabilities::files::DirMode::Rw,
            }];
            let started = Instant::now();
            let plugin = storehost::runtime::Plugin::load(&runtime, spec).await.unwrap();
            let store = storehost::domain::PluginRunnerStore::new(plugin.clone()).unwrap();
            let names = storehost::domain::RunnerStore::list(&store, &storehost::domain::Ctx::background(), "r", "").await.unwrap();
            timings.push(started.elapsed());
            assert!(names.is_empty());
            assert_eq!(plugin.compile_source().0, expected);
        }
        println!("python origin, load + first call: cold {:?}, warm cache {:?}", timings[0], timings[1]);
        assert!(timings[1] < timings[0], "the cached load was not faster: {timings:?}");
    }
}
