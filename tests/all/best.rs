//! One "best": on a data set where many trials tie on the objective, the leaderboard's rank 1
//! is the trial the progress line, `kiln status`, the dashboard and `kiln predict --trial best`
//! name.

use crate::common::*;
use crate::dashboard::Dashboard;

/// Iris: 30 validation rows, so that many trials reach val_accuracy 1.0 and tie.
fn iris_experiment() -> String {
    format!(
        r#"name = "ties"
seed = 2

[objective]
metric = "val_accuracy"

[budget]
trials = 12
workers = 2

[data]
path = "{}"
target = "label"
task = "classification"

[model]
hidden = 16

[train]
epochs = 25
batch_size = 16

[sampler]
kind = "random"

[space]
learning_rate = {{ log_uniform = [3e-3, 3e-2] }}
"#,
        data("iris.csv")
    )
}

#[test]
fn on_ties_every_command_names_the_leaderboards_rank_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "ties.toml", &iris_experiment());
    let results = dir.path().join("results");
    let output = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let leaderboard = std::fs::read_to_string(results.join("leaderboard.csv")).unwrap();
    let rows: Vec<Vec<&str>> = (leaderboard.lines().skip(1))
        .map(|l| l.split(',').collect())
        .collect();
    let header: Vec<&str> = leaderboard.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let (trial, objective) = (column("trial"), column("objective"));
    let tied = rows
        .iter()
        .filter(|r| r[objective] == rows[0][objective])
        .count();
    let first_tied = (rows.iter())
        .filter(|r| r[objective] == rows[0][objective])
        .map(|r| r[trial].parse::<u64>().unwrap())
        .min()
        .unwrap();
    let best: u64 = rows[0][trial].parse().unwrap();
    assert!(
        tied >= 3,
        "the case needs ties: {tied} at {}",
        rows[0][objective]
    );
    assert_ne!(
        best, first_tied,
        "the tie-break must matter: rank 1 is the first tied trial"
    );
    let said = format!("trial {best}");
    // The run's last progress line and `kiln status`.
    let ran = text(&output);
    let last_best = ran.lines().rev().find(|l| l.contains("best")).unwrap_or("");
    assert!(last_best.contains(&said), "progress: {last_best}");
    let status = text(&run(&["status", results.to_str().unwrap()]));
    let line = status.lines().find(|l| l.starts_with("best")).unwrap();
    assert!(line.contains(&format!("{said}:")), "status: {line}");
    // The dashboard.
    let dashboard = Dashboard::start(&[results.to_str().unwrap()]);
    let sweeps = dashboard.json("/api/sweeps");
    assert_eq!(sweeps["sweeps"][0]["best"]["trial"], best, "dashboard");
    // `predict --trial best` uses that trial's model and says so.
    let predicted = run(&[
        "predict",
        results.to_str().unwrap(),
        "--data",
        &data("iris.csv"),
    ]);
    assert!(predicted.status.success(), "{}", text(&predicted));
    let stderr = String::from_utf8_lossy(&predicted.stderr);
    assert!(stderr.contains(&said), "predict: {stderr}");
    let by_number = run(&[
        "predict",
        results.to_str().unwrap(),
        "--trial",
        &best.to_string(),
        "--data",
        &data("iris.csv"),
    ]);
    assert_eq!(predicted.stdout, by_number.stdout);
}
