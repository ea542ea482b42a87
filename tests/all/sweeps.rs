//! End-to-end sweeps with the real binary: results, determinism, samplers, tasks, backends.

use crate::common::{
    csv_rows, data, digits_experiment, inked_pixels, leaderboard_by_trial, refused, run, sweep,
    text, write,
};
use std::path::Path;

const LEADERBOARD_COLUMNS: &str = "rank,trial,state,objective,best_epoch,epochs,duration_s,n_params,train_loss,val_loss,val_accuracy,val_f1,test_loss,test_accuracy,test_f1,gap,learning_rate,dropout,note";

#[test]
fn quickstart_reaches_095_validation_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.toml");
    sweep(&quickstart, dir.path(), &[]);
    let rows = csv_rows(&dir.path().join("leaderboard.csv"));
    assert_eq!(rows.len(), 8);
    let best: f64 = rows[0]["val_accuracy"].parse().unwrap();
    assert!(best >= 0.95, "best val_accuracy {best}");
    assert_eq!(rows[0]["rank"], "1");
    // Best first.
    let objectives: Vec<f64> = rows
        .iter()
        .map(|r| r["objective"].parse().unwrap())
        .collect();
    assert!(
        objectives.windows(2).all(|w| w[0] >= w[1]),
        "{objectives:?}"
    );
    for file in [
        "experiment.toml",
        "journal.jsonl",
        "curves.csv",
        "kiln.log",
        "trials/0/best.bpk",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    // A trial that ended keeps its best weights, not its checkpoints.
    assert!(!dir.path().join("trials/0/checkpoint.0.bin").exists());
}

#[test]
fn same_seed_gives_identical_leaderboards_and_workers_do_not_change_trials() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "d.toml", &digits_experiment("det", 4, 1, 4));
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    sweep(&file, &a, &[]);
    sweep(&file, &b, &[]);
    sweep(&file, &c, &["--workers", "2"]);
    let header = std::fs::read_to_string(a.join("leaderboard.csv")).unwrap();
    assert_eq!(header.lines().next().unwrap(), LEADERBOARD_COLUMNS);
    let (a, b, c) = (
        leaderboard_by_trial(&a),
        leaderboard_by_trial(&b),
        leaderboard_by_trial(&c),
    );
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "two runs with workers = 1");
    // With two workers each trial has the same parameters and, trained from its own seed, the
    // same metrics.
    assert_eq!(a, c, "workers = 1 against workers = 2");
    // The test split is measured once per trial, with the best weights: in the leaderboard
    // (LEADERBOARD_COLUMNS), never in the curves, where it would invite choosing by it.
    let curves = std::fs::read_to_string(dir.path().join("c/curves.csv")).unwrap();
    assert!(
        curves.starts_with("trial,epoch,elapsed_s,lr,train_loss,val_loss,val_accuracy,val_f1\n"),
        "{curves}"
    );
    assert!(a.values().all(|row| !row["test_accuracy"].is_empty()));
}

#[test]
fn grid_sweep_ends_when_the_grid_is_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = digits_experiment("grid", 50, 2, 2).replace(
        "[space]\nlearning_rate = { log_uniform = [1e-3, 3e-2] }\ndropout = { uniform = [0.0, 0.3] }",
        "[sampler]\nkind = \"grid\"\n\n[space]\nlearning_rate = { log_uniform = [1e-3, 1e-2], points = 3 }\noptimizer = { choice = [\"adam\", \"sgd\"] }",
    );
    let file = write(dir.path(), "g.toml", &experiment);
    sweep(&file, &dir.path().join("r"), &[]);
    let rows = csv_rows(&dir.path().join("r/leaderboard.csv"));
    assert_eq!(rows.len(), 6);
    let mut points: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["learning_rate"].clone(), r["optimizer"].clone()))
        .collect();
    points.sort();
    points.dedup();
    assert_eq!(points.len(), 6, "every grid point once: {points:?}");
}

#[test]
fn regression_reports_rmse_mae_r2_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = format!(
        r#"name = "reg"
[objective]
metric = "val_rmse"
[budget]
trials = 2
workers = 2
[data]
path = "{}"
target = "target"
task = "regression"
[train]
epochs = 40
learning_rate = 3e-3
[space]
loss = {{ choice = ["mse", "huber"] }}
"#,
        data("diabetes.csv")
    );
    let file = write(dir.path(), "r.toml", &experiment);
    sweep(&file, &dir.path().join("r"), &[]);
    let rows = csv_rows(&dir.path().join("r/leaderboard.csv"));
    let header: Vec<&String> = rows[0].keys().collect();
    for column in ["val_rmse", "val_mae", "val_r2", "test_rmse", "gap"] {
        assert!(rows[0].contains_key(column), "{column} in {header:?}");
    }
    let rmse: f64 = rows[0]["val_rmse"].parse().unwrap();
    let r2: f64 = rows[0]["val_r2"].parse().unwrap();
    // The target's standard deviation is about 77: a model that learned does much better.
    assert!(rmse < 65.0 && r2 > 0.3, "rmse {rmse}, r2 {r2}");
}

#[test]
fn ndarray_backend_trains_to_the_same_metrics_as_flex_within_rounding() {
    let dir = tempfile::tempdir().unwrap();
    let flex = digits_experiment("backends", 1, 1, 3);
    let ndarray = flex.replace("batch_size = 16", "batch_size = 16\nbackend = \"ndarray\"");
    sweep(
        &write(dir.path(), "f.toml", &flex),
        &dir.path().join("f"),
        &[],
    );
    sweep(
        &write(dir.path(), "n.toml", &ndarray),
        &dir.path().join("n"),
        &[],
    );
    let f = &csv_rows(&dir.path().join("f/leaderboard.csv"))[0];
    let n = &csv_rows(&dir.path().join("n/leaderboard.csv"))[0];
    let (fl, nl): (f64, f64) = (
        f["val_loss"].parse().unwrap(),
        n["val_loss"].parse().unwrap(),
    );
    assert!((fl - nl).abs() < 1e-3, "flex {fl} ndarray {nl}");
    assert!(n["val_accuracy"].parse::<f64>().unwrap() > 0.8);
}

#[test]
fn n_params_is_the_mlp_formula() {
    let dir = tempfile::tempdir().unwrap();
    sweep(
        &write(dir.path(), "p.toml", &digits_experiment("params", 1, 1, 1)),
        &dir.path().join("r"),
        &[],
    );
    let row = &csv_rows(&dir.path().join("r/leaderboard.csv"))[0];
    // 64 inputs, two hidden layers of 32, 10 classes; weights and biases.
    let expected = (64 * 32 + 32) + (32 * 32 + 32) + (32 * 10 + 10);
    assert_eq!(row["n_params"], expected.to_string());
}

#[test]
fn a_diverging_trial_fails_alone_and_all_failing_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // Divergence is a pure function of the trial: `retries` does not run it again.
    let experiment = digits_experiment("diverge", 3, 1, 3)
        .replace("workers = 1\n", "workers = 1\nretries = 2\n")
        .replace("learning_rate = { log_uniform = [1e-3, 3e-2] }", "learning_rate = { choice = [1e-3, 1e9] }\noptimizer = { choice = [\"sgd\"] }\nmomentum = { choice = [0.0] }");
    let file = write(dir.path(), "d.toml", &experiment);
    let results = dir.path().join("r");
    let output = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "-q",
    ]);
    let rows = csv_rows(&results.join("leaderboard.csv"));
    let failed: Vec<_> = rows.iter().filter(|r| r["state"] == "failed").collect();
    let complete = rows.iter().filter(|r| r["state"] == "complete").count();
    assert!(!failed.is_empty() && complete > 0, "{rows:?}");
    assert!(
        failed
            .iter()
            .all(|r| r["note"].starts_with("diverged at epoch")),
        "{failed:?}"
    );
    assert_eq!(
        rows.last().unwrap()["state"],
        "failed",
        "failed trials come last"
    );
    assert!(output.status.success(), "{}", text(&output));

    let all_bad = experiment.replace("choice = [1e-3, 1e9]", "choice = [1e9]");
    let file = write(dir.path(), "bad.toml", &all_bad);
    let output = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        dir.path().join("b").to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the first 3 trials to end all failed"),
        "{}",
        text(&output)
    );
}

#[test]
fn leaderboard_and_status_commands_describe_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    let file = write(dir.path(), "s.toml", &digits_experiment("show", 2, 2, 2));
    sweep(&file, &results, &[]);
    let output = run(&["leaderboard", results.to_str().unwrap(), "--top", "1"]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && out.lines().count() == 2,
        "{}",
        text(&output)
    );
    assert!(out.starts_with("rank  trial  state"), "{out}");
    let output = run(&["status", results.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("2 of 2: 2 complete, 0 pruned, 0 failed, 0 unfinished"),
        "{out}"
    );
    assert!(out.contains("best       trial"), "{out}");
    // Numbers for people: 4 significant digits (the CSV keeps every digit).
    let best = out.lines().find(|l| l.starts_with("best")).unwrap();
    let value = best.split_whitespace().nth(4).unwrap();
    assert!(value.parse::<f64>().is_ok() && value.len() <= 6, "{best}");
    // A finished sweep says so, and how to go on: no command to continue what is complete.
    let more = format!("resume {} --trials 4", results.display());
    assert!(
        out.contains("the sweep is complete") && out.contains(&more),
        "{out}"
    );
    let again = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    let said = text(&again);
    assert!(again.status.success(), "{said}");
    assert!(
        said.contains("Nothing ran: the sweep is complete") && said.contains(&more),
        "{said}"
    );
    let elsewhere = format!("kiln run {} --results NEW_FOLDER", file.display());
    assert!(said.contains(&elsewhere), "{said}");
}

#[test]
fn an_unwritable_results_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "u.toml",
        &digits_experiment("unwritable", 1, 1, 1),
    );
    let blocker = write(dir.path(), "not-a-folder", "");
    let results = blocker.join("results");
    let output = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot create the results folder") && stderr.contains("Not a directory"),
        "{stderr}"
    );
}

#[test]
fn completions_and_the_manual_come_from_the_command_definitions() {
    let output = run(&["completions", "bash"]);
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        script.contains("_kiln()") && script.contains("dashboard"),
        "{script}"
    );
    for shell in ["zsh", "fish", "powershell"] {
        let output = run(&["completions", shell]);
        assert!(
            output.status.success() && output.stdout.len() > 500,
            "{}",
            text(&output)
        );
    }
    let output = run(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let output = run(&["man"]);
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH kiln"),
        "{page}"
    );
    assert!(
        page.contains("enqueue") && page.contains("dashboard"),
        "{page}"
    );
}

#[test]
fn help_teaches_with_examples() {
    for command in [
        "run",
        "resume",
        "check",
        "leaderboard",
        "status",
        "dashboard",
    ] {
        let output = run(&[command, "--help"]);
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && (out.contains("Example:") || out.contains("Examples:")),
            "{command}: {out}"
        );
    }
    // Help speaks only of the command's own options: `resume` has no --storage.
    let resume = run(&["resume", "--help"]);
    let out = String::from_utf8_lossy(&resume.stdout);
    assert!(!out.contains("--storage"), "{out}");
}

#[test]
fn best_weights_load_in_plain_burn_code_and_reproduce_the_recorded_accuracy() {
    use burn::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "w.toml", &digits_experiment("weights", 1, 1, 5));
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let row = &csv_rows(&results.join("leaderboard.csv"))[0];

    let experiment = kiln::Experiment::load(&file).unwrap();
    let spec = kiln::train::spec::TrainSpec::parse(&experiment).unwrap();
    let data = kiln::train::data::Dataset::load(&experiment, &spec.data).unwrap();
    let trial = results.join("trials/0");
    let architecture = kiln::train::saved::ModelDescription::load(&trial)
        .unwrap()
        .architecture;
    let device = Device::flex();
    let mut rng = kiln::rng::stream(0, kiln::rng::Stream::Init, &[]);
    let model = architecture
        .build(&mut rng, &device)
        .load_file(trial.join("best.bpk"));
    let outputs = kiln::train::infer::predict(&model, &data.val, &architecture, &device);
    let correct = outputs
        .chunks(10)
        .zip(&data.val.classes)
        .filter(|(logits, class)| {
            let best = (0..10)
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                .unwrap();
            best as i64 == **class
        })
        .count();
    let accuracy = correct as f64 / data.val.rows as f64;
    assert_eq!(accuracy.to_string(), row["val_accuracy"]);
}

#[test]
fn a_synthetic_function_sweep_with_tpe_finds_the_branin_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let branin = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/branin.toml");
    let output = run(&["check", branin.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("objective  function (epochs = 5, function = \"branin\")"),
        "{}",
        text(&output)
    );
    sweep(&branin, &dir.path().join("r"), &[]);
    let rows = csv_rows(&dir.path().join("r/leaderboard.csv"));
    assert_eq!(rows.len(), 100);
    assert!(rows[0].contains_key("x1") && rows[0].contains_key("x2"));
    let best: f64 = rows[0]["value"].parse().unwrap();
    // Within 0.1 of the minimum: 100 random trials stay further off on most seeds (`cargo bench
    // --bench sweep -- samplers` prints random's median regret beside TPE's).
    assert!(best < 0.5, "best {best} (the minimum is 0.397887)");
    let curves = csv_rows(&dir.path().join("r/curves.csv"));
    assert_eq!(curves.len(), 500, "five epochs per trial");
    // The journal of a threaded objective reads back: status, importance, and a resume that
    // raises the budget and continues the TPE sequence.
    let results = dir.path().join("r");
    let output = run(&["status", results.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("importance x"),
        "{}",
        text(&output)
    );
    let importance = csv_rows(&results.join("importance.csv"));
    assert_eq!(importance.len(), 2);
    let output = run(&["resume", results.to_str().unwrap(), "--trials", "110", "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(csv_rows(&results.join("leaderboard.csv")).len(), 110);
}

#[test]
fn sobol_and_tpe_give_the_same_trials_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    for sampler in ["sobol", "tpe"] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/branin.toml"),
        )
        .unwrap()
        .replace("kind = \"tpe\"", &format!("kind = \"{sampler}\""))
        .replace("trials = 100", "trials = 25");
        let file = write(dir.path(), &format!("{sampler}.toml"), &text);
        let (a, b) = (
            dir.path().join(format!("{sampler}-a")),
            dir.path().join(format!("{sampler}-b")),
        );
        sweep(&file, &a, &[]);
        sweep(&file, &b, &[]);
        assert_eq!(
            leaderboard_by_trial(&a),
            leaderboard_by_trial(&b),
            "{sampler}"
        );
    }
}

#[test]
fn pruners_stop_bad_trials_record_why_and_save_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/branin.toml"),
    )
    .unwrap()
    .replace("kind = \"tpe\"", "kind = \"random\"")
    .replace("trials = 100", "trials = 30")
    .replace("epochs = 5", "epochs = 9");
    for (pruner, expected) in [
        ("median", "by the median rule"),
        ("asha", "by asha"),
        ("hyperband", "by hyperband"),
    ] {
        let text = format!("{base}\n[pruner]\nkind = \"{pruner}\"\nmin_trials = 3\n");
        let text = if pruner == "median" {
            text
        } else {
            text.replace("min_trials = 3\n", "")
        };
        let file = write(dir.path(), &format!("{pruner}.toml"), &text);
        let results = dir.path().join(pruner);
        sweep(&file, &results, &[]);
        let rows = csv_rows(&results.join("leaderboard.csv"));
        assert_eq!(rows.len(), 30, "{pruner}");
        let pruned: Vec<_> = rows.iter().filter(|r| r["state"] == "pruned").collect();
        assert!(pruned.len() >= 5, "{pruner}: {} pruned", pruned.len());
        assert!(
            pruned.iter().all(|r| r["note"].contains(expected)),
            "{pruner}: {pruned:?}"
        );
        assert!(
            pruned
                .iter()
                .all(|r| r["epochs"].parse::<u32>().unwrap() < 9),
            "{pruner}"
        );
        // Complete trials rank before pruned ones.
        let first_pruned = rows.iter().position(|r| r["state"] == "pruned").unwrap();
        assert!(
            rows[first_pruned..]
                .iter()
                .all(|r| r["state"] != "complete"),
            "{pruner}"
        );
        let epochs: u32 = rows
            .iter()
            .map(|r| r["epochs"].parse::<u32>().unwrap())
            .sum();
        assert!(epochs < 30 * 9, "{pruner}: {epochs} epochs");
    }
}

#[test]
fn compare_puts_sweeps_with_different_spaces_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    sweep(
        &write(dir.path(), "a.toml", &digits_experiment("sweep-a", 3, 2, 3)),
        &a,
        &[],
    );
    let other = digits_experiment("sweep-b", 2, 2, 3).replace(
        "dropout = { uniform = [0.0, 0.3] }",
        "batch_size = { choice = [32, 64] }",
    );
    sweep(&write(dir.path(), "b.toml", &other), &b, &[]);
    let compare = |extra: &[&str]| -> Vec<std::collections::BTreeMap<String, String>> {
        let mut args = vec!["compare", a.to_str().unwrap(), b.to_str().unwrap()];
        args.extend_from_slice(extra);
        let output = run(&args);
        assert!(output.status.success(), "{}", text(&output));
        let out = dir.path().join("out.csv");
        std::fs::write(&out, &output.stdout).unwrap();
        csv_rows(&out)
    };
    let all = compare(&[]);
    assert_eq!(all.len(), 5);
    assert_eq!(all.iter().filter(|r| r["sweep"] == "sweep-a").count(), 3);
    // A parameter a sweep does not search is empty there.
    assert!(
        all.iter()
            .filter(|r| r["sweep"] == "sweep-b")
            .all(|r| r["dropout"].is_empty() && !r["batch_size"].is_empty())
    );
    assert!(
        all.iter()
            .filter(|r| r["sweep"] == "sweep-a")
            .all(|r| r["batch_size"].is_empty())
    );
    // Sorted by val_loss, lowest first, the best two overall.
    let sorted = compare(&["--sort", "val_loss", "--top", "2"]);
    assert_eq!(sorted.len(), 2);
    let losses: Vec<f64> = all.iter().map(|r| r["val_loss"].parse().unwrap()).collect();
    let lowest = losses.iter().copied().fold(f64::MAX, f64::min);
    assert_eq!(sorted[0]["val_loss"].parse::<f64>().unwrap(), lowest);
    assert!(
        sorted[0]["val_loss"].parse::<f64>().unwrap()
            <= sorted[1]["val_loss"].parse::<f64>().unwrap()
    );
    // `objective` sorts by the sweeps' direction: on these maximize sweeps, highest first.
    let by_objective = compare(&["--sort", "objective"]);
    let objectives: Vec<f64> = by_objective
        .iter()
        .map(|r| r["objective"].parse().unwrap())
        .collect();
    assert!(
        objectives.windows(2).all(|w| w[0] >= w[1]),
        "{objectives:?}"
    );
    // Sweeps of opposite directions have objectives that do not sort together.
    let c = dir.path().join("c");
    let minimize = digits_experiment("sweep-c", 2, 2, 3)
        .replace("metric = \"val_accuracy\"", "metric = \"val_loss\"");
    sweep(&write(dir.path(), "c.toml", &minimize), &c, &[]);
    refused(
        &[
            "compare",
            a.to_str().unwrap(),
            c.to_str().unwrap(),
            "--sort",
            "objective",
        ],
        "different directions",
    );
    // Filters.
    assert_eq!(compare(&["--top", "1"]).len(), 2, "the best of each sweep");
    let picked = compare(&["--trials", "0,2"]);
    assert!(
        picked
            .iter()
            .all(|r| r["trial"] == "0" || r["trial"] == "2")
            && picked.len() == 3
    );
    assert!(compare(&["--state", "failed"]).is_empty());
    // Curves: one column per trial and metric, one row per epoch.
    let curves = compare(&["--trials", "1", "--curves"]);
    assert_eq!(curves.len(), 3);
    assert!(
        curves[0].contains_key("sweep-a/1/val_accuracy")
            && curves[0].contains_key("sweep-b/1/train_loss")
    );
    // A column that does not exist is bad input; so is a trial no sweep has.
    refused(
        &["compare", a.to_str().unwrap(), "--sort", "val_acc"],
        "val_acc",
    );
    refused(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--trials",
            "2,99",
        ],
        "no compared sweep has trial 99 (the largest has trials 0 to 2)",
    );
}

#[test]
fn plots_are_svg_with_the_expected_series_and_the_report_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    sweep(
        &write(
            dir.path(),
            "p.toml",
            &(digits_experiment("plots", 12, 2, 4)
                + "activation = { choice = [\"relu\", \"tanh\"] }\n"),
        ),
        &results,
        &[],
    );
    let svg = |name: &str| -> String {
        let text = std::fs::read_to_string(results.join("plots").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name} is not XML: {e}"));
        text
    };
    // One dot per trial, and the best-so-far line.
    let history = svg("history.svg");
    assert_eq!(
        history.matches("<circle").count(),
        12 + 1,
        "12 trials and the legend's dot"
    );
    assert!(history.contains("<polyline"), "best so far");
    // Train and val curves of the top five trials.
    let curves = svg("curves.svg");
    assert!(curves.matches("<polyline").count() >= 5, "val lines");
    for parameter in ["learning_rate", "dropout"] {
        assert_eq!(
            svg(&format!("param_{parameter}.svg"))
                .matches("<circle")
                .count(),
            12,
            "{parameter}"
        );
    }
    assert!(svg("parallel.svg").matches("<polyline").count() >= 12);
    let importance = svg("importance.svg");
    assert_eq!(
        importance.matches("<rect").count() - 1,
        3,
        "a bar per parameter (and the background)"
    );
    // Axes read as people write the values: a log parameter at powers of ten, a choice by its
    // names, each once; trials and epochs as whole numbers.
    let labels = |name: &str| -> Vec<String> {
        let text = svg(name);
        let document = roxmltree::Document::parse(&text).unwrap();
        document
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .filter(|t| !t.is_empty())
            .collect()
    };
    let learning_rate = labels("param_learning_rate.svg");
    for tick in ["1e-3", "1e-2"] {
        assert!(learning_rate.iter().any(|l| l == tick), "{learning_rate:?}");
    }
    assert!(
        !learning_rate.iter().any(|l| l.contains("log10")),
        "{learning_rate:?}"
    );
    let activation = labels("param_activation.svg");
    for name in ["relu", "tanh"] {
        assert_eq!(
            activation.iter().filter(|l| *l == name).count(),
            1,
            "{activation:?}"
        );
    }
    let history = labels("history.svg");
    assert!(history.iter().any(|l| l == "10"), "{history:?}");
    assert!(!history.iter().any(|l| l.ends_with(".0")), "{history:?}");
    // The report holds every plot inline, and numbers for people.
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(
        !html.contains("src="),
        "nothing linked: the page stands alone"
    );
    let plots = std::fs::read_dir(results.join("plots")).unwrap().count();
    assert_eq!(html.matches("<svg").count(), plots);
    assert!(html.contains("<table>") && html.contains("val_accuracy"));
    let page = html.replace("<!DOCTYPE html>", "");
    let document = roxmltree::Document::parse(&page).unwrap();
    for cell in document.descendants().filter(|n| n.has_tag_name("td")) {
        let text = cell.text().unwrap_or_default();
        let digits = text
            .split('e')
            .next()
            .unwrap()
            .trim_start_matches(['-', '0', '.'])
            .replace('.', "");
        assert!(
            text.parse::<f64>().is_err() || digits.len() <= 4 || !text.contains('.'),
            "{text}"
        );
    }
    let header: Vec<&str> = document
        .descendants()
        .filter(|n| n.has_tag_name("th"))
        .filter_map(|n| n.text())
        .collect();
    let position = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert!(
        position("learning_rate") < position("val_loss"),
        "{header:?}"
    );
    // `kiln plot` redraws them.
    std::fs::remove_dir_all(results.join("plots")).unwrap();
    let output = run(&["plot", results.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(results.join("plots/history.svg").exists());
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        println!("SKIPPED: no chromium here (.ci/run installs Debian's chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    sweep(
        &write(dir.path(), "h.toml", &digits_experiment("html", 10, 2, 3)),
        &results,
        &[],
    );
    let shot = dir.path().join("report.png");
    let profile = dir.path().join("profile");
    let output = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1000,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", results.join("report.html").display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "no screenshot: {}", text(&output));
    let (coloured, total) = inked_pixels(std::fs::File::open(&shot).unwrap());
    // The table's text and the plots' dots and lines: far from a blank page.
    assert!(
        coloured * 100 > total,
        "only {coloured} of {total} pixels are not white"
    );
}

#[test]
fn importance_ranks_the_input_that_drives_a_synthetic_objective_first() {
    let dir = tempfile::tempdir().unwrap();
    // sphere(x1, x2) with x2 confined near 0: x1 decides the value, x2 barely matters.
    let experiment = "name = \"imp\"\nseed = 4\n[objective]\nmetric = \"value\"\nkind = \"function\"\nfunction = \"sphere\"\n[budget]\ntrials = 60\nworkers = 1\n[space]\nx1 = { uniform = [-10.0, 10.0] }\nx2 = { uniform = [-0.01, 0.01] }\n";
    let results = dir.path().join("r");
    sweep(&write(dir.path(), "i.toml", experiment), &results, &[]);
    let ranked = csv_rows(&results.join("importance.csv"));
    assert_eq!(ranked[0]["parameter"], "x1", "{ranked:?}");
    let (first, second): (f64, f64) = (
        ranked[0]["importance"].parse().unwrap(),
        ranked[1]["importance"].parse().unwrap(),
    );
    assert!(first > 3.0 * second, "{ranked:?}");
}

#[test]
fn a_resume_that_records_nothing_keeps_reports_that_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "f.toml",
        "name = \"f\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = 6\n[space]\nx1 = { uniform = [-1.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let folder = results.to_str().unwrap();
    let modified = |name: &str| {
        std::fs::metadata(results.join(name))
            .and_then(|m| m.modified())
            .unwrap()
    };
    let resume = || {
        let output = run(&["resume", folder, "-q"]);
        assert!(output.status.success(), "{}", text(&output));
    };
    // File times tick coarsely (milliseconds): reports written in the tick of the journal's
    // last event count as stale, and the first resume may write them again; later ones not.
    resume();
    let before = (modified("leaderboard.csv"), modified("report.html"));
    resume();
    assert_eq!(
        (modified("leaderboard.csv"), modified("report.html")),
        before,
        "written again though the journal did not change"
    );
    // A missing report is written again; so is every report once the journal changes.
    std::fs::remove_file(results.join("curves.csv")).unwrap();
    resume();
    assert!(results.join("curves.csv").exists());
    let journal = std::fs::File::options()
        .append(true)
        .open(results.join("journal.jsonl"))
        .unwrap();
    journal.set_modified(std::time::SystemTime::now()).unwrap();
    resume();
    assert!(modified("leaderboard.csv") > before.0);
    assert!(modified("report.html") > before.1);
}

#[test]
fn progress_goes_to_stderr_data_to_stdout_and_the_last_line_counts_no_trial_running() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "f.toml",
        "name = \"f\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\nepochs = 3\n[budget]\ntrials = 6\nworkers = 2\n[space]\nx1 = { uniform = [-1.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    let output = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no progress line: {}", text(&output)));
    assert!(last.starts_with("[6/6]"), "{last}");
    assert!(last.contains("running 0,"), "{last}");
    // The running trials are shown with their epoch and latest value.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("running: #") && l.contains(" epoch ")),
        "{stderr}"
    );
    // Where the results are, for people; the table of the best trials, as data.
    assert!(stderr.contains(&format!(
        "Report: {}",
        results.join("report.html").display()
    )));
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with('[') || l.starts_with("running:")),
        "{stdout}"
    );
    assert!(stdout.starts_with("rank  trial  state"), "{stdout}");
}

#[test]
fn a_setting_only_some_optimizers_use_is_left_out_of_the_others_trials() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = digits_experiment("cond", 12, 2, 2)
        + "optimizer = { choice = [\"sgd\", \"adamw\"] }\nmomentum = { uniform = [0.5, 0.95] }\n";
    let file = write(dir.path(), "c.toml", &experiment);
    // `kiln check` shows the condition it took from the settings table.
    let check = run(&["check", file.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(
        shown.contains("when optimizer in {sgd}"),
        "{}",
        text(&check)
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let journal = std::fs::read_to_string(results.join("journal.jsonl")).unwrap();
    let created: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "trial_created")
        .collect();
    let branches: Vec<bool> = created
        .iter()
        .map(|e| {
            let sgd = e["params"]["optimizer"] == "sgd";
            assert_eq!(sgd, e["params"].get("momentum").is_some(), "{e}");
            sgd
        })
        .collect();
    assert!(
        branches.contains(&true) && branches.contains(&false),
        "{branches:?}"
    );
    for row in csv_rows(&results.join("leaderboard.csv")) {
        assert_eq!(
            row["optimizer"] == "sgd",
            !row["momentum"].is_empty(),
            "{row:?}"
        );
    }
    let importance = csv_rows(&results.join("importance.csv"));
    assert!(
        importance
            .iter()
            .all(|r| r["importance"].parse::<f64>().is_ok_and(f64::is_finite)),
        "{importance:?}"
    );
}

#[test]
fn infeasible_trials_rank_after_feasible_ones_with_the_reason_in_their_note() {
    let dir = tempfile::tempdir().unwrap();
    // The lowest values break the constraint: the best feasible trial is not the lowest one.
    let file = write(
        dir.path(),
        "c.toml",
        "name = \"c\"\nseed = 3\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = 30\nworkers = 1\n[space]\nx1 = { uniform = [-1.0, 1.0] }\nx2 = { uniform = [-1.0, 1.0] }\n\n[[constraint]]\nmetric = \"value\"\nmin = 0.2\n",
    );
    let check = run(&["check", file.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(shown.contains("constraint value >= 0.2"), "{shown}");
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let rows = csv_rows(&results.join("leaderboard.csv"));
    let value = |r: &std::collections::BTreeMap<String, String>| r["value"].parse::<f64>().unwrap();
    let first_infeasible = rows
        .iter()
        .position(|r| value(r) < 0.2)
        .expect("some trial breaks it");
    assert!(first_infeasible > 0, "a feasible trial ranks first");
    for (i, row) in rows.iter().enumerate() {
        let infeasible = value(row) < 0.2;
        assert_eq!(infeasible, i >= first_infeasible, "row {i}: {row:?}");
        assert_eq!(
            infeasible,
            row["note"].starts_with("infeasible: value"),
            "{row:?}"
        );
    }
    // Among the infeasible, the nearest to feasible first.
    let tail: Vec<f64> = rows[first_infeasible..].iter().map(value).collect();
    assert!(tail.windows(2).all(|w| w[0] >= w[1]), "{tail:?}");
    let status = run(&["status", results.to_str().unwrap()]);
    let best = String::from_utf8_lossy(&status.stdout);
    assert!(
        best.contains(&format!("best       trial {}:", rows[0]["trial"])),
        "{best}"
    );
}

#[test]
fn a_warm_started_sweep_reads_an_earlier_sweep_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = |name: &str, warm: &str| {
        format!(
            "name = \"{name}\"\n[objective]\nkind = \"function\"\nfunction = \"branin\"\nmetric = \"value\"\n[budget]\ntrials = 20\nworkers = 1\n[sampler]\nkind = \"tpe\"\n{warm}[space]\nx1 = {{ uniform = [-5.0, 10.0] }}\nx2 = {{ uniform = [0.0, 15.0] }}\n"
        )
    };
    let earlier = dir.path().join("earlier");
    sweep(
        &write(dir.path(), "a.toml", &experiment("a", "")),
        &earlier,
        &[],
    );
    let file = write(
        dir.path(),
        "b.toml",
        &experiment("b", "warm_start = [\"earlier\"]\n"),
    );
    let results = dir.path().join("later");
    sweep(&file, &results, &[]);
    // Its first trials come from the model of the earlier ones, not from a random start: the
    // same experiment without the warm start begins differently.
    let cold = dir.path().join("cold");
    sweep(
        &write(dir.path(), "c.toml", &experiment("b", "")),
        &cold,
        &[],
    );
    let first = |d: &Path| leaderboard_by_trial(d)["0"]["x1"].clone();
    assert_ne!(first(&results), first(&cold));
}

#[test]
fn the_leaderboard_fits_the_terminal_with_results_and_parameters_first() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    sweep(
        &write(dir.path(), "w.toml", &digits_experiment("wide", 3, 2, 2)),
        &results,
        &[],
    );
    let r = results.to_str().unwrap();
    let narrow = crate::common::kiln()
        .args(["leaderboard", r])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&narrow.stdout);
    assert!(narrow.status.success(), "{}", text(&narrow));
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header[..6],
        [
            "rank",
            "trial",
            "state",
            "objective",
            "learning_rate",
            "dropout"
        ]
    );
    assert!(
        String::from_utf8_lossy(&narrow.stderr).contains("--wide shows them all"),
        "{}",
        text(&narrow)
    );
    let wide = crate::common::kiln()
        .args(["leaderboard", r, "--wide"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&wide.stdout);
    assert!(out.lines().any(|l| l.chars().count() > 80), "{out}");
    assert!(out.lines().next().unwrap().contains("test_f1"), "{out}");
}

#[test]
fn a_file_without_objective_minimises_val_loss_and_check_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let experiment =
        digits_experiment("noobj", 2, 2, 2).replace("[objective]\nmetric = \"val_accuracy\"\n", "");
    assert!(!experiment.contains("[objective]"), "{experiment}");
    let file = write(dir.path(), "n.toml", &experiment);
    let check = run(&["check", file.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{}", text(&check));
    assert!(shown.contains("minimize val_loss"), "{shown}");
    assert!(
        shown.contains("the default: the file has no [objective]"),
        "{shown}"
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let rows = csv_rows(&results.join("leaderboard.csv"));
    assert_eq!(rows[0]["objective"], rows[0]["val_loss"]);
}

#[test]
fn check_names_the_feature_columns_and_both_commands_warn_of_a_sweep_without_space() {
    let dir = tempfile::tempdir().unwrap();
    let full = digits_experiment("nospace", 2, 1, 1);
    let experiment = &full[..full.find("[space]").unwrap()];
    let file = write(dir.path(), "n.toml", experiment);
    let check = run(&["check", file.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        shown.contains("features   pixel_0_0, pixel_0_1, pixel_0_2")
            && shown.contains("and 52 more"),
        "{shown}"
    );
    let warning = "no [space]: all 2 trials train the same settings and differ only in their seed";
    assert!(
        shown.contains(&format!("warning: {}", file.display())),
        "{shown}"
    );
    assert!(shown.contains(warning), "{shown}");
    let results = dir.path().join("r");
    let output = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "-q",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(warning),
        "{}",
        text(&output)
    );
}

#[test]
fn rust_log_debug_shows_what_a_person_debugging_a_sweep_needs() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = digits_experiment("debug", 6, 2, 4)
        + "\n[pruner]\nkind = \"median\"\nwarmup_epochs = 1\nmin_trials = 2\n";
    let experiment = experiment.replace("[space]", "[sampler]\nkind = \"random\"\n\n[space]");
    let file = write(dir.path(), "d.toml", &experiment);
    let results = dir.path().join("r");
    let output = crate::common::kiln()
        .args(["run", file.to_str().unwrap(), "--results"])
        .arg(&results)
        .arg("-q")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let log = String::from_utf8_lossy(&output.stderr);
    for needed in [
        "trial 0: random proposed ",
        "worker 0 started: process ",
        "checkpoint of epoch 1 written to ",
        "journal synced: ",
        "the pruner lets it go on",
    ] {
        assert!(log.contains(needed), "no `{needed}` in:\n{log}");
    }
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal"
    );
}

#[test]
fn a_parameter_named_with_a_slash_gets_its_plot_and_the_sweep_its_report() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.py",
        "import json, os\nlr = json.loads(os.environ['KILN_PARAMS'])['optimizer/lr']\nprint('kiln-report ' + json.dumps({'epoch': 1, 'loss': lr * lr}))\n",
    );
    let file = write(
        dir.path(),
        "s.toml",
        "name = \"s\"\n[objective]\ncommand = [\"python3\", \"p.py\"]\nmetrics = [\"loss\"]\nmetric = \"loss\"\n[budget]\ntrials = 4\nworkers = 1\n[space]\n\"optimizer/lr\" = { uniform = [-1.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let plots: Vec<String> = std::fs::read_dir(results.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        plots
            .iter()
            .any(|p| p.starts_with("param_optimizer_lr-") && p.ends_with(".svg")),
        "{plots:?}"
    );
    assert!(results.join("report.html").exists());
}
