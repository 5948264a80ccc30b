//! The README's curl examples, run as written against a live server (only the address is
//! swapped for the test server's).

mod support;

use support::Server;

#[test]
fn readme_curl_examples_work() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let block = readme.split("<!-- readme-examples").nth(1).expect("the README marks its examples");
    let block = block.split("```sh").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<&str> = block.lines().map(str::trim).filter(|l| l.starts_with("curl ")).collect();
    assert!(commands.len() >= 10, "found only {} examples", commands.len());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &[]);
    let address = server.base.trim_start_matches("http://");
    for command in commands {
        let command = command.replace("127.0.0.1:7070", address);
        let out = std::process::Command::new("sh").arg("-c").arg(&command).output().unwrap();
        assert!(out.status.success(), "{command}\nexit {:?}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    }
}
