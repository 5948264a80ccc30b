//! The ratios a suite last recorded, kept in the repository (`benches/baseline/<suite>.tsv`, one
//! `speedup<TAB>case<TAB>ours<TAB>anchor` line per row), so that every run prints how far each ratio moved since: a
//! slide of more than [`SLIDE`] is flagged in the table the next time anyone runs the suite.
//! `STOREHOST_BENCH_RECORD=1` writes this run's ratios as the new baseline.
//!
//! Shared by the host's suites and the primitives' (`#[path]`), which have no dependency in
//! common to put it in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A ratio that fell by more than this fraction since the baseline is flagged.
pub const SLIDE: f64 = 0.10;

/// A row's name in the baseline: its case, what was measured and its anchor.
pub fn key(case: &str, ours: &str, anchor: &str) -> String {
    format!("{case}\t{ours}\t{anchor}")
}

pub struct Baseline {
    path: PathBuf,
    recorded: BTreeMap<String, f64>,
}

impl Baseline {
    /// The baseline of `suite`, from `<repository>/benches/baseline/` (`crate_dir` is the
    /// bench's `CARGO_MANIFEST_DIR`, one level below the repository's root).
    pub fn load(crate_dir: &str, suite: &str) -> Baseline {
        let path = Path::new(crate_dir).join("..").join("benches").join("baseline").join(format!("{suite}.tsv"));
        let recorded = std::fs::read_to_string(&path)
            .map(|text| {
                text.lines()
                    .filter(|line| !line.starts_with('#'))
                    .filter_map(|line| {
                        let (speedup, case) = line.split_once('\t')?;
                        Some((case.to_string(), speedup.trim().parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Baseline { path, recorded }
    }

    /// This run's `speedup` of the row `key` against the baseline's: `+4%`, `-13% SLOWER` past
    /// [`SLIDE`], or `new` for a row the baseline lacks.
    pub fn change(&self, key: &str, speedup: f64) -> String {
        let Some(before) = self.recorded.get(key) else { return "new".into() };
        let flag = if self.slid_at(key, speedup) { " SLOWER" } else { "" };
        format!("{:+.0}% (was {before:.2}x){flag}", (speedup / before - 1.0) * 100.0)
    }

    /// Whether the row `key` fell more than [`SLIDE`] below its baseline.
    fn slid_at(&self, key: &str, speedup: f64) -> bool {
        self.recorded.get(key).is_some_and(|before| speedup / before - 1.0 < -SLIDE)
    }

    /// How many rows slid past [`SLIDE`].
    pub fn slid(&self, rows: impl IntoIterator<Item = (String, f64)>) -> usize {
        rows.into_iter().filter(|(key, speedup)| self.slid_at(key, *speedup)).count()
    }

    /// With `STOREHOST_BENCH_RECORD=1`, writes `rows` (key, speedup) as the new baseline.
    pub fn record_if_asked(&self, rows: impl IntoIterator<Item = (String, f64)>) {
        if std::env::var_os("STOREHOST_BENCH_RECORD").is_none_or(|v| v != "1") {
            return;
        }
        let mut text = String::from("# speedup (anchor / ours)\tcase\tours\tanchor; written by STOREHOST_BENCH_RECORD=1\n");
        for (key, speedup) in rows {
            text.push_str(&format!("{speedup:.4}\t{key}\n"));
        }
        std::fs::create_dir_all(self.path.parent().expect("a file in a directory")).expect("creating benches/baseline");
        std::fs::write(&self.path, text).expect("writing the baseline");
        println!("recorded the baseline in {}", self.path.display());
    }
}
