//! Generated bindings of what plugins export (`storehost:origin`). Private to the crate: the
//! public surface is the plain Rust types of `crate::domain`. What plugins import is bound by
//! each capability in `crate::capabilities`.

wasmtime::component::bindgen!({
    inline: "
        package storehost:host-view;

        /// Every interface a plugin may export.
        world origin-exports {
            export storehost:origin/plugin@0.1.0;
            export storehost:origin/artifacts@0.1.0;
            export storehost:origin/projects@0.1.0;
            export storehost:origin/project-artifacts@0.1.0;
            export storehost:origin/ui-documents@0.1.0;
            export storehost:origin/workspaces@0.1.0;
            export storehost:origin/runner-artifacts@0.1.0;
            export storehost:origin/mock-control@0.1.0;
        }
    ",
    path: "../wit",
    exports: { default: async },
});

pub use self::exports::storehost::origin;
pub use self::storehost::origin::types::StoreError as WitStoreError;

impl From<WitStoreError> for crate::base::StoreError {
    fn from(e: WitStoreError) -> Self {
        use crate::base::StoreError as E;
        match e {
            WitStoreError::NotFound(m) => E::NotFound(m),
            WitStoreError::Conflict(m) => E::Conflict(m),
            WitStoreError::Invalid(m) => E::Invalid(m),
            WitStoreError::Unavailable(m) => E::Unavailable(m),
            WitStoreError::Internal(m) => E::Internal(m),
        }
    }
}
