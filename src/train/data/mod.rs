//! Data for the built-in trainer: read a CSV, split it, standardise it.
//!
//! Features must be numeric. The target is a class label (integers or strings) or a number.
//! Rows are split by seeded fractions (stratified by class for classification) or by a split
//! column; features (and a regression target) are standardised with statistics of the train
//! split only, so nothing about validation or test rows leaks into training.

use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::train::spec::{DataSpec, Missing, Task};
use scale::Standardise;
use std::path::Path;

mod cells;
mod columns;
mod scale;
mod split;

/// Rows of one split, standardised, row-major.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Features, `rows * n_features` values.
    pub x: Vec<f32>,
    /// Class indices (classification).
    pub classes: Vec<i64>,
    /// Standardised targets (regression).
    pub values: Vec<f32>,
    /// Category indices of the categorical columns, `rows * n_categorical` (0: unseen).
    pub categories: Vec<i64>,
    /// Number of rows.
    pub rows: usize,
}

/// A prepared data set, shared by every trial of a worker.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A fingerprint of the data file's bytes (FNV-1a, 64 bits, hex).
    pub fingerprint: String,
    /// Numeric feature column names, in order.
    pub features: Vec<String>,
    /// Categorical column names, in order.
    pub categorical: Vec<String>,
    /// Each categorical column's categories seen in the train split, sorted; category `i` has
    /// index `i + 1`, and 0 stands for a category the train split did not have.
    pub vocabularies: Vec<Vec<String>>,
    /// Classification or regression.
    pub task: Task,
    /// Why, when `[data] task` was left out and the target column decided.
    pub task_inferred: Option<String>,
    /// Class names in index order (classification).
    pub class_names: Vec<String>,
    /// Training rows.
    pub train: Split,
    /// Validation rows.
    pub val: Split,
    /// Test rows, if the split has any.
    pub test: Option<Split>,
    /// Train-split mean and standard deviation of each feature.
    pub feature_stats: Vec<(f64, f64)>,
    /// Train-split mean and standard deviation of a regression target.
    pub target_stats: (f64, f64),
    /// `[channels, height, width]` when rows are images.
    pub image: Option<[usize; 3]>,
    /// The byte between cells of the file.
    pub delimiter: u8,
    /// What a missing cell does.
    pub missing: Missing,
    /// Rows left out for a missing value.
    pub dropped_rows: usize,
    /// Feature cells filled with the train split's mean.
    pub filled_cells: usize,
}

impl Dataset {
    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Width of the model's output: classes, or 1 for regression.
    pub fn n_outputs(&self) -> usize {
        match self.task {
            Task::Classification => self.class_names.len(),
            Task::Regression => 1,
        }
    }

    /// Loads, splits and standardises the data of `experiment`; errors point at the experiment
    /// line or at the data file's row.
    pub fn load(experiment: &Experiment, spec: &DataSpec) -> Result<Dataset> {
        let loader = Loader {
            experiment,
            spec,
            shown: spec.path.display().to_string(),
        };
        let bytes = loader.read_file()?;
        let fingerprint = format!("{:016x}", crate::files::fnv64(&bytes));
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .delimiter(spec.delimiter)
            .from_reader(bytes.as_slice());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| {
                loader.at(
                    "path",
                    format!("cannot read the data file {}: {e}", loader.shown),
                )
            })?
            .iter()
            .map(str::to_string)
            .collect();
        let columns = loader.columns(&headers)?;
        let cells = loader.read_rows(&mut reader, &headers, &columns)?;
        let (task, inferred) = match spec.task {
            Some(task) => (task, None),
            None => {
                let (task, why) = infer_task(&cells.labels);
                (task, Some(why))
            }
        };
        let targets = loader.targets(&cells.labels, task)?;
        let [train_rows, val_rows, test_rows] = loader.split(&columns, &cells, &targets)?;
        let width = columns.features.len();
        if let Some(image) = spec.image.filter(|i| i.iter().product::<usize>() != width) {
            return Err(loader.at(
                "image",
                format!(
                    "image {image:?} holds {} values but {} has {width} feature columns",
                    image.iter().product::<usize>(),
                    loader.shown
                ),
            ));
        }
        let standardise = Standardise::fit(
            &cells,
            &targets,
            &train_rows,
            width,
            columns.categorical.len(),
        );
        Ok(Dataset {
            fingerprint,
            features: columns
                .features
                .iter()
                .map(|&c| headers[c].clone())
                .collect(),
            categorical: spec.categorical.clone(),
            train: standardise.split(&cells, &targets, &train_rows),
            val: standardise.split(&cells, &targets, &val_rows),
            test: (!test_rows.is_empty()).then(|| standardise.split(&cells, &targets, &test_rows)),
            vocabularies: standardise.vocabularies,
            task,
            task_inferred: inferred,
            class_names: targets.class_names,
            feature_stats: standardise.feature_stats,
            target_stats: standardise.target_stats,
            image: spec.image,
            delimiter: spec.delimiter,
            missing: spec.missing,
            dropped_rows: cells.dropped,
            filled_cells: cells.filled,
        })
    }
}

/// What loading reads, and how its errors are placed: at the experiment's `[data]` keys, or
/// at the data file's rows.
struct Loader<'a> {
    experiment: &'a Experiment,
    spec: &'a DataSpec,
    /// The data file, as messages name it.
    shown: String,
}

impl Loader<'_> {
    fn at(&self, key: &str, message: String) -> Error {
        self.experiment.source.error_at(&["data", key], message)
    }

    /// The file's bytes, read once: the same bytes are parsed and fingerprinted.
    fn read_file(&self) -> Result<Vec<u8>> {
        let cannot = |e: std::io::Error| {
            self.at(
                "path",
                format!("cannot read the data file {}: {e}", self.shown),
            )
        };
        require_regular_file(&self.spec.path).map_err(cannot)?;
        std::fs::read(&self.spec.path).map_err(cannot)
    }
}

/// Refuses what is not a regular file (a folder, a device such as /dev/zero, a FIFO): reading
/// one would never end, or never start.
pub fn require_regular_file(path: &Path) -> std::io::Result<()> {
    let metadata = std::fs::metadata(path)?;
    if metadata.is_file() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a folder, a device or a pipe); give a CSV file",
        ))
    }
}

/// The most distinct integers a target may hold and still be read as classes.
pub const MAX_INFERRED_CLASSES: usize = 10;

/// The task a target column asks for, and why: classification for text, or for integers with
/// at most [`MAX_INFERRED_CLASSES`] distinct values; regression for other numbers.
pub fn infer_task(labels: &[String]) -> (Task, String) {
    if let Some(text) = labels.iter().find(|l| l.parse::<f64>().is_err()) {
        return (
            Task::Classification,
            format!("the target holds text (`{text}`)"),
        );
    }
    let mut distinct: Vec<&String> = labels.iter().collect();
    distinct.sort();
    distinct.dedup();
    let integers = labels.iter().all(|l| l.parse::<i64>().is_ok());
    match (integers, distinct.len()) {
        (true, n) if n <= MAX_INFERRED_CLASSES => (
            Task::Classification,
            format!("the target holds {n} distinct integers"),
        ),
        (_, n) => (
            Task::Regression,
            format!("the target holds {n} distinct numbers"),
        ),
    }
}

/// Whether a cell stands for a missing value, as pandas and R write one.
pub fn is_missing(cell: &str) -> bool {
    matches!(
        cell,
        "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None"
    )
}

/// The index of `name` in a categorical column: its place in the sorted vocabulary plus one, or
/// 0 for a category the train split did not have.
pub fn category_index(vocabulary: &[String], name: &str) -> i64 {
    vocabulary
        .binary_search_by(|v| v.as_str().cmp(name))
        .map_or(0, |i| i as i64 + 1)
}
