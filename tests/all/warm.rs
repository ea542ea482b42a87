//! Python scripts as a user writes them: the warm start (a trial after a worker's first starts
//! in milliseconds, and dies with kiln), reports printed without flushing, seeds every library
//! takes, and commands that cannot run refused by `kiln check`.

use crate::common::{
    assert_no_process_works_in, csv_rows, curves_without_time, kiln, leaderboard_by_trial, refused,
    reported_epochs, run_until_reported, sweep, text, write,
};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether `python3` can import `module`.
fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// kiln, as a user's shell starts it: PYTHONUNBUFFERED unset (this machine sets it globally).
fn user_kiln() -> Command {
    let mut command = kiln();
    command.env_remove("PYTHONUNBUFFERED");
    command
}

/// A sweep of `script` (a file in `dir`) reporting `loss`, with extra `[objective]` lines.
fn experiment(
    dir: &Path,
    script: &str,
    trials: u32,
    workers: u32,
    epochs: u32,
    extra: &str,
) -> String {
    format!(
        "name = \"w\"\nseed = 5\n[objective]\ncommand = [\"python3\", \"{}\"]\nmetrics = [\"loss\"]\nmetric = \"loss\"\nepochs = {epochs}\ngrace = \"2s\"\n{extra}\n[budget]\ntrials = {trials}\nworkers = {workers}\n[space]\nx = {{ uniform = [0.0, 1.0] }}\n",
        dir.join(script).display()
    )
}

/// Imports numpy (a heavy import), reports its first epoch at once, then three more.
const NUMPY_SCRIPT: &str = r#"
import json, os
import numpy as np
x = json.loads(os.environ["KILN_PARAMS"])["x"]
for epoch in range(1, 5):
    print("kiln-report " + json.dumps({"epoch": epoch, "loss": float(np.square(x - 0.3)) + 1.0 / epoch}))
"#;

/// Each trial's first epoch's `elapsed_s` (trial started to first report, from kiln's side).
fn first_reports(results: &Path) -> Vec<f64> {
    csv_rows(&results.join("curves.csv"))
        .iter()
        .filter(|r| r["epoch"] == "1")
        .map(|r| r["elapsed_s"].parse().unwrap())
        .collect()
}

#[test]
fn a_warm_worker_starts_its_later_trials_in_milliseconds() {
    if !python_has("numpy") {
        eprintln!("SKIPPED: python3 has no numpy (pip install numpy)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "np.py", NUMPY_SCRIPT);
    let (trials, workers) = (10, 2);
    let file = write(
        dir.path(),
        "w.toml",
        &experiment(dir.path(), "np.py", trials, workers, 4, ""),
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let rows = leaderboard_by_trial(&results);
    assert!(rows.values().all(|r| r["state"] == "complete"), "{rows:?}");
    let firsts = first_reports(&results);
    assert_eq!(firsts.len(), trials as usize);
    // Only a worker's first trial waits for the interpreter and numpy.
    let slow: Vec<&f64> = firsts.iter().filter(|&&s| s >= 0.1).collect();
    assert!(
        slow.len() <= workers as usize,
        "trials took {firsts:?} s to their first report: more than {workers} over 100 ms"
    );
    let log = std::fs::read_to_string(results.join("trials/5/log.txt")).unwrap();
    assert!(
        log.contains("warm start, forked from a server that imported numpy"),
        "{log}"
    );

    // The same sweep cold: every trial pays the interpreter and the import.
    let cold = write(
        dir.path(),
        "c.toml",
        &experiment(dir.path(), "np.py", trials, workers, 4, "warm = false"),
    );
    let cold_results = dir.path().join("cold");
    sweep(&cold, &cold_results, &[]);
    let cold_firsts = first_reports(&cold_results);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "first report: warm median {:.4} s, cold median {:.4} s",
        median(&firsts),
        median(&cold_firsts)
    );
    assert!(median(&cold_firsts) > median(&firsts));
    assert_eq!(
        curves_without_time(&results),
        curves_without_time(&cold_results),
        "warm and cold trials differ"
    );
}

/// Sleeps in each epoch; reports the ordinary way (print, no flush); checkpoints before each
/// report and resumes from the newest checkpoint no newer than KILN_RESUME_EPOCH.
const UNFLUSHED: &str = r#"
import json, os, time
folder, resume = os.environ["KILN_TRIAL_DIR"], int(os.environ["KILN_RESUME_EPOCH"])
x = json.loads(os.environ["KILN_PARAMS"])["x"]
start = 0
try:
    with open(os.path.join(folder, "ckpt")) as f:
        start = min(int(f.read()), resume)
except OSError:
    pass
print(f"starting after epoch {start}")
for epoch in range(start + 1, 9):
    time.sleep(SLEEP)
    with open(os.path.join(folder, "ckpt"), "w") as f:
        f.write(str(epoch))
    print("kiln-report " + json.dumps({"epoch": epoch, "loss": x + 1.0 / epoch}))
"#;

#[test]
fn unflushed_reports_reach_the_pruner_and_survive_ctrl_c_warm_and_cold() {
    for warm in ["true", "false"] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "u.py", &UNFLUSHED.replace("SLEEP", "0.05"));
        let pruned = experiment(dir.path(), "u.py", 6, 1, 8, &format!("warm = {warm}"))
            + "[pruner]\nkind = \"median\"\nwarmup_epochs = 1\nmin_trials = 2\n";
        let file = write(dir.path(), "p.toml", &pruned);
        let results = dir.path().join("pruned");
        let output = user_kiln()
            .args([
                "run",
                file.to_str().unwrap(),
                "--results",
                results.to_str().unwrap(),
                "-q",
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "warm = {warm}: {}", text(&output));
        let rows = leaderboard_by_trial(&results);
        let stopped_early: Vec<_> = rows
            .values()
            .filter(|r| r["state"] == "pruned" && r["epochs"].parse::<u32>().unwrap() < 8)
            .collect();
        assert!(
            !stopped_early.is_empty(),
            "warm = {warm}: nothing was pruned mid-trial: {rows:?}"
        );

        // Ctrl-C mid-trial, then resume: no reported epoch is lost or trained again.
        write(dir.path(), "slow.py", &UNFLUSHED.replace("SLEEP", "0.4"));
        let slow = experiment(dir.path(), "slow.py", 1, 1, 8, &format!("warm = {warm}"));
        let file = write(dir.path(), "s.toml", &slow);
        let results = dir.path().join("stopped");
        let child = run_until_reported(
            user_kiln(),
            (&file, &results),
            Stdio::piped(),
            3,
            Duration::from_secs(30),
        );
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(130),
            "warm = {warm}: {}",
            text(&output)
        );
        let before = reported_epochs(&results);
        let output = user_kiln()
            .args(["resume", results.to_str().unwrap(), "-q"])
            .output()
            .unwrap();
        assert!(output.status.success(), "warm = {warm}: {}", text(&output));
        let log = std::fs::read_to_string(results.join("trials/0/log.txt")).unwrap();
        assert!(
            log.contains(&format!("starting after epoch {before}")),
            "warm = {warm}: the resumed run did not start after the {before} journaled epochs: {log}"
        );
        let epochs: Vec<String> = csv_rows(&results.join("curves.csv"))
            .iter()
            .map(|r| r["epoch"].clone())
            .collect();
        assert_eq!(
            epochs,
            (1..=8).map(|e| e.to_string()).collect::<Vec<_>>(),
            "warm = {warm}"
        );
    }
}

/// Feeds `KILN_SEED * 1000 + epoch` to every seeding function installed; any refusal fails the
/// trial. Reports the seed itself as a metric.
const SEEDS: &str = r#"
import json, os, random
seed = int(os.environ["KILN_SEED"])
assert 0 <= seed < 2**21, seed
for epoch in (1, 2, 1000):
    value = seed * 1000 + epoch
    assert value < 2**31, value
    random.seed(value)
    try:
        import numpy
        numpy.random.default_rng(value)
        numpy.random.seed(value)
    except ImportError:
        pass
    try:
        import torch
        torch.manual_seed(value)
    except ImportError:
        pass
print("kiln-report " + json.dumps({"epoch": 1, "loss": float(seed)}))
"#;

#[test]
fn every_trials_seed_passes_through_the_seeding_functions_of_numpy_random_and_torch() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "seeds.py", SEEDS);
    let file = write(
        dir.path(),
        "s.toml",
        &experiment(dir.path(), "seeds.py", 20, 2, 1, ""),
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let rows = leaderboard_by_trial(&results);
    assert!(rows.values().all(|r| r["state"] == "complete"), "{rows:?}");
    let seeds: std::collections::BTreeSet<&str> =
        rows.values().map(|r| r["loss"].as_str()).collect();
    assert_eq!(seeds.len(), 20, "trials share a seed: {seeds:?}");
}

#[test]
fn kill_9_of_kiln_leaves_no_warm_server_nor_trial_behind() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "u.py", &UNFLUSHED.replace("SLEEP", "1.0"));
    let file = write(
        dir.path(),
        "k.toml",
        &experiment(dir.path(), "u.py", 4, 2, 8, ""),
    );
    let results = dir.path().join("r");
    let mut child = run_until_reported(
        kiln(),
        (&file, &results),
        Stdio::null(),
        2,
        Duration::from_secs(30),
    );
    let servers = processes_naming(dir.path());
    assert!(
        servers.len() >= 2,
        "no warm server or trial found in /proc: {servers:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The servers' command lines, inherited by their children, name the script's folder.
    assert_no_process_works_in(dir.path());
}

/// Processes whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap().as_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| p.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|p| {
            std::fs::read(p.path().join("cmdline"))
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        })
        .map(|p| p.file_name().to_string_lossy().to_string())
        .collect()
}

#[test]
fn check_refuses_a_misspelt_program_and_a_missing_script_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "train.py",
        "print('kiln-report {\"epoch\": 1, \"loss\": 1}')\n",
    );
    let file = |name: &str, command: &str| {
        write(
            dir.path(),
            name,
            &format!(
                "name = \"c\"\n[objective]\nmetrics = [\"loss\"]\nmetric = \"loss\"\ncommand = {command}\n[space]\nx = {{ uniform = [0.0, 1.0] }}\n"
            ),
        )
    };
    let misspelt = file("p.toml", "[\"pyhton3\", \"train.py\"]");
    refused(&["check", misspelt.to_str().unwrap()], "p.toml:5:1: ");
    refused(
        &["check", misspelt.to_str().unwrap()],
        "`pyhton3` is not a program on PATH",
    );
    let missing = file("s.toml", "[\"python3\", \"trian.py\"]");
    refused(&["check", missing.to_str().unwrap()], "s.toml:5:1: ");
    refused(
        &["check", missing.to_str().unwrap()],
        "the script `trian.py` does not exist",
    );
    refused(
        &["run", missing.to_str().unwrap()],
        "the script `trian.py` does not exist",
    );
    assert!(
        !dir.path().join("results").exists(),
        "a refused run wrote results"
    );
    let fine = file("f.toml", "[\"python3\", \"train.py\"]");
    let output = kiln()
        .args(["check", fine.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}
