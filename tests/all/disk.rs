//! What a sweep leaves on disk: a trial that ended keeps its best weights, not the checkpoints
//! it trained through (unless `[budget] keep_checkpoints`), and `kiln status` says how much
//! the folder holds.

use crate::common::{digits_experiment, run, sweep, text, write};
use std::path::Path;

/// The checkpoint slots left in the trial folders of `results`, and how many trial folders
/// hold their best weights.
fn checkpoints_and_best(results: &Path) -> (Vec<String>, usize) {
    let mut checkpoints = Vec::new();
    let mut best = 0;
    for trial in std::fs::read_dir(results.join("trials")).unwrap().flatten() {
        for file in std::fs::read_dir(trial.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().to_string();
            if name.starts_with("checkpoint.") {
                checkpoints.push(format!("{}/{name}", trial.file_name().to_string_lossy()));
            }
            best += usize::from(name == "best.bpk");
        }
    }
    (checkpoints, best)
}

/// Six trials of the digits MLP on one worker, the median pruner stopping some.
fn pruned_sweep(budget_extra: &str) -> String {
    let experiment = digits_experiment("disk", 6, 1, 6)
        .replace("workers = 1\n", &format!("workers = 1\n{budget_extra}\n"));
    format!("{experiment}\n[pruner]\nkind = \"median\"\nwarmup_epochs = 1\nmin_trials = 2\n")
}

#[test]
fn ended_trials_keep_their_best_weights_and_drop_their_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    sweep(
        &write(dir.path(), "d.toml", &pruned_sweep("")),
        &results,
        &[],
    );
    let (checkpoints, best) = checkpoints_and_best(&results);
    assert!(checkpoints.is_empty(), "{checkpoints:?}");
    assert_eq!(best, 6);
    let states: Vec<String> = crate::common::csv_rows(&results.join("leaderboard.csv"))
        .iter()
        .map(|r| r["state"].clone())
        .collect();
    assert!(states.iter().any(|s| s == "pruned"), "{states:?}");
    // The best weights still predict.
    let output = run(&[
        "predict",
        results.to_str().unwrap(),
        "--data",
        &crate::common::data("digits.csv"),
        "--trial",
        "best",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let output = run(&["status", results.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&output.stdout);
    let disk = out
        .lines()
        .find(|l| l.starts_with("disk"))
        .expect("a disk line");
    assert!(disk.contains("KB a trial in trials/"), "{disk}");

    let kept = dir.path().join("k");
    let file = write(
        dir.path(),
        "k.toml",
        &pruned_sweep("keep_checkpoints = true"),
    );
    sweep(&file, &kept, &[]);
    let (checkpoints, best) = checkpoints_and_best(&kept);
    assert_eq!(best, 6);
    assert!(checkpoints.len() >= 6, "{checkpoints:?}");
    let size = |dir: &Path| {
        let out = run(&["status", dir.to_str().unwrap()]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("disk"))
            .unwrap()
            .to_string()
    };
    assert_ne!(size(&results), size(&kept));
}
