//! `storehost:host/log`: plugin log records into `tracing`, with the plugin's name.

use crate::runtime::bindings::host::log::{Host, Level};
use crate::runtime::state::PluginState;

impl Host for PluginState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "storehost::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "storehost::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "storehost::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "storehost::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "storehost::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}
