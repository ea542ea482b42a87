//! The edges of the command line: output nobody reads, names that would leave their folder,
//! limits that must be refused rather than half-run.

use crate::common::{digits_experiment, kiln, refused, run, sweep, text, write};
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
    assert_eq!(
        crate::common::csv_rows(&results.join("leaderboard.csv")).len(),
        3
    );
    for args in [vec!["status", r], vec!["check", f], vec!["leaderboard", r]] {
        let mut command = kiln();
        command.args(&args);
        let output = with_closed_stdout(command);
        assert_ne!(
            output.status.code(),
            Some(101),
            "{args:?}: {}",
            text(&output)
        );
        let full = kiln()
            .args(&args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_ne!(
            full.status.code(),
            Some(101),
            "{args:?} > /dev/full: {}",
            text(&full)
        );
    }
    let full = kiln()
        .args([
            "run",
            f,
            "--results",
            dir.path().join("r2").to_str().unwrap(),
        ])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(
        full.status.code(),
        Some(0),
        "run > /dev/full: {}",
        text(&full)
    );
}

#[test]
fn sweep_names_follow_one_rule_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "n.toml", &digits_experiment("names", 1, 1, 1));
    let f = file.to_str().unwrap();
    let url = "postgres://kiln@127.0.0.1:1/db";
    for name in ["..", "", "a/b", "../../x"] {
        refused(
            &["run", f, "--storage", url, "--sweep-name", name],
            "invalid name",
        );
        refused(&["plot", "--storage", url, "--sweep", name], "invalid name");
        refused(
            &["worker", "--storage", url, "--sweep", name],
            "invalid name",
        );
    }
    let long = "x".repeat(300);
    let text = digits_experiment("names", 1, 1, 1)
        .replace("name = \"names\"", &format!("name = \"{long}\""));
    let file = write(dir.path(), "long.toml", &text);
    refused(&["check", file.to_str().unwrap()], "at most 100");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "nothing written"
    );
}

#[test]
fn limits_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut space = String::from("[space]\n");
    for i in 1..=20 {
        space.push_str(&format!(
            "x{i} = {{ choice = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }}\n"
        ));
    }
    let grid = format!(
        "name = \"g\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[sampler]\nkind = \"grid\"\n{space}"
    );
    let file = write(dir.path(), "g.toml", &grid);
    refused(&["check", file.to_str().unwrap()], "more than 2^64 points");
    let file = write(dir.path(), "d.toml", &digits_experiment("lim", 4, 1, 1));
    let f = file.to_str().unwrap();
    refused(&["run", f, "--trials", "0"], "--trials");
    refused(
        &["run", f, "--storage", "postgres://k@h/d", "--lease", "0"],
        "above 0",
    );
    let afile = write(dir.path(), "afile", "");
    refused(
        &["run", f, "--results", afile.to_str().unwrap()],
        "is a file, not a results folder",
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    sweep(&file, &results, &[]);
    let journal = std::fs::read(results.join("journal.jsonl")).unwrap();
    refused(&["resume", r, "--trials", "2"], "already holds 4 trials");
    assert_eq!(
        std::fs::read(results.join("journal.jsonl")).unwrap(),
        journal,
        "nothing recorded"
    );
}

#[test]
fn kiln_writes_only_into_folders_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "w.toml", &digits_experiment("own", 2, 1, 1));
    let f = file.to_str().unwrap();
    // A folder of the user's, with a leaderboard of their own.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("leaderboard.csv"), "mine").unwrap();
    refused(
        &["run", f, "--results", theirs.to_str().unwrap()],
        "not empty and holds no kiln sweep",
    );
    assert_eq!(
        std::fs::read_to_string(theirs.join("leaderboard.csv")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 1);
    // A finished sweep whose journal was deleted: its checkpoints are not a new sweep's.
    let old = dir.path().join("old");
    sweep(&file, &old, &[]);
    std::fs::remove_file(old.join("journal.jsonl")).unwrap();
    let reseeded = write(
        dir.path(),
        "w2.toml",
        &digits_experiment("own", 2, 1, 1).replace("seed = 5", "seed = 6"),
    );
    refused(
        &[
            "run",
            reseeded.to_str().unwrap(),
            "--results",
            old.to_str().unwrap(),
        ],
        "holds no kiln sweep",
    );
    assert!(!old.join("journal.jsonl").exists(), "nothing written");
    // A trial folder that is a link into someone else's folder.
    let results = dir.path().join("r");
    sweep(&file, &results, &["--trials", "1"]);
    std::os::unix::fs::symlink(&theirs, results.join("trials/1")).unwrap();
    refused(
        &["resume", results.to_str().unwrap(), "--trials", "2"],
        "is a symbolic link",
    );
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        1,
        "nothing written through the link"
    );
}

#[test]
fn a_start_that_recorded_nothing_leaves_a_folder_that_runs_and_a_resume_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "e.toml", &digits_experiment("empty", 2, 1, 1));
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    std::fs::create_dir(&results).unwrap();
    std::fs::write(results.join("journal.jsonl"), "").unwrap();
    refused(&["resume", r], "holds no sweep yet");
    std::fs::write(results.join("experiment.toml"), "name = \"other\"").unwrap();
    std::fs::write(results.join("journal.jsonl"), "{\"event\":\"sweep_sta").unwrap();
    sweep(&file, &results, &[]);
    assert_eq!(
        crate::common::csv_rows(&results.join("leaderboard.csv")).len(),
        2
    );
}

#[test]
fn a_moved_experiment_is_named_on_resume_and_continues_from_its_new_place() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::copy(crate::common::data("iris.csv"), project.join("iris.csv")).unwrap();
    let text =
        digits_experiment("moved", 2, 1, 1).replace(&crate::common::data("digits.csv"), "iris.csv");
    write(&project, "m.toml", &text);
    let results = dir.path().join("r");
    sweep(&project.join("m.toml"), &results, &["--trials", "1"]);
    let moved = dir.path().join("moved");
    std::fs::rename(&project, &moved).unwrap();
    refused(&["resume", results.to_str().unwrap()], "no longer exists");
    sweep(&moved.join("m.toml"), &results, &[]);
    assert_eq!(
        crate::common::csv_rows(&results.join("leaderboard.csv")).len(),
        2
    );
}

#[test]
fn passwords_are_refused_in_files_and_masked_everywhere_in_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "hunter2";
    let with_url = |url: &str| {
        format!(
            "{}\n[storage]\nurl = \"{url}\"\n",
            digits_experiment("secret", 1, 1, 1)
        )
    };
    for url in [
        format!("postgres://kiln:{secret}@db/x"),
        format!("postgres://kiln@db/x?sslmode=prefer&password={secret}"),
    ] {
        let file = write(dir.path(), "s.toml", &with_url(&url));
        let output = run(&["check", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let all = text(&output);
        assert!(
            all.contains("holds a password") && !all.contains(secret),
            "{all}"
        );
    }
    for storage in [
        format!("host=127.0.0.1 port=1 user=kiln password={secret} dbname=x"),
        format!("postgres://kiln@127.0.0.1:1/x?password={secret}"),
        format!("postgres://kiln:{secret}@127.0.0.1:1/x"),
    ] {
        let output = kiln()
            .args(["status", "--storage", &storage, "--sweep", "s"])
            .env("KILN_DB_PATIENCE_S", "1")
            .output()
            .unwrap();
        assert_ne!(output.status.code(), Some(0));
        assert!(!text(&output).contains(secret), "{}", text(&output));
    }
    // A URL's own mistakes are told at once (the URL is read by the PostgreSQL client).
    if cfg!(feature = "postgres") {
        let started = std::time::Instant::now();
        refused(
            &["status", "--storage", "postgres://", "--sweep", "s"],
            "names no host",
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn a_log_written_to_a_pipe_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "f.toml",
        "name = \"f\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = 3\n[space]\nx1 = { uniform = [-1.0, 1.0] }\n",
    );
    let output = kiln()
        .args(["run", file.to_str().unwrap(), "-q", "--results"])
        .arg(dir.path().join("r"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// A sphere sweep of `epochs` epochs, named `name`.
fn sphere(name: &str, epochs: u32) -> String {
    format!(
        "name = \"{name}\"\nseed = 3\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\nepochs = {epochs}\n[budget]\ntrials = 4\nworkers = 1\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\nx2 = {{ uniform = [-1.0, 1.0] }}\n"
    )
}

#[test]
fn an_edited_frozen_experiment_or_another_sweeps_journal_is_refused_naming_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    sweep(&write(dir.path(), "a.toml", &sphere("same", 30)), &a, &[]);
    sweep(&write(dir.path(), "b.toml", &sphere("other", 30)), &b, &[]);
    let frozen = a.join("experiment.toml");
    let original = std::fs::read_to_string(&frozen).unwrap();
    std::fs::write(&frozen, original.replace("epochs = 30", "epochs = 10")).unwrap();
    let journal = std::fs::read(a.join("journal.jsonl")).unwrap();
    let leaderboard = std::fs::read(a.join("leaderboard.csv")).unwrap();
    let a_dir = a.to_str().unwrap();
    for command in [
        &["resume", a_dir, "--trials", "6"][..],
        &["leaderboard", a_dir],
        &["status", a_dir],
    ] {
        refused(command, "is not the experiment its journal recorded");
        refused(command, "`objective.epochs`: 30 -> 10");
    }
    assert_eq!(std::fs::read(a.join("journal.jsonl")).unwrap(), journal);
    assert_eq!(
        std::fs::read(a.join("leaderboard.csv")).unwrap(),
        leaderboard
    );

    // Another sweep's journal in the folder.
    std::fs::write(&frozen, &original).unwrap();
    std::fs::copy(b.join("journal.jsonl"), a.join("journal.jsonl")).unwrap();
    refused(
        &["resume", a_dir, "--trials", "6"],
        "`name`: \"other\" -> \"same\"",
    );
    // Put back, it resumes.
    std::fs::write(a.join("journal.jsonl"), &journal).unwrap();
    let output = run(&["resume", a_dir, "--trials", "6", "-q"]);
    assert!(output.status.success(), "{}", text(&output));
}
