//! The interfaces of `storehost:origin` a component may export, declared once: the
//! [`Interface`] names, the export indices resolved at load and the typed exports of an
//! instance are generated from one table.

use std::collections::BTreeSet;
use std::fmt;

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use super::instance::PluginState;
use super::spec::LoadError;
use crate::base::Domain;

/// The newest version of the `storehost:origin` package this host speaks; it also loads
/// components of every [`OriginVersion`].
pub const WIT_VERSION: &str = "0.2.1";

/// A version of `storehost:origin` a component exports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum OriginVersion {
    /// Whole bodies only; `describe` before `init`.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// Streamed bodies, a key limit in `describe`, listings of every domain; `describe` after
    /// `init`.
    #[serde(rename = "0.2.0")]
    V0_2,
    /// 0.2.0, `artifact-bodies` and `runner-bodies`: bodies handed to the host as files.
    #[default]
    #[serde(rename = "0.2.1")]
    V0_2_1,
}

impl OriginVersion {
    pub const ALL: &'static [OriginVersion] = &[OriginVersion::V0_1, OriginVersion::V0_2, OriginVersion::V0_2_1];

    pub fn as_str(self) -> &'static str {
        match self {
            OriginVersion::V0_1 => "0.1.0",
            OriginVersion::V0_2 => "0.2.0",
            OriginVersion::V0_2_1 => "0.2.1",
        }
    }

    /// The version an export name (`storehost:origin/artifacts@0.2.1`) carries.
    pub fn of_export(name: &str) -> Option<OriginVersion> {
        let (package, version) = name.split_once('@')?;
        package.starts_with("storehost:origin/").then(|| Self::parse(version))?
    }

    fn parse(version: &str) -> Option<OriginVersion> {
        OriginVersion::ALL.iter().copied().find(|v| v.as_str() == version)
    }

    /// Whether components of this version have the streaming calls and the listings.
    pub fn streams(self) -> bool {
        self >= OriginVersion::V0_2
    }
}

impl fmt::Display for OriginVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! interfaces {
    (
        $($(#[$doc:meta])* $variant:ident = $wit:literal => $module:ident, $domain:expr;)*
        @added_in_0_2_1 { $($(#[$doc_new:meta])* $new:ident = $wit_new:literal => $module_new:ident, $domain_new:expr;)* }
    ) => {
        /// An interface of `storehost:origin` a component may export.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Interface {
            $($(#[$doc])* $variant,)*
            $($(#[$doc_new])* $new,)*
        }

        impl Interface {
            pub const ALL: &'static [Interface] = &[$(Interface::$variant,)* $(Interface::$new,)*];

            /// Its name in WIT (`artifacts`, `project-artifacts`, …).
            pub fn wit_name(self) -> &'static str {
                match self {
                    $(Interface::$variant => $wit,)*
                    $(Interface::$new => $wit_new,)*
                }
            }

            /// The domain whose data it holds (`None` for `plugin`, `mock-control`,
            /// `artifact-bodies` and `runner-bodies`, which open what `artifacts` and
            /// `runner-artifacts` hold).
            pub fn domain(self) -> Option<Domain> {
                match self {
                    $(Interface::$variant => $domain,)*
                    $(Interface::$new => $domain_new,)*
                }
            }

            /// The first version of the contract that has it.
            pub fn since(self) -> OriginVersion {
                match self {
                    $(Interface::$variant => OriginVersion::V0_1,)*
                    $(Interface::$new => OriginVersion::V0_2_1,)*
                }
            }
        }

        guests!(v1 { $($variant => $module),* });
        guests!(v2 { $($variant => $module,)* $($new => $module_new),* });
    };
}

/// The export indices and typed exports of one version's bindings.
macro_rules! guests {
    ($version:ident { $($variant:ident => $module:ident),* }) => {
        pub(crate) mod $version {
            use wasmtime::Store;
            use wasmtime::component::{Instance, InstancePre};

            use super::{Exports, Interface, LoadError, PluginState};
            use crate::runtime::bindings::$version::origin;

            /// Indices of the exports a component has, resolved once at load.
            pub(crate) struct Indices {
                $($module: Option<origin::$module::GuestIndices>,)*
            }

            /// The typed exports of one instance (`None`: the component does not export it).
            pub(crate) struct Guests {
                $(pub(crate) $module: Option<origin::$module::Guest>,)*
            }

            impl Indices {
                /// Resolves every export in `exports` against the contract.
                pub(crate) fn new(plugin: &str, pre: &InstancePre<PluginState>, exports: &Exports) -> Result<Self, LoadError> {
                    Ok(Self {
                        $($module: if exports.contains(Interface::$variant) {
                            Some(origin::$module::GuestIndices::new(pre).map_err(|e| LoadError::ExportMismatch {
                                plugin: plugin.into(),
                                export: exports.qualified(Interface::$variant),
                                message: format!("{e:#}"),
                            })?)
                        } else {
                            None
                        },)*
                    })
                }

                pub(crate) fn load(&self, store: &mut Store<PluginState>, instance: &Instance) -> wasmtime::Result<Guests> {
                    Ok(Guests {
                        $($module: match &self.$module {
                            Some(indices) => Some(indices.load(&mut *store, instance)?),
                            None => None,
                        },)*
                    })
                }
            }
        }
    };
}

/// Indices of a component's exports, in the bindings of the version it speaks.
#[expect(clippy::large_enum_variant, reason = "one per plugin; the larger variant is the usual one")]
pub(crate) enum Indices {
    V1(v1::Indices),
    V2(v2::Indices),
}

/// The typed exports of one instance, in the bindings of the version it speaks.
#[expect(clippy::large_enum_variant, reason = "one per instance; the larger variant is the usual one")]
pub(crate) enum Guests {
    V1(v1::Guests),
    V2(v2::Guests),
}

impl Indices {
    pub(crate) fn new(plugin: &str, pre: &InstancePre<PluginState>, exports: &Exports) -> Result<Self, LoadError> {
        Ok(match exports.version {
            OriginVersion::V0_1 => Indices::V1(v1::Indices::new(plugin, pre, exports)?),
            OriginVersion::V0_2 | OriginVersion::V0_2_1 => Indices::V2(v2::Indices::new(plugin, pre, exports)?),
        })
    }

    pub(crate) fn load(&self, store: &mut Store<PluginState>, instance: &Instance) -> wasmtime::Result<Guests> {
        Ok(match self {
            Indices::V1(i) => Guests::V1(i.load(store, instance)?),
            Indices::V2(i) => Guests::V2(i.load(store, instance)?),
        })
    }
}

interfaces! {
    /// Identity and initialisation; every plugin exports it.
    Plugin = "plugin" => plugin, None;
    Artifacts = "artifacts" => artifacts, Some(Domain::Artifact);
    Projects = "projects" => projects, Some(Domain::Project);
    ProjectArtifacts = "project-artifacts" => project_artifacts, Some(Domain::Project);
    UiDocuments = "ui-documents" => ui_documents, Some(Domain::Ui);
    Workspaces = "workspaces" => workspaces, Some(Domain::Workspace);
    RunnerArtifacts = "runner-artifacts" => runner_artifacts, Some(Domain::Runner);
    /// The test plugin's control surface.
    MockControl = "mock-control" => mock_control, None;
    @added_in_0_2_1 {
        /// Artifact bodies the host reads itself where they are files.
        ArtifactBodies = "artifact-bodies" => artifact_bodies, None;
        /// Runs' files the host reads itself where they are files.
        RunnerBodies = "runner-bodies" => runner_bodies, None;
    }
}

impl Interface {
    /// True for the interfaces that hold data (all but `plugin`, `mock-control`,
    /// `artifact-bodies` and `runner-bodies`).
    pub fn is_domain(self) -> bool {
        self.domain().is_some()
    }

    /// Its name in `version`: `storehost:origin/artifacts@0.2.1`.
    pub fn qualified(self, version: OriginVersion) -> String {
        format!("storehost:origin/{}@{version}", self.wit_name())
    }

    /// The interface an export name stands for (any version), if it is one of the contract's.
    pub fn of_export(name: &str) -> Option<Interface> {
        let base = name.split('@').next().unwrap_or(name);
        let wit = base.strip_prefix("storehost:origin/")?;
        Interface::ALL.iter().copied().find(|i| i.wit_name() == wit)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wit_name())
    }
}

/// The interfaces a component exports, read from its type, and the version they are of.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Exports {
    interfaces: BTreeSet<Interface>,
    version: OriginVersion,
}

impl Exports {
    pub fn contains(&self, interface: Interface) -> bool {
        self.interfaces.contains(&interface)
    }

    pub fn iter(&self) -> impl Iterator<Item = Interface> + '_ {
        self.interfaces.iter().copied()
    }

    /// The version of `storehost:origin` the component speaks.
    pub fn version(&self) -> OriginVersion {
        self.version
    }

    /// `interface`'s name in the component's version.
    pub fn qualified(&self, interface: Interface) -> String {
        interface.qualified(self.version)
    }

    /// Reads the contract's interfaces from a component's export names.
    ///
    /// # Errors
    /// An export of a version this host does not speak, exports of two versions, no domain
    /// export, or no `plugin` export.
    pub(crate) fn read<'a>(plugin: &str, names: impl Iterator<Item = &'a str>) -> Result<Exports, LoadError> {
        let names: Vec<&str> = names.collect();
        let mut interfaces = BTreeSet::new();
        let mut version: Option<OriginVersion> = None;
        for name in &names {
            let Some(interface) = Interface::of_export(name) else { continue };
            let mismatch = |message: String| LoadError::ExportMismatch { plugin: plugin.into(), export: name.to_string(), message };
            let Some(this) = OriginVersion::parse(name.split_once('@').map_or("", |(_, v)| v)) else {
                let known: Vec<&str> = OriginVersion::ALL.iter().map(|v| v.as_str()).collect();
                return Err(mismatch(format!("this host speaks storehost:origin@{}", known.join(" and @"))));
            };
            match version {
                Some(v) if v != this => return Err(mismatch(format!("the component's other exports are of storehost:origin@{v}"))),
                _ => version = Some(this),
            }
            if this < interface.since() {
                return Err(mismatch(format!("{interface} is in storehost:origin@{} and later", interface.since())));
            }
            interfaces.insert(interface);
        }
        let version = version.unwrap_or_default();
        if !interfaces.iter().any(|i| i.is_domain()) {
            return Err(LoadError::NoDomainExport { plugin: plugin.into(), found: names.join(", ") });
        }
        if !interfaces.contains(&Interface::Plugin) {
            return Err(LoadError::MissingExport { plugin: plugin.into(), missing: Interface::Plugin.qualified(version) });
        }
        Ok(Exports { interfaces, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(names: &[&str]) -> Result<Exports, LoadError> {
        Exports::read("p", names.iter().copied())
    }

    #[test]
    fn a_component_speaks_one_version_and_artifact_bodies_is_0_2_1() {
        let new = read(&["storehost:origin/plugin@0.2.1", "storehost:origin/artifacts@0.2.1", "storehost:origin/artifact-bodies@0.2.1"]).unwrap();
        assert_eq!(new.version(), OriginVersion::V0_2_1);
        assert!(new.contains(Interface::ArtifactBodies) && new.contains(Interface::Artifacts));
        let old = read(&["storehost:origin/plugin@0.2.0", "storehost:origin/artifacts@0.2.0"]).unwrap();
        assert_eq!((old.version(), old.contains(Interface::ArtifactBodies)), (OriginVersion::V0_2, false));
        assert!(old.version().streams() && !OriginVersion::V0_1.streams());

        let early = read(&["storehost:origin/plugin@0.2.0", "storehost:origin/artifacts@0.2.0", "storehost:origin/artifact-bodies@0.2.0"]);
        let Err(LoadError::ExportMismatch { export, message, .. }) = early else { panic!("{early:?}") };
        assert_eq!(export, "storehost:origin/artifact-bodies@0.2.0");
        assert!(message.contains("storehost:origin@0.2.1 and later"), "{message}");
        let mixed = read(&["storehost:origin/plugin@0.2.1", "storehost:origin/artifacts@0.2.0"]);
        assert!(matches!(mixed, Err(LoadError::ExportMismatch { .. })), "{mixed:?}");
        // Opening bodies is not a domain of its own.
        let alone = read(&["storehost:origin/plugin@0.2.1", "storehost:origin/artifact-bodies@0.2.1"]);
        assert!(matches!(alone, Err(LoadError::NoDomainExport { .. })), "{alone:?}");
    }
}
