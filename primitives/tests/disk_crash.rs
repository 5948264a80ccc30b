//! The disk store under SIGKILL: a child process (the `disk-crash-child` binary) writes, reads
//! and deletes in a loop and is killed at a random point, over and over. After every kill the
//! store reopens, each value read is one that was written for its key, the index and the value
//! files agree, and the budget holds.

#[path = "support/crash_model.rs"]
mod crash_model;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crash_model::*;
use storehost_primitives::{DiskError, DiskStore};

fn value_files(dir: &Path) -> Vec<u64> {
    let mut sizes = Vec::new();
    for sub in std::fs::read_dir(dir.join("data")).unwrap() {
        for file in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            sizes.push(file.unwrap().metadata().unwrap().len());
        }
    }
    sizes
}

fn verify(dir: &Path, round: u64) -> u64 {
    let store = DiskStore::open(config(dir, round)).unwrap();
    let keys = store.keys();
    for name in &keys {
        let key: u64 = name.strip_prefix("crash/").unwrap().parse().unwrap();
        let value = store.get(name).unwrap().unwrap_or_else(|| panic!("round {round}: listed {name} is unreadable"));
        assert!(is_written_value(key, &value), "round {round}: wrong value for {name}");
    }
    let stats = store.stats();
    eprintln!("round {round}: {} entries, {} bytes after {:?}", stats.entries, stats.bytes, store.recovery());
    assert_eq!(stats.corruptions, 0, "round {round}: a killed process never damages a value");
    assert!(stats.bytes <= MAX_BYTES, "round {round}: {} bytes over budget", stats.bytes);
    let files = value_files(dir);
    assert_eq!(files.len() as u64, stats.entries, "round {round}: index and files disagree");
    assert_eq!(files.iter().sum::<u64>(), stats.bytes, "round {round}: index and file sizes disagree");
    assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    stats.entries
}

/// Kills the child if the parent fails first, so that it does not outlive the test's directory.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn survives_sigkill_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let mut total_ops = 0;
    let mut saw_entries = false;
    for round in 0..ROUNDS {
        let child = Command::new(env!("CARGO_BIN_EXE_disk-crash-child"))
            .env(CHILD_DIR, dir.path())
            .env(CHILD_SEED, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        // Between 1 and ~600 operations: early kills land during startup cleanup, late ones
        // after evictions and compactions.
        let target = 1 + mix(round + 1000) % 600;
        let mut ready = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line == "<child ready>" {
                ready = true;
                if round == 0 {
                    let err = DiskStore::open(config(dir.path(), round)).unwrap_err();
                    assert!(matches!(err, DiskError::Locked { .. }), "{err}");
                }
            } else if let Some(n) = line.strip_prefix("op ")
                && n.parse::<u64>().unwrap() >= target
            {
                total_ops += target;
                break;
            }
        }
        assert!(ready, "round {round}: the child did not start");
        // Kill while it keeps working: it is not blocked, the pipe is drained up to here.
        child.0.kill().unwrap();
        let status = child.0.wait().unwrap();
        assert!(status.code().is_none(), "round {round}: the child exited by itself: {status}");
        saw_entries |= verify(dir.path(), round) > 0;
    }
    assert!(saw_entries);
    assert!(total_ops > ROUNDS * 100);
}
