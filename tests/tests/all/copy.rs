//! `storehost copy` between real origins: the fs plugin filled with every domain, copied to
//! PostgreSQL, on to S3 (artifacts and runner files) and back to a fresh fs directory, then
//! compared record by record; a copy killed halfway and run again; an export to a directory
//! imported into an empty database.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use storehost::app::{Manifest, plugin_spec};
use storehost::domain::{Ctx, ProjectArtifact, ProjectInput, Stores, TabInput, UiNode, UiOp, WorkspaceInput};
use storehost::origin::stores_of;
use storehost::runtime::Plugin;
use storehost_tests::pg::TestDatabase;
use storehost_tests::runtime;
use storehost_tests::s3::S3Server;

/// The longest artifact key S3 holds under the s3 plugin's `a/` prefix (1024 bytes less it).
const LONG_KEY_BYTES: usize = 1022;

fn manifest_text(dir: &Path, db: Option<&TestDatabase>, s3: Option<&S3Server>) -> String {
    let fs = |name: &str, sub: &str| {
        format!(
            "[plugins.{name}]\nsource = \"builtin:fs\"\ndirs = {{ \"/data\" = {{ host = \"{}\", mode = \"rw\" }} }}\nconfig = {{ fsync = false }}\n\n",
            dir.join(sub).display()
        )
    };
    let mut text = fs("src", "src") + &fs("back", "back");
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
    let plugin = Plugin::load(&runtime(), plugin_spec(&manifest, name).unwrap()).await.unwrap();
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
        let plugin = Plugin::load(&runtime(), plugin_spec(&default, "files").unwrap()).await.unwrap();
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
