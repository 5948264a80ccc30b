//! Clients generated from the document the server serves, by the most used generator of each of
//! two ecosystems, unpatched: openapi-python-client (Python), and openapi-typescript with
//! openapi-fetch (TypeScript, checked by `tsc --strict`). Each does the README's "Try it" and
//! calls every route that answers JSON, against the real binary (tokens on, the fs plugin for
//! every domain): typed answers, artifact bodies down and up byte for byte with the content type
//! the caller chose, and error answers parsed as the `Error` schema. The scripts the clients run
//! are `tests/clients/try_it.py` and `tests/clients/try_it.ts`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{Server, target_dir, tool};

const TOKEN: &str = "all-scopes";

/// The embedded default (every domain on the fs plugin), behind a token.
fn manifest() -> String {
    format!(
        "[server]\ntokens = [{{ token = \"{TOKEN}\", scopes = [\"read\", \"write\", \"admin\"] }}]\n{}",
        storehost::app::manifest::EMBEDDED_DEFAULT
    )
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs `command`, and returns its stdout; fails the test with its output if it fails.
fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{command:?} failed ({}):\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

/// [`run`], for a generator: it must not warn about any part of the document either.
fn run_quiet(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{command:?} failed ({}):\n{text}", out.status);
    assert!(!text.to_lowercase().contains("warning"), "{command:?} warned:\n{text}");
    text
}

/// The operations whose success answers JSON: each must be called, and its answer typed.
fn json_operations(doc: &Value) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            let Some(responses) = operation["responses"].as_object() else { continue };
            let json = responses.iter().any(|(status, r)| status.starts_with('2') && r["content"].get("application/json").is_some());
            if json {
                ids.insert(operation["operationId"].as_str().expect("an operation id").to_string());
            }
        }
    }
    ids
}

/// Serves, fetches the document, and hands it with the server to `client`, which runs its
/// script and returns what the script printed last: the operations it called with typed answers.
fn check_client(client: impl FnOnce(&Path, &Path, &Server) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&manifest()), &[]);
    let fetch = async { reqwest::get(server.url("/openapi.json")).await?.error_for_status()?.text().await };
    let text = tokio::runtime::Runtime::new().unwrap().block_on(fetch).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["servers"][0]["url"], server.base.as_str(), "the document names the address it is served from");
    let work = dir.path().join("client");
    std::fs::create_dir_all(&work).unwrap();
    let document = work.join("openapi.json");
    std::fs::write(&document, &text).unwrap();
    let stdout = client(&work, &document, &server);
    let last = stdout.lines().last().unwrap_or_default();
    let called: BTreeSet<String> = serde_json::from_str::<Value>(last)
        .unwrap_or_else(|e| panic!("the script's last line is not its JSON report ({e}):\n{stdout}"))["typed"]
        .as_array()
        .expect("typed: [...]")
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    let expected = json_operations(&doc);
    assert!(expected.len() >= 20, "{expected:?}");
    let missing: Vec<_> = expected.difference(&called).collect();
    assert!(missing.is_empty(), "JSON routes the client did not call with a typed answer: {missing:?}\n{stdout}");
    println!("{stdout}");
}

#[test]
fn a_python_client_from_openapi_python_client_does_the_readme_and_every_json_route() {
    check_client(|work, document, server| {
        let venv = tool("STOREHOST_OPENAPI_PYTHON_CLIENT", target_dir().join("tools/openapi-python-client"));
        let package = work.join("storehost_client");
        let config = work.join("generator.yaml");
        std::fs::write(&config, "post_hooks: []\n").unwrap();
        let generated = run_quiet(
            Command::new(venv.join("bin/openapi-python-client"))
                .args(["generate", "--meta", "none", "--path"])
                .arg(document)
                .arg("--output-path")
                .arg(&package)
                .arg("--config")
                .arg(&config),
        );
        assert!(generated.contains("Generating"), "{generated}");
        run(Command::new(venv.join("bin/python"))
            .arg(clients_dir().join("try_it.py"))
            .env("PYTHONPATH", work)
            .env("STOREHOST_URL", &server.base)
            .env("STOREHOST_TOKEN", TOKEN))
    });
}

#[test]
fn a_typescript_client_from_openapi_typescript_and_openapi_fetch_does_the_readme_and_every_json_route() {
    check_client(|work, document, server| {
        let tools = tool("STOREHOST_CLIENTS_TS", target_dir().join("tools/clients-ts"));
        let bin = tools.join("node_modules/.bin");
        run_quiet(Command::new(bin.join("openapi-typescript")).arg(document).arg("-o").arg(work.join("schema.d.ts")));
        std::fs::copy(clients_dir().join("try_it.ts"), work.join("try_it.ts")).unwrap();
        std::fs::copy(clients_dir().join("tsconfig.json"), work.join("tsconfig.json")).unwrap();
        std::fs::write(work.join("package.json"), r#"{ "type": "module" }"#).unwrap();
        std::os::unix::fs::symlink(tools.join("node_modules"), work.join("node_modules")).unwrap();
        run(Command::new(bin.join("tsc")).arg("-p").arg(work));
        run(Command::new("node").arg(work.join("try_it.js")).env("STOREHOST_URL", &server.base).env("STOREHOST_TOKEN", TOKEN))
    });
}
