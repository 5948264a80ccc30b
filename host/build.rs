//! Builds the built-in plugins (the `plugins/` workspace) to wasm32-wasip2 components and
//! generates `BUILTINS`, the table the binary embeds them from.

use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGINS: &[&str] = &["memory", "fs", "mock", "postgres", "s3"];
/// Components built for the tests only; their paths are recorded, not embedded.
const FIXTURES: &[&str] = &["sql-user", "other-world", "broken-list", "lost-overwrite", "fs-next"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let plugins = root.join("plugins");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // One wasm target dir beside the host's, shared by every profile and by the tests.
    let target_dir = wasm_target_dir(&out_dir);

    // Relative to this package, so that cargo checks the sources of the checkout it builds:
    // checkouts sharing a target directory (a CI clone beside a working tree) share this
    // script's fingerprint, and an absolute path would be the other checkout's.
    println!("cargo:rerun-if-changed=../plugins/Cargo.toml");
    println!("cargo:rerun-if-changed=../plugins/Cargo.lock");
    for plugin in PLUGINS.iter().copied().chain(["rules", "kit", "fixtures"]) {
        println!("cargo:rerun-if-changed=../plugins/{plugin}");
    }
    println!("cargo:rerun-if-changed=../wit");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins).args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"]).arg(&target_dir);
    // The host's flags and profile settings are for the host target, not for the plugins.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_PROFILE_RELEASE_DEBUG"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the built-in plugins failed (see above). If the wasm32-wasip2 target is missing, \
             run `rustup target add wasm32-wasip2` (the README's commands do)."
        );
    }

    let mut table = String::from("/// The plugins built with the workspace: `builtin:NAME` in a manifest.\n");
    table.push_str("pub static BUILTINS: &[(&str, &[u8])] = &[\n");
    for plugin in PLUGINS {
        let wasm = target_dir.join(format!("wasm32-wasip2/release/storehost_plugin_{plugin}.wasm"));
        assert!(wasm.exists(), "{} was not built", wasm.display());
        table.push_str(&format!("    ({plugin:?}, include_bytes!({:?})),\n", wasm.display().to_string()));
    }
    table.push_str("];\n");
    table.push_str("/// Test components: name and path.\n#[doc(hidden)]\npub static TEST_FIXTURES: &[(&str, &str)] = &[\n");
    for fixture in FIXTURES {
        let wasm = target_dir.join(format!("wasm32-wasip2/release/storehost_fixture_{}.wasm", fixture.replace('-', "_")));
        assert!(wasm.exists(), "{} was not built", wasm.display());
        table.push_str(&format!("    ({fixture:?}, {:?}),\n", wasm.display().to_string()));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("builtins.rs"), table).unwrap();
}

/// `<target>/wasm-plugins`, found by walking up from OUT_DIR (`<target>/<profile>/build/<pkg>/out`).
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    let target = out_dir.ancestors().nth(4).expect("OUT_DIR is inside the target directory");
    target.join("wasm-plugins")
}
