//! `[sampler] deterministic = true`: a model-based sweep that gives the same leaderboard, value
//! for value, whatever the number of workers and however often it is killed.

use crate::common::{assert_same_sweep, digits_experiment, kill_repeatedly, sweep, write};
use std::path::Path;

/// A sampler on the digits, deterministic with a lag of 2; wide enough that kills land
/// mid-sweep.
fn experiment(sampler: &str, workers: u32) -> String {
    digits_experiment("det", 12, workers, 10)
        .replace("hidden = 32", "hidden = 256")
        .replace(
            "[space]\n",
            &format!("[sampler]\nkind = \"{sampler}\"\nstartup_trials = 3\ndeterministic = true\nlag = 2\n[space]\n"),
        )
}

/// One worker, three workers, and three workers killed five times: the same sweep.
fn same_with_any_workers_and_kills(sampler: &str) {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    sweep(
        &write(dir.path(), "one.toml", &experiment(sampler, 1)),
        &one,
        &[],
    );
    let three = dir.path().join("three");
    let file = write(dir.path(), "three.toml", &experiment(sampler, 3));
    sweep(&file, &three, &[]);
    assert_same_sweep(&three, &one, 12);
    let killed = dir.path().join("killed");
    kill_repeatedly(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &file,
        &killed,
        5,
        11,
        &[],
    );
    assert_same_sweep(&killed, &one, 12);
}

#[test]
fn a_deterministic_tpe_sweep_is_the_same_with_one_and_three_workers_and_after_five_kills() {
    same_with_any_workers_and_kills("tpe");
}

#[test]
fn a_deterministic_gp_sweep_is_the_same_with_one_and_three_workers_and_after_five_kills() {
    same_with_any_workers_and_kills("gp");
}

#[test]
fn a_deterministic_cmaes_sweep_is_the_same_with_one_and_three_workers_and_after_five_kills() {
    same_with_any_workers_and_kills("cmaes");
}

#[test]
fn a_deterministic_auto_sweep_is_the_same_with_one_and_three_workers_and_after_five_kills() {
    same_with_any_workers_and_kills("auto");
}
