//! Stopping rules: `[budget] target`, `no_improvement` and `regret_bound` end a sweep where
//! they first hold (not before), say which fired, hold again after a resume, and
//! `kiln resume --no-stop-rules` goes past them.

use crate::common::{csv_rows, run, text, write};
use std::path::Path;

/// Branin searched by TPE on one worker (the trials' order is the trials' numbers), with
/// `rules` in `[budget]`.
fn branin(trials: u32, rules: &str) -> String {
    branin_by("tpe", trials, rules)
}

fn branin_by(sampler: &str, trials: u32, rules: &str) -> String {
    format!(
        r#"name = "stop"
seed = 4

[objective]
kind = "function"
function = "branin"
epochs = 1
metric = "value"
direction = "minimize"

[budget]
trials = {trials}
workers = 1
{rules}

[sampler]
kind = "{sampler}"
startup_trials = 10

[space]
x1 = {{ uniform = [-5.0, 10.0] }}
x2 = {{ uniform = [0.0, 15.0] }}
"#
    )
}

/// Each trial's value, by trial number.
fn values(results: &Path) -> Vec<f64> {
    let mut rows = csv_rows(&results.join("leaderboard.csv"));
    rows.sort_by_key(|r| r["trial"].parse::<u64>().unwrap());
    rows.iter().map(|r| r["value"].parse().unwrap()).collect()
}

fn kiln_ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(output.status.success(), "{args:?}: {}", text(&output));
    text(&output)
}

#[test]
fn a_target_stops_the_sweep_at_the_first_trial_that_reaches_it_also_after_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.toml", &branin(200, "target = 0.6"));
    let checked = kiln_ok(&["check", file.to_str().unwrap()]);
    assert!(
        checked.contains("stops      after 200 trials, or once the best reaches 0.6 (target)"),
        "{checked}"
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let said = kiln_ok(&["run", file.to_str().unwrap(), "--results", r, "-q"]);
    let values = values(&results);
    let last = values.len() - 1;
    assert!(values.len() < 200, "{} trials", values.len());
    assert!(values[last] <= 0.6, "{values:?}");
    assert!(values[..last].iter().all(|v| *v > 0.6), "{values:?}");
    assert!(
        said.contains(&format!(
            "[budget] target = 0.6 reached: trial {last}'s value"
        )),
        "{said}"
    );
    // Resumed, the rule still holds: nothing new runs, and status says why.
    kiln_ok(&["resume", r, "-q"]);
    assert_eq!(csv_rows(&results.join("leaderboard.csv")).len(), last + 1);
    let status = kiln_ok(&["status", r]);
    assert!(
        status.contains("stopped before the budget: [budget] target = 0.6")
            && status.contains("--no-stop-rules"),
        "{status}"
    );
    // Lifted, the sweep runs on to its budget.
    kiln_ok(&["resume", r, "--no-stop-rules", "-q"]);
    assert_eq!(csv_rows(&results.join("leaderboard.csv")).len(), 200);
}

#[test]
fn no_improvement_stops_after_that_many_trials_without_a_better_one_and_a_resume_stops_there_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "n.toml", &branin(300, "no_improvement = 12"));
    let whole = dir.path().join("whole");
    let said = kiln_ok(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        whole.to_str().unwrap(),
        "-q",
    ]);
    let values = values(&whole);
    // The rule holds at the end and at no trial before.
    let since_best = |n: usize| {
        let prefix = &values[..n];
        let best = (0..n)
            .min_by(|&a, &b| prefix[a].total_cmp(&prefix[b]))
            .unwrap();
        n - 1 - best
    };
    assert!(values.len() < 300, "{} trials", values.len());
    assert_eq!(since_best(values.len()), 12, "{values:?}");
    assert!((1..values.len()).all(|n| since_best(n) < 12), "{values:?}");
    assert!(
        said.contains("[budget] no_improvement = 12: 12 trials ended after trial"),
        "{said}"
    );

    // Stopped early by a smaller budget, then resumed with the full one: the same sweep.
    let parts = dir.path().join("parts");
    let p = parts.to_str().unwrap();
    kiln_ok(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        p,
        "--trials",
        "15",
        "-q",
    ]);
    kiln_ok(&["resume", p, "--trials", "300", "-q"]);
    assert_eq!(
        super::common::leaderboard_by_trial(&parts).len(),
        values.len()
    );
    assert_eq!(self::values(&parts), values);
}

#[test]
fn a_regret_bound_stops_once_the_bound_is_below_the_threshold_and_the_bound_holds() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "g.toml",
        &branin_by("gp", 200, "regret_bound = 0.01"),
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let output = crate::common::kiln()
        .args(["run", file.to_str().unwrap(), "--results", r, "-q"])
        .env("RUST_LOG", "kiln::stopping=debug")
        .output()
        .unwrap();
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    // Every bound computed before the stop was at or above the threshold, the last below.
    let bounds: Vec<f64> = (said.lines())
        .filter_map(|l| l.split("trials: ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let values = values(&results);
    assert!(
        values.len() >= 20 && values.len() < 200,
        "{} trials",
        values.len()
    );
    let (last, before) = bounds.split_last().expect("bounds were computed");
    assert!(
        *last < 0.01 && before.iter().all(|b| *b >= 0.01),
        "{bounds:?}"
    );
    assert!(
        said.contains("[budget] regret_bound: more trials are unlikely"),
        "{said}"
    );
    // Branin's minimum is 0.397887: the best is within the bound of it.
    let best = values.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(best - 0.397887 <= *last, "best {best}, bound {last}");
    kiln_ok(&["resume", r, "-q"]);
    assert_eq!(self::values(&results).len(), values.len());
}
