//! The interfaces of `storehost:origin` a component may export, declared once: the
//! [`Interface`] names, the export indices resolved at load and the typed exports of an
//! instance are generated from one table.

use std::collections::BTreeSet;
use std::fmt;

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use super::bindings::origin;
use super::instance::PluginState;
use super::spec::LoadError;
use crate::base::Domain;

/// The version of the `storehost:origin` and `storehost:host` packages this host speaks.
pub const WIT_VERSION: &str = "0.1.0";

macro_rules! interfaces {
    ($($(#[$doc:meta])* $variant:ident = $wit:literal => $module:ident, $domain:expr;)*) => {
        /// An interface of `storehost:origin` a component may export.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Interface {
            $($(#[$doc])* $variant),*
        }

        impl Interface {
            pub const ALL: &'static [Interface] = &[$(Interface::$variant),*];

            /// Its name in WIT (`artifacts`, `project-artifacts`, …).
            pub fn wit_name(self) -> &'static str {
                match self {
                    $(Interface::$variant => $wit),*
                }
            }

            /// The domain whose data it holds (`None` for `plugin` and `mock-control`).
            pub fn domain(self) -> Option<Domain> {
                match self {
                    $(Interface::$variant => $domain),*
                }
            }
        }

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
                            export: Interface::$variant.qualified(),
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
    };
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
}

impl Interface {
    /// True for the interfaces that hold data (all but `plugin` and `mock-control`).
    pub fn is_domain(self) -> bool {
        self.domain().is_some()
    }

    /// Its versioned name: `storehost:origin/artifacts@0.1.0`.
    pub fn qualified(self) -> String {
        format!("storehost:origin/{}@{WIT_VERSION}", self.wit_name())
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

/// The set of interfaces a component exports, read from its type.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Exports(BTreeSet<Interface>);

impl Exports {
    pub fn contains(&self, interface: Interface) -> bool {
        self.0.contains(&interface)
    }

    pub fn iter(&self) -> impl Iterator<Item = Interface> + '_ {
        self.0.iter().copied()
    }

    /// Reads the contract's interfaces from a component's export names.
    ///
    /// # Errors
    /// An export of another version of the contract, no domain export, or no `plugin` export.
    pub(crate) fn read<'a>(plugin: &str, names: impl Iterator<Item = &'a str>) -> Result<Exports, LoadError> {
        let names: Vec<&str> = names.collect();
        let mut exports = BTreeSet::new();
        for name in &names {
            let Some(interface) = Interface::of_export(name) else { continue };
            if name.split_once('@').map_or("", |(_, v)| v) != WIT_VERSION {
                return Err(LoadError::ExportMismatch {
                    plugin: plugin.into(),
                    export: name.to_string(),
                    message: format!("this host speaks storehost:origin@{WIT_VERSION}"),
                });
            }
            exports.insert(interface);
        }
        if !exports.iter().any(|i| i.is_domain()) {
            return Err(LoadError::NoDomainExport { plugin: plugin.into(), found: names.join(", ") });
        }
        if !exports.contains(&Interface::Plugin) {
            return Err(LoadError::MissingExport { plugin: plugin.into(), missing: Interface::Plugin.qualified() });
        }
        Ok(Exports(exports))
    }
}
