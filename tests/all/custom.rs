//! A user's own objective: through the library API on threads (failures stay inside their
//! trial), and as a program of its own built on kiln's command line (examples/custom_objective.rs):
//! every command, SIGKILLs with two worker processes.

use kiln::experiment::Experiment;
use kiln::state::TrialState;
use kiln::sweep::{Execution, SweepOptions};
use kiln::trial::{Direction, Metrics};
use kiln::{Decision, Objective, Trial, TrialError, TrialSummary};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Minimises (x - 0.3)^2 over five "epochs"; trial 1 panics, trial 2 returns an error.
struct Quirky;

impl Objective for Quirky {
    fn metrics(&self, _: &Experiment) -> kiln::Result<Vec<String>> {
        Ok(vec!["value".into()])
    }

    fn run(&self, trial: &mut Trial<'_>) -> Result<TrialSummary, TrialError> {
        match trial.number() {
            1 => panic!("the objective's own bug"),
            2 => return Err("no data for this trial".into()),
            _ => {}
        }
        let x = trial.float("x")?;
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
        .filter(|t| matches!(t.state, TrialState::Ended(kiln::trial::EndState::Complete)))
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
    let experiment = Experiment::parse(&text, Path::new("quirky.toml"), Path::new(".")).unwrap();
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

/// The example program built on kiln's command line (`cargo test` builds the examples).
fn example_program() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let release = deps.parent().unwrap().parent().unwrap();
    let program = release.join("examples").join("custom_objective");
    assert!(program.exists(), "{} is not built", program.display());
    program
}

fn example_experiment() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/custom_objective.toml"),
    )
    .unwrap()
}

#[test]
fn the_custom_example_is_a_kiln_whose_every_command_reads_its_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "sine.toml", &example_experiment());
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let program = example_program();
    let shown = |args: &[&str]| {
        let output = Command::new(&program).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            crate::common::text(&output)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    shown(&["run", file.to_str().unwrap(), "--results", r, "-q"]);
    let rows = crate::common::csv_rows(&results.join("leaderboard.csv"));
    assert_eq!(rows.len(), 12);
    let best: f64 = rows[0]["val_mse"].parse().unwrap();
    // The variance of sin(3x) on [-1, 1] is about 0.5: a trained net does far better.
    assert!(best < 0.05, "best val_mse {best}");
    // An ended trial keeps its weights, not its checkpoints.
    assert!(!results.join("trials/0/checkpoint.0.bin").exists());
    let status = shown(&["status", r]);
    assert!(status.contains("12 of 12"), "{status}");
    // Its hints name the program that ran, which knows `sine` (kiln does not).
    let more = format!("{} resume {r} --trials 24", program.display());
    assert!(status.contains(&more), "{status}");
    assert!(shown(&["leaderboard", r]).contains("width"));
    assert!(shown(&["compare", r, "--sort", "val_mse"]).contains("learning_rate"));
    assert!(shown(&["plot", r]).contains("report.html"));
    assert!(shown(&["check", file.to_str().unwrap()]).contains("objective  sine (epochs = 30)"));
    // Trials run in worker processes of the program itself.
    let log = std::fs::read_to_string(results.join("kiln.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    // The same experiment is not kiln's to run: kiln does not know `sine`.
    let output = crate::common::run(&["check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unknown objective `sine`"),
        "{}",
        crate::common::text(&output)
    );
}

#[test]
fn sigkill_at_ten_random_moments_of_the_custom_example_with_two_workers_then_resume_equals_an_uninterrupted_sweep()
 {
    // No pruner: with two workers a pruning decision depends on which trials reached an epoch
    // first. Long trials, so that kills land in the middle of them.
    let experiment = example_experiment()
        .replace("[pruner]\nkind = \"median\"", "[pruner]\nkind = \"none\"")
        .replace("epochs = 30", "epochs = 600")
        .replace("trials = 12", "trials = 8");
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "k.toml", &experiment);
    let reference = dir.path().join("reference");
    let output = Command::new(example_program())
        .args(["run", file.to_str().unwrap(), "--results"])
        .arg(&reference)
        .arg("-q")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", crate::common::text(&output));
    let interrupted = dir.path().join("interrupted");
    crate::common::kill_repeatedly(&example_program(), &file, &interrupted, 10, 66, &[]);
    crate::common::assert_same_sweep(&interrupted, &reference, 8);
}
