//! When trials fail: a sweep whose trials keep failing stops early and says why, and
//! `kiln retry` runs the failed trials again once the cause is fixed, then goes on.

use crate::common::{csv_rows, kiln, text, write};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A script that needs `scale.txt` beside it, as a user's script needs its data: without it
/// every trial fails with Python's traceback.
const SCRIPT: &str = r#"import json, os
here = os.path.dirname(os.path.abspath(__file__))
x = json.loads(os.environ["KILN_PARAMS"])["x"]
print("loading", os.path.join(here, "scale.txt"))
with open(os.path.join(here, "scale.txt")) as f:
    scale = float(f.read())
for epoch in (1, 2):
    print("kiln-report " + json.dumps({"epoch": epoch, "val_loss": scale * (x - 0.3) ** 2 + 1 / epoch}))
"#;

fn experiment(dir: &Path, budget: &str) -> String {
    let script = write(dir, "train.py", SCRIPT);
    sweep_toml(
        "flaky",
        &script,
        2,
        &format!("trials = 12\nworkers = 2\n{budget}"),
    )
}

/// A one-parameter command sweep of `script`, reporting `val_loss` for `epochs` epochs, with
/// `budget` as its `[budget]` table.
fn sweep_toml(name: &str, script: &Path, epochs: u32, budget: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 5

[objective]
command = ["python3", "{}"]
metrics = ["val_loss"]
metric = "val_loss"
epochs = {epochs}

[budget]
{budget}

[space]
x = {{ uniform = [0.0, 1.0] }}
"#,
        script.display()
    )
}

/// Writes `NAME.py` (`script`) and `NAME.toml`, its sweep (see [`sweep_toml`]), into `dir`;
/// the experiment's path.
fn script_sweep(dir: &Path, name: &str, script: &str, epochs: u32, budget: &str) -> PathBuf {
    let script = write(dir, &format!("{name}.py"), script);
    write(
        dir,
        &format!("{name}.toml"),
        &sweep_toml(name, &script, epochs, budget),
    )
}

/// kiln as a user's shell runs it (PYTHONUNBUFFERED unset: this machine sets it globally).
fn kiln_run(args: &[&str]) -> Output {
    kiln()
        .args(args)
        .env_remove("PYTHONUNBUFFERED")
        .output()
        .expect("kiln runs")
}

fn states(results: &Path) -> Vec<String> {
    let rows = csv_rows(&results.join("leaderboard.csv"));
    rows.iter().map(|r| r["state"].clone()).collect()
}

#[test]
fn a_sweep_whose_trials_all_fail_stops_early_and_retry_finishes_it_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "flaky.toml", &experiment(dir.path(), ""));
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let output = kiln_run(&["run", file.to_str().unwrap(), "--results", r, "-q"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        stderr.contains("the first 3 trials to end all failed"),
        "{stderr}"
    );
    assert!(stderr.contains("FileNotFoundError"), "{stderr}");
    assert!(stderr.contains(&format!("kiln retry {r}")), "{stderr}");
    let before = states(&results);
    assert!(before.len() < 12, "it stopped early: {before:?}");
    assert!(
        before.iter().filter(|s| *s == "failed").count() >= 3,
        "{before:?}"
    );

    // A trial that did not fail is not retried, and nothing is written.
    let journal = std::fs::read(results.join("journal.jsonl")).unwrap();
    let output = kiln_run(&["retry", r, "--trials", "99"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("no trial 99"), "{}", text(&output));
    assert_eq!(
        std::fs::read(results.join("journal.jsonl")).unwrap(),
        journal
    );

    // Fixed: every failed trial runs again with its parameters, and the sweep goes on.
    write(dir.path(), "scale.txt", "2.0");
    let output = kiln_run(&["retry", r, "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    let rows = csv_rows(&results.join("leaderboard.csv"));
    assert_eq!(rows.len(), 12, "{rows:?}");
    assert!(rows.iter().all(|r| r["state"] == "complete"), "{rows:?}");
    let output = kiln_run(&["retry", r, "--trials", "0"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("trial 0 is complete, not failed"),
        "{}",
        text(&output)
    );
}

#[test]
fn max_failures_zero_runs_the_whole_budget_however_many_fail() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "flaky.toml",
        &experiment(dir.path(), "max_failures = 0"),
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let output = kiln_run(&["run", file.to_str().unwrap(), "--results", r, "-q"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("all 12 trials failed"),
        "{}",
        text(&output)
    );
    assert_eq!(states(&results), vec!["failed"; 12]);
}

/// A script that fails once at epoch 3 (a transient fault: it leaves a marker in its trial
/// folder) and otherwise trains 4 epochs, checkpointing each before its report and resuming
/// from the checkpoint of `KILN_RESUME_EPOCH`. `computed.txt` lists every epoch it trained.
const ONCE: &str = r#"import json, os
d = os.environ["KILN_TRIAL_DIR"]
x = json.loads(os.environ["KILN_PARAMS"])["x"]
start = int(os.environ["KILN_RESUME_EPOCH"])
ckpt = os.path.join(d, "checkpoint.json")
if start > 0:
    with open(ckpt) as f:
        assert json.load(f)["epoch"] == start
for epoch in range(start + 1, 5):
    with open(os.path.join(d, "computed.txt"), "a") as f:
        f.write(f"{epoch}\n")
    if epoch == 3 and not os.path.exists(os.path.join(d, "failed-once")):
        open(os.path.join(d, "failed-once"), "w").close()
        raise RuntimeError("the GPU fell off the bus")
    with open(ckpt + ".tmp", "w") as f:
        json.dump({"epoch": epoch}, f)
    os.replace(ckpt + ".tmp", ckpt)
    print("kiln-report " + json.dumps({"epoch": epoch, "val_loss": (x - 0.3) ** 2 + 1 / epoch}))
"#;

#[test]
fn with_retries_a_trial_that_fails_once_runs_again_from_its_checkpoint_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let file = script_sweep(
        dir.path(),
        "once",
        ONCE,
        4,
        "trials = 4\nworkers = 2\nretries = 1",
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let output = kiln_run(&["run", file.to_str().unwrap(), "--results", r]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("attempt 2 of 2 starts from its last checkpoint"),
        "{}",
        text(&output)
    );
    let rows = csv_rows(&results.join("leaderboard.csv"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in &rows {
        assert_eq!(row["state"], "complete", "{row:?}");
        assert_eq!(row["epochs"], "4", "{row:?}");
        assert!(
            row["note"].starts_with("attempt 2; attempt 1 failed: ")
                && row["note"].contains("the GPU fell off the bus"),
            "{row:?}"
        );
        // Epochs 1 and 2 were trained once: the second attempt began after them.
        let computed = results.join(format!("trials/{}/computed.txt", row["trial"]));
        let computed = std::fs::read_to_string(computed).unwrap();
        assert_eq!(computed, "1\n2\n3\n3\n4\n", "trial {}", row["trial"]);
    }
    // Without retries the same fault is final.
    let no_retry = std::fs::read_to_string(&file)
        .unwrap()
        .replace("retries = 1", "retries = 0");
    let file = write(dir.path(), "no.toml", &no_retry);
    let results = dir.path().join("n");
    let output = kiln_run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let states = states(&results);
    assert_eq!(
        states.iter().filter(|s| *s == "failed").count(),
        3,
        "{states:?}"
    );
}

/// Trial 1 fails once, slowly, after trial 0 (the budget's last other trial) has completed.
const LATE: &str = r#"import json, os, time
d = os.environ["KILN_TRIAL_DIR"]
x = json.loads(os.environ["KILN_PARAMS"])["x"]
if os.environ["KILN_TRIAL"] == "1" and not os.path.exists(os.path.join(d, "failed-once")):
    time.sleep(1.5)
    open(os.path.join(d, "failed-once"), "w").close()
    raise RuntimeError("late transient fault")
print("kiln-report " + json.dumps({"epoch": 1, "val_loss": (x - 0.3) ** 2}))
"#;

#[test]
fn a_trial_that_fails_after_the_budget_was_handed_out_still_gets_its_retry() {
    let dir = tempfile::tempdir().unwrap();
    let file = script_sweep(
        dir.path(),
        "late",
        LATE,
        1,
        "trials = 2\nworkers = 2\nretries = 1",
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let output = kiln_run(&["run", file.to_str().unwrap(), "--results", r, "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    let rows = crate::common::leaderboard_by_trial(&results);
    assert_eq!(rows["0"]["state"], "complete", "{rows:?}");
    let retried = &rows["1"];
    assert_eq!(retried["state"], "complete", "{rows:?}");
    assert!(
        retried["note"].contains("late transient fault"),
        "{retried:?}"
    );
}
