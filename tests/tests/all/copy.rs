//! `storehost copy` between real origins: the fs plugin filled with every domain, copied to
//! PostgreSQL, on to S3 (artifacts and runner files) and back to a fresh fs directory, then
//! compared record by record; a copy killed halfway and run again; an export to a directory
//! imported into an empty database; the longest keys and ids from the memory plugin to fs and
//! back to memory.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use storehost::app::{Manifest, plugin_spec};
use storehost::base::Domain;
use storehost::copy::{Content, CopyOptions, DirSide, PluginSide, Quiet, Side};
use storehost::domain::{Ctx, ProjectArtifact, ProjectInput, Stores, TabInput, UiNode, UiOp, WorkspaceInput};
use storehost::origin::stores_of;
use storehost::runtime::Plugin;
use storehost_tests::pg::TestDatabase;
use storehost_tests::runtime;
use storehost_tests::s3::S3Server;

/// The longest artifact key S3 holds under the s3 plugin's `a/` prefix (1024 bytes less it).
const LONG_KEY_BYTES: usize = 1022;

/// An fs plugin `name` of a manifest, on `dir/sub`.
fn fs_plugin(dir: &Path, name: &str, sub: &str) -> String {
    format!(
        "[plugins.{name}]\nsource = \"builtin:fs\"\ndirs = {{ \"/data\" = {{ host = \"{}\", mode = \"rw\" }} }}\nconfig = {{ fsync = false }}\n\n",
        dir.join(sub).display()
    )
}

fn manifest_text(dir: &Path, db: Option<&TestDatabase>, s3: Option<&S3Server>) -> String {
    let mut text = fs_plugin(dir, "src", "src") + &fs_plugin(dir, "back", "back");
    if let Some(db) = db {
        text.push_str(&format!("[plugins.pg]\nsource = \"builtin:postgres\"\nsql = {{ url = \"{}\", max_connections = 8 }}\n\n", db.url));
    }
    if let Some(s3) = s3 {
        text.push_str(&format!(
            "[plugins.objects]\nsource = \"builtin:s3\"\nobject_store = {{ bucket = \"{}\", endpoint = \"{}\", region = \"us-east-1\", path_style = true, access_key_id = \"{}\", secret_access_key = \"{}\" }}\nconfig = {{ prefix = \"a/\", runs_prefix = \"runs/\" }}\n\n",
            storehost_tests::s3::BUCKET,
            s3.endpoint,
            s3.access_key,
            s3.secret_key
        ));
    }
    text
}

fn write_manifest(dir: &Path, db: Option<&TestDatabase>, s3: Option<&S3Server>) -> std::path::PathBuf {
    let path = dir.join("copy.toml");
    std::fs::write(&path, manifest_text(dir, db, s3)).unwrap();
    path
}

/// The stores of one plugin of the manifest, loaded in this process.
async fn plugin_stores(manifest: &Path, name: &str) -> (Plugin, Stores) {
    let manifest = Manifest::load(manifest).unwrap();
    let plugin = Plugin::load(&runtime(), plugin_spec(&manifest, name).await.unwrap()).await.unwrap();
    let stores = stores_of(&plugin);
    (plugin, stores)
}

fn copy_command(manifest: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(crate::support::binary());
    cmd.arg("copy").arg("--manifest").arg(manifest).args(args).env("RUST_LOG", "warn");
    cmd
}

/// Runs `storehost copy` to its end.
async fn copy(manifest: &Path, args: &[&str]) -> Output {
    let mut cmd = copy_command(manifest, args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

/// `(records, copied, identical, failed)` of a domain's row of the summary table.
fn row(output: &Output, domain: &str) -> (u64, u64, u64, u64) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|l| l.split_whitespace().next() == Some(domain)).unwrap_or_else(|| panic!("no {domain} row in {stdout}"));
    let n: Vec<u64> = line.split_whitespace().skip(1).take(4).map(|v| v.parse().unwrap()).collect();
    (n[0], n[1], n[2], n[3])
}

fn ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what} failed: {}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>().into()
}

fn node(id: &str, parent: Option<&str>, props: &[(&str, &str)]) -> UiNode {
    UiNode {
        id: id.into(),
        parent: parent.map(String::from),
        kind: "box".into(),
        props: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// Every domain, with the keys that are hard to carry: spaces, unicode, a key of `long_key`
/// bytes, an empty body and a 50 MiB one.
async fn fill(s: &Stores, long_key: usize) -> Vec<(String, Bytes)> {
    let ctx = Ctx::background();
    // In segments: the fs plugin keeps each `/`-separated segment as a file name (≤ 250 bytes).
    let long = format!("long/{}/{}", vec!["k".repeat(200); 4].join("/"), "z".repeat(long_key - 5 - 4 * 201));
    assert_eq!(long.len(), long_key);
    let artifacts = vec![
        ("plain.txt".to_string(), Bytes::from_static(b"plain text")),
        ("with space/ünïcödé ✓ key.bin".to_string(), pattern(3000, 1)),
        (long, pattern(100, 2)),
        ("empty".to_string(), Bytes::new()),
        ("big/fifty.bin".to_string(), pattern(50 << 20, 3)),
    ];
    let store = s.artifact.clone().unwrap();
    for (key, body) in &artifacts {
        let mut sink = store.clone().open_write(&ctx, key, Some("application/x-test".into()), Some(body.len() as u64)).await.unwrap();
        for chunk in body.chunks(1 << 20) {
            sink.write(&ctx, Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        sink.finish(&ctx).await.unwrap();
    }
    let (projects, records) = (s.project.as_ref().unwrap(), s.project_artifacts.as_ref().unwrap());
    projects.save(&ctx, ProjectInput { id: "p1".into(), name: "Project one".into(), state: r#"{"a":[1,2],"b":"c"}"#.into() }, None).await.unwrap();
    projects.save(&ctx, ProjectInput { id: "p-ünï".into(), name: "Zweites Projekt ✓".into(), state: "{}".into() }, None).await.unwrap();
    for name in ["report", "log"] {
        let record = ProjectArtifact { name: name.into(), artifact_key: "plain.txt".into(), size: 10, kind: "text".into(), created_at: 0 };
        records.add(&ctx, "p1", record).await.unwrap();
    }
    let ui = s.ui.as_ref().unwrap();
    let tree = vec![
        UiOp::InsertNode { node: node("root", None, &[("title", "\"Main\"")]), index: 0 },
        UiOp::InsertNode { node: node("a", Some("root"), &[]), index: 0 },
        UiOp::InsertNode { node: node("b", Some("root"), &[("w", "3")]), index: 0 },
        UiOp::InsertNode { node: node("a1", Some("a"), &[]), index: 0 },
        UiOp::InsertNode { node: node("side", None, &[]), index: 1 },
    ];
    ui.apply_ops(&ctx, "doc-1", None, tree).await.unwrap();
    ui.apply_ops(&ctx, "doc 2", None, vec![UiOp::InsertNode { node: node("only", None, &[]), index: 0 }]).await.unwrap();
    let ws = s.workspace.as_ref().unwrap();
    ws.create(&ctx, WorkspaceInput { id: "w1".into(), project_id: "p1".into(), name: "Workspace".into() }).await.unwrap();
    for tab in ["t1", "t2", "t3"] {
        ws.create_tab(&ctx, "w1", TabInput { id: tab.into(), title: format!("Tab {tab}"), kind: "editor".into() }).await.unwrap();
    }
    ws.update_tab_run(&ctx, "w1", "t2", Some("run-7".into())).await.unwrap();
    ws.select_tab(&ctx, "w1", "t3").await.unwrap();
    ws.create(&ctx, WorkspaceInput { id: "w-empty".into(), project_id: "p1".into(), name: "No tabs".into() }).await.unwrap();
    let runner = s.runner.as_ref().unwrap();
    runner.write(&ctx, "r1", "logs/out.txt", Bytes::from_static(b"line 1\nline 2\n")).await.unwrap();
    runner.write(&ctx, "r1", "result.bin", pattern(1 << 20, 4)).await.unwrap();
    runner.write(&ctx, "run two", "a b.txt", Bytes::from_static(b"spaced")).await.unwrap();
    artifacts
}

/// Checks `s` holds what [`fill`] wrote, read through its own calls.
async fn holds_everything(s: &Stores, artifacts: &[(String, Bytes)], json_domains: bool) {
    let ctx = Ctx::background();
    for (key, body) in artifacts {
        let got = s.artifact.as_ref().unwrap().get(&ctx, key).await.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(got.body.len(), body.len(), "{key}");
        assert_eq!(Sha256::digest(&got.body), Sha256::digest(body), "{key}");
        assert_eq!(got.meta.content_type.as_deref(), Some("application/x-test"), "{key}");
    }
    let runner = s.runner.as_ref().unwrap();
    assert_eq!(runner.read(&ctx, "r1", "result.bin").await.unwrap(), pattern(1 << 20, 4));
    assert_eq!(runner.list(&ctx, "r1", "").await.unwrap(), ["logs/out.txt", "result.bin"]);
    assert_eq!(&runner.read(&ctx, "run two", "a b.txt").await.unwrap()[..], b"spaced");
    if !json_domains {
        return;
    }
    let p1 = s.project.as_ref().unwrap().get(&ctx, "p1").await.unwrap();
    assert_eq!(
        (p1.name.as_str(), serde_json::from_str::<serde_json::Value>(&p1.state).unwrap()),
        ("Project one", serde_json::json!({"a": [1, 2], "b": "c"}))
    );
    let records: Vec<String> = s.project_artifacts.as_ref().unwrap().list(&ctx, "p1").await.unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(records, ["log", "report"]);
    assert_eq!(s.project.as_ref().unwrap().get(&ctx, "p-ünï").await.unwrap().name, "Zweites Projekt ✓");
    let doc = s.ui.as_ref().unwrap().get(&ctx, "doc-1").await.unwrap();
    let shape: Vec<(&str, Option<&str>)> = doc.nodes.iter().map(|n| (n.id.as_str(), n.parent.as_deref())).collect();
    let siblings = |parent: Option<&str>| shape.iter().filter(|(_, p)| *p == parent).map(|(id, _)| *id).collect::<Vec<_>>();
    assert_eq!((siblings(None), siblings(Some("root")), siblings(Some("a"))), (vec!["root", "side"], vec!["b", "a"], vec!["a1"]));
    assert!(doc.nodes.iter().any(|n| n.id == "b" && n.props == [("w".to_string(), "3".to_string())]));
    let ws = s.workspace.as_ref().unwrap();
    let w1 = ws.get(&ctx, "w1").await.unwrap();
    assert_eq!(w1.selected_tab.as_deref(), Some("t3"));
    let tabs: Vec<(String, Option<String>)> = ws.list_tabs(&ctx, "w1").await.unwrap().into_iter().map(|t| (t.id, t.run_id)).collect();
    assert_eq!(tabs, [("t1".into(), None), ("t2".into(), Some("run-7".into())), ("t3".into(), None)]);
    assert!(ws.list_tabs(&ctx, "w-empty").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_to_postgres_to_s3_and_back_to_fs_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (db, s3) = (TestDatabase::create().await, S3Server::start().await);
    let manifest = write_manifest(dir.path(), Some(&db), Some(&s3));
    let artifacts = {
        let (_plugin, src) = plugin_stores(&manifest, "src").await;
        fill(&src, LONG_KEY_BYTES).await
    };
    let all = copy(&manifest, &["--from", "src", "--to", "pg", "--jobs", "4"]).await;
    ok(&all, "fs → postgres");
    assert_eq!(row(&all, "artifact"), (5, 5, 0, 0));
    assert_eq!(row(&all, "project"), (2, 2, 0, 0));
    assert_eq!(row(&all, "ui"), (2, 2, 0, 0));
    assert_eq!(row(&all, "workspace"), (2, 2, 0, 0));
    assert_eq!(row(&all, "runner"), (3, 3, 0, 0));
    let to_s3 = copy(&manifest, &["--from", "pg", "--to", "objects"]).await;
    ok(&to_s3, "postgres → s3");
    assert_eq!((row(&to_s3, "artifact").1, row(&to_s3, "runner").1), (5, 3), "the domains both hold, by default");
    ok(&copy(&manifest, &["--from", "objects", "--to", "back", "--domains", "artifact,runner"]).await, "s3 → fs");
    ok(&copy(&manifest, &["--from", "pg", "--to", "back", "--domains", "project,ui,workspace"]).await, "postgres → fs");

    // Every record identical, as the copy compares them, and as the stores read them back.
    let check = copy(&manifest, &["--from", "src", "--to", "back", "--dry-run"]).await;
    ok(&check, "comparing the original with the copy of the copy");
    for domain in ["artifact", "project", "ui", "workspace", "runner"] {
        let (records, to_copy, identical, failed) = row(&check, domain);
        assert_eq!((to_copy, failed), (0, 0), "{domain}: {records} records, {identical} identical");
        assert!(records > 0 && identical == records, "{domain}");
    }
    let (_plugin, back) = plugin_stores(&manifest, "back").await;
    holds_everything(&back, &artifacts, true).await;
    let (_plugin, objects) = plugin_stores(&manifest, "objects").await;
    holds_everything(&objects, &artifacts, false).await;
}

/// Files of the fs plugin's artifact table under `root`: values written (temporaries aside).
fn artifact_files(root: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.to_string_lossy().ends_with('=') {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&root.join("artifacts"), &mut n);
    n
}

/// Starts a copy and stops it with `signal` once the destination holds `at_least` artifacts.
async fn cut_at(manifest: &Path, dest: &Path, at_least: usize, signal: &str) -> Output {
    let mut child = copy_command(manifest, &["--from", "src", "--to", "back", "--jobs", "2", "--domains", "artifact"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while artifact_files(dest) < at_least {
        assert!(started.elapsed() < Duration::from_secs(120), "the copy did not reach {at_least} artifacts");
        assert!(child.try_wait().unwrap().is_none(), "the copy ended before it was cut");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cut_halfway_loses_nothing_and_the_next_run_skips_what_it_copied() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(dir.path(), None, None);
    let n = 400;
    {
        let (_plugin, src) = plugin_stores(&manifest, "src").await;
        let store = src.artifact.unwrap();
        for i in 0..n {
            store.put(&Ctx::background(), &format!("batch/{i:04}"), pattern(4096, i as u8), None).await.unwrap();
        }
    }
    let dest = dir.path().join("back");
    // SIGINT: the records in flight finish, the run says it was interrupted.
    let interrupted = cut_at(&manifest, &dest, 50, "-INT").await;
    assert!(!interrupted.status.success());
    assert!(String::from_utf8_lossy(&interrupted.stdout).contains("(interrupted)"), "{}", String::from_utf8_lossy(&interrupted.stdout));
    // SIGKILL: a crash, with writes in flight.
    let killed = cut_at(&manifest, &dest, 150, "-KILL").await;
    assert!(!killed.status.success());
    let before = artifact_files(&dest);
    assert!((150..n).contains(&before), "{before} artifacts after the cut");

    let again = copy(&manifest, &["--from", "src", "--to", "back", "--domains", "artifact", "--jobs", "8"]).await;
    ok(&again, "the run after the cut");
    let (records, copied, identical, failed) = row(&again, "artifact");
    assert_eq!((records, failed), (n as u64, 0));
    assert_eq!(identical as usize, before, "every artifact the cut runs wrote is skipped as identical");
    assert_eq!(copied + identical, n as u64);
    let check = copy(&manifest, &["--from", "src", "--to", "back", "--domains", "artifact", "--dry-run"]).await;
    assert_eq!(row(&check, "artifact"), (n as u64, 0, n as u64, 0));
    // What the crash cut short was never visible: every artifact file there is a whole copy
    // (the fs plugin keeps an unfinished write in `.tmp/`, and sweeps it after an hour).
    assert_eq!(artifact_files(&dest), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_an_empty_database_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create().await;
    let manifest = write_manifest(dir.path(), Some(&db), None);
    let artifacts = {
        let (_plugin, src) = plugin_stores(&manifest, "src").await;
        fill(&src, LONG_KEY_BYTES).await
    };
    let export = dir.path().join("export");
    ok(&copy(&manifest, &["--from", "src", "--to-dir", export.to_str().unwrap()]).await, "export");
    assert!(export.join("storehost-export.json").is_file());
    // The export holds what it says; a second export finds it all there.
    let again = copy(&manifest, &["--from", "src", "--to-dir", export.to_str().unwrap()]).await;
    ok(&again, "a second export");
    assert_eq!(row(&again, "artifact"), (5, 0, 5, 0));
    let import = copy(&manifest, &["--from-dir", export.to_str().unwrap(), "--to", "pg"]).await;
    ok(&import, "import");
    assert_eq!(row(&import, "workspace"), (2, 2, 0, 0));
    let check = copy(&manifest, &["--from", "src", "--to", "pg", "--dry-run"]).await;
    ok(&check, "comparing");
    for domain in ["artifact", "project", "ui", "workspace", "runner"] {
        let (records, to_copy, identical, _) = row(&check, domain);
        assert_eq!((to_copy, identical), (0, records), "{domain}");
    }
    let (_plugin, pg) = plugin_stores(&manifest, "pg").await;
    holds_everything(&pg, &artifacts, true).await;
    // An export directory is not written into when it holds other files.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("file.txt"), "x").unwrap();
    let refused = copy(&manifest, &["--from", "src", "--to-dir", other.to_str().unwrap()]).await;
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("is not empty"));
}

/// The README's way from the embedded default to PostgreSQL and S3: its two `storehost copy`
/// lines as written (the environment the example manifest reads set to the test servers), then
/// `storehost serve` on that manifest answers with what the default held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_moves_the_embedded_default_to_postgres_and_s3() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("## Moving data between origins").nth(1).unwrap().split("## ").next().unwrap();
    let commands: Vec<&str> = section.lines().map(str::trim).filter(|l| l.starts_with("storehost ")).collect();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(commands[2].starts_with("storehost serve --manifest examples/manifests/postgres-s3.toml"));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".storehost/data");
    let (db, s3) = (TestDatabase::create().await, S3Server::start().await);
    s3.create_bucket("storehost");
    let artifacts = {
        let default = Manifest::parse(storehost::app::manifest::EMBEDDED_DEFAULT, "default", dir.path().to_path_buf(), |_| None).unwrap();
        let plugin = Plugin::load(&runtime(), plugin_spec(&default, "files").await.unwrap()).await.unwrap();
        // The example keeps artifacts under `artifacts/`, so its longest key is 1014 bytes.
        fill(&stores_of(&plugin), 1014).await
    };
    let env = [
        ("STOREHOST_DATA_DIR", data.display().to_string()),
        ("DATABASE_URL", db.url.clone()),
        ("S3_ENDPOINT", s3.endpoint.clone()),
        ("S3_ACCESS_KEY_ID", s3.access_key.clone()),
        ("S3_SECRET_ACCESS_KEY", s3.secret_key.clone()),
    ];
    for command in &commands[..2] {
        let args: Vec<String> = command.split_whitespace().skip(1).map(String::from).collect();
        let mut cmd = Command::new(crate::support::binary());
        cmd.current_dir(&root).args(&args).envs(env.iter().cloned()).env("RUST_LOG", "warn");
        let output = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        ok(&output, command);
    }
    let text = std::fs::read_to_string(root.join("examples/manifests/postgres-s3.toml")).unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = crate::support::Server::start(dir.path(), Some(&text), &env);
    let http = reqwest::Client::new();
    for (key, body) in &artifacts {
        let url = server.url(&format!("/v1/artifacts/{}", storehost::http::encode_path(key)));
        let got = http.get(url).send().await.unwrap();
        assert_eq!(got.status(), 200, "{key}");
        assert_eq!(Sha256::digest(got.bytes().await.unwrap()), Sha256::digest(body), "{key}");
    }
    let project: serde_json::Value = http.get(server.url("/v1/projects/p1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(project["name"], "Project one");
    let tabs: serde_json::Value = http.get(server.url("/v1/workspaces/w1/tabs")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tabs.to_string().matches("\"id\":\"t").count(), 3, "{tabs}");
    let file = http.get(server.url("/v1/runs/r1/artifacts/logs/out.txt")).send().await.unwrap();
    assert_eq!(file.text().await.unwrap(), "line 1\nline 2\n");
}

/// `unit` repeated to `bytes` bytes, the rest (when `unit` does not divide it) in `x`.
fn text(unit: &str, bytes: usize) -> String {
    let mut t = unit.repeat(bytes / unit.len());
    t.push_str(&"x".repeat(bytes - t.len()));
    t
}

/// Artifacts `(key, content type, body)` whose keys are the hardest a file system holds: segments
/// longer than a file name (in ASCII and in multi-byte characters, which encode to three times
/// their length), a file and a directory of the same long segment, names that share all but
/// their last byte, and keys of 1024 bytes.
fn long_artifacts() -> Vec<(String, String, Bytes)> {
    let deep = format!("deep/{}/{}/{}", text("é", 400), text("語", 300), text("ß", 317));
    assert_eq!(deep.len(), 1024);
    [
        (format!("seg/{}/end.bin", text("s", 300)), "application/x-test", pattern(3000, 1)),
        (format!("seg/{}", text("s", 300)), "text/plain; charset=utf-8", pattern(10, 2)),
        (format!("seg/{}t", text("s", 299)), "text/plain", pattern(20, 3)),
        (format!("seg/{}", text("s", 250)), "text/plain", pattern(30, 4)),
        (format!("seg/{}", text("s", 251)), "text/plain", pattern(40, 5)),
        ("seg/b".to_string(), "image/png", pattern(50, 6)),
        (format!("{}/{}/x", text("ü", 300), text("✓", 300)), "application/json", Bytes::from_static(b"{\"a\":1}")),
        (text("k", 1024), "application/x-test", pattern(1024, 7)),
        (text("✓", 1024), "application/x-test", pattern(999, 8)),
        (deep, "application/x-test", pattern(4096, 9)),
        (format!("empty/{}", text("e", 400)), "application/octet-stream", Bytes::new()),
        (format!("big/{}.bin", text("b", 300)), "application/x-test", pattern(3 << 20, 10)),
    ]
    .into_iter()
    .map(|(key, content_type, body)| (key, content_type.to_string(), body))
    .collect()
}

/// Runner files `(run, name, body)`: runs of 256 bytes (and one of 255, a prefix of another),
/// names of 1024 bytes and segments longer than a file name.
fn long_run_files() -> Vec<(String, String, Bytes)> {
    let long_name = format!("{}/{}", text("n", 600), text("ñ", 423));
    assert_eq!(long_name.len(), 1024);
    [
        (text("r", 256), long_name, pattern(5000, 11)),
        (text("r", 256), format!("logs/{}.txt", text("l", 300)), Bytes::from_static(b"line 1\nline 2\n")),
        (text("r", 256), "a".to_string(), pattern(2 << 20, 12)),
        (text("r", 255), "f".to_string(), pattern(7, 13)),
        (text("ř", 256), text("✓", 1024), pattern(300, 14)),
        (text("ř", 256), "x".to_string(), Bytes::new()),
    ]
    .into_iter()
    .collect()
}

/// Fills `s` with [`long_artifacts`], [`long_run_files`], and projects, UI documents and
/// workspaces (with tabs) whose ids are 256 bytes, in ASCII and in multi-byte characters.
async fn fill_long(s: &Stores) {
    let ctx = Ctx::background();
    let store = s.artifact.as_ref().unwrap();
    for (key, content_type, body) in long_artifacts() {
        store.put(&ctx, &key, body, Some(content_type)).await.unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let (projects, records) = (s.project.as_ref().unwrap(), s.project_artifacts.as_ref().unwrap());
    let keys: Vec<String> = long_artifacts().into_iter().map(|(key, ..)| key).collect();
    for (i, id) in [text("p", 256), text("ü", 256), text("✓", 256)].into_iter().enumerate() {
        let state = serde_json::json!({ "id": id, "n": i, "nested": { "list": [1, 2, 3] } }).to_string();
        projects.save(&ctx, ProjectInput { id: id.clone(), name: format!("Projekt {i} ✓"), state }, None).await.unwrap();
        for (j, name) in [text("r", 300), text("ö", 300), "report".to_string()].into_iter().enumerate().take(i + 1) {
            let record = ProjectArtifact { name, artifact_key: keys[i * 3 + j].clone(), size: 10, kind: "text".into(), created_at: 0 };
            records.add(&ctx, &id, record).await.unwrap();
        }
    }
    let ui = s.ui.as_ref().unwrap();
    let (root, child) = (text("ж", 300), text("n", 400));
    let tree = vec![
        UiOp::InsertNode { node: node(&root, None, &[("title", "\"Главная ✓\"")]), index: 0 },
        UiOp::InsertNode { node: node(&child, Some(&root), &[("w", "3")]), index: 0 },
        UiOp::InsertNode { node: node("b", Some(&root), &[]), index: 0 },
        UiOp::InsertNode { node: node("leaf", Some(&child), &[("list", "[1,2]")]), index: 0 },
        UiOp::InsertNode { node: node("side", None, &[]), index: 1 },
    ];
    ui.apply_ops(&ctx, &text("d", 256), None, tree).await.unwrap();
    ui.apply_ops(&ctx, &text("ж", 256), None, vec![UiOp::InsertNode { node: node("only", None, &[]), index: 0 }]).await.unwrap();
    let ws = s.workspace.as_ref().unwrap();
    let (w1, w2) = (text("w", 256), text("ш", 256));
    ws.create(&ctx, WorkspaceInput { id: w1.clone(), project_id: text("p", 256), name: "Workspace ✓".into() }).await.unwrap();
    ws.create(&ctx, WorkspaceInput { id: w2.clone(), project_id: text("ü", 256), name: "Рабочая область".into() }).await.unwrap();
    for (i, tab) in [text("t", 256), text("ö", 256), text("✓", 256), "short".to_string()].into_iter().enumerate() {
        ws.create_tab(&ctx, &w1, TabInput { id: tab, title: format!("Tab {i} ✓"), kind: "editor".into() }).await.unwrap();
    }
    ws.create_tab(&ctx, &w2, TabInput { id: text("t", 256), title: "The same id".into(), kind: "log".into() }).await.unwrap();
    ws.update_tab_run(&ctx, &w1, &text("ö", 256), Some(text("r", 256))).await.unwrap();
    ws.select_tab(&ctx, &w1, &text("✓", 256)).await.unwrap();
    let runner = s.runner.as_ref().unwrap();
    for (run, name, body) in long_run_files() {
        runner.write(&ctx, &run, &name, body).await.unwrap_or_else(|e| panic!("{run}/{name}: {e}"));
    }
}

/// Every record `side` holds, domain by domain in its listing order, as the copy compares them
/// (a project's artifact records without their creation time, which each side stamps).
async fn records(side: &dyn Side) -> Vec<Content> {
    let mut all = Vec::new();
    for domain in Domain::ALL {
        for listed in side.list(domain, "").await.unwrap() {
            let content = match listed.content {
                Some(content) => content,
                None => side.content(&listed.id).await.unwrap().unwrap_or_else(|| panic!("{} lists {} and lacks it", side.describe(), listed.id)),
            };
            all.push(content);
        }
    }
    for content in &mut all {
        if let Content::Project { artifacts, .. } = content {
            artifacts.iter_mut().for_each(|a| a.created_at = 0);
        }
    }
    all
}

/// Every id `s` lists, domain by domain, read in pages of one or two (each page's cursor the
/// last id of the one before).
async fn ids_in_small_pages(s: &Stores) -> Vec<String> {
    let ctx = Ctx::background();
    let mut ids = Vec::new();
    macro_rules! every_page {
        (|$cursor:ident| $page:expr, $items:ident, $id:expr) => {{
            let mut $cursor: Option<String> = None;
            loop {
                let page = $page.await.unwrap();
                ids.extend(page.$items.into_iter().map($id));
                match page.next_cursor {
                    Some(next) => $cursor = Some(next),
                    None => break,
                }
            }
        }};
    }
    let (artifacts, projects, ui) = (s.artifact.as_ref().unwrap(), s.project.as_ref().unwrap(), s.ui.as_ref().unwrap());
    let (workspaces, runner) = (s.workspace.as_ref().unwrap(), s.runner.as_ref().unwrap());
    every_page!(|cursor| artifacts.list(&ctx, "", cursor.as_deref(), 2), items, |m| m.key);
    every_page!(|cursor| projects.list(&ctx, cursor.as_deref(), 1), items, |p| p.id);
    every_page!(|cursor| ui.list(&ctx, cursor.as_deref(), 1), ids, |id| id);
    every_page!(|cursor| workspaces.list(&ctx, cursor.as_deref(), 1), items, |w| w.id);
    every_page!(|cursor| runner.list_runs(&ctx, cursor.as_deref(), 1), runs, |run| run);
    ids
}

/// Copies every domain from `from` to `to` in this process, as `storehost copy` does, and
/// checks every record was copied.
async fn copy_here(from: &dyn Side, to: &dyn Side, counts: &[(Domain, u64)]) {
    let options = CopyOptions { domains: Domain::ALL.to_vec(), prefix: String::new(), dry_run: false, jobs: 4 };
    let summaries = storehost::copy::copy(from, to, &options, &Quiet, &AtomicBool::new(false)).await.unwrap();
    assert_eq!(summaries.len(), counts.len());
    for (summary, (domain, records)) in summaries.iter().zip(counts) {
        assert_eq!(summary.domain, *domain);
        assert_eq!((summary.records, summary.copied, summary.failed), (*records, *records, 0), "{domain}: {:?}", summary.failures);
    }
}

/// The memory plugin holds its records in its instance, in the process that loaded it: a
/// `storehost copy` process would find its own memory plugin empty. So the memory plugins are
/// loaded here, and the records cross between them and the binary's fs plugin through export
/// directories: memory → directory here, directory → fs and fs → directory by `storehost copy`,
/// directory → a second memory plugin here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_keys_and_ids_go_from_memory_to_fs_and_back_to_memory_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("copy.toml");
    let memory = "[plugins.mem]\nsource = \"builtin:memory\"\n\n[plugins.mem2]\nsource = \"builtin:memory\"\n\n";
    std::fs::write(&manifest, fs_plugin(dir.path(), "files", "files") + memory).unwrap();
    let (mem, mem_stores) = plugin_stores(&manifest, "mem").await;
    fill_long(&mem_stores).await;
    let mem = PluginSide::new(&mem);
    let original = records(&mem).await;
    let counts: Vec<(Domain, u64)> = Domain::ALL.into_iter().map(|d| (d, original.iter().filter(|c| c.id().domain() == d).count() as u64)).collect();
    let (artifacts, runs) = (long_artifacts(), long_run_files());
    assert_eq!(
        counts,
        [
            (Domain::Artifact, artifacts.len() as u64),
            (Domain::Project, 3),
            (Domain::Ui, 2),
            (Domain::Workspace, 2),
            (Domain::Runner, runs.len() as u64)
        ]
    );

    let out = dir.path().join("out");
    copy_here(&mem, &DirSide::create(&out).unwrap(), &counts).await;
    let import = copy(&manifest, &["--from-dir", out.to_str().unwrap(), "--to", "files"]).await;
    ok(&import, "export → fs");
    for (domain, records) in &counts {
        assert_eq!(row(&import, domain.name()), (*records, *records, 0, 0), "{domain}");
    }
    // The fs plugin, loaded anew, holds every record as the memory plugin does, and lists them
    // in the same (byte) order, in pages of any size.
    {
        let (files, files_stores) = plugin_stores(&manifest, "files").await;
        assert_eq!(records(&PluginSide::new(&files)).await, original, "the fs plugin's records");
        assert_eq!(ids_in_small_pages(&files_stores).await, ids_in_small_pages(&mem_stores).await);
    }
    let back = dir.path().join("back");
    let export = copy(&manifest, &["--from", "files", "--to-dir", back.to_str().unwrap()]).await;
    ok(&export, "fs → export");
    for (domain, records) in &counts {
        assert_eq!(row(&export, domain.name()), (*records, *records, 0, 0), "{domain}");
    }
    let (mem2, mem2_stores) = plugin_stores(&manifest, "mem2").await;
    copy_here(&DirSide::open(&back).unwrap(), &PluginSide::new(&mem2), &counts).await;

    // Identical record by record: keys, ids, content types, sizes and digests of the bodies,
    // projects with their artifact records, documents' nodes, workspaces with their tabs.
    assert_eq!(records(&PluginSide::new(&mem2)).await, original, "the second memory plugin's records");
    assert_eq!(ids_in_small_pages(&mem2_stores).await, ids_in_small_pages(&mem_stores).await);
    // And the bodies themselves, read back.
    let ctx = Ctx::background();
    for (key, content_type, body) in &artifacts {
        let got = mem2_stores.artifact.as_ref().unwrap().get(&ctx, key).await.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!((got.body.len(), got.meta.content_type.as_deref()), (body.len(), Some(content_type.as_str())), "{key}");
        assert_eq!(Sha256::digest(&got.body), Sha256::digest(body), "{key}");
    }
    let runner = mem2_stores.runner.as_ref().unwrap();
    for (run, name, body) in &runs {
        assert_eq!(Sha256::digest(runner.read(&ctx, run, name).await.unwrap()), Sha256::digest(body), "{run}/{name}");
    }
    let w1 = mem2_stores.workspace.as_ref().unwrap().get(&ctx, &text("w", 256)).await.unwrap();
    assert_eq!(w1.selected_tab, Some(text("✓", 256)));
}
