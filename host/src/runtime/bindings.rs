//! Generated bindings of the WIT contracts. Private to the crate: the public surface is the
//! plain Rust types of `crate::domain`.

wasmtime::component::bindgen!({
    world: "storehost:origin/host-view",
    path: "../wit",
    imports: {
        "storehost:host/sql": async | trappable,
        "storehost:host/object-store": async | trappable,
        default: trappable,
    },
    with: {
        "storehost:host/sql.transaction": crate::capabilities::sql::SqlTransaction,
    },
    exports: { default: async },
});

pub use self::exports::storehost::origin;
pub use self::storehost::host;
pub use self::storehost::origin::types::StoreError as WitStoreError;

impl From<WitStoreError> for crate::domain::StoreError {
    fn from(e: WitStoreError) -> Self {
        use crate::domain::StoreError as E;
        match e {
            WitStoreError::NotFound(m) => E::NotFound(m),
            WitStoreError::Conflict(m) => E::Conflict(m),
            WitStoreError::Invalid(m) => E::Invalid(m),
            WitStoreError::Unavailable(m) => E::Unavailable(m),
            WitStoreError::Internal(m) => E::Internal(m),
        }
    }
}
