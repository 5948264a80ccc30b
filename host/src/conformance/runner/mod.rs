mod list;
mod names;
mod read_write;
mod remove;
mod stream;

use std::sync::Arc;

use crate::domain::RunnerStore;
use crate::domain::Stores;

pub(super) fn cases() -> Vec<super::Case> {
    [read_write::cases(), remove::cases(), list::cases(), names::cases(), stream::cases()].concat()
}

fn store(s: &Stores) -> Arc<dyn RunnerStore> {
    s.runner.clone().expect("the suite skips targets without runner-artifacts")
}
