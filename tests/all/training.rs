//! The built-in trainer's features act, not just parse: schedules, label smoothing, L1,
//! gradient clipping; and a trial's saved model predicts what the trial recorded.

use crate::common::{csv_rows, data, refused, run, sweep, text, write};
use std::path::Path;

/// One trial on digits with a fixed split column (so a test can pick the test rows), the given
/// extra `[model]` and `[train]` lines, `epochs` epochs, and no search.
fn one_trial(dir: &Path, name: &str, model: &str, train: &str, epochs: u32) -> std::path::PathBuf {
    let digits = std::fs::read_to_string(data("digits.csv")).unwrap();
    let split = std::fs::read_to_string(data("digits_split.csv")).unwrap();
    let merged: String = digits
        .lines()
        .zip(split.lines())
        .map(|(d, s)| format!("{d},{s}\n"))
        .collect();
    let csv = write(dir, "digits_split_column.csv", &merged);
    let experiment = format!(
        "name = \"{name}\"\nseed = 3\n[objective]\nmetric = \"val_accuracy\"\n[budget]\ntrials = 1\nworkers = 1\n[data]\npath = \"{}\"\ntarget = \"label\"\ntask = \"classification\"\nsplit_column = \"split\"\n{image}[model]\nhidden = 32\n{model}\n[train]\nepochs = {epochs}\n{train}\n",
        csv.display(),
        image = if model.contains("cnn") {
            "image = [1, 8, 8]\n"
        } else {
            ""
        },
    );
    let file = write(dir, &format!("{name}.toml"), &experiment);
    let results = dir.join(name);
    sweep(&file, &results, &[]);
    results
}

fn column(results: &Path, name: &str) -> Vec<f64> {
    csv_rows(&results.join("curves.csv"))
        .iter()
        .map(|r| r[name].parse().unwrap())
        .collect()
}

#[test]
fn the_lr_column_follows_each_schedules_formula() {
    let dir = tempfile::tempdir().unwrap();
    let lr0: f64 = 0.01;
    let pi = std::f64::consts::PI;
    // (schedule settings, the rate of epochs 1..=6)
    let cases: Vec<(&str, Vec<f64>)> = vec![
        // Warm-up epoch 1 at lr x 1/2, then lr for two epochs, halved every two.
        (
            "lr_schedule = \"step\"\nstep_size = 2\ngamma = 0.5\nwarmup_epochs = 1",
            vec![0.005, 0.01, 0.01, 0.005, 0.005, 0.0025],
        ),
        (
            "lr_schedule = \"exponential\"\ngamma = 0.9",
            (0..6).map(|t| lr0 * 0.9f64.powi(t)).collect(),
        ),
        (
            "lr_schedule = \"cosine\"",
            (0..6)
                .map(|t| 0.5 * lr0 * (1.0 + (pi * t as f64 / 6.0).cos()))
                .collect(),
        ),
        ("lr_schedule = \"constant\"", vec![lr0; 6]),
    ];
    for (i, (schedule, expected)) in cases.iter().enumerate() {
        let results = one_trial(
            dir.path(),
            &format!("schedule{i}"),
            "",
            &format!("learning_rate = 0.01\n{schedule}"),
            6,
        );
        let lr = column(&results, "lr");
        assert_eq!(lr.len(), 6, "{schedule}");
        for (got, want) in lr.iter().zip(expected) {
            assert!(
                (got - want).abs() < 1e-15,
                "{schedule}: {lr:?} against {expected:?}"
            );
        }
    }
}

#[test]
fn label_smoothing_raises_the_training_loss_floor() {
    let dir = tempfile::tempdir().unwrap();
    let plain = one_trial(dir.path(), "plain", "", "learning_rate = 0.003", 25);
    let smoothed = one_trial(
        dir.path(),
        "smoothed",
        "",
        "learning_rate = 0.003\nlabel_smoothing = 0.2",
        25,
    );
    let floor = |r: &Path| column(r, "train_loss").into_iter().fold(f64::MAX, f64::min);
    // With 10 classes and smoothing 0.2 the best possible cross-entropy is
    // -(0.82 ln 0.82 + 9 x 0.02 ln 0.02) = 0.867.
    assert!(
        floor(&smoothed) > 0.86,
        "smoothed floor {}",
        floor(&smoothed)
    );
    assert!(floor(&plain) < 0.2, "plain floor {}", floor(&plain));
}

/// The network of trial 0, built from its `model.json`, with weights drawn from `seed`.
fn network(results: &Path, seed: u64) -> kiln::train::model::Network {
    let architecture = kiln::train::saved::ModelDescription::load(&results.join("trials/0"))
        .unwrap()
        .architecture;
    let mut rng = kiln::rng::stream(seed, kiln::rng::Stream::Init, &[]);
    architecture.build(&mut rng, &burn::prelude::Device::flex())
}

fn load_weights(results: &Path) -> Vec<f32> {
    use burn::prelude::*;
    network(results, 0)
        .load_file(results.join("trials/0/best.bpk"))
        .weights()
}

#[test]
fn l1_drives_more_weights_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let none = load_weights(&one_trial(
        dir.path(),
        "no-l1",
        "",
        "learning_rate = 0.003\nweight_decay = 0.0",
        15,
    ));
    let l1 = load_weights(&one_trial(
        dir.path(),
        "l1",
        "",
        "learning_rate = 0.003\nl1 = 0.001",
        15,
    ));
    let near_zero = |w: &[f32]| w.iter().filter(|v| v.abs() < 1e-2).count() as f64 / w.len() as f64;
    assert!(
        near_zero(&l1) > 2.0 * near_zero(&none),
        "l1 {} none {}",
        near_zero(&l1),
        near_zero(&none)
    );
}

#[test]
fn clipping_by_value_bounds_every_update() {
    let dir = tempfile::tempdir().unwrap();
    // One epoch of one step (the batch is the whole train split) of plain SGD, lr 1.
    let results = one_trial(
        dir.path(),
        "clip",
        "",
        "optimizer = \"sgd\"\nmomentum = 0.0\nlearning_rate = 1.0\nbatch_size = 2000\ngrad_clip_value = 0.001",
        1,
    );
    let after = load_weights(&results);
    // The initial weights: the trial's own seed, drawn again.
    let before = network(&results, kiln::rng::trial_seed(3, 0)).weights();
    let largest = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(largest <= 0.001 + 1e-6, "largest change {largest}");
    assert!(largest > 0.0009, "the step did move weights: {largest}");
}

#[test]
fn predict_on_the_test_rows_reproduces_the_recorded_test_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let results = one_trial(dir.path(), "predict", "", "learning_rate = 0.003", 8);
    let merged = std::fs::read_to_string(dir.path().join("digits_split_column.csv")).unwrap();
    let mut lines = merged.lines();
    let mut test_rows = format!("{}\n", lines.next().unwrap());
    test_rows.extend(
        lines
            .filter(|l| l.ends_with(",test"))
            .map(|l| format!("{l}\n")),
    );
    let test_csv = write(dir.path(), "test_rows.csv", &test_rows);
    let out = dir.path().join("predictions.csv");
    let output = run(&[
        "predict",
        results.to_str().unwrap(),
        "--trial",
        "best",
        "--data",
        test_csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let predictions = csv_rows(&out);
    let truth = csv_rows(&test_csv);
    assert_eq!(predictions.len(), 270);
    let correct = predictions
        .iter()
        .zip(&truth)
        .filter(|(p, t)| p["prediction"] == t["label"])
        .count();
    let accuracy = correct as f64 / 270.0;
    let recorded = &csv_rows(&results.join("leaderboard.csv"))[0]["test_accuracy"];
    assert_eq!(&accuracy.to_string(), recorded);
    let total: f64 = (0..10)
        .map(|c| predictions[0][&format!("prob_{c}")].parse::<f64>().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    let description = std::fs::read_to_string(results.join("trials/0/model.json")).unwrap();
    assert!(
        description.contains("\"feature_mean\"") && description.contains("\"classes\""),
        "{description}"
    );
}

#[test]
fn batch_and_layer_norm_train_and_count_their_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mlp = (64 * 32 + 32) + (32 * 32 + 32) + (32 * 10 + 10);
    for norm in ["batch", "layer"] {
        let results = one_trial(
            dir.path(),
            norm,
            &format!("norm = \"{norm}\""),
            "learning_rate = 0.003",
            6,
        );
        let row = &csv_rows(&results.join("leaderboard.csv"))[0];
        // A scale and a shift per unit of each of the two hidden layers.
        assert_eq!(row["n_params"], (mlp + 2 * 2 * 32).to_string(), "{norm}");
        let accuracy: f64 = row["val_accuracy"].parse().unwrap();
        assert!(accuracy > 0.9, "{norm}: {accuracy}");
    }
}

#[test]
fn the_cnn_learns_digits_as_images_and_counts_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let results = one_trial(
        dir.path(),
        "cnn",
        "kind = \"cnn\"\nchannels = 8\nkernel_size = 3\nconv_layers = 2\nlayers = 1",
        "learning_rate = 0.003",
        8,
    );
    let row = &csv_rows(&results.join("leaderboard.csv"))[0];
    let accuracy: f64 = row["val_accuracy"].parse().unwrap();
    assert!(accuracy >= 0.95, "val_accuracy {accuracy}");
    // conv 1->8 and 8->16 (3x3, with biases), 2x2 pooling to 16x4x4, then 256->32->10.
    let expected = (9 * 8 + 8) + (8 * 9 * 16 + 16) + (256 * 32 + 32) + (32 * 10 + 10);
    assert_eq!(row["n_params"], expected.to_string());
}

#[test]
fn embeddings_train_on_string_columns_and_unseen_categories_still_predict() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = format!(
        "name = \"emb\"\n[objective]\nmetric = \"val_rmse\"\n[budget]\ntrials = 1\nworkers = 1\n[data]\npath = \"{}\"\ntarget = \"target\"\ntask = \"regression\"\ncategorical = [\"sex\", \"age_band\"]\n[model]\nhidden = 16\nembedding_dim = 3\n[train]\nepochs = 40\nlearning_rate = 3e-3\n",
        data("diabetes_categorical.csv")
    );
    let file = write(dir.path(), "e.toml", &experiment);
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let row = &csv_rows(&results.join("leaderboard.csv"))[0];
    // 9 numeric columns + 2 x 3 embedding values in; tables of 2 + 1 and 3 + 1 categories.
    let expected = (2 + 1) * 3 + (3 + 1) * 3 + (15 * 16 + 16) + (16 * 16 + 16) + (16 + 1);
    assert_eq!(row["n_params"], expected.to_string());
    let rmse: f64 = row["val_rmse"].parse().unwrap();
    assert!(
        rmse < 65.0,
        "val_rmse {rmse} (the target's standard deviation is about 77)"
    );
    // A category never seen in training maps to the unseen slot instead of failing.
    let rows = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,age_band\n0.03,sex_3,0.06,0.02,-0.04,-0.03,-0.04,0.0,0.02,-0.01,middle\n";
    let input = write(dir.path(), "new.csv", rows);
    let output = run(&[
        "predict",
        results.to_str().unwrap(),
        "--data",
        input.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let value: f64 = String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!((25.0..350.0).contains(&value), "{value}");
}

#[test]
fn predict_refuses_changed_weights_and_cells_that_are_not_finite_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let results = one_trial(dir.path(), "guard", "", "learning_rate = 0.003", 2);
    let digits = std::fs::read_to_string(data("digits.csv")).unwrap();
    let mut lines = digits.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let r = results.to_str().unwrap();
    let good = write(dir.path(), "good.csv", &format!("{header}\n{row}\n"));
    let output = run(&["predict", r, "--data", good.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    for cell in ["nan", "inf", "-inf"] {
        let bad = row.replacen("0,", &format!("{cell},"), 1);
        let file = write(dir.path(), "bad.csv", &format!("{header}\n{bad}\n"));
        let output = run(&["predict", r, "--data", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{cell}: {}", text(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains("not a finite number"));
    }
    let weights = results.join("trials/0/best.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 4] {
        *b ^= 0x5a;
    }
    std::fs::write(&weights, bytes).unwrap();
    let output = run(&["predict", r, "--data", good.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("does not match its checksum"),
        "{}",
        text(&output)
    );
}

#[test]
fn classes_sort_one_way_whatever_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,b,label\n");
    for i in 0..30 {
        let label = ["2", "10", "1a"][i % 3];
        csv.push_str(&format!("{},{},{label}\n", i % 7, i % 5));
    }
    let file = write(dir.path(), "mixed.csv", &csv);
    let experiment = format!(
        "name = \"mixed\"\n[objective]\nmetric = \"val_accuracy\"\n[data]\npath = \"{}\"\ntarget = \"label\"\ntask = \"classification\"\n",
        file.display()
    );
    let file = write(dir.path(), "mixed.toml", &experiment);
    let output = run(&["check", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("3 classes"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_model_too_large_to_build_is_refused_by_check_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = crate::common::digits_experiment("huge", 1, 1, 1)
        .replace("hidden = 32", "hidden = 100000000000");
    let searched = crate::common::digits_experiment("huge", 1, 1, 1).replace(
        "[space]\n",
        "[space]\nhidden = { int = [16, 100000], log = true }\n",
    );
    for (name, experiment, at) in [
        ("h.toml", fixed, "h.toml:17:1"),
        ("s.toml", searched, "s.toml:28:1"),
    ] {
        let file = write(dir.path(), name, &experiment);
        let results = dir.path().join(name.replace(".toml", ""));
        let f = file.to_str().unwrap();
        refused(&["check", f], "lower `hidden` or `layers`");
        let output = run(&["run", f, "--results", results.to_str().unwrap(), "-q"]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(at), "{}", text(&output));
        assert!(!results.exists(), "nothing written");
    }
    // The largest model of a sensible range is counted, and passes.
    let fine = crate::common::digits_experiment("fine", 1, 1, 1).replace(
        "[space]\n",
        "[space]\nhidden = { int = [16, 4096], log = true }\n",
    );
    let file = write(dir.path(), "fine.toml", &fine);
    let output = run(&["check", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn a_semicolon_file_with_an_id_column_trains_with_delimiter_and_ignore_and_predicts_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    // iris as a European spreadsheet saves it: `;` between cells, and a row id first.
    let iris = std::fs::read_to_string(crate::common::data("iris.csv")).unwrap();
    let semicolons: String = iris
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let id = if i == 0 {
                "id".to_string()
            } else {
                format!("r{i}")
            };
            format!("{id};{}\n", line.replace(',', ";"))
        })
        .collect();
    let data = write(dir.path(), "iris_semicolons.csv", &semicolons);
    let experiment = |data_options: &str| {
        format!(
            "name = \"semi\"\nseed = 1\n[objective]\nmetric = \"val_accuracy\"\n[budget]\ntrials = 1\nworkers = 1\n[data]\npath = \"{}\"\ntarget = \"label\"\ntask = \"classification\"\n{data_options}\n[model]\nhidden = 16\n[train]\nepochs = 3\n[space]\nlearning_rate = {{ choice = [0.01] }}\n",
            data.display()
        )
    };
    // Read with commas, the header is one column: the error says which delimiter it looks like.
    let file = write(dir.path(), "plain.toml", &experiment(""));
    refused(
        &["check", file.to_str().unwrap()],
        "set [data] delimiter = \";\"",
    );
    // `features` and `ignore` together are refused; so is a column the file does not have.
    for (options, says) in [
        (
            "delimiter = \";\"\nfeatures = [\"sepal_length_cm\"]\nignore = [\"id\"]",
            "not both",
        ),
        (
            "delimiter = \";\"\nignore = [\"identifier\"]",
            "column `identifier` is not in",
        ),
        ("delimiter = \";;\"", "one character"),
    ] {
        let file = write(dir.path(), "bad.toml", &experiment(options));
        let output = run(&["check", file.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{options}: {}",
            text(&output)
        );
        assert!(text(&output).contains(says), "{options}: {}", text(&output));
    }
    let file = write(
        dir.path(),
        "semi.toml",
        &experiment("delimiter = \";\"\nignore = [\"id\"]"),
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.join("trials/0/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        model["features"],
        serde_json::json!([
            "sepal_length_cm",
            "sepal_width_cm",
            "petal_length_cm",
            "petal_width_cm"
        ])
    );
    // `kiln predict` reads new rows with the same delimiter.
    let output = run(&[
        "predict",
        results.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 151);
    // `features` keeps only the columns it names.
    let file = write(
        dir.path(),
        "only.toml",
        &experiment("delimiter = \";\"\nfeatures = [\"petal_length_cm\", \"petal_width_cm\"]"),
    );
    let only = dir.path().join("only");
    sweep(&file, &only, &[]);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(only.join("trials/0/model.json")).unwrap())
            .unwrap();
    assert_eq!(
        model["features"],
        serde_json::json!(["petal_length_cm", "petal_width_cm"])
    );
}

#[test]
fn missing_cells_stop_or_drop_or_take_the_train_mean_and_predict_fills_them_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    // iris with a hole in every tenth row's second column, and one missing target.
    let iris = std::fs::read_to_string(crate::common::data("iris.csv")).unwrap();
    let holes: String = iris
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cells: Vec<&str> = line.split(',').collect();
            if i > 0 && i % 10 == 0 {
                cells[1] = if i % 20 == 0 { "NA" } else { "" };
            }
            if i == 7 {
                cells[4] = "";
            }
            cells.join(",") + "\n"
        })
        .collect();
    let data = write(dir.path(), "holes.csv", &holes);
    let experiment = |missing: &str| {
        format!(
            "name = \"holes\"\nseed = 1\n[objective]\nmetric = \"val_accuracy\"\n[budget]\ntrials = 1\nworkers = 1\n[data]\npath = \"{}\"\ntarget = \"label\"\ntask = \"classification\"\n{missing}\n[model]\nhidden = 16\n[train]\nepochs = 3\n[space]\nlearning_rate = {{ choice = [0.01] }}\n",
            data.display()
        )
    };
    let check = |options: &str| {
        let file = write(dir.path(), "h.toml", &experiment(options));
        run(&["check", file.to_str().unwrap()])
    };
    let refused = check("");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("holes.csv:8: the target `label` is missing"),
        "{}",
        text(&refused)
    );
    let dropped = check("missing = \"drop\"");
    assert!(
        text(&dropped).contains("16 rows left out, 0 cells filled"),
        "{}",
        text(&dropped)
    );
    let filled = check("missing = \"mean\"");
    assert!(
        text(&filled).contains("1 row left out, 15 cells filled"),
        "{}",
        text(&filled)
    );
    let bad = check("missing = \"zero\"");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    // A model trained with `mean` fills new rows' holes the same way; one trained with `drop`
    // cannot, and says so.
    for (option, predicts) in [("missing = \"mean\"", true), ("missing = \"drop\"", false)] {
        let file = write(dir.path(), "t.toml", &experiment(option));
        let results = dir.path().join(option.replace(['"', ' ', '='], ""));
        sweep(&file, &results, &[]);
        let output = run(&[
            "predict",
            results.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ]);
        assert_eq!(
            output.status.success(),
            predicts,
            "{option}: {}",
            text(&output)
        );
        if predicts {
            assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 151);
        } else {
            assert!(
                text(&output).contains("no value to fill in"),
                "{}",
                text(&output)
            );
        }
    }
}

#[test]
fn a_file_without_task_infers_it_from_the_target_and_check_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = |data: &str, target: &str| {
        format!(
            "name = \"infer\"\n[budget]\ntrials = 1\n[data]\npath = \"{data}\"\ntarget = \"{target}\"\n[train]\nepochs = 1\n[space]\nlearning_rate = {{ choice = [0.01] }}\n"
        )
    };
    for (data, target, says) in [
        (
            crate::common::data("iris.csv"),
            "label",
            "classification (inferred: the target holds 3 distinct integers",
        ),
        (
            crate::common::data("diabetes.csv"),
            "target",
            "regression (inferred: the target holds",
        ),
    ] {
        let file = write(dir.path(), "i.toml", &experiment(&data, target));
        let output = run(&["check", file.to_str().unwrap()]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(text(&output).contains(says), "{}", text(&output));
    }
    // A loss that does not fit the inferred task is still refused.
    let file = write(
        dir.path(),
        "l.toml",
        &experiment(&crate::common::data("iris.csv"), "label")
            .replace("epochs = 1", "epochs = 1\nloss = \"mse\""),
    );
    refused(
        &["check", file.to_str().unwrap()],
        "does not fit a classification task",
    );
}
