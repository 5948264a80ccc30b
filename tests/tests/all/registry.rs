//! Plugins from an OCI registry: Debian's docker-registry (CNCF distribution) on loopback, the
//! built-in fs plugin pushed to it by `storehost plugin push`, and `storehost serve` loading it
//! by tag and by digest, from its cache once the registry is gone; a wrong digest, an unknown
//! tag, a tampered blob, a registry behind basic auth, and the lock file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, Server};
use base64::Engine as _;
use reqwest::Client;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use storehost_tests::registry::Registry;

fn registry_binary() -> PathBuf {
    support::tool("STOREHOST_DOCKER_REGISTRY", support::target_dir().join("tools/docker-registry/usr/bin/docker-registry"))
}

/// `storehost ARGS` in `dir`, with `env`.
fn storehost(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(support::binary()).current_dir(dir).args(args).envs(env.iter().copied()).output().expect("running storehost")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A built-in plugin's component, written to `dir/NAME.wasm`.
fn component(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, storehost::builtin(name).unwrap()).unwrap();
    path
}

/// Pushes `file` to `reference` over plain HTTP; the digest pushed.
fn push(dir: &Path, file: &Path, reference: &str, env: &[(&str, &str)]) -> String {
    let pushed = storehost(dir, &["plugin", "push", file.to_str().unwrap(), reference, "--insecure"], env);
    assert!(pushed.status.success(), "{}", text(&pushed));
    let out = String::from_utf8_lossy(&pushed.stdout).to_string();
    out.lines().find_map(|l| l.strip_prefix("digest: ")).unwrap_or_else(|| panic!("no digest in {out}")).to_string()
}

/// Every domain on plugin `files`, whose `source` is `source` (TOML), its registry plain HTTP.
fn manifest(registry: &str, source: &str, extra: &str) -> String {
    format!(
        "[registries.\"{registry}\"]\ninsecure = true\n{extra}\n[plugins.files]\nsource = {source}\ndirs = {{ \"/data\" = {{ host = \"data\", mode = \"rw\" }} }}\n\n[domains]\nartifact = {{ origin = \"files\" }}\nproject = {{ origin = \"files\", artifacts = \"files\" }}\nui = {{ origin = \"files\" }}\nworkspace = {{ origin = \"files\" }}\nrunner = {{ origin = \"files\" }}\n"
    )
}

/// `storehost check` of `text` in `dir` (as `storehost.toml`).
fn check(dir: &Path, text: &str, env: &[(&str, &str)]) -> Output {
    std::fs::write(dir.join("storehost.toml"), text).unwrap();
    storehost(dir, &["check", "--manifest", "storehost.toml"], env)
}

/// Writes and reads back a record of every domain.
async fn every_domain_works(server: &Server, round: &str) {
    let http = Client::new();
    let put = http.put(server.url(&format!("/v1/artifacts/{round}/a.txt"))).body(round.to_string()).send().await.unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(http.get(server.url(&format!("/v1/artifacts/{round}/a.txt"))).send().await.unwrap().text().await.unwrap(), round);
    let project = http.put(server.url(&format!("/v1/projects/{round}"))).json(&json!({ "name": round, "state": {} })).send().await.unwrap();
    assert_eq!(project.status(), 200);
    let ws = http.put(server.url(&format!("/v1/workspaces/{round}"))).json(&json!({ "project_id": round, "name": round })).send().await.unwrap();
    assert_eq!(ws.status(), 201);
    let root = json!({ "ops": [{ "op": "insert-node", "node": { "id": "root", "parent": null, "kind": "page", "props": [] }, "index": 0 }] });
    assert_eq!(http.post(server.url(&format!("/v1/ui/documents/{round}/ops"))).json(&root).send().await.unwrap().status(), 200);
    let file = http.put(server.url(&format!("/v1/runs/{round}/artifacts/out.txt"))).body("ran").send().await.unwrap();
    assert!(file.status().is_success(), "{}", file.status());
    assert_eq!(http.get(server.url(&format!("/v1/runs/{round}/artifacts/out.txt"))).send().await.unwrap().text().await.unwrap(), "ran");
}

/// The source the server says its plugin `files` came from.
async fn loaded_source(server: &Server) -> String {
    let plugins: serde_json::Value = Client::new().get(server.url("/v1/admin/plugins")).send().await.unwrap().json().await.unwrap();
    let files = plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "files").expect("plugin files");
    files["source"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_from_a_registry_serves_by_tag_and_digest_and_restarts_without_the_registry() {
    let mut registry = Registry::start(&registry_binary(), None);
    let work = tempfile::tempdir().unwrap();
    let reference = format!("{}/team/fs:1.0", registry.host);
    let digest = push(work.path(), &component(work.path(), "fs"), &reference, &[]);

    // By tag.
    let by_tag = tempfile::tempdir().unwrap();
    let tagged = manifest(&registry.host, &format!("{{ oci = \"{reference}\" }}"), "");
    let server = Server::start(by_tag.path(), Some(&tagged), &[]);
    every_domain_works(&server, "tag").await;
    assert_eq!(loaded_source(&server).await, format!("oci://{reference}@{digest}"));
    server.stop();

    // By digest, into an empty cache.
    let by_digest = tempfile::tempdir().unwrap();
    let pinned = manifest(&registry.host, &format!("{{ oci = \"{reference}\", digest = \"{digest}\" }}"), "");
    let server = Server::start(by_digest.path(), Some(&pinned), &[]);
    every_domain_works(&server, "digest").await;
    server.stop();

    // A digest the registry does not have, and a tag it does not have: refused, naming the key.
    let scratch = tempfile::tempdir().unwrap();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let refused = check(scratch.path(), &manifest(&registry.host, &format!("{{ oci = \"{reference}\", digest = \"{wrong}\" }}"), ""), &[]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(said.contains("plugins.files.source") && said.contains(&reference) && said.contains("no such tag or digest"), "{said}");
    let unknown = check(scratch.path(), &manifest(&registry.host, &format!("{{ oci = \"{}/team/fs:9.9\" }}", registry.host), ""), &[]);
    let said = text(&unknown);
    assert!(!unknown.status.success() && said.contains("plugins.files.source") && said.contains("no such tag or digest"), "{said}");

    // The registry gone: both restart from their caches.
    registry.stop();
    let server = Server::start(by_tag.path(), Some(&tagged), &[]);
    every_domain_works(&server, "tag-again").await;
    server.stop();
    let server = Server::start(by_digest.path(), Some(&pinned), &[]);
    every_domain_works(&server, "digest-again").await;
    server.stop();
    // With nothing cached, it says so.
    let empty = tempfile::tempdir().unwrap();
    let down = check(empty.path(), &tagged, &[]);
    let said = text(&down);
    assert!(
        !down.status.success() && said.contains("plugins.files.source") && said.contains("cannot be reached") && said.contains("no digest"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_blob_is_refused_and_a_component_must_be_one() {
    let registry = Registry::start(&registry_binary(), None);
    let work = tempfile::tempdir().unwrap();
    let reference = format!("{}/team/fs:tampered", registry.host);
    let file = component(work.path(), "fs");
    push(work.path(), &file, &reference, &[]);
    // The layer's bytes in the registry's storage changed (its size kept).
    let layer = format!("sha256:{}", hex::encode(Sha256::digest(std::fs::read(&file).unwrap())));
    let mut bytes = std::fs::read(registry.blob_file(&layer)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(registry.blob_file(&layer), bytes).unwrap();
    let refused = check(work.path(), &manifest(&registry.host, &format!("{{ oci = \"{reference}\" }}"), ""), &[]);
    let said = text(&refused);
    assert!(!refused.status.success() && said.contains("plugins.files.source") && said.contains("refused"), "{said}");

    // A file that is not a plugin is not pushed.
    std::fs::write(work.path().join("not.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let pushed = storehost(work.path(), &["plugin", "push", "not.wasm", &format!("{}/team/not:1", registry.host), "--insecure"], &[]);
    assert!(!pushed.status.success() && text(&pushed).contains("not pushed"), "{}", text(&pushed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_behind_basic_auth_takes_the_manifests_or_dockers_credentials() {
    let registry = Registry::start(&registry_binary(), Some(("storehost", "s3cret")));
    let work = tempfile::tempdir().unwrap();
    let reference = format!("{}/team/fs:auth", registry.host);
    let file = component(work.path(), "fs");
    // Without credentials: denied.
    let no_config = work.path().join("no-docker-config");
    std::fs::create_dir(&no_config).unwrap();
    let denied = storehost(
        work.path(),
        &["plugin", "push", file.to_str().unwrap(), &reference, "--insecure"],
        &[("DOCKER_CONFIG", no_config.to_str().unwrap())],
    );
    assert!(!denied.status.success() && text(&denied).contains("denied"), "{}", text(&denied));
    // Docker's configuration (`docker login`'s `auths`).
    let docker = work.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(b"storehost:s3cret");
    std::fs::write(docker.join("config.json"), json!({ "auths": { registry.host.clone(): { "auth": auth } } }).to_string()).unwrap();
    push(work.path(), &file, &reference, &[("DOCKER_CONFIG", docker.to_str().unwrap())]);

    // The manifest's credentials, from the environment.
    let credentials = "username = \"${REG_USER}\"\npassword = \"${REG_PASSWORD}\"\n";
    let text_of = manifest(&registry.host, &format!("{{ oci = \"{reference}\" }}"), credentials);
    let env = [("REG_USER", "storehost"), ("REG_PASSWORD", "s3cret"), ("DOCKER_CONFIG", no_config.to_str().unwrap())];
    let server = Server::start(work.path(), Some(&text_of), &env);
    every_domain_works(&server, "auth").await;
    server.stop();
    let wrong = [("REG_USER", "storehost"), ("REG_PASSWORD", "wrong"), ("DOCKER_CONFIG", no_config.to_str().unwrap())];
    let empty = tempfile::tempdir().unwrap();
    let refused = check(empty.path(), &text_of, &wrong);
    let said = text(&refused);
    assert!(!refused.status.success() && said.contains("plugins.files.source") && said.contains("denied"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_file_pins_every_replica_until_locked_again_or_reloaded_with_resolve() {
    let registry = Registry::start(&registry_binary(), None);
    let work = tempfile::tempdir().unwrap();
    let reference = format!("{}/team/origin:stable", registry.host);
    let fs_digest = push(work.path(), &component(work.path(), "fs"), &reference, &[]);
    let dir = tempfile::tempdir().unwrap();
    let text_of = manifest(&registry.host, &format!("{{ oci = \"{reference}\" }}"), "");
    std::fs::write(dir.path().join("storehost.toml"), &text_of).unwrap();
    let locked = storehost(dir.path(), &["lock", "--manifest", "storehost.toml"], &[]);
    assert!(locked.status.success(), "{}", text(&locked));
    let lock = std::fs::read_to_string(dir.path().join("storehost.lock")).unwrap();
    assert!(lock.contains(&fs_digest) && lock.contains("[plugins.files]"), "{lock}");

    // The tag moves to another component: the lock keeps the first.
    let memory_digest = push(work.path(), &component(work.path(), "memory"), &reference, &[]);
    assert_ne!(fs_digest, memory_digest);
    let checked = storehost(dir.path(), &["check", "--manifest", "storehost.toml"], &[]);
    assert!(checked.status.success() && text(&checked).contains("plugin files: fs "), "{}", text(&checked));
    assert!(text(&checked).contains(&format!("storehost.lock: plugins.files pinned to {fs_digest}")), "check says which: {}", text(&checked));
    let server = Server::start(dir.path(), Some(&text_of), &[]);
    assert_eq!(loaded_source(&server).await, format!("oci://{reference}@{fs_digest}"));
    // A reload keeps the lock's; one told to resolve loads what the tag names now, in place.
    let http = Client::new();
    let kept: serde_json::Value = http.post(server.url("/v1/admin/reload")).send().await.unwrap().json().await.unwrap();
    assert_eq!(kept["report"]["kept"], json!(["files"]), "{kept}");
    let resolved: serde_json::Value = http.post(server.url("/v1/admin/reload?resolve=true")).send().await.unwrap().json().await.unwrap();
    assert_eq!(resolved["report"]["loaded"], json!(["files"]), "{resolved}");
    assert_eq!(loaded_source(&server).await, format!("oci://{reference}@{memory_digest}"));
    server.stop();

    // Locked again: the new digest.
    let relocked = storehost(dir.path(), &["lock", "--manifest", "storehost.toml"], &[]);
    assert!(relocked.status.success(), "{}", text(&relocked));
    assert!(std::fs::read_to_string(dir.path().join("storehost.lock")).unwrap().contains(&memory_digest));
    let checked = storehost(dir.path(), &["check", "--manifest", "storehost.toml"], &[]);
    assert!(checked.status.success() && text(&checked).contains("plugin files: memory "), "{}", text(&checked));

    // The example manifest, as its comment runs it.
    push(work.path(), &component(work.path(), "fs"), &format!("{}/storehost/fs:1.0", registry.host), &[]);
    let example = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests/registry.toml");
    std::fs::copy(path, example.path().join("registry.toml")).unwrap();
    let checked = storehost(example.path(), &["check", "--manifest", "registry.toml"], &[("REGISTRY", &registry.host)]);
    assert!(checked.status.success() && text(&checked).contains("plugin files: fs "), "{}", text(&checked));

    // `plugin pull` writes the component byte for byte.
    let pulled = storehost(work.path(), &["plugin", "pull", &reference, "-o", "pulled.wasm", "--insecure"], &[]);
    assert!(pulled.status.success(), "{}", text(&pulled));
    assert_eq!(std::fs::read(work.path().join("pulled.wasm")).unwrap(), storehost::builtin("memory").unwrap());
}

/// wkg, the Bytecode Alliance's registry CLI (installed by the test command): a component it
/// pushed serves every domain in storehost, and one `storehost plugin push` pushed, it pulls
/// byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wkg_and_storehost_read_each_others_pushes() {
    let wkg = support::tool("STOREHOST_WKG", support::target_dir().join("tools/wkg/bin/wkg"));
    let registry = Registry::start(&registry_binary(), None);
    let work = tempfile::tempdir().unwrap();
    let file = component(work.path(), "fs");
    let no_config = work.path().join("no-docker-config");
    std::fs::create_dir(&no_config).unwrap();
    let wkg_run = |args: &[&str]| {
        let output = Command::new(&wkg).current_dir(work.path()).args(args).env("DOCKER_CONFIG", &no_config).output().expect("running wkg");
        assert!(output.status.success(), "wkg {args:?}: {}", text(&output));
    };

    let by_wkg = format!("{}/team/fs-by-wkg:1.0", registry.host);
    wkg_run(&["oci", "push", "--insecure", &registry.host, &by_wkg, file.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&manifest(&registry.host, &format!("{{ oci = \"{by_wkg}\" }}"), "")), &[]);
    every_domain_works(&server, "wkg").await;
    server.stop();

    let by_storehost = format!("{}/team/fs-by-storehost:1.0", registry.host);
    push(work.path(), &file, &by_storehost, &[]);
    wkg_run(&["oci", "pull", "--insecure", &registry.host, "-o", "pulled-by-wkg.wasm", &by_storehost]);
    assert!(std::fs::read(work.path().join("pulled-by-wkg.wasm")).unwrap() == std::fs::read(&file).unwrap(), "wkg pulled other bytes");
}
