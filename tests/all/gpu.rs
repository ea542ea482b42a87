//! The wgpu backend, end to end: built with `--features wgpu`, on whatever adapter the machine
//! has (Mesa's software Vulkan driver, lavapipe, in CI). Where no adapter computes, each test
//! says SKIPPED loudly and passes.

use crate::common::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The digits sweep of the other tests, trained with `backend`.
fn on_backend(name: &str, trials: u32, epochs: u32, backend: &str) -> String {
    digits_experiment(name, trials, 1, epochs).replace(
        "batch_size = 16",
        &format!("batch_size = 32\nbackend = \"{backend}\""),
    )
}

/// Whether wgpu computes here (`kiln check` on a wgpu experiment); says SKIPPED if not.
fn wgpu_computes(test: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "probe.toml", &on_backend("probe", 1, 1, "wgpu"));
    let output = run(&["check", file.to_str().unwrap()]);
    if output.status.success() {
        assert!(text(&output).contains("computes"), "{}", text(&output));
        return true;
    }
    eprintln!(
        "SKIPPED {test}: no wgpu adapter computes here (install Mesa's mesa-vulkan-drivers for a software one)\n{}",
        text(&output)
    );
    false
}

fn best_accuracy(results: &Path) -> f64 {
    leaderboard_by_trial(results)
        .values()
        .filter_map(|row| row["val_accuracy"].parse::<f64>().ok())
        .fold(0.0, f64::max)
}

#[test]
fn a_wgpu_sweep_learns_as_well_as_the_same_sweep_on_the_cpu() {
    if !wgpu_computes("a_wgpu_sweep_learns_as_well_as_the_same_sweep_on_the_cpu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut best = Vec::new();
    for backend in ["wgpu", "flex"] {
        let file = write(
            dir.path(),
            &format!("{backend}.toml"),
            &on_backend(backend, 3, 4, backend),
        );
        let results = dir.path().join(backend);
        sweep(&file, &results, &[]);
        let rows = leaderboard_by_trial(&results);
        assert!(
            rows.values().all(|r| r["state"] == "complete"),
            "{backend}: {rows:?}"
        );
        best.push(best_accuracy(&results));
    }
    // The same seeds and the same weights at the start; only the float rounding differs.
    assert!(best[0] > 0.9, "wgpu's best val_accuracy {}", best[0]);
    assert!(
        (best[0] - best[1]).abs() < 0.03,
        "wgpu {} against flex {}",
        best[0],
        best[1]
    );
}

#[test]
fn sigkill_and_resume_of_a_wgpu_sweep_equals_an_uninterrupted_one_within_gpu_rounding() {
    if !wgpu_computes("sigkill_and_resume_of_a_wgpu_sweep_equals_an_uninterrupted_one") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // No early stopping: every trial trains its 8 epochs, however its losses round.
    let toml = on_backend("gpu-kill", 3, 8, "wgpu").replace("patience = 3", "patience = 8");
    let file = write(dir.path(), "k.toml", &toml);
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let interrupted = dir.path().join("interrupted");
    let (file, results) = (file.to_str().unwrap(), interrupted.to_str().unwrap());
    let journal = interrupted.join("journal.jsonl");
    let epochs = || {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        text.matches("\"epoch_reported\"").count()
    };
    // A worker brings its adapter up for many seconds first: each kill waits for the run to
    // report a new epoch, so that it lands while trials train.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for kill in 0..3 {
        let before = epochs();
        let args: &[&str] = if kill == 0 {
            &["run", file, "--results", results, "-q"]
        } else {
            &["resume", results, "-q"]
        };
        let mut child = start_in(Path::new(env!("CARGO_BIN_EXE_kiln")), args, &[]);
        let deadline = Instant::now() + Duration::from_secs(300);
        while epochs() == before {
            assert!(Instant::now() < deadline, "no epoch in 300 s");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the sweep ended before kill {kill}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_no_process_works_in(&interrupted);
    }
    let output = run(&["resume", results, "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    // What resuming keeps exactly: the trials, their parameters, states and epochs.
    let (a, b) = (
        leaderboard_by_trial(&interrupted),
        leaderboard_by_trial(&reference),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (trial, row) in &b {
        for column in ["state", "epochs", "learning_rate", "dropout"] {
            assert_eq!(a[trial][column], row[column], "trial {trial} {column}");
        }
    }
    // What it keeps within GPU rounding: each epoch's metrics. A difference in the 7th digit
    // (another fused kernel after a restart) grows with every step that follows, so epochs
    // after a resumed one are compared at 2%: a trial that restarted from scratch, or from
    // another trial's weights, is off by far more.
    let curve = |d: &Path| -> BTreeMap<(String, String), BTreeMap<String, String>> {
        curves_without_time(d)
            .into_iter()
            .map(|row| ((row["trial"].clone(), row["epoch"].clone()), row))
            .collect()
    };
    let (a, b) = (curve(&interrupted), curve(&reference));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let mut apart = Vec::new();
    for (at, row) in &b {
        for (column, expected) in row {
            let got = &a[at][column];
            let close = match (got.parse::<f64>(), expected.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 2e-2 * x.abs().max(y.abs()),
                _ => got == expected,
            };
            if !close {
                apart.push(format!(
                    "trial {} epoch {} {column}: {got} after kills, {expected} without",
                    at.0, at.1
                ));
            }
        }
    }
    assert!(apart.is_empty(), "{}", apart.join("\n"));
}

#[test]
fn a_trial_too_big_for_the_device_fails_alone_and_the_next_gets_a_fresh_worker() {
    if !wgpu_computes("a_trial_too_big_for_the_device_fails_alone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 64 x 700,000 weights (180 MB) in one buffer: more than wgpu binds at once on any
    // adapter of today (lavapipe: 128 MiB), however much memory it has.
    let text = on_backend("too-big", 2, 1, "wgpu").replace("hidden = 32", "layers = 1");
    let text = format!(
        "{}[sampler]\nkind = \"grid\"\n\n[space]\nhidden = {{ choice = [700000, 32] }}\n",
        &text[..text.find("[space]").unwrap()]
    );
    let file = write(dir.path(), "big.toml", &text);
    let results = dir.path().join("results");
    sweep(&file, &results, &[]);
    let rows = leaderboard_by_trial(&results);
    let (big, small) = (&rows["0"], &rows["1"]);
    assert_eq!(big["hidden"], "700000", "{rows:?}");
    assert_eq!(big["state"], "failed", "{rows:?}");
    assert!(
        big["note"].contains("device memory") || big["note"].contains("panicked"),
        "{}",
        big["note"]
    );
    assert_eq!(small["state"], "complete", "{rows:?}");
    assert!(small["val_accuracy"].parse::<f64>().unwrap() > 0.5);
}
