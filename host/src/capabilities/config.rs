//! `storehost:host/config`: the plugin's own `config` table from the manifest.

use crate::runtime::bindings::host::config::Host;
use crate::runtime::state::PluginState;

impl Host for PluginState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }

    fn all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
