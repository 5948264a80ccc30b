use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What a plugin instance's `Store` holds: its WASI context (preopened directories only), the
/// capability state granted to it, and its limits.
pub struct PluginState {
    pub(crate) plugin: Arc<str>,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    /// The plugin's database pool, when the manifest grants `sql`.
    pub(crate) sql: Option<sqlx::PgPool>,
    /// The plugin's bucket, when the manifest grants `object_store`.
    pub(crate) object_store: Option<crate::capabilities::object_store::ObjectStore>,
    /// When the running call must end; checked at every epoch tick.
    pub(crate) call_deadline: Option<std::time::Instant>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
