//! The memory origin: every domain and runner artifacts, held in the instance. Stateful: the
//! host runs exactly one instance, and its data lives as long as that instance.

type MemoryOrigin = storehost_plugin_kit::Origin<storehost_plugin_kit::MemoryTables>;
storehost_plugin_kit::export!(MemoryOrigin);
