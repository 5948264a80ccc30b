//! Generated bindings of what plugins export (`storehost:origin`), one module per version of
//! the contract the host speaks. Private to the crate: the public surface is the plain Rust
//! types of `crate::domain`. What plugins import is bound by each capability in
//! `crate::capabilities` (one `storehost:host` for every version: 0.1.2 serves the imports of 0.1.0 and 0.1.1).

/// `storehost:origin@0.1.0`: whole bodies only.
pub(crate) mod v1 {
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
        path: "wit-0.1.0",
        exports: { default: async },
    });

    pub(crate) use self::exports::storehost::origin;
    pub(crate) use self::storehost::origin::types::StoreError;
}

/// `storehost:origin@0.2.1` (and 0.2.0, which it extends: an export of a 0.2.0 component is
/// found under its 0.2.1 name): streamed bodies, key limits, listings of every domain; since
/// 0.2.1, artifact bodies and runs' files handed to the host as files.
pub(crate) mod v2 {
    wasmtime::component::bindgen!({
        inline: "
            package storehost:host-view;

            /// Every interface a plugin may export.
            world origin-exports {
                export storehost:origin/plugin@0.2.1;
                export storehost:origin/artifacts@0.2.1;
                export storehost:origin/artifact-bodies@0.2.1;
                export storehost:origin/projects@0.2.1;
                export storehost:origin/project-artifacts@0.2.1;
                export storehost:origin/ui-documents@0.2.1;
                export storehost:origin/workspaces@0.2.1;
                export storehost:origin/runner-artifacts@0.2.1;
                export storehost:origin/runner-bodies@0.2.1;
                export storehost:origin/mock-control@0.2.1;
            }
        ",
        path: "../wit",
        exports: { default: async },
        with: { "storehost:host/files": crate::capabilities::files::bindings::storehost::host::files },
    });

    pub(crate) use self::exports::storehost::origin;
    pub(crate) use self::storehost::origin::types::StoreError;
}

macro_rules! store_error_from {
    ($($version:ident),*) => {$(
        impl From<$version::StoreError> for crate::base::StoreError {
            fn from(e: $version::StoreError) -> Self {
                use crate::base::StoreError as E;
                use $version::StoreError as W;
                match e {
                    W::NotFound(m) => E::NotFound(m),
                    W::Conflict(m) => E::Conflict(m),
                    W::Invalid(m) => E::Invalid(m),
                    W::Unavailable(m) => E::Unavailable(m),
                    W::Internal(m) => E::Internal(m),
                }
            }
        }
    )*};
}
store_error_from!(v1, v2);
