//! Helpers shared by the integration tests: run the real `kiln` binary in temporary folders.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The kiln binary under test.
pub fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

/// Runs kiln with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    kiln().args(args).output().expect("kiln runs")
}

/// Runs `kiln run EXPERIMENT --results RESULTS --quiet EXTRA...` and asserts it succeeds.
pub fn sweep(experiment: &Path, results: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        experiment.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let output = run(&args);
    assert!(output.status.success(), "{}", text(&output));
}

/// A data file shipped with the repository.
pub fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments/data")
        .join(name)
        .display()
        .to_string()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A small, fast digits sweep: `trials` trials of `epochs` epochs on `workers` workers.
pub fn digits_experiment(name: &str, trials: u32, workers: u32, epochs: u32) -> String {
    format!(
        r#"name = "{name}"
seed = 5

[objective]
metric = "val_accuracy"

[budget]
trials = {trials}
workers = {workers}

[data]
path = "{data}"
target = "label"
task = "classification"

[model]
hidden = 32

[train]
epochs = {epochs}
batch_size = 16

[early_stopping]
monitor = "val_loss"
patience = 3

[space]
learning_rate = {{ log_uniform = [1e-3, 3e-2] }}
dropout = {{ uniform = [0.0, 0.3] }}
"#,
        data = data("digits.csv")
    )
}

/// The rows of a CSV file, as maps from column to value.
pub fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            headers
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The leaderboard's rows by trial number, without the columns that measure time.
pub fn leaderboard_by_trial(dir: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    csv_rows(&dir.join("leaderboard.csv"))
        .into_iter()
        .map(|mut row| {
            row.remove("duration_s");
            (row["trial"].clone(), row)
        })
        .collect()
}

/// stdout and stderr as text, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
