//! Data for the built-in trainer: read a CSV, split it, standardise it.
//!
//! Features must be numeric. The target is a class label (integers or strings) or a number.
//! Rows are split by seeded fractions (stratified by class for classification) or by a split
//! column; features (and a regression target) are standardised with statistics of the train
//! split only, so nothing about validation or test rows leaks into training.

use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::rng::{Stream, stream};
use crate::text::{hint, quote_list};
use crate::train::spec::{DataSpec, FeatureColumns, Missing, SplitSpec, Task};
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

/// The columns of the data file by role (indices into its header).
struct Columns {
    target: usize,
    split: Option<usize>,
    categorical: Vec<usize>,
    features: Vec<usize>,
}

/// The data file's cells, row by row, before any split or scaling.
struct Cells {
    /// Numeric features, `rows * features` values.
    features: Vec<f64>,
    /// Categorical cells, `rows * categorical` names.
    categories: Vec<String>,
    /// The target's cells.
    labels: Vec<String>,
    /// The split of each row (0 train, 1 val, 2 test) when a column says it.
    split_of_row: Vec<usize>,
    /// Rows left out for a missing value (`[data] missing = "drop"`, or a missing target).
    dropped: usize,
    /// Feature cells missing and to be filled with the train split's mean (NaN until then).
    filled: usize,
}

/// The target as the task reads it.
struct Targets {
    /// Class names in index order (classification).
    class_names: Vec<String>,
    /// Each row's class index (classification).
    class_of_row: Vec<i64>,
    /// Each row's value (regression).
    values: Vec<f64>,
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

    /// Finds each role's columns by name; every other column is a numeric feature.
    fn columns(&self, headers: &[String]) -> Result<Columns> {
        let (spec, shown) = (self.spec, &self.shown);
        let column = |name: &str, key: &str| -> Result<usize> {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                let hint = hint(name, headers.iter().map(String::as_str));
                let names: Vec<&str> = headers.iter().map(String::as_str).collect();
                self.at(
                    key,
                    format!(
                        "column `{name}` is not in {shown}.{hint} Its columns: {}{}",
                        quote_list(&names),
                        other_delimiter(headers, spec.delimiter)
                    ),
                )
            })
        };
        if let Some((first, again)) = (0..headers.len())
            .find_map(|j| (0..j).find(|&i| headers[i] == headers[j]).map(|i| (i, j)))
        {
            return Err(self.at(
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
        let split = match &spec.split {
            SplitSpec::Column(name) => Some(column(name, "split_column")?),
            SplitSpec::Fractions { .. } => None,
        };
        let mut categorical = Vec::new();
        for name in &spec.categorical {
            let c = column(name, "categorical")?;
            if c == target || Some(c) == split {
                return Err(self.at(
                    "categorical",
                    format!(
                        "`{name}` is the target or the split column; it cannot also be a feature"
                    ),
                ));
            }
            categorical.push(c);
        }
        let (names, key) = match &spec.columns {
            FeatureColumns::AllBut(names) => (names, "ignore"),
            FeatureColumns::Only(names) => (names, "features"),
        };
        let named: Vec<usize> = names
            .iter()
            .map(|name| column(name, key))
            .collect::<Result<_>>()?;
        if let Some(&c) = named
            .iter()
            .find(|&&c| c == target || Some(c) == split || categorical.contains(&c))
            .filter(|_| key == "features")
        {
            return Err(self.at(
                key,
                format!(
                    "`{}` is the target, the split column or a categorical column; list only numeric feature columns in `features`",
                    headers[c]
                ),
            ));
        }
        let features: Vec<usize> = match &spec.columns {
            FeatureColumns::Only(_) => named,
            FeatureColumns::AllBut(_) => (0..headers.len())
                .filter(|&i| i != target && Some(i) != split && !categorical.contains(&i))
                .filter(|i| !named.contains(i))
                .collect(),
        };
        if let (FeatureColumns::AllBut(_), Some(&c)) = (
            &spec.columns,
            features.iter().find(|&&c| is_unnamed(&headers[c])),
        ) {
            return Err(self.at(
                "path",
                format!(
                    "column {} of {shown} {}, as pandas' `to_csv` writes its row index: as a feature, a row number would leak the order of the rows into the model. Write the file with `to_csv(index=False)`, or leave the column out with `ignore = [\"{}\"]`",
                    c + 1,
                    match headers[c].trim() {
                        "" => "has no name".to_string(),
                        name => format!("is named `{name}`"),
                    },
                    headers[c]
                ),
            ));
        }
        if features.is_empty() && categorical.is_empty() {
            return Err(self.at(
                "path",
                format!("{shown} has no feature columns besides the target"),
            ));
        }
        Ok(Columns {
            target,
            split,
            categorical,
            features,
        })
    }

    /// Reads every row's cells; a cell that does not fit its column is an error at its line.
    fn read_rows(
        &self,
        reader: &mut csv::Reader<&[u8]>,
        headers: &[String],
        columns: &Columns,
    ) -> Result<Cells> {
        let shown = &self.shown;
        let mut cells = Cells {
            features: Vec::new(),
            categories: Vec::new(),
            labels: Vec::new(),
            split_of_row: Vec::new(),
            dropped: 0,
            filled: 0,
        };
        let missing = self.spec.missing;
        for (row, record) in reader.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(|e| Error::input(format!("{shown}:{line}: {e}")))?;
            let label = record[columns.target].to_string();
            if is_missing(&label) {
                if missing == Missing::Error {
                    return Err(Error::input(format!(
                        "{shown}:{line}: the target `{}` is missing (`{label}`); set [data] missing = \"drop\" to leave such rows out",
                        self.spec.target
                    )));
                }
                cells.dropped += 1;
                continue;
            }
            let mut values = Vec::with_capacity(columns.features.len());
            for &c in &columns.features {
                let cell = &record[c];
                if is_missing(cell) {
                    values.push(match missing {
                        Missing::Error => {
                            return Err(Error::input(format!(
                                "{shown}:{line}: column `{}` is missing (`{cell}`); set [data] missing = \"drop\" (leave such rows out) or \"mean\" (fill with the train split's mean)",
                                headers[c]
                            )));
                        }
                        Missing::Drop => break,
                        Missing::Mean => f64::NAN,
                    });
                    continue;
                }
                let value: f64 = cell.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                    Error::input(format!(
                        "{shown}:{line}: column `{}` holds `{cell}`, which is not a number; feature columns must be numeric (list string columns in [data] categorical to embed them)",
                        headers[c]
                    ))
                })?;
                values.push(value);
            }
            if values.len() < columns.features.len() {
                cells.dropped += 1;
                continue;
            }
            cells.filled += values.iter().filter(|v| v.is_nan()).count();
            cells.features.extend(values);
            cells
                .categories
                .extend(columns.categorical.iter().map(|&c| record[c].to_string()));
            cells.labels.push(label);
            if let Some(c) = columns.split {
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
                cells.split_of_row.push(s);
            }
        }
        if cells.labels.is_empty() {
            return Err(self.at("path", format!("{shown} has a header but no rows")));
        }
        Ok(cells)
    }

    /// Class indices (integers sort numerically, names alphabetically) or values.
    fn targets(&self, labels: &[String], task: Task) -> Result<Targets> {
        let (spec, rows) = (self.spec, labels.len());
        match task {
            Task::Classification => {
                let mut names: Vec<String> = labels.to_vec();
                // One total order: numerically when every class is an integer, else as text.
                if names.iter().all(|n| n.parse::<i64>().is_ok()) {
                    names.sort_by_key(|n| n.parse::<i64>().unwrap_or_default());
                } else {
                    names.sort();
                }
                names.dedup();
                if names.len() < 2 {
                    return Err(self.at(
                        "target",
                        format!(
                            "the target `{}` has only one class; classification needs at least two",
                            spec.target
                        ),
                    ));
                }
                if rows < names.len() {
                    return Err(self.at(
                        "path",
                        format!(
                            "{} has {rows} rows but {} classes: too few rows to learn from",
                            self.shown,
                            names.len()
                        ),
                    ));
                }
                let index: BTreeMap<&str, i64> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), i as i64))
                    .collect();
                let class_of_row = labels.iter().map(|l| index[l.as_str()]).collect();
                Ok(Targets {
                    class_names: names,
                    class_of_row,
                    values: Vec::new(),
                })
            }
            Task::Regression => {
                let mut values = Vec::with_capacity(rows);
                for (row, l) in labels.iter().enumerate() {
                    let v: f64 = l.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                        Error::input(format!(
                            "{}:{}: the regression target `{}` holds `{l}`, which is not a number",
                            self.shown,
                            row + 2,
                            spec.target
                        ))
                    })?;
                    values.push(v);
                }
                Ok(Targets {
                    class_names: Vec::new(),
                    class_of_row: Vec::new(),
                    values,
                })
            }
        }
    }

    /// The rows of train, val and test; train and val must have rows, and every class
    /// training rows.
    fn split(
        &self,
        columns: &Columns,
        cells: &Cells,
        targets: &Targets,
    ) -> Result<[Vec<usize>; 3]> {
        let rows = cells.labels.len();
        let assignment = match &self.spec.split {
            SplitSpec::Column(_) => cells.split_of_row.clone(),
            SplitSpec::Fractions { train, val, test } => assign_fractions(
                rows,
                &targets.class_of_row,
                [*train, *val, *test],
                self.experiment.seed,
            ),
        };
        let members =
            |s: usize| -> Vec<usize> { (0..rows).filter(|&r| assignment[r] == s).collect() };
        let (train, val, test) = (members(0), members(1), members(2));
        let key = if columns.split.is_some() {
            "split_column"
        } else {
            "split"
        };
        if train.is_empty() || val.is_empty() {
            return Err(self.at(
                key,
                format!(
                    "the split leaves {} training and {} validation rows; both need at least one (the data has {rows} rows)",
                    train.len(),
                    val.len()
                ),
            ));
        }
        if let Some(class) = (0..targets.class_names.len())
            .find(|&c| !train.iter().any(|&r| targets.class_of_row[r] == c as i64))
        {
            return Err(self.at(
                key,
                format!(
                    "class `{}` of the target `{}` has no training rows (only validation or test ones): the model could never predict it. Give it training rows, or leave it out of the data",
                    targets.class_names[class], self.spec.target
                ),
            ));
        }
        Ok([train, val, test])
    }
}

/// What the train split teaches about scaling: each feature's and the target's mean and
/// standard deviation, and each categorical column's vocabulary. Fit on train rows only, so
/// nothing about validation or test rows leaks into training.
struct Standardise {
    width: usize,
    vocabularies: Vec<Vec<String>>,
    feature_stats: Vec<(f64, f64)>,
    target_stats: (f64, f64),
}

impl Standardise {
    fn fit(
        cells: &Cells,
        targets: &Targets,
        train: &[usize],
        width: usize,
        n_categorical: usize,
    ) -> Standardise {
        let vocabularies = (0..n_categorical)
            .map(|j| {
                let mut seen: Vec<String> = train
                    .iter()
                    .map(|&r| cells.categories[r * n_categorical + j].clone())
                    .collect();
                seen.sort();
                seen.dedup();
                seen
            })
            .collect();
        Standardise {
            width,
            vocabularies,
            feature_stats: (0..width)
                .map(|j| {
                    mean_std(
                        train
                            .iter()
                            .map(|&r| cells.features[r * width + j])
                            .filter(|v| !v.is_nan()),
                    )
                })
                .collect(),
            target_stats: if targets.values.is_empty() {
                (0.0, 1.0)
            } else {
                mean_std(train.iter().map(|&r| targets.values[r]))
            },
        }
    }

    /// The rows `rows_of`, standardised.
    fn split(&self, cells: &Cells, targets: &Targets, rows_of: &[usize]) -> Split {
        let (width, n_categorical) = (self.width, self.vocabularies.len());
        let mut x = Vec::with_capacity(rows_of.len() * width);
        for &r in rows_of {
            for (j, (mean, std)) in self.feature_stats.iter().enumerate() {
                // A missing cell (NaN) takes the mean: 0 once standardised.
                let value = cells.features[r * width + j];
                x.push(if value.is_nan() {
                    0.0
                } else {
                    ((value - mean) / std) as f32
                });
            }
        }
        let (mean, std) = self.target_stats;
        Split {
            x,
            classes: rows_of
                .iter()
                .filter_map(|&r| targets.class_of_row.get(r).copied())
                .collect(),
            values: rows_of
                .iter()
                .filter_map(|&r| targets.values.get(r).map(|v| ((v - mean) / std) as f32))
                .collect(),
            categories: rows_of
                .iter()
                .flat_map(|&r| {
                    (0..n_categorical).map(move |j| {
                        category_index(
                            &self.vocabularies[j],
                            &cells.categories[r * n_categorical + j],
                        )
                    })
                })
                .collect(),
            rows: rows_of.len(),
        }
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

/// A hint for a header that is one cell holding another delimiter (`a;b;label` read with `,`).
fn other_delimiter(headers: &[String], delimiter: u8) -> String {
    let [only] = headers else {
        return String::new();
    };
    [b';', b'\t', b'|', b',']
        .into_iter()
        .filter(|&d| d != delimiter)
        .find(|&d| only.as_bytes().contains(&d))
        .map(|d| {
            let shown = if d == b'\t' {
                "\\t".to_string()
            } else {
                (d as char).to_string()
            };
            format!(". The header looks delimited by `{shown}`: set [data] delimiter = \"{shown}\"")
        })
        .unwrap_or_default()
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

/// Whether a header is a column without a name: empty, or pandas' `Unnamed: N` for one.
fn is_unnamed(header: &str) -> bool {
    let header = header.trim();
    header.is_empty()
        || header
            .strip_prefix("Unnamed: ")
            .is_some_and(|n| n.parse::<u32>().is_ok())
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
