//! The command line: `check`, `plugin inspect`, and the client subcommands against a live
//! server.

mod support;

use std::process::{Command, Output};

use support::Server;

fn storehost(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storehost")).current_dir(dir).args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_default_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let ok = storehost(dir.path(), &["check"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("plugin files: fs"), "{}", text(&ok.stdout));

    std::fs::write(dir.path().join("bad.toml"), "[plugins.x]\nsource = \"builtin:fs\"\ninstance = 2\n").unwrap();
    let bad = storehost(dir.path(), &["check", "--manifest", "bad.toml"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = text(&bad.stderr);
    assert!(err.contains("bad.toml") && err.contains("plugins.x") && err.contains("unknown field `instance`"), "{err}");

    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("core.toml"), "[plugins.x]\nsource = \"core.wasm\"\n").unwrap();
    let core = storehost(dir.path(), &["check", "--manifest", "core.toml"]);
    assert_eq!(core.status.code(), Some(1));
    assert!(text(&core.stderr).contains("not a component"), "{}", text(&core.stderr));
}

#[test]
fn plugin_inspect_shows_exports_imports_and_describe() {
    let dir = tempfile::tempdir().unwrap();
    let out = storehost(dir.path(), &["plugin", "inspect", "builtin:mock", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["describe"]["name"], "mock");
    let interfaces = report["interfaces"].as_array().unwrap();
    assert!(interfaces.contains(&"mock-control".into()) && interfaces.contains(&"artifacts".into()), "{interfaces:?}");
    let imports = report["imports"].as_array().unwrap();
    assert!(imports.iter().any(|i| i[0].as_str().unwrap().starts_with("wasi:")), "{imports:?}");
    let sql = storehost::test_fixture("sql-user").unwrap();
    let out = storehost(dir.path(), &["plugin", "inspect", sql]);
    let shown = text(&out.stdout);
    assert!(shown.contains("storehost:host/sql") && shown.contains("runner-artifacts"), "{shown}");
    // Which version of the contract a component speaks.
    assert_eq!(report["origin_version"], "0.2.1");
    let fs = storehost(dir.path(), &["plugin", "inspect", "builtin:fs"]);
    assert!(
        text(&fs.stdout).contains(
            "contract: storehost:origin@0.2.1 (streamed bodies; artifact bodies opened through artifact-bodies: a reader, or a file the host reads)"
        ),
        "{}",
        text(&fs.stdout)
    );
}

#[test]
fn client_commands_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &server.base]);
        let out = storehost(dir.path(), &all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &body).unwrap();
    assert!(run(&["artifact", "put", "data/big.bin", "big.bin"]).contains("3000000 bytes"));
    assert!(run(&["artifact", "ls", "data/"]).contains("data/big.bin"));
    run(&["artifact", "get", "data/big.bin", "--output", "back.bin"]);
    assert_eq!(std::fs::read(dir.path().join("back.bin")).unwrap(), body);
    assert!(run(&["artifact", "url", "data/big.bin"]).contains("/v1/signed/data/big.bin?expires="));
    run(&["runner", "--run", "r1", "write", "logs/a.txt", "big.bin"]);
    assert_eq!(run(&["runner", "--run", "r1", "ls"]).trim(), "logs/a.txt");
    run(&["runner", "--run", "r1", "rm", "logs/a.txt"]);
    let missing = storehost(dir.path(), &["runner", "--run", "r1", "read", "logs/a.txt", "--server", &server.base]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("404 Not Found not-found"), "{}", text(&missing.stderr));
}

#[test]
fn plugin_test_passes_a_good_origin_and_names_what_a_broken_one_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let good = storehost(dir.path(), &["plugin", "test", "builtin:fs"]);
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(text(&good.stdout).contains(" 0 failed, 0 skipped"), "{}", text(&good.stdout));
    for (fixture, operation) in [("broken-list", "list"), ("lost-overwrite", "put")] {
        let out = storehost(dir.path(), &["plugin", "test", storehost::test_fixture(fixture).unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{fixture} passed the suite");
        let table = text(&out.stdout);
        let failed: Vec<&str> = table.lines().filter(|l| l.contains("FAIL")).collect();
        assert!(failed.iter().any(|l| l.split_whitespace().nth(1) == Some(operation)), "{fixture}: no failure in {operation}:\n{table}");
        assert!(text(&out.stderr).contains("conformance case(s) failed"));
    }
}

/// `examples/manifests/postgres.toml` on a database of the test's own: `check` accepts it and
/// `plugin test` passes the whole conformance suite through the manifest's grant.
#[test]
fn the_postgres_example_manifest_passes_the_suite() {
    use sqlx::Connection;
    let server = std::env::var("STOREHOST_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("storehost_cli_{}", std::process::id());
    let url = format!("{}/{name}", &server[..server.rfind('/').unwrap()]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin = |sql: String| {
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&server).await.expect("PostgreSQL on 127.0.0.1:5432 (scripts/setup.sh starts it)");
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        })
    };
    admin(format!("CREATE DATABASE {name}"));
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/manifests/postgres.toml");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_storehost"))
            .current_dir(dir.path())
            .args(args)
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let check = run(&["check", "--manifest", manifest]);
    let refused = run(&["plugin", "test", "db", "--manifest", manifest]);
    assert!(!refused.status.success(), "plugin test wrote into a granted database without --allow-writes");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-writes"), "{}", String::from_utf8_lossy(&refused.stderr));
    let suite = run(&["plugin", "test", "db", "--manifest", manifest, "--allow-writes"]);
    admin(format!("DROP DATABASE {name} WITH (FORCE)"));
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(suite.status.success(), "{}\n{}", text(&suite.stdout), text(&suite.stderr));
    assert!(text(&suite.stdout).contains(" 0 failed, 0 skipped"), "{}", text(&suite.stdout));
}

/// Every file under `dir` with its contents, for comparing a directory before and after.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.push((path.clone(), Vec::new()));
                stack.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// `plugin test --manifest` runs the suite in scratch directories granted like the manifest's,
/// and leaves the manifest's own directories exactly as they were.
#[test]
fn plugin_test_with_a_manifest_leaves_its_directories_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "[plugins.files]\nsource = \"builtin:fs\"\ndirs = { \"/data\" = { host = \"data\", mode = \"rw\" } }\n[domains]\nartifact = { origin = \"files\" }\n",
    )
    .unwrap();
    // The user's data, written through a server on the same manifest.
    let put = storehost(dir.path(), &["check", "--manifest", "m.toml"]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    std::fs::create_dir_all(dir.path().join("data/artifacts")).unwrap();
    std::fs::write(dir.path().join("data/artifacts/mine.txt"), "the user's file").unwrap();
    let before = snapshot(&dir.path().join("data"));
    let out = storehost(dir.path(), &["plugin", "test", "files", "--manifest", "m.toml"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("0 failed"), "{}", text(&out.stdout));
    assert_eq!(snapshot(&dir.path().join("data")), before, "plugin test changed the manifest's directory");
}

/// `artifact get --output` killed mid-transfer leaves `<file>.part`; the next run resumes it with
/// a range request (not from the start) and ends with the whole body in place.
#[test]
fn a_cut_download_resumes_with_a_range_request() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let body: Vec<u8> = (0..256u32 << 20).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &body).unwrap();
    let put = storehost(dir.path(), &["artifact", "put", "big", "big.bin", "--server", &server.base]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    std::fs::remove_file(dir.path().join("big.bin")).unwrap();

    let part = dir.path().join("back.bin.part");
    let mut child = Command::new(env!("CARGO_BIN_EXE_storehost"))
        .current_dir(dir.path())
        .args(["artifact", "get", "big", "--output", "back.bin", "--server", &server.base])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 4 << 20 {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the download did not start");
        assert!(child.try_wait().unwrap().is_none(), "the download finished before it could be cut");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = std::fs::metadata(&part).unwrap().len();
    assert!(left > 0 && left < body.len() as u64, "{left} bytes were left of {}", body.len());
    assert!(!dir.path().join("back.bin").exists(), "a cut download put a partial file in place");

    let resumed = storehost(dir.path(), &["artifact", "get", "big", "--output", "back.bin", "--server", &server.base]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(text(&resumed.stderr).contains("resuming at byte"), "the second run started over: {}", text(&resumed.stderr));
    let back = std::fs::read(dir.path().join("back.bin")).unwrap();
    assert_eq!(back.len(), body.len());
    assert_eq!(Sha256::digest(&back), Sha256::digest(&body), "the resumed file differs");
    assert!(!part.exists(), "the .part file stayed");

    // A body replaced since the cut is fetched whole (If-Range), not spliced.
    std::fs::write(&part, &body[..1000]).unwrap();
    std::fs::write(dir.path().join("back.bin.part.etag"), "\"not-the-etag\"").unwrap();
    let fresh = storehost(dir.path(), &["artifact", "get", "big", "--output", "back.bin", "--server", &server.base]);
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    assert_eq!(Sha256::digest(std::fs::read(dir.path().join("back.bin")).unwrap()), Sha256::digest(&body));
}
