//! The key, id and paging rules of the `storehost:origin` contract.
//!
//! Plain functions with no WIT bindings, so any plugin can use them whatever world it targets.
//! An error is the message of an `invalid` store error.

/// The longest key, in bytes: an artifact key, a runner file name, an object key (S3's limit).
pub const MAX_KEY: usize = 1024;

/// Artifact keys (and runner artifact names): 1–1024 bytes, `/`-separated, no empty, `.` or
/// `..` segment, no NUL, no leading `/`.
pub fn validate_artifact_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!("key must be 1 to {MAX_KEY} bytes, got {}", key.len()));
    }
    if key.contains('\0') {
        return Err("key contains NUL".into());
    }
    if key.starts_with('/') {
        return Err(format!("key {key:?} starts with '/'"));
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("key {key:?} has an empty, '.' or '..' segment"));
        }
    }
    Ok(())
}

/// Keys of objects in a granted bucket: 1–1024 bytes (S3's limit), and no `.` or `..` segment,
/// which a proxy or server resolving paths could take out of the bucket. Empty segments and any
/// other bytes are allowed: a plugin composes object keys from a prefix and a key.
pub fn validate_object_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!("object keys are 1 to {MAX_KEY} bytes, got {}", key.len()));
    }
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(format!("object key {key:?} has a '.' or '..' segment, which is refused"));
    }
    Ok(())
}

/// Ids of projects, documents, workspaces and tabs: 1–256 bytes, no NUL, no `/`.
pub fn validate_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 256 {
        return Err(format!("{what} must be 1 to 256 bytes, got {}", id.len()));
    }
    if id.contains('\0') || id.contains('/') {
        return Err(format!("{what} {id:?} contains NUL or '/'"));
    }
    if id == "." || id == ".." {
        return Err(format!("{what} {id:?} is not a valid id"));
    }
    Ok(())
}

/// A run: one path segment.
pub fn validate_run(run: &str) -> Result<(), String> {
    validate_id("run", run)
}

/// The largest page a list call returns.
pub const MAX_PAGE: u32 = 1000;

/// The page size of a list call: 0 asks for the default (100); at most [`MAX_PAGE`].
pub fn page_limit(limit: u32) -> usize {
    match limit {
        0 => 100,
        n => n.min(MAX_PAGE) as usize,
    }
}

/// The smallest string greater than every string that starts with `prefix`, in byte order (which
/// is code point order for UTF-8); `None` when there is none. With it a prefix scan is the range
/// `prefix <= key < successor`.
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_a_prefix() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        for key in ["ab", "ab/x", "ab\u{10FFFF}\u{10FFFF}"] {
            assert!(key >= "ab" && key < prefix_successor("ab").unwrap().as_str());
        }
    }
}
