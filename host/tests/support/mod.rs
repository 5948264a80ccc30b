//! Starts the real `storehost` binary on a free loopback port. Shared by the host's tests and
//! (through `#[path]`) the cross-crate tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: PathBuf,
}

/// The `storehost` binary: cargo names it to the host's own tests; other test binaries of the
/// workspace find it in the profile directory they were built into.
pub fn binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_storehost") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile = exe.parent().and_then(Path::parent).expect("tests run from <target>/<profile>/deps");
    let path = profile.join("storehost");
    assert!(path.exists(), "{} was not built (build the workspace's binaries first)", path.display());
    path
}

/// The target directory the tests were built into (`<target>/<profile>/deps/<test>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.ancestors().nth(3).expect("tests run from <target>/<profile>/deps").to_path_buf()
}

/// A tool the test command installs: `$env`, or its place under the target directory.
pub fn tool(env: &str, default: PathBuf) -> PathBuf {
    let path = std::env::var_os(env).map_or(default, PathBuf::from);
    assert!(path.exists(), "{} is missing: scripts/test installs it (or set {env})", path.display());
    path
}

impl Server {
    /// `storehost serve` in `dir` (its working directory), with `manifest` text if given.
    pub fn start(dir: &Path, manifest: Option<&str>, env: &[(&str, &str)]) -> Server {
        Self::start_with(dir, manifest, env, &[])
    }

    /// [`start`](Self::start) with more arguments to `serve` (`--watch`).
    pub fn start_with(dir: &Path, manifest: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut cmd = Command::new(binary());
        cmd.current_dir(dir).arg("serve").args(["--listen", "127.0.0.1:0"]).args(args);
        if let Some(text) = manifest {
            let path = dir.join("storehost.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--manifest").arg(&path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit());
        Self::launch(cmd, dir)
    }

    /// The server `cmd` starts (a `storehost serve` in `dir`), once it says where it listens.
    pub fn launch(mut cmd: Command, dir: &Path) -> Server {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("starting storehost");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("storehost listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_string();
        Server { child, base, dir: dir.to_path_buf() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Self::terminate(&self.child);
        let status = wait(&mut self.child, Duration::from_secs(10)).expect("the server stops within 10 s of SIGTERM");
        std::mem::forget(self);
        status
    }

    pub fn terminate(child: &Child) {
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    }
}

pub fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
