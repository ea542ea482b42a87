//! The edges of the command line: output nobody reads, names that would leave their folder,
//! limits that must be refused rather than half-run.

mod common;

use common::{digits_experiment, kiln, run, sweep, text, write};
use std::process::{Command, Stdio};

/// Runs `command` with stdout a pipe whose reader is already gone.
fn with_closed_stdout(mut command: Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_or_full_stdout_never_panics_and_never_stops_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "o.toml", &digits_experiment("out", 3, 1, 2));
    let results = dir.path().join("r");
    let (f, r) = (file.to_str().unwrap(), results.to_str().unwrap());
    let mut command = kiln();
    command.args(["run", f, "--results", r]);
    let output = with_closed_stdout(command);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(common::csv_rows(&results.join("leaderboard.csv")).len(), 3);
    for args in [vec!["status", r], vec!["check", f], vec!["leaderboard", r]] {
        let mut command = kiln();
        command.args(&args);
        let output = with_closed_stdout(command);
        assert_ne!(output.status.code(), Some(101), "{args:?}: {}", text(&output));
        let full = kiln()
            .args(&args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_ne!(full.status.code(), Some(101), "{args:?} > /dev/full: {}", text(&full));
    }
    let full = kiln()
        .args(["run", f, "--results", dir.path().join("r2").to_str().unwrap()])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(0), "run > /dev/full: {}", text(&full));
    let _ = sweep;
    let _ = run;
}
