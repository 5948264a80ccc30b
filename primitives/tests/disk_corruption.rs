//! Damaged index records and value files are misses, never wrong values: random bit flips and
//! truncations of a store's files, each followed by a reopen and a read of every key.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use storehost_primitives::{DiskStore, DiskStoreConfig};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config(dir: &Path) -> DiskStoreConfig {
    DiskStoreConfig::new(dir).recency_batch(3)
}

/// A store whose index holds puts, updates, deletes and touches; returns the live values.
fn build_pristine(dir: &Path) -> HashMap<String, Vec<u8>> {
    let store = DiskStore::open(config(dir)).unwrap();
    let mut expected = HashMap::new();
    let mut rng = Rng(7);
    for i in 0..200u64 {
        let key = format!("k{}", rng.below(40));
        match rng.below(6) {
            0 => {
                store.delete(&key).unwrap();
                expected.remove(&key);
            }
            1 | 2 => {
                let _ = store.get(&key).unwrap();
            }
            _ => {
                let value: Vec<u8> = (0..rng.below(3000)).map(|j| (i + j) as u8).collect();
                store.put(&key, &value).unwrap();
                expected.insert(key, value);
            }
        }
    }
    expected
}

/// Removes every file under `dir`, keeping the directories (removing a directory is slow on
/// some file systems, and every round would remove a few hundred).
fn remove_files(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            remove_files(&entry.path());
        } else {
            fs::remove_file(entry.path()).unwrap();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn value_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in fs::read_dir(dir.join("data")).unwrap() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    files
}

fn flip_bit(path: &Path, rng: &mut Rng) {
    let mut bytes = fs::read(path).unwrap();
    if bytes.is_empty() {
        return;
    }
    let at = rng.below(bytes.len() as u64) as usize;
    bytes[at] ^= 1 << rng.below(8);
    fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, rng: &mut Rng) {
    let len = fs::metadata(path).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(rng.below(len.max(1))).unwrap();
}

#[test]
fn damaged_files_are_misses_never_wrong_values() {
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    let expected = build_pristine(&pristine);
    assert!(expected.len() > 10);
    let mut rng = Rng(42);
    let mut lost = 0;
    for round in 0..300 {
        let dir = root.path().join("work");
        if dir.exists() {
            remove_files(&dir);
        }
        copy_dir(&pristine, &dir);
        let index = dir.join("index");
        let files = value_files(&dir);
        let damage = round % 5;
        match damage {
            0 => flip_bit(&index, &mut rng),
            1 => truncate(&index, &mut rng),
            2 => flip_bit(&files[rng.below(files.len() as u64) as usize], &mut rng),
            3 => truncate(&files[rng.below(files.len() as u64) as usize], &mut rng),
            _ => {
                for _ in 0..4 {
                    flip_bit(&files[rng.below(files.len() as u64) as usize], &mut rng);
                }
                flip_bit(&index, &mut rng);
            }
        }
        let store = DiskStore::open(config(&dir)).unwrap();
        for (key, value) in &expected {
            match store.get(key).unwrap() {
                Some(got) => assert_eq!(&got[..], &value[..], "round {round} (damage {damage}): wrong value for {key}"),
                None => lost += 1,
            }
        }
        for key in store.keys() {
            assert!(expected.contains_key(&key), "round {round}: {key} was deleted but came back");
        }
        let stats = store.stats();
        assert_eq!(value_files(&dir).len() as u64, stats.entries, "round {round}: index and files disagree");
        drop(store);
    }
    // Damage was done and detected (not every flip loses an entry: some hit touch records).
    assert!(lost > 0);
}
