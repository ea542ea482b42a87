//! A user's own objective through the library API, on worker threads: failures stay inside
//! their trial.

use kiln::experiment::{Direction, Experiment};
use kiln::journal::Metrics;
use kiln::state::TrialState;
use kiln::sweep::{Execution, SweepOptions};
use kiln::{Decision, Objective, Trial, TrialSummary};
use std::path::Path;
use std::sync::Arc;

/// Minimises (x - 0.3)^2 over five "epochs"; trial 1 panics, trial 2 returns an error.
struct Quirky;

impl Objective for Quirky {
    fn metrics(&self, _: &Experiment) -> kiln::Result<Vec<String>> {
        Ok(vec!["value".into()])
    }

    fn run(&self, trial: &mut Trial<'_>) -> Result<TrialSummary, String> {
        match trial.number() {
            1 => panic!("the objective's own bug"),
            2 => return Err("no data for this trial".into()),
            _ => {}
        }
        let x = trial.float("x");
        for epoch in 1..=5 {
            let value = (x - 0.3).powi(2) + 1.0 / epoch as f64;
            if trial.report(epoch, Metrics::from([("value".into(), value)])) == Decision::Stop {
                break;
            }
        }
        Ok(TrialSummary::default())
    }
}

const EXPERIMENT: &str = r#"
name = "quirky"
seed = 9
[objective]
metric = "value"
kind = "quirky"
[budget]
trials = 6
workers = 2
[space]
x = { uniform = [0.0, 1.0] }
"#;

#[test]
fn a_panicking_and_a_failing_objective_fail_their_trials_and_the_sweep_completes() {
    let dir = tempfile::tempdir().unwrap();
    let experiment =
        Experiment::parse(EXPERIMENT, Path::new("quirky.toml"), Path::new(".")).unwrap();
    assert_eq!(experiment.objective.direction, Direction::Minimize);
    let options = SweepOptions {
        results_dir: dir.path().to_path_buf(),
        quiet: true,
        ..SweepOptions::default()
    };
    let outcome =
        kiln::sweep::run(&experiment, &options, Execution::Threads(Arc::new(Quirky))).unwrap();
    let state = &outcome.state;
    assert_eq!(state.trials.len(), 6);
    assert_eq!(
        state.trials[1].note.as_deref(),
        Some("panicked: the objective's own bug")
    );
    assert_eq!(
        state.trials[2].note.as_deref(),
        Some("no data for this trial")
    );
    let complete = state
        .trials
        .iter()
        .filter(|t| {
            matches!(
                t.state,
                TrialState::Ended(kiln::journal::EndState::Complete)
            )
        })
        .count();
    assert_eq!(complete, 4);
    let leaderboard = std::fs::read_to_string(dir.path().join("leaderboard.csv")).unwrap();
    let last_two: Vec<&str> = leaderboard.lines().rev().take(2).collect();
    assert!(
        last_two.iter().all(|l| l.contains(",failed,")),
        "{leaderboard}"
    );
}

#[test]
fn an_objective_that_reports_an_unknown_metric_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let text = EXPERIMENT.replace("metric = \"value\"", "metric = \"valeu\"");
    let experiment =
        Experiment::parse(&text, Path::new("quirky.toml"), Path::new(".")).unwrap();
    let options = SweepOptions {
        results_dir: dir.path().join("r"),
        quiet: true,
        ..SweepOptions::default()
    };
    let error =
        kiln::sweep::run(&experiment, &options, Execution::Threads(Arc::new(Quirky))).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(
        error
            .to_string()
            .contains("quirky.toml:5:1: unknown metric `valeu`"),
        "{error}"
    );
    assert!(!dir.path().join("r").exists());
}
