//! Known configurations first: the experiment's `[[enqueue]]` and `kiln enqueue`.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// The parameters of each created trial, in order, and whether it took a queued configuration.
fn created(results: &Path) -> Vec<(Value, bool)> {
    std::fs::read_to_string(results.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "trial_created")
        .map(|e| (e["params"].clone(), e["queued"] == true))
        .collect()
}

fn sphere(trials: u32, extra: &str) -> String {
    format!(
        "name = \"q\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = {trials}\nworkers = 1\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\nx2 = {{ uniform = [-1.0, 1.0] }}\n{extra}"
    )
}

#[test]
fn enqueued_configurations_come_first_with_exactly_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "q.toml",
        &sphere(
            5,
            "[[enqueue]]\nx1 = 0.25\nx2 = -0.5\n\n[[enqueue]]\nx1 = 1\n",
        ),
    );
    let check = run(&["check", file.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(
        shown.contains("queued     trial 0 takes x1=0.25 x2=-0.5"),
        "{shown}"
    );
    assert!(
        shown.contains("queued     trial 1 takes x1=1 (the rest drawn)"),
        "{shown}"
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let trials = created(&results);
    assert_eq!(trials.len(), 5);
    assert_eq!(
        trials[0],
        (serde_json::json!({"x1": 0.25, "x2": -0.5}), true)
    );
    assert_eq!(trials[1].0["x1"], 1.0, "an integer given for a float range");
    let x2 = trials[1].0["x2"].as_f64().unwrap();
    assert!(
        (-1.0..=1.0).contains(&x2) && x2 != -0.5,
        "the rest is drawn: {x2}"
    );
    assert!(trials[2..].iter().all(|(_, queued)| !queued));
    // The leaderboard holds them like any trial.
    let rows = leaderboard_by_trial(&results);
    assert_eq!(rows["0"]["x1"], "0.25");
}

#[test]
fn kiln_enqueue_on_a_finished_sweep_runs_with_resume_and_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "q.toml", &sphere(3, ""));
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let r = results.to_str().unwrap();
    let journal = || std::fs::read(results.join("journal.jsonl")).unwrap();
    let before = journal();
    for (args, says) in [
        (vec!["x1=5"], "outside uniform [-1, 1]"),
        (vec!["x3=0.1"], "`x3` is not a key of [space]"),
        (vec!["x1"], "not KEY=VALUE"),
        (vec!["x1=abc"], "not a number"),
        (vec!["x1=0.1", "x2=0.2", "x1=0.3"], "`x1` is given twice"),
    ] {
        let mut full = vec!["enqueue", r];
        full.extend(args);
        let output = run(&full);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(says), "{}", text(&output));
        assert_eq!(journal(), before, "nothing written for bad input");
    }
    let output = run(&["enqueue", r, "x1=0.5", "x2=-0.125"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("--trials 4"),
        "says how to run it: {}",
        text(&output)
    );
    let output = run(&["resume", r, "--trials", "4", "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    let trials = created(&results);
    assert_eq!(trials.len(), 4);
    assert_eq!(
        trials[3],
        (serde_json::json!({"x1": 0.5, "x2": -0.125}), true)
    );
}

#[test]
fn a_running_sweep_takes_a_configuration_queued_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Trials of a few tenths of a second each (no early stop), so that the sweep still runs.
    let experiment = digits_experiment("qrun", 6, 1, 40).replace("patience = 3", "patience = 1000");
    let file = write(dir.path(), "d.toml", &experiment);
    let results = dir.path().join("r");
    let mut child = kiln()
        .args(["run", file.to_str().unwrap(), "--results"])
        .arg(&results)
        .arg("-q")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(results.join("journal.jsonl"))
        .is_ok_and(|j| j.contains("trial_created"))
    {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none());
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = run(&[
        "enqueue",
        results.to_str().unwrap(),
        "learning_rate=0.005",
        "dropout=0.125",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("running"), "{}", text(&output));
    assert!(child.wait().unwrap().success());
    let trials = created(&results);
    let taken: Vec<&(Value, bool)> = trials.iter().filter(|(_, queued)| *queued).collect();
    assert_eq!(taken.len(), 1, "{trials:?}");
    assert_eq!(
        taken[0].0,
        serde_json::json!({"learning_rate": 0.005, "dropout": 0.125})
    );
    let left = std::fs::read_dir(results.join("queue")).unwrap().count();
    assert_eq!(left, 0, "the queue folder is emptied");
}

#[test]
fn a_queue_file_left_behind_by_a_kill_after_it_was_journaled_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "q.toml", &sphere(2, ""));
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let r = results.to_str().unwrap();
    // What `kiln enqueue` leaves for a running sweep, taken by the next run.
    let queued = results.join("queue/000000000000000000000001-7.json");
    std::fs::create_dir_all(queued.parent().unwrap()).unwrap();
    let place = || std::fs::write(&queued, r#"{"x1": 0.5, "x2": -0.125}"#).unwrap();
    place();
    let output = run(&["resume", r, "--trials", "3", "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(!queued.exists());
    // A kill between journaling it and removing its file leaves the file: put it back.
    place();
    let output = run(&["resume", r, "--trials", "4", "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    let trials = created(&results);
    assert_eq!(trials.len(), 4);
    let taken: Vec<_> = trials.iter().filter(|(_, queued)| *queued).collect();
    assert_eq!(taken.len(), 1, "run once, not twice: {trials:?}");
    assert!(!queued.exists(), "the file left behind is removed");
}

#[test]
fn the_command_kiln_prints_runs_as_pasted_into_a_shell_even_with_a_space_in_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "q.toml", &sphere(2, ""));
    let results = dir.path().join("my results");
    sweep(&file, &results, &[]);
    let output = run(&["enqueue", results.to_str().unwrap(), "x1=0.25"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    let command = said
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {said}"));
    assert!(command.starts_with("kiln resume '"), "{command}");
    // As a person pastes it, with this build's kiln first on the PATH.
    let bin = Path::new(env!("CARGO_BIN_EXE_kiln")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pasted = std::process::Command::new("sh")
        .args(["-c", &format!("{command} -q")])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(pasted.status.success(), "{}", text(&pasted));
    assert_eq!(created(&results).len(), 3);
}
