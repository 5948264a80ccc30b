//! The disk store under SIGKILL: a child process writes, reads and deletes in a loop and is killed
//! at a random point, over and over. After every kill the store reopens, each value read is one
//! that was written for its key, the index and the value files agree, and the budget holds.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use storehost_primitives::{DiskError, DiskStore, DiskStoreConfig, FsyncPolicy};

const CHILD_DIR: &str = "STOREHOST_DISK_CRASH_DIR";
const CHILD_SEED: &str = "STOREHOST_DISK_CRASH_SEED";
const KEYS: u64 = 64;
const MAX_BYTES: u64 = 256 * 1024;
const ROUNDS: u64 = 30;

fn config(dir: &Path, seed: u64) -> DiskStoreConfig {
    let fsync = if seed % 3 == 2 { FsyncPolicy::Always } else { FsyncPolicy::Never };
    DiskStoreConfig::new(dir).max_bytes(MAX_BYTES).max_entries(48).recency_batch(4).fsync(fsync)
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The value written for `key` at `version`: a header naming both, then bytes derived from them.
fn value_for(key: u64, version: u64) -> Vec<u8> {
    let len = 16 + (mix(key ^ version.rotate_left(17)) % 12_000) as usize;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend_from_slice(&version.to_le_bytes());
    let mut x = mix(version.wrapping_add(key));
    while v.len() < len {
        x = mix(x);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Whether `value` is exactly a value that `value_for` makes for `key`.
fn is_written_value(key: u64, value: &[u8]) -> bool {
    if value.len() < 16 {
        return false;
    }
    let k = u64::from_le_bytes(value[..8].try_into().unwrap());
    let version = u64::from_le_bytes(value[8..16].try_into().unwrap());
    k == key && value == value_for(key, version).as_slice()
}

fn key_name(key: u64) -> String {
    format!("crash/{key:03}")
}

#[test]
#[ignore = "the child process of `survives_sigkill_in_a_loop`, which runs it with --ignored"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else { return };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let store = DiskStore::open(config(Path::new(&dir), seed)).unwrap();
    // The test harness may print on the same line first, so the parent looks for a suffix.
    println!("<child ready>");
    let mut rng = mix(seed + 1);
    for n in 0u64.. {
        rng = mix(rng);
        let key = rng % KEYS;
        let name = key_name(key);
        match (rng >> 32) % 10 {
            0..=5 => {
                store.put(&name, &value_for(key, (seed << 32) | n)).unwrap();
            }
            6..=8 => {
                if let Some(v) = store.get(&name).unwrap() {
                    assert!(is_written_value(key, &v), "child read a wrong value for {name}");
                }
            }
            _ => {
                store.delete(&name).unwrap();
            }
        }
        println!("op {n}");
    }
}

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
    let exe = std::env::current_exe().unwrap();
    let mut total_ops = 0;
    let mut saw_entries = false;
    for round in 0..ROUNDS {
        let child = Command::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
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
            if line.ends_with("<child ready>") {
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
