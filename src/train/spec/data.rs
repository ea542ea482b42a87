//! `[data]`: the CSV file, its target, how its rows split, which columns are features, and
//! what a missing cell does.

use super::{SpecBuilder, Task};
use crate::error::Result;
use crate::names::Named;
use crate::text::quote_list;
use serde::Deserialize;
use std::path::PathBuf;

/// How rows are split into train, validation and test.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitSpec {
    /// Seeded fractions, stratified by class for classification.
    Fractions {
        /// Fraction of rows for training.
        train: f64,
        /// Fraction for validation.
        val: f64,
        /// Fraction for test (may be 0).
        test: f64,
    },
    /// A column of the CSV whose values are `train`, `val` or `test`.
    Column(String),
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// The CSV file, resolved against the experiment file's folder.
    pub path: PathBuf,
    /// The target column.
    pub target: String,
    /// Classification or regression; `None`: inferred from the target column when the data is
    /// read ([`crate::train::data::infer_task`]).
    pub task: Option<Task>,
    /// How rows are split.
    pub split: SplitSpec,
    /// `[channels, height, width]` for image-shaped rows.
    pub image: Option<[usize; 3]>,
    /// String columns embedded as categories (each gets a learned vector of `embedding_dim`).
    pub categorical: Vec<String>,
    /// Which other columns are numeric features.
    pub columns: FeatureColumns,
    /// The byte between cells (`,` unless `[data] delimiter` says otherwise).
    pub delimiter: u8,
    /// What a missing cell does.
    pub missing: Missing,
}

crate::named! {
    /// `[data] missing`: what an empty (or `NA`, `NaN`, `null`) cell of a numeric feature or
    /// of the target does. A missing categorical cell is a category of its own.
    pub enum Missing {
        /// Stop with the file, line and column.
        Error = "error",
        /// Leave the row out.
        Drop = "drop",
        /// Fill a feature with the train split's mean (a row whose target is missing is left
        /// out); `kiln predict` fills new rows the same way.
        Mean = "mean",
    }
}

/// `[data] features` or `ignore`: which columns besides the target, the split column and the
/// categorical ones are numeric features.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureColumns {
    /// Every other column but these (`ignore`, empty by default).
    AllBut(Vec<String>),
    /// Exactly these (`features`).
    Only(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawData {
    path: String,
    target: String,
    task: Option<String>,
    split: Option<RawSplit>,
    split_column: Option<String>,
    image: Option<Vec<i64>>,
    #[serde(default)]
    categorical: Vec<String>,
    features: Option<Vec<String>>,
    #[serde(default)]
    ignore: Vec<String>,
    delimiter: Option<String>,
    missing: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplit {
    train: f64,
    val: f64,
    #[serde(default)]
    test: f64,
}

impl SpecBuilder<'_> {
    /// `[data]`, checked; the path resolved against the experiment file's folder.
    pub(super) fn data(&self, raw: &RawData) -> Result<DataSpec> {
        let task = match raw.task.as_deref() {
            None => None,
            Some(name) => Some(Task::from_name(name).ok_or_else(|| {
                self.err(
                    &["data", "task"],
                    format!("unknown task `{name}`: use {}", quote_list(Task::NAMES)),
                )
            })?),
        };
        let split = self.split(raw)?;
        let image = match &raw.image {
            None => None,
            Some(dims) if dims.len() == 3 && dims.iter().all(|&d| d >= 1) => {
                Some([dims[0] as usize, dims[1] as usize, dims[2] as usize])
            }
            Some(_) => {
                return Err(self.err(
                    &["data", "image"],
                    "`image` must be [channels, height, width], three integers >= 1",
                ));
            }
        };
        let columns = self.feature_columns(raw)?;
        let delimiter = match raw.delimiter.as_deref().map(str::as_bytes) {
            None => b',',
            Some([byte]) if byte.is_ascii() && !byte.is_ascii_alphanumeric() && *byte != b'"' => {
                *byte
            }
            Some(_) => {
                return Err(self.err(
                    &["data", "delimiter"],
                    "`delimiter` must be one character such as \";\", \"\\t\" or \"|\"",
                ));
            }
        };
        let missing = match raw.missing.as_deref() {
            None => Missing::Error,
            Some(name) => Missing::from_name(name).ok_or_else(|| {
                self.err(
                    &["data", "missing"],
                    format!(
                        "unknown `missing` = \"{name}\": use {}",
                        quote_list(Missing::NAMES)
                    ),
                )
            })?,
        };
        Ok(DataSpec {
            path: self.experiment.source.base_dir.join(&raw.path),
            target: raw.target.clone(),
            task,
            split,
            image,
            categorical: raw.categorical.clone(),
            columns,
            delimiter,
            missing,
        })
    }

    /// Which rows train and validate: a split column, or fractions (70/15/15 by default).
    fn split(&self, raw: &RawData) -> Result<SplitSpec> {
        Ok(match (&raw.split, &raw.split_column) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    &["data", "split_column"],
                    "give either `split` (fractions) or `split_column`, not both",
                ));
            }
            (None, Some(column)) => SplitSpec::Column(column.clone()),
            (None, None) => SplitSpec::Fractions {
                train: 0.7,
                val: 0.15,
                test: 0.15,
            },
            (Some(s), None) => {
                let parts = [("train", s.train), ("val", s.val), ("test", s.test)];
                if let Some((name, value)) = parts.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
                    return Err(self.err(
                        &["data", "split"],
                        format!("split `{name}` = {value} is not a fraction in [0, 1]"),
                    ));
                }
                if s.train <= 0.0 || s.val <= 0.0 {
                    return Err(self.err(
                        &["data", "split"],
                        "the split needs train > 0 and val > 0 (test may be 0)",
                    ));
                }
                let total = s.train + s.val + s.test;
                if (total - 1.0).abs() > 1e-6 {
                    return Err(self.err(
                        &["data", "split"],
                        format!(
                            "split fractions add up to {total}, not 1 (train {} + val {} + test {})",
                            s.train, s.val, s.test
                        ),
                    ));
                }
                SplitSpec::Fractions {
                    train: s.train,
                    val: s.val,
                    test: s.test,
                }
            }
        })
    }

    /// The numeric feature columns: those `features` names, or all but those `ignore` names.
    fn feature_columns(&self, raw: &RawData) -> Result<FeatureColumns> {
        Ok(match (&raw.features, raw.ignore.is_empty()) {
            (Some(_), false) => {
                return Err(self.err(
                    &["data", "ignore"],
                    "give either `features` (the columns to use) or `ignore` (the columns to leave out), not both",
                ));
            }
            (Some(features), true) if features.is_empty() => {
                return Err(self.err(
                    &["data", "features"],
                    "`features` is empty: list the numeric columns to train on",
                ));
            }
            (Some(features), true) => FeatureColumns::Only(features.clone()),
            (None, _) => FeatureColumns::AllBut(raw.ignore.clone()),
        })
    }
}
