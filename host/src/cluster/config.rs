use std::time::Duration;

use serde::Deserialize;

use crate::base::units;

/// The manifest's `[cluster]`: replicas that share origins keep their caches coherent through
/// an invalidation log in PostgreSQL.
///
/// ```toml
/// [cluster]
/// log = { url = "${DATABASE_URL}", schema = "storehost_cluster" }
/// max_staleness = "1s"
/// # peer fill (`[domains.artifact] peer_fill = true`): each key has an owner among the replicas
/// peer_secret = "${STOREHOST_PEER_SECRET}"
/// advertise = "10.0.0.7:8080"
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The database of the log, owned by the host (not a plugin grant).
    pub log: LogConfig,
    /// This host's name in the log (default: unique per process). Events a host published
    /// itself are skipped when it reads the log.
    #[serde(default = "ClusterConfig::default_host_id")]
    pub host_id: String,
    /// The longest a host answers from its caches without a successful read of the log; past it,
    /// reads go to the origin (and are not cached) until the host has caught up.
    #[serde(default = "ClusterConfig::default_max_staleness", deserialize_with = "units::duration")]
    pub max_staleness: Duration,
    /// How often the log is read when no notification wakes the host earlier.
    #[serde(default = "ClusterConfig::default_poll", deserialize_with = "units::duration")]
    pub poll: Duration,
    /// How long events stay in the log. A host away for longer drops its caches when it returns.
    #[serde(default = "ClusterConfig::default_retain", deserialize_with = "units::duration")]
    pub retain: Duration,
    /// Where the other replicas reach this one (`host:port`; default: the address it listens
    /// on). Registered in the log's database while this host is up.
    #[serde(default)]
    pub advertise: Option<String>,
    /// The secret the replicas share to ask each other for the keys they own (peer fill): at
    /// least 16 bytes. Without it, no domain may set `peer_fill`.
    #[serde(default)]
    pub peer_secret: Option<String>,
    /// How often a host says it is alive in the log's database.
    #[serde(default = "ClusterConfig::default_heartbeat", deserialize_with = "units::duration")]
    pub heartbeat: Duration,
    /// A member whose last heartbeat is older than this leaves the ring: its keys go to its
    /// neighbours.
    #[serde(default = "ClusterConfig::default_member_timeout", deserialize_with = "units::duration")]
    pub member_timeout: Duration,
    /// The longest a read waits for a key's owner to start answering (within a quarter of the
    /// read's own deadline) before it reads the origin itself.
    #[serde(default = "ClusterConfig::default_peer_timeout", deserialize_with = "units::duration")]
    pub peer_timeout: Duration,
}

/// Where the log lives.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub url: String,
    /// The schema of the log's tables, created and migrated at start (default
    /// `storehost_cluster`); also the name of the NOTIFY channel.
    #[serde(default = "LogConfig::default_schema")]
    pub schema: String,
    #[serde(default = "LogConfig::default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "LogConfig::default_connect_timeout", deserialize_with = "units::duration")]
    pub connect_timeout: Duration,
}

impl ClusterConfig {
    /// A config for the log at `url`, with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            log: LogConfig {
                url: url.into(),
                schema: LogConfig::default_schema(),
                max_connections: LogConfig::default_max_connections(),
                connect_timeout: LogConfig::default_connect_timeout(),
            },
            host_id: Self::default_host_id(),
            max_staleness: Self::default_max_staleness(),
            poll: Self::default_poll(),
            retain: Self::default_retain(),
            advertise: None,
            peer_secret: None,
            heartbeat: Self::default_heartbeat(),
            member_timeout: Self::default_member_timeout(),
            peer_timeout: Self::default_peer_timeout(),
        }
    }

    /// `hostname-pid-random`: unique per process.
    pub fn default_host_id() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into());
        let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        format!("{host}-{}-{nonce:08x}", std::process::id())
    }

    fn default_max_staleness() -> Duration {
        Duration::from_secs(1)
    }

    fn default_poll() -> Duration {
        Duration::from_millis(250)
    }

    fn default_retain() -> Duration {
        Duration::from_secs(3600)
    }

    fn default_heartbeat() -> Duration {
        Duration::from_millis(500)
    }

    fn default_member_timeout() -> Duration {
        Duration::from_secs(2)
    }

    fn default_peer_timeout() -> Duration {
        Duration::from_millis(500)
    }

    /// What is wrong with the settings, as `(key, problem)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let schema = &self.log.schema;
        let identifier = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !identifier {
            return Some(("log.schema", format!("{schema:?} is not a lower-case SQL identifier of at most 63 bytes")));
        }
        if self.host_id.is_empty() || self.host_id.len() > 200 {
            return Some(("host_id", "must be 1 to 200 bytes".into()));
        }
        if self.poll.is_zero() || self.poll >= self.max_staleness {
            return Some(("poll", format!("must be more than 0 and less than max_staleness ({:?})", self.max_staleness)));
        }
        if self.retain < self.max_staleness * 10 {
            return Some(("retain", format!("must be at least ten times max_staleness ({:?})", self.max_staleness)));
        }
        if self.peer_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Some(("peer_secret", "must be at least 16 bytes".into()));
        }
        if self.heartbeat.is_zero() || self.member_timeout < self.heartbeat * 3 {
            return Some(("member_timeout", format!("must be at least three heartbeats ({:?})", self.heartbeat * 3)));
        }
        if self.peer_timeout.is_zero() {
            return Some(("peer_timeout", "must be more than 0".into()));
        }
        None
    }
}

impl LogConfig {
    fn default_schema() -> String {
        "storehost_cluster".into()
    }

    fn default_max_connections() -> u32 {
        4
    }

    fn default_connect_timeout() -> Duration {
        Duration::from_secs(5)
    }
}
