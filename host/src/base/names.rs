use std::fmt;

/// A domain of the storage host: the unit the manifest binds to an origin, caches, and meters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// Gateway artifacts (blobs by key).
    Artifact,
    /// Project state and the project's artifact records.
    Project,
    /// UI documents.
    Ui,
    /// UI workspaces and their tabs.
    Workspace,
    /// The runner's files, by run.
    Runner,
}

impl Domain {
    pub const ALL: [Domain; 5] = [Domain::Artifact, Domain::Project, Domain::Ui, Domain::Workspace, Domain::Runner];

    /// The name used in the manifest (`[domains] artifact = …`), in metric labels and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Artifact => "artifact",
            Domain::Project => "project",
            Domain::Ui => "ui",
            Domain::Workspace => "workspace",
            Domain::Runner => "runner",
        }
    }

    /// The domain a name (as [`name`](Self::name) gives it) stands for.
    pub fn from_name(name: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Percent-encodes a key for a URL path, keeping `/`.
pub fn encode_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Now, in unix seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
