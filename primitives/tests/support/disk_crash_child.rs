//! The child process of the disk crash test (`tests/disk_crash.rs`): it works on a store until
//! the test kills it. Not a tool for users.

#[path = "crash_model.rs"]
mod crash_model;

fn main() {
    crash_model::run_child();
}
