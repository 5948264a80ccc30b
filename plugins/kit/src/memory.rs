//! Tables held in the instance's memory: the backend of the memory plugin, and the storage of
//! the mock plugin.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;

use crate::bindings::exports::storehost::origin::plugin::PluginInfo;
use crate::{Backend, Result, Table};

#[derive(Default)]
pub struct MemoryTables {
    tables: BTreeMap<(Table, String), Vec<u8>>,
}

impl MemoryTables {
    pub fn get(&self, table: Table, key: &str) -> Option<Vec<u8>> {
        self.tables.get(&(table, key.to_string())).cloned()
    }

    pub fn put(&mut self, table: Table, key: &str, value: &[u8]) {
        self.tables.insert((table, key.to_string()), value.to_vec());
    }

    pub fn delete(&mut self, table: Table, key: &str) {
        self.tables.remove(&(table, key.to_string()));
    }

    pub fn keys(&self, table: Table, prefix: &str, after: Option<&str>, limit: usize) -> Vec<String> {
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded((table, after.to_string())),
            _ => Bound::Included((table, prefix.to_string())),
        };
        self.tables
            .range((start, Bound::Unbounded))
            .map(|((t, k), _)| (*t, k))
            .take_while(|(t, k)| *t == table && k.starts_with(prefix))
            .take(limit)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

thread_local! {
    static TABLES: RefCell<MemoryTables> = RefCell::new(MemoryTables::default());
}

impl Backend for MemoryTables {
    fn with<R>(f: impl FnOnce(&mut Self) -> R) -> R {
        TABLES.with(|t| f(&mut t.borrow_mut()))
    }

    fn init(&mut self, _config: &[(String, String)]) -> Result<()> {
        Ok(())
    }

    fn info() -> PluginInfo {
        PluginInfo { name: "memory".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: true, max_key_bytes: None }
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(MemoryTables::get(self, table, key))
    }

    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<()> {
        MemoryTables::put(self, table, key, value);
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<()> {
        MemoryTables::delete(self, table, key);
        Ok(())
    }

    fn keys(&mut self, table: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(MemoryTables::keys(self, table, prefix, after, limit))
    }
}
