//! A real OCI registry on loopback for the tests: Debian's `docker-registry` (CNCF
//! distribution), which the test command unpacks, run in the foreground on a free port with its
//! storage in a temporary directory; over plain HTTP, and optionally behind basic auth (an
//! htpasswd file of bcrypt hashes, as distribution takes).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    /// `127.0.0.1:PORT`: the registry part of references.
    pub host: String,
    root: tempfile::TempDir,
    child: Option<Child>,
}

impl Registry {
    /// Starts `binary` (the `docker-registry` executable); with `user`, only that user and its
    /// password are let in.
    pub fn start(binary: &Path, user: Option<(&str, &str)>) -> Registry {
        let root = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: storehost-test\n",
            root.path().join("storage").display()
        );
        if let Some((name, password)) = user {
            let hash = bcrypt::hash(password, 4).unwrap();
            std::fs::write(root.path().join("htpasswd"), format!("{name}:{hash}\n")).unwrap();
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: storehost-test\n    path: {}\n", root.path().join("htpasswd").display()));
        }
        std::fs::write(root.path().join("config.yml"), config).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(root.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(Instant::now() < until, "the registry did not listen on {host}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry { host, root, child: Some(child) }
    }

    /// The file the registry keeps the blob `digest` (`sha256:…`) in.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root.path().join("storage/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// Stops the registry (its storage stays until it is dropped).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
