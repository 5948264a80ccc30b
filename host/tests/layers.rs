//! The host's modules depend on each other one way: each may use only the modules listed for it
//! here (the layers of the crate docs), never one above it. Read from the sources: every
//! `crate::NAME` path outside comments.

use std::collections::BTreeSet;
use std::path::Path;

/// Each top-level module and the modules it may use.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("domain", &["base"]),
    ("capabilities", &["base"]),
    ("runtime", &["base", "capabilities"]),
    ("origin", &["base", "domain", "runtime"]),
    ("metering", &["base", "domain"]),
    ("cache", &["base", "domain"]),
    ("cluster", &["base", "domain", "metering", "cache"]),
    ("conformance", &["base", "domain", "runtime", "origin"]),
    ("app", &["base", "domain", "capabilities", "runtime", "origin", "metering", "cache", "cluster"]),
    ("copy", &["base", "domain", "runtime", "origin"]),
    ("http", &["base", "domain", "capabilities", "runtime", "origin", "metering", "cache", "cluster", "app"]),
];

/// Items of the crate root (the built-in plugin table), usable from any module.
const ROOT_ITEMS: &[&str] = &["builtin", "BUILTINS", "test_fixture", "TEST_FIXTURES"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a source file names as `crate::NAME` (or `$crate::NAME`) outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn modules_depend_only_on_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for (module, allowed) in LAYERS {
        let dir = src.join(module);
        assert!(dir.is_dir(), "{} is not a folder", dir.display());
        seen.insert(*module);
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in uses(&text) {
                let ok = used == *module || allowed.contains(&used.as_str()) || ROOT_ITEMS.contains(&used.as_str());
                if !ok {
                    violations.push(format!("{} uses crate::{used}", file.strip_prefix(&src).unwrap().display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "dependencies against the layers:\n{}", violations.join("\n"));
    // Every folder of src is a layer listed here.
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            assert!(seen.contains(name.as_str()), "src/{name} is not in LAYERS");
        }
    }
}

#[test]
fn the_checker_sees_paths_and_ignores_comments() {
    let found = uses("use crate::base::Ctx; // crate::http\n/// [`crate::app`]\nlet x = $crate::cache::X;");
    assert_eq!(found, BTreeSet::from(["base".to_string(), "cache".to_string()]));
}
