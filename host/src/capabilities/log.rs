//! `storehost:host/log`: plugin log records into `tracing`, with the plugin's name.

use wasmtime::component::Linker;

use super::{Capability, PluginIdentity, Scoped, ScopedData};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package storehost:log-capability; world log { import storehost:host/log@0.1.2; }",
        path: "../wit/deps/host",
    });
}

use bindings::storehost::host::log::{self as wit, Level};

/// Every plugin has it: records go to `tracing` under the target `storehost::plugin`.
pub struct Log;

impl Capability for Log {
    const INTERFACE: &'static str = "storehost:host/log";
    type Grant = ();
    /// The plugin's name, the field every record carries.
    type State = Box<str>;

    async fn open(_: &(), plugin: &PluginIdentity<'_>) -> anyhow::Result<Box<str>> {
        Ok(plugin.name.into())
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> Scoped<'_, Self>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, ScopedData<Self>>(linker, get)
    }
}

impl wit::Host for Scoped<'_, Log> {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &**self.state;
        match level {
            Level::Trace => tracing::trace!(target: "storehost::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "storehost::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "storehost::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "storehost::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "storehost::plugin", plugin, "{message}"),
        }
    }
}
