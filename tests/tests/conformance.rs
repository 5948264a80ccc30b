//! The origin conformance suite on every plugin: one test per plugin and case
//! (`memory::artifacts::put::put_replaces`), so a failure names both and cases run in parallel.
//!
//! Each case gets a target of its own (a fresh plugin, a scratch directory, a database or an S3
//! server), so cases share nothing. A plugin gets the cases of the interfaces it exports; which
//! domains a plugin leaves out is checked in the `all` binary (`conformance.rs`).

use std::any::Any;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use libtest_mimic::{Arguments, Failed, Trial};
use storehost::conformance::{self, Case, Outcome};
use storehost::domain::Stores;
use storehost::runtime::{Interface, PluginSpec};
use storehost_tests::pg::{TestDatabase, postgres_spec};
use storehost_tests::s3::S3Server;
use storehost_tests::{builtin, fs_spec, load, runtime, scratch_dir_spec, stores};

/// What a target keeps alive while its case runs (a directory, a database, a server).
type Guard = Box<dyn Any + Send>;

type TargetFuture = Pin<Box<dyn Future<Output = (Stores, Guard)> + Send>>;

/// A plugin the suite runs on, and the interfaces it exports.
struct Target {
    name: &'static str,
    interfaces: &'static [Interface],
    make: fn() -> TargetFuture,
    /// Built against storehost:origin@0.1.0, which lacks the listings of documents, workspaces
    /// and runs: their cases must be refused with that reason (and only those).
    speaks_0_1_0: bool,
}

const EVERY_DOMAIN: &[Interface] = &[
    Interface::Artifacts,
    Interface::Projects,
    Interface::ProjectArtifacts,
    Interface::UiDocuments,
    Interface::Workspaces,
    Interface::RunnerArtifacts,
];
const BLOBS: &[Interface] = &[Interface::Artifacts, Interface::RunnerArtifacts];

fn memory() -> TargetFuture {
    Box::pin(async { (stores(&runtime(), builtin("memory")).await, Box::new(()) as Guard) })
}

fn fs() -> TargetFuture {
    Box::pin(async {
        let dir = tempfile::tempdir().unwrap();
        (stores(&runtime(), fs_spec(dir.path())).await, Box::new(dir) as Guard)
    })
}

/// The mock keeps its data in the instance: one instance gives one view of it.
fn mock() -> TargetFuture {
    Box::pin(async {
        let mut spec = builtin("mock");
        spec.settings.instances = 1;
        (stores(&runtime(), spec).await, Box::new(()) as Guard)
    })
}

/// The postgres plugin on a database of the case's own on the real PostgreSQL.
fn postgres() -> TargetFuture {
    Box::pin(async {
        let db = TestDatabase::create().await;
        (stores(&runtime(), postgres_spec(&db.url)).await, Box::new(db) as Guard)
    })
}

/// The s3 plugin on an S3 server of the case's own.
fn s3() -> TargetFuture {
    Box::pin(async {
        let server = S3Server::start().await;
        (stores(&runtime(), server.spec()).await, Box::new(server) as Guard)
    })
}

/// An example plugin built by scripts/test under `<target>/examples/`.
fn example(relative: &str) -> Vec<u8> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
    let path: PathBuf = target.join("examples").join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; scripts/test builds the examples before the tests", path.display()))
}

/// An example with a scratch directory preopened read-write as `/data`.
fn example_target(spec: PluginSpec) -> TargetFuture {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        (stores(&runtime(), scratch_dir_spec(spec, dir.path())).await, Box::new(dir) as Guard)
    })
}

/// The Rust template (`examples/rust-origin`): artifacts only.
fn rust_origin() -> TargetFuture {
    example_target(PluginSpec::new("rust", "rust-origin.wasm", example("rust-origin/wasm32-wasip2/release/rust_origin.wasm")))
}

/// The JavaScript example (`examples/javascript-origin`); several instances share its directory.
fn javascript() -> TargetFuture {
    example_target(PluginSpec::new("javascript-origin", "javascript-origin.wasm", example("javascript-origin.wasm")))
}

/// The C example (`examples/c-origin`): its data in memory, so `stateful` (one instance), and no
/// directory; it exports the 0.2.1 body interfaces, through which the stream cases open bodies.
fn c_origin() -> TargetFuture {
    Box::pin(async {
        let plugin = load(&runtime(), PluginSpec::new("c-origin", "c-origin.wasm", example("c-origin.wasm"))).await;
        for interface in [Interface::ArtifactBodies, Interface::RunnerBodies] {
            assert!(plugin.exports().contains(interface), "the C example does not export {interface}");
        }
        (storehost::origin::stores_of(&plugin), Box::new(()) as Guard)
    })
}

/// The Python example (`examples/python-origin`), one instance.
fn python() -> TargetFuture {
    let mut spec = PluginSpec::new("python", "python-origin.wasm", example("python-origin.wasm"));
    spec.settings.instances = 1;
    example_target(spec)
}

/// The Python example as it was written against the 0.1.0 contract (no streaming calls): the
/// host streams for it over its whole-body calls.
fn python_0_1_0() -> TargetFuture {
    let mut spec = PluginSpec::new("python-0-1-0", "python-origin-0.1.0.wasm", example("python-origin-0.1.0.wasm"));
    spec.settings.instances = 1;
    example_target(spec)
}

const TARGETS: &[Target] = &[
    Target { name: "memory", interfaces: EVERY_DOMAIN, make: memory, speaks_0_1_0: false },
    Target { name: "fs", interfaces: EVERY_DOMAIN, make: fs, speaks_0_1_0: false },
    Target { name: "mock", interfaces: EVERY_DOMAIN, make: mock, speaks_0_1_0: false },
    Target { name: "postgres", interfaces: EVERY_DOMAIN, make: postgres, speaks_0_1_0: false },
    Target { name: "s3", interfaces: BLOBS, make: s3, speaks_0_1_0: false },
    Target { name: "rust_origin", interfaces: &[Interface::Artifacts], make: rust_origin, speaks_0_1_0: false },
    Target { name: "javascript", interfaces: BLOBS, make: javascript, speaks_0_1_0: false },
    Target { name: "c_origin", interfaces: BLOBS, make: c_origin, speaks_0_1_0: false },
    Target { name: "python", interfaces: BLOBS, make: python, speaks_0_1_0: false },
    Target { name: "python_0_1_0", interfaces: BLOBS, make: python_0_1_0, speaks_0_1_0: true },
];

/// Runs `case` on a fresh target: it must pass (a skip here means the target does not export
/// an interface it is listed with, which is a failure too).
fn run(target: &'static Target, case: Case) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (stores, _guard) = (target.make)().await;
        match case.run(&stores).await {
            Outcome::Passed => Ok(()),
            Outcome::Failed(why) => Err(format!("{}: {}: {why}", target.name, case.path()).into()),
            // What a 0.1.0 component cannot be asked: the case checks it is told so, plainly.
            Outcome::Skipped(why) if target.speaks_0_1_0 && why.contains(storehost::origin::LISTING_REFUSAL) => Ok(()),
            Outcome::Skipped(why) => Err(format!("{}: {}: skipped: {why}", target.name, case.path()).into()),
        }
    })
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for target in TARGETS {
        for case in conformance::cases().into_iter().filter(|c| target.interfaces.contains(&c.interface)) {
            let name = format!("{}::{}", target.name, case.path().replace(['-', '/'], "_"));
            trials.push(Trial::test(name, move || run(target, case)));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
