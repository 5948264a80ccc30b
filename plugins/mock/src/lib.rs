//! The test origin: the memory backend plus scripted faults and call counters.
//!
//! Faults come from the `mock-control` interface at run time, or from the manifest's config
//! table at start-up, one rule per key: `fault.<method>[.<key>] = "<fault>"` where `<fault>` is
//! `trap`, `loop`, `delay-ms=N`, `grow=BYTES`, or `error=<kind>:<message>` (kind: not-found,
//! conflict, invalid, unavailable, internal). Config rules apply to every instance, so they
//! also reach instances created after a trap. Counters and run-time rules live in the
//! instance: a trap resets them.

use std::cell::RefCell;
use std::collections::BTreeMap;

use storehost_plugin_kit::bindings::exports::storehost::origin::plugin::PluginInfo;
use storehost_plugin_kit::bindings::storehost::host::log::{Level, log};
use storehost_plugin_kit::{Backend, MemoryTables, Origin, Result, StoreError, Table};

mod control {
    wit_bindgen::generate!({
        inline: "
            package storehost:mock-plugin;
            world control {
                export storehost:origin/mock-control@0.2.1;
            }
        ",
        path: "../../wit",
        type_section_suffix: "mock-control",
        with: {
            "storehost:origin/types@0.2.1": storehost_plugin_kit::bindings::storehost::origin::types,
        },
    });
}

use control::exports::storehost::origin::mock_control::{Fault, FaultRule, Guest};

#[derive(Default)]
struct Mock {
    tables: MemoryTables,
    rules: Vec<FaultRule>,
    counts: BTreeMap<String, u64>,
    /// Memory grown on request, kept so the growth is real.
    ballast: Vec<Vec<u8>>,
}

thread_local! {
    static MOCK: RefCell<Mock> = RefCell::new(Mock::default());
}

fn parse_fault(text: &str) -> Result<Fault> {
    let invalid = || StoreError::Invalid(format!("mock fault {text:?} is not trap, loop, delay-ms=N, grow=N or error=KIND:MSG"));
    let (name, arg) = text.split_once('=').unwrap_or((text, ""));
    Ok(match name {
        "trap" => Fault::Trap,
        "loop" => Fault::EndlessLoop,
        "delay-ms" => Fault::DelayMs(arg.parse().map_err(|_| invalid())?),
        "grow" => Fault::GrowMemory(arg.parse().map_err(|_| invalid())?),
        "error" => {
            let (kind, msg) = arg.split_once(':').unwrap_or((arg, "injected"));
            let msg = msg.to_string();
            Fault::Fail(match kind {
                "not-found" => StoreError::NotFound(msg),
                "conflict" => StoreError::Conflict(msg),
                "invalid" => StoreError::Invalid(msg),
                "unavailable" => StoreError::Unavailable(msg),
                "internal" => StoreError::Internal(msg),
                _ => return Err(invalid()),
            })
        }
        _ => return Err(invalid()),
    })
}

impl Backend for Mock {
    fn with<R>(f: impl FnOnce(&mut Self) -> R) -> R {
        MOCK.with(|m| f(&mut m.borrow_mut()))
    }

    fn init(&mut self, config: &[(String, String)]) -> Result<()> {
        for (key, value) in config {
            let Some(target) = key.strip_prefix("fault.") else { continue };
            // `interface.function` has one dot; anything after a second dot is the key.
            let mut parts = target.splitn(3, '.');
            let (iface, func, only) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
            let method = if iface == "*" { "*".to_string() } else { format!("{iface}.{func}") };
            self.rules.push(FaultRule { method, key: only.map(String::from), fault: parse_fault(value)?, times: 0 });
        }
        Ok(())
    }

    fn info() -> PluginInfo {
        PluginInfo { name: "mock".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: false, max_key_bytes: None }
    }

    fn before_call(&mut self, method: &'static str, key: &str) -> Result<()> {
        *self.counts.entry(method.to_string()).or_default() += 1;
        let hit = self.rules.iter().position(|r| (r.method == "*" || r.method == method) && r.key.as_deref().is_none_or(|k| k == key));
        let Some(i) = hit else { return Ok(()) };
        let fault = self.rules[i].fault.clone();
        match self.rules[i].times {
            0 => {}
            1 => {
                self.rules.remove(i);
            }
            n => self.rules[i].times = n - 1,
        }
        match fault {
            Fault::Fail(err) => Err(err),
            Fault::Trap => {
                // A plugin's log line: with traces on, an event of the call that traps.
                log(Level::Warn, &format!("mock: injecting a trap in {method}"));
                panic!("mock: injected trap in {method}")
            }
            Fault::EndlessLoop => loop {
                std::hint::black_box(&self.counts);
            },
            Fault::GrowMemory(bytes) => {
                // Touch every page so the memory is really committed.
                self.ballast.push(vec![1u8; bytes as usize]);
                Ok(())
            }
            Fault::DelayMs(ms) => {
                std::thread::sleep(std::time::Duration::from_millis(ms.into()));
                Ok(())
            }
        }
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tables.get(table, key))
    }

    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<()> {
        self.tables.put(table, key, value);
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<()> {
        self.tables.delete(table, key);
        Ok(())
    }

    fn keys(&mut self, table: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(self.tables.keys(table, prefix, after, limit))
    }
}

struct MockControl;

impl Guest for MockControl {
    fn add_fault(rule: FaultRule) {
        Mock::with(|m| m.rules.push(rule))
    }

    fn clear_faults() {
        Mock::with(|m| m.rules.clear())
    }

    fn call_count(method: String) -> u64 {
        Mock::with(|m| m.counts.get(&method).copied().unwrap_or(0))
    }

    fn call_counts() -> Vec<(String, u64)> {
        Mock::with(|m| m.counts.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }

    fn reset_counts() {
        Mock::with(|m| m.counts.clear())
    }

    fn environment() -> Vec<(String, String)> {
        std::env::vars().chain(std::env::args().map(|a| ("arg".to_string(), a))).collect()
    }
}

control::export!(MockControl with_types_in control);

type MockOrigin = Origin<Mock>;
storehost_plugin_kit::export!(MockOrigin);
