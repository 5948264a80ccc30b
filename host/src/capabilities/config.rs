//! `storehost:host/config`: the plugin's own `config` table from the manifest.

use std::collections::BTreeMap;

use wasmtime::component::Linker;

use super::{Capability, PluginIdentity, Scoped, ScopedData};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package storehost:config-capability; world config { import storehost:host/config@0.1.2; }",
        path: "../wit/deps/host",
    });
}

use bindings::storehost::host::config as wit;

/// Every plugin has it: its `[plugins.NAME].config` table, values as text.
pub struct Config;

impl Capability for Config {
    const INTERFACE: &'static str = "storehost:host/config";
    type Grant = ();
    type State = BTreeMap<String, String>;

    async fn open(_: &(), plugin: &PluginIdentity<'_>) -> anyhow::Result<Self::State> {
        Ok(plugin.config.clone())
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> Scoped<'_, Self>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, ScopedData<Self>>(linker, get)
    }
}

impl wit::Host for Scoped<'_, Config> {
    fn get(&mut self, key: String) -> Option<String> {
        self.state.get(&key).cloned()
    }

    fn all(&mut self) -> Vec<(String, String)> {
        self.state.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
