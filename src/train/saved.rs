//! A trial's model as a user gets it: `trials/N/model.json` (architecture and preprocessing)
//! beside `trials/N/best.bpk` (the best epoch's weights, a burn record). Together they rebuild
//! the model and apply the same preprocessing to new rows: what `kiln predict` does, and what a
//! user's own burn code can do.

use super::data::{Dataset, Split, category_index};
use super::infer::predict;
use super::model::Architecture;
use crate::error::{Error, Result};
use crate::train::spec::{Missing, Task};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything needed to rebuild a trial's model and prepare its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDescription {
    /// The network's shape.
    #[serde(flatten)]
    pub architecture: Architecture,
    /// Classification or regression.
    pub task: Task,
    /// Feature columns, in input order.
    pub features: Vec<String>,
    /// Train-split mean of each feature.
    pub feature_mean: Vec<f64>,
    /// Train-split standard deviation of each feature.
    pub feature_std: Vec<f64>,
    /// Categorical columns, in input order.
    #[serde(default)]
    pub categorical: Vec<String>,
    /// Each categorical column's categories (index `i + 1`; 0 for one not seen in training).
    #[serde(default)]
    pub vocabularies: Vec<Vec<String>>,
    /// Class names by output index (classification).
    pub classes: Vec<String>,
    /// Train-split mean and standard deviation of the target (regression outputs are scaled
    /// back with them).
    pub target_mean: f64,
    /// See `target_mean`.
    pub target_std: f64,
    /// The weights file, beside this one.
    pub weights: String,
    /// The byte between cells of the training CSV: `kiln predict` reads its rows the same way.
    #[serde(default = "comma")]
    pub delimiter: u8,
    /// What a missing cell of a new row does: with `mean`, it takes the train split's mean.
    #[serde(default = "missing_is_an_error")]
    pub missing: Missing,
}

fn missing_is_an_error() -> Missing {
    Missing::Error
}

fn comma() -> u8 {
    b','
}

impl ModelDescription {
    /// The description of a trial's model.
    pub fn new(architecture: Architecture, data: &Dataset) -> ModelDescription {
        ModelDescription {
            architecture,
            task: data.task,
            features: data.features.clone(),
            feature_mean: data.feature_stats.iter().map(|s| s.0).collect(),
            feature_std: data.feature_stats.iter().map(|s| s.1).collect(),
            categorical: data.categorical.clone(),
            vocabularies: data.vocabularies.clone(),
            classes: data.class_names.clone(),
            target_mean: data.target_stats.0,
            target_std: data.target_stats.1,
            weights: "best.bpk".into(),
            delimiter: data.delimiter,
            missing: data.missing,
        }
    }

    /// Writes `model.json` into a trial folder.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self)?;
        crate::files::write_atomic(&dir.join("model.json"), &text, false)
    }

    /// Reads `model.json` of a trial folder.
    pub fn load(dir: &Path) -> Result<ModelDescription> {
        let path = dir.join("model.json");
        let text = std::fs::read(&path)
            .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_slice(&text)
            .map_err(|e| Error::runtime(format!("{}: {e}", path.display())))
    }
}

/// Predictions for rows of a CSV: a value or class name per row, and class probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Column names: `prediction`, then `prob_<class>` for classification.
    pub columns: Vec<String>,
    /// One row per input row.
    pub rows: Vec<Vec<String>>,
}

/// Rebuilds the model of trial folder `dir` and predicts the rows of `data` (a CSV holding at
/// least the feature columns; other columns are ignored).
pub fn predict_csv(dir: &Path, data: &Path) -> Result<Predictions> {
    let description = ModelDescription::load(dir)?;
    let device = Device::flex();
    let mut rng = crate::rng::stream(0, crate::rng::Stream::Init, &[]);
    let weights = dir.join(&description.weights);
    verify_weights(&weights)?;
    let architecture = &description.architecture;
    let model = architecture
        .build(&mut rng, &device)
        .try_load_file(&weights)
        .map_err(|e| Error::runtime(format!("cannot load {}: {e}", weights.display())))?;
    let rows = read_rows(&description, data)?;
    let outputs = predict(&model, &rows, architecture, &device);
    let mut columns = vec!["prediction".to_string()];
    let mut rows = Vec::new();
    match description.task {
        Task::Classification => {
            columns.extend(description.classes.iter().map(|c| format!("prob_{c}")));
            for logits in outputs.chunks(description.architecture.outputs) {
                let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
                let exp: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
                let total: f64 = exp.iter().sum();
                let best = super::infer::argmax(logits);
                let mut row = vec![description.classes[best].clone()];
                row.extend(exp.iter().map(|e| crate::report::number(e / total)));
                rows.push(row);
            }
        }
        Task::Regression => {
            for value in outputs {
                rows.push(vec![crate::report::number(
                    value as f64 * description.target_std + description.target_mean,
                )]);
            }
        }
    }
    Ok(Predictions { columns, rows })
}

/// The file holding the checksum of a trial's best weights, beside them.
pub fn checksum_path(weights: &Path) -> std::path::PathBuf {
    let mut name = weights.as_os_str().to_owned();
    name.push(".sum");
    name.into()
}

/// Refuses best weights whose bytes do not match the checksum written with them: changed
/// bytes would load and predict garbage. Weights of sweeps from before checksums pass.
fn verify_weights(weights: &Path) -> Result<()> {
    let Ok(expected) = std::fs::read_to_string(checksum_path(weights)) else {
        return Ok(());
    };
    let bytes = std::fs::read(weights)
        .map_err(|e| Error::runtime(format!("cannot read {}: {e}", weights.display())))?;
    if format!("{:016x}", crate::checkpoint::checksum(&[&bytes])) != expected.trim() {
        return Err(Error::runtime(format!(
            "{} does not match its checksum ({}): the file was changed or damaged; refusing to predict with it",
            weights.display(),
            checksum_path(weights).display()
        )));
    }
    Ok(())
}

/// The rows of a CSV, prepared like the trial's training rows: numeric features standardised
/// with the train split's statistics, categories mapped to their indices.
fn read_rows(description: &ModelDescription, data: &Path) -> Result<Split> {
    let shown = data.display();
    super::data::require_regular_file(data).map_err(|e| Error::input(format!("{shown}: {e}")))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .delimiter(description.delimiter)
        .from_path(data)
        .map_err(|e| Error::input(format!("cannot read {shown}: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::input(format!("cannot read {shown}: {e}")))?
        .clone();
    let position = |name: &String| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            let all: Vec<&str> = description
                .features
                .iter()
                .chain(&description.categorical)
                .map(String::as_str)
                .collect();
            Error::input(format!(
                "{shown} has no column `{name}`; the model reads {}",
                all.join(", ")
            ))
        })
    };
    let numeric: Vec<usize> = description
        .features
        .iter()
        .map(position)
        .collect::<Result<_>>()?;
    let categorical: Vec<usize> = description
        .categorical
        .iter()
        .map(position)
        .collect::<Result<_>>()?;
    let mut rows = Split::default();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::input(format!("{shown}:{}: {e}", row + 2)))?;
        for (j, &c) in numeric.iter().enumerate() {
            if description.missing == Missing::Mean && super::data::is_missing(&record[c]) {
                rows.x.push(0.0); // the train split's mean, standardised
                continue;
            }
            let value: f64 = record[c]
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    Error::input(format!(
                        "{shown}:{}: column `{}` holds `{}`, which is not a finite number{}",
                        row + 2,
                        description.features[j],
                        &record[c],
                        if super::data::is_missing(&record[c]) {
                            " (the model was trained with [data] missing = \"error\" or \"drop\", so it has no value to fill in)"
                        } else {
                            ""
                        }
                    ))
                })?;
            rows.x
                .push(((value - description.feature_mean[j]) / description.feature_std[j]) as f32);
        }
        for (j, &c) in categorical.iter().enumerate() {
            rows.categories
                .push(category_index(&description.vocabularies[j], &record[c]));
        }
        rows.rows += 1;
    }
    Ok(rows)
}
