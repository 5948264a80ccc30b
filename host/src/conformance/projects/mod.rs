mod delete;
mod get;
mod ids;
mod list;
mod save;

use std::sync::Arc;

use crate::domain::Stores;
use crate::domain::{ProjectInput, ProjectStore};

pub(super) fn cases() -> Vec<super::Case> {
    [save::cases(), get::cases(), delete::cases(), list::cases(), ids::cases()].concat()
}

fn store(s: &Stores) -> Arc<dyn ProjectStore> {
    s.project.clone().expect("the suite skips targets without projects")
}

fn input(id: &str, name: &str) -> ProjectInput {
    ProjectInput { id: id.into(), name: name.into(), state: format!("{{\"name\":{name:?}}}") }
}
