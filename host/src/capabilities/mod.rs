//! Capabilities the host grants to plugins (`storehost:host`). A plugin can reach nothing but
//! what its manifest table grants: these, and the directories it preopens.

pub mod config;
pub mod files;
pub mod log;
pub mod object_store;
pub mod sql;

use std::fmt;

/// A capability a component may import, and the manifest key that grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    Log,
    Config,
    Sql,
    ObjectStore,
    /// `storehost:origin/types`: the contract's shared types (no functions).
    OriginTypes,
    /// `wasi:*` interfaces: filesystem access is limited to the granted `dirs`; clocks, random
    /// and stdio are sandboxed; sockets are denied.
    Wasi,
}

impl Capability {
    /// Maps an imported interface name (`storehost:host/sql@0.1.0`) to its capability.
    pub fn of_import(name: &str) -> Option<Capability> {
        let unversioned = name.split('@').next().unwrap_or(name);
        match unversioned {
            "storehost:host/log" => Some(Capability::Log),
            "storehost:host/config" => Some(Capability::Config),
            "storehost:host/sql" => Some(Capability::Sql),
            "storehost:host/object-store" => Some(Capability::ObjectStore),
            "storehost:origin/types" => Some(Capability::OriginTypes),
            _ if unversioned.starts_with("wasi:") => Some(Capability::Wasi),
            _ => None,
        }
    }

    /// The key of a plugin's manifest table that grants this capability, if one is needed.
    pub fn manifest_key(self) -> Option<&'static str> {
        match self {
            Capability::Sql => Some("sql"),
            Capability::ObjectStore => Some("object_store"),
            Capability::Log | Capability::Config | Capability::OriginTypes | Capability::Wasi => None,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Log => "storehost:host/log",
            Capability::Config => "storehost:host/config",
            Capability::Sql => "storehost:host/sql",
            Capability::ObjectStore => "storehost:host/object-store",
            Capability::OriginTypes => "storehost:origin/types",
            Capability::Wasi => "wasi",
        })
    }
}
