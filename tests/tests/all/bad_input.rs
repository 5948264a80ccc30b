//! Bad manifests and bad components: each a clear error.

use storehost::app::{App, Manifest};
use storehost::runtime::{LoadError, Plugin, PluginSpec};
use storehost_tests::runtime;

fn manifest(text: &str) -> Result<Manifest, String> {
    Manifest::parse(text, "bad.toml", std::env::temp_dir(), |_| None).map_err(|e| e.to_string())
}

#[test]
fn malformed_toml() {
    let err = manifest("[plugins.x\nsource = \"builtin:fs\"").unwrap_err();
    assert!(err.starts_with("bad.toml: malformed TOML") && err.contains("line 1"), "{err}");
}

#[test]
fn unknown_key() {
    let err = manifest("[plugins.x]\nsource = \"builtin:fs\"\nmemory_limt = \"1MiB\"\n").unwrap_err();
    assert!(err.contains("plugins.x") && err.contains("unknown field `memory_limt`"), "{err}");
    let err = manifest("[cache.memroy]\nmax_bytes = 1\n").unwrap_err();
    assert!(err.contains("cache") && err.contains("memroy"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wasm_file() {
    let m = manifest("[plugins.x]\nsource = \"does/not/exist.wasm\"\n").unwrap();
    let err = format!("{:#}", App::build(m).await.err().expect("missing file is an error"));
    assert!(err.contains("plugins.x.source") && err.contains("exist.wasm") && err.contains("No such file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_builtin() {
    let m = manifest("[plugins.x]\nsource = \"builtin:nope\"\n").unwrap();
    let err = format!("{:#}", App::build(m).await.err().unwrap());
    assert!(err.contains("plugins.x.source") && err.contains("no built-in plugin \"nope\"") && err.contains("fs"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_module_instead_of_component() {
    // The smallest valid core module: magic and version.
    let core = b"\0asm\x01\0\0\0".to_vec();
    let err = Plugin::load(&runtime(), PluginSpec::new("x", "core.wasm", core)).await.unwrap_err();
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");
    assert!(err.to_string().contains("core WebAssembly module, not a component"), "{err}");
    let err = Plugin::load(&runtime(), PluginSpec::new("x", "text.wasm", b"hello".to_vec())).await.unwrap_err();
    assert!(err.to_string().contains("not a WebAssembly file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_exporting_no_origin_interface() {
    let wasm = std::fs::read(storehost::test_fixture("other-world").unwrap()).unwrap();
    let err = Plugin::load(&runtime(), PluginSpec::new("x", "other.wasm", wasm)).await.unwrap_err();
    assert!(matches!(err, LoadError::NoDomainExport { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("exports none of the storehost:origin interfaces") && msg.contains("greet"), "{msg}");
}

/// A plugin whose `init()` refuses its configuration: the manifest's file and the plugin's key,
/// the plugin named once, and the plugin's own reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_whose_init_refuses_its_config() {
    let m = manifest("[plugins.c]\nsource = \"builtin:fs\"\nconfig = { fsync = \"maybe\" }\n").unwrap();
    let err = format!("{:#}", App::build(m).await.err().expect("init refuses fsync = maybe"));
    assert!(err.starts_with("bad.toml: plugins.c: starting an instance: invalid: init(): "), "{err}");
    assert!(err.contains("config fsync: expected true or false, got \"maybe\""), "{err}");
    assert!(!err.contains("plugin c"), "the plugin is named once, by its key: {err}");
}

#[test]
fn telemetry_keys_are_checked() {
    let err = manifest("[telemetry]\nendpont = \"http://collector:4317\"\n").unwrap_err();
    assert!(err.contains("telemetry") && err.contains("unknown field `endpont`"), "{err}");
    let m = manifest("[telemetry]\nendpoint = \"http://collector:4318\"\nprotocol = \"http/protobuf\"\nsampler_ratio = 0.25\n").unwrap();
    let telemetry = m.telemetry.expect("the [telemetry] table");
    assert_eq!((telemetry.endpoint.as_deref(), telemetry.sampler_ratio), (Some("http://collector:4318"), Some(0.25)));
}
