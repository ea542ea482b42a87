//! Data for the built-in trainer: read a CSV, split it, standardise it.
//!
//! Features must be numeric. The target is a class label (integers or strings) or a number.
//! Rows are split by seeded fractions (stratified by class for classification) or by a split
//! column; features (and a regression target) are standardised with statistics of the train
//! split only, so nothing about validation or test rows leaks into training.

use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::rng::{Stream, stream};
use crate::settings::{hint, quote_list};
use crate::train::spec::{DataSpec, SplitSpec, Task};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::Path;

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
        let at = |key: &str, message: String| experiment.source.error_at(&["data", key], message);
        let shown = spec.path.display().to_string();
        require_regular_file(&spec.path)
            .map_err(|e| at("path", format!("cannot read the data file {shown}: {e}")))?;
        // Read once: the same bytes are parsed and fingerprinted.
        let bytes = std::fs::read(&spec.path)
            .map_err(|e| at("path", format!("cannot read the data file {shown}: {e}")))?;
        let fingerprint = format!("{:016x}", crate::files::fnv64(&bytes));
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(bytes.as_slice());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| at("path", format!("cannot read the data file {shown}: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        let column = |name: &str, key: &str| -> Result<usize> {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                let hint = hint(name, headers.iter().map(String::as_str));
                let names: Vec<&str> = headers.iter().map(String::as_str).collect();
                at(
                    key,
                    format!(
                        "column `{name}` is not in {shown}.{hint} Its columns: {}",
                        quote_list(&names)
                    ),
                )
            })
        };
        if let Some((first, again)) = (0..headers.len())
            .find_map(|j| (0..j).find(|&i| headers[i] == headers[j]).map(|i| (i, j)))
        {
            return Err(at(
                "path",
                format!(
                    "column `{}` appears twice in {shown} (columns {} and {}): kiln reads columns by name, so rename one",
                    headers[first],
                    first + 1,
                    again + 1
                ),
            ));
        }
        let target = column(&spec.target, "target")?;
        let split_column = match &spec.split {
            SplitSpec::Column(name) => Some(column(name, "split_column")?),
            SplitSpec::Fractions { .. } => None,
        };
        let mut categorical_columns = Vec::new();
        for name in &spec.categorical {
            let c = column(name, "categorical")?;
            if c == target || Some(c) == split_column {
                return Err(at(
                    "categorical",
                    format!(
                        "`{name}` is the target or the split column; it cannot also be a feature"
                    ),
                ));
            }
            categorical_columns.push(c);
        }
        let feature_columns: Vec<usize> = (0..headers.len())
            .filter(|&i| {
                i != target && Some(i) != split_column && !categorical_columns.contains(&i)
            })
            .collect();
        if feature_columns.is_empty() && categorical_columns.is_empty() {
            return Err(at(
                "path",
                format!("{shown} has no feature columns besides the target"),
            ));
        }

        let mut features: Vec<f64> = Vec::new();
        let mut category_names: Vec<String> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        let mut split_of_row: Vec<usize> = Vec::new();
        for (row, record) in reader.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(|e| Error::input(format!("{shown}:{line}: {e}")))?;
            for &c in &feature_columns {
                let cell = &record[c];
                let value: f64 = cell.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                    Error::input(format!(
                        "{shown}:{line}: column `{}` holds `{cell}`, which is not a number; feature columns must be numeric (list string columns in [data] categorical to embed them)",
                        headers[c]
                    ))
                })?;
                features.push(value);
            }
            category_names.extend(categorical_columns.iter().map(|&c| record[c].to_string()));
            let label = record[target].to_string();
            if label.is_empty() {
                return Err(Error::input(format!(
                    "{shown}:{line}: the target `{}` is empty",
                    spec.target
                )));
            }
            labels.push(label);
            if let Some(c) = split_column {
                let s = match &record[c] {
                    "train" => 0,
                    "val" => 1,
                    "test" => 2,
                    other => {
                        return Err(Error::input(format!(
                            "{shown}:{line}: split column `{}` holds `{other}`; allowed: `train`, `val`, `test`",
                            headers[c]
                        )));
                    }
                };
                split_of_row.push(s);
            }
        }
        let rows = labels.len();
        if rows == 0 {
            return Err(at("path", format!("{shown} has a header but no rows")));
        }

        // Targets: class indices (integers sort numerically, names alphabetically) or values.
        let (class_names, class_of_row, values) = match spec.task {
            Task::Classification => {
                let mut names: Vec<String> = labels.clone();
                // One total order: numerically when every class is an integer, else as text.
                if names.iter().all(|n| n.parse::<i64>().is_ok()) {
                    names.sort_by_key(|n| n.parse::<i64>().unwrap_or_default());
                } else {
                    names.sort();
                }
                names.dedup();
                if names.len() < 2 {
                    return Err(at(
                        "target",
                        format!(
                            "the target `{}` has only one class; classification needs at least two",
                            spec.target
                        ),
                    ));
                }
                if rows < names.len() {
                    return Err(at(
                        "path",
                        format!(
                            "{shown} has {rows} rows but {} classes: too few rows to learn from",
                            names.len()
                        ),
                    ));
                }
                let index: BTreeMap<&str, i64> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), i as i64))
                    .collect();
                let classes = labels.iter().map(|l| index[l.as_str()]).collect::<Vec<_>>();
                (names, classes, Vec::new())
            }
            Task::Regression => {
                let mut values = Vec::with_capacity(rows);
                for (row, l) in labels.iter().enumerate() {
                    let v: f64 = l.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                        Error::input(format!(
                            "{shown}:{}: the regression target `{}` holds `{l}`, which is not a number",
                            row + 2,
                            spec.target
                        ))
                    })?;
                    values.push(v);
                }
                (Vec::new(), Vec::new(), values)
            }
        };

        let assignment = match &spec.split {
            SplitSpec::Column(_) => split_of_row,
            SplitSpec::Fractions { train, val, test } => {
                assign_fractions(rows, &class_of_row, [*train, *val, *test], experiment.seed)
            }
        };
        let members =
            |s: usize| -> Vec<usize> { (0..rows).filter(|&r| assignment[r] == s).collect() };
        let (train_rows, val_rows, test_rows) = (members(0), members(1), members(2));
        let split_key = if split_column.is_some() {
            "split_column"
        } else {
            "split"
        };
        if train_rows.is_empty() || val_rows.is_empty() {
            return Err(at(
                split_key,
                format!(
                    "the split leaves {} training and {} validation rows; both need at least one (the data has {rows} rows)",
                    train_rows.len(),
                    val_rows.len()
                ),
            ));
        }
        if spec.task == Task::Classification
            && let Some(class) = (0..class_names.len())
                .find(|&c| !train_rows.iter().any(|&r| class_of_row[r] == c as i64))
        {
            return Err(at(
                split_key,
                format!(
                    "class `{}` of the target `{}` has no training rows (only validation or test ones): the model could never predict it. Give it training rows, or leave it out of the data",
                    class_names[class], spec.target
                ),
            ));
        }

        let width = feature_columns.len();
        if let Some(image) = spec.image.filter(|i| i.iter().product::<usize>() != width) {
            return Err(at(
                "image",
                format!(
                    "image {image:?} holds {} values but {shown} has {width} feature columns",
                    image.iter().product::<usize>()
                ),
            ));
        }
        let n_categorical = categorical_columns.len();
        let vocabularies: Vec<Vec<String>> = (0..n_categorical)
            .map(|j| {
                let mut seen: Vec<String> = train_rows
                    .iter()
                    .map(|&r| category_names[r * n_categorical + j].clone())
                    .collect();
                seen.sort();
                seen.dedup();
                seen
            })
            .collect();
        let categories: Vec<i64> = category_names
            .iter()
            .enumerate()
            .map(|(i, name)| category_index(&vocabularies[i % n_categorical], name))
            .collect();
        let feature_stats: Vec<(f64, f64)> = (0..width)
            .map(|j| mean_std(train_rows.iter().map(|&r| features[r * width + j])))
            .collect();
        let target_stats = if spec.task == Task::Regression {
            mean_std(train_rows.iter().map(|&r| values[r]))
        } else {
            (0.0, 1.0)
        };
        let build = |rows_of: &[usize]| -> Split {
            let mut x = Vec::with_capacity(rows_of.len() * width);
            for &r in rows_of {
                for (j, (mean, std)) in feature_stats.iter().enumerate() {
                    x.push(((features[r * width + j] - mean) / std) as f32);
                }
            }
            Split {
                x,
                classes: rows_of
                    .iter()
                    .filter_map(|&r| class_of_row.get(r).copied())
                    .collect(),
                values: rows_of
                    .iter()
                    .filter_map(|&r| {
                        values
                            .get(r)
                            .map(|v| ((v - target_stats.0) / target_stats.1) as f32)
                    })
                    .collect(),
                categories: rows_of
                    .iter()
                    .flat_map(|&r| {
                        categories[r * n_categorical..(r + 1) * n_categorical]
                            .iter()
                            .copied()
                    })
                    .collect(),
                rows: rows_of.len(),
            }
        };
        Ok(Dataset {
            fingerprint,
            features: feature_columns
                .iter()
                .map(|&c| headers[c].clone())
                .collect(),
            categorical: spec.categorical.clone(),
            vocabularies,
            task: spec.task,
            class_names,
            train: build(&train_rows),
            val: build(&val_rows),
            test: (!test_rows.is_empty()).then(|| build(&test_rows)),
            feature_stats,
            target_stats,
            image: spec.image,
        })
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

/// The index of `name` in a categorical column: its place in the sorted vocabulary plus one, or
/// 0 for a category the train split did not have.
pub fn category_index(vocabulary: &[String], name: &str) -> i64 {
    vocabulary
        .binary_search_by(|v| v.as_str().cmp(name))
        .map_or(0, |i| i as i64 + 1)
}

/// Assigns each row to 0 (train), 1 (val) or 2 (test): per class for classification (so each
/// split keeps the class balance), over all rows for regression; seeded.
fn assign_fractions(
    rows: usize,
    class_of_row: &[i64],
    fractions: [f64; 3],
    seed: u64,
) -> Vec<usize> {
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for r in 0..rows {
        groups
            .entry(class_of_row.get(r).copied().unwrap_or(0))
            .or_default()
            .push(r);
    }
    let mut assignment = vec![0; rows];
    for (class, mut members) in groups {
        members.shuffle(&mut stream(seed, Stream::Split, &[class as u64]));
        let n = members.len() as f64;
        let n_train = (n * fractions[0]).round() as usize;
        let n_val = if fractions[2] == 0.0 {
            members.len() - n_train
        } else {
            ((n * fractions[1]).round() as usize).min(members.len() - n_train)
        };
        for (i, r) in members.into_iter().enumerate() {
            assignment[r] = if i < n_train {
                0
            } else if i < n_train + n_val {
                1
            } else {
                2
            };
        }
    }
    assignment
}

/// Mean and (population) standard deviation; a constant column gets 1 so it stays 0.
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    (mean, if std > 1e-12 { std } else { 1.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_keeps_class_balance() {
        let classes: Vec<i64> = (0..100).map(|i| i % 2).collect();
        let a = assign_fractions(100, &classes, [0.6, 0.2, 0.2], 1);
        for split in 0..3 {
            let zeros = (0..100)
                .filter(|&r| a[r] == split && classes[r] == 0)
                .count();
            let ones = (0..100)
                .filter(|&r| a[r] == split && classes[r] == 1)
                .count();
            assert_eq!(zeros, ones, "split {split}");
        }
        assert_eq!(a, assign_fractions(100, &classes, [0.6, 0.2, 0.2], 1));
        assert_ne!(a, assign_fractions(100, &classes, [0.6, 0.2, 0.2], 2));
    }
}
