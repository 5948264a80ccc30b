use std::fmt;

use crate::base::Domain;

/// An operation of a domain's trait: what metrics count calls by, and what the layers above an
/// origin (metering, caching, replication) tell reads from writes by.
pub trait Operation: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// The domain whose trait it belongs to.
    const DOMAIN: Domain;
    /// Every operation of the domain, in [`index`](Self::index) order.
    const ALL: &'static [Self];
    /// The metric label (`get`, `put`, `add-artifact`, …).
    fn name(self) -> &'static str;
    /// The position in [`ALL`](Self::ALL).
    fn index(self) -> usize;
    /// Whether the operation changes what is stored.
    fn is_write(self) -> bool;
}

/// Declares a domain's operations once: `operations!(Name for Domain { Variant = "label" [write], … })`.
macro_rules! operations {
    ($(#[$meta:meta])* $name:ident for $domain:ident { $($variant:ident = $label:literal $([$write:ident])?),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $crate::domain::Operation for $name {
            const DOMAIN: $crate::base::Domain = $crate::base::Domain::$domain;
            const ALL: &'static [Self] = &[$(Self::$variant),*];

            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $label),*
                }
            }

            fn index(self) -> usize {
                self as usize
            }

            fn is_write(self) -> bool {
                match self {
                    $(Self::$variant => operations!(@write $($write)?)),*
                }
            }
        }
    };
    (@write write) => { true };
    (@write) => { false };
}
pub(crate) use operations;
