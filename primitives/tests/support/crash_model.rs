//! What the crash test's child does and what its parent checks against: the store's settings and
//! the values written for each key. Shared by `tests/disk_crash.rs` and the `disk-crash-child`
//! binary through `#[path]`.

#![allow(dead_code)]

use std::path::Path;

use storehost_primitives::{DiskStore, DiskStoreConfig, FsyncPolicy};

pub const CHILD_DIR: &str = "STOREHOST_DISK_CRASH_DIR";
pub const CHILD_SEED: &str = "STOREHOST_DISK_CRASH_SEED";
pub const KEYS: u64 = 64;
pub const MAX_BYTES: u64 = 256 * 1024;
pub const ROUNDS: u64 = 30;

pub fn config(dir: &Path, seed: u64) -> DiskStoreConfig {
    let fsync = if seed % 3 == 2 { FsyncPolicy::Always } else { FsyncPolicy::Never };
    DiskStoreConfig::new(dir).max_bytes(MAX_BYTES).max_entries(48).recency_batch(4).fsync(fsync)
}

pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The value written for `key` at `version`: a header naming both, then bytes derived from them.
pub fn value_for(key: u64, version: u64) -> Vec<u8> {
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
pub fn is_written_value(key: u64, value: &[u8]) -> bool {
    if value.len() < 16 {
        return false;
    }
    let k = u64::from_le_bytes(value[..8].try_into().unwrap());
    let version = u64::from_le_bytes(value[8..16].try_into().unwrap());
    k == key && value == value_for(key, version).as_slice()
}

pub fn key_name(key: u64) -> String {
    format!("crash/{key:03}")
}

/// The child: opens the store named by the environment and writes, reads and deletes until it is
/// killed, printing `op N` after each operation.
pub fn run_child() {
    let dir = std::env::var_os(CHILD_DIR).expect("the parent names the store directory");
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let store = DiskStore::open(config(Path::new(&dir), seed)).unwrap();
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
