//! The data file's cells, row by row, and the target as the task reads it: a cell that does
//! not fit its column is an error at its line of the file.

use super::columns::Columns;
use super::{Loader, is_missing};
use crate::error::{Error, Result};
use crate::train::spec::{Missing, Task};
use std::collections::BTreeMap;

/// The data file's cells, row by row, before any split or scaling.
pub(super) struct Cells {
    /// Numeric features, `rows * features` values.
    pub(super) features: Vec<f64>,
    /// Categorical cells, `rows * categorical` names.
    pub(super) categories: Vec<String>,
    /// The target's cells.
    pub(super) labels: Vec<String>,
    /// The split of each row (0 train, 1 val, 2 test) when a column says it.
    pub(super) split_of_row: Vec<usize>,
    /// Rows left out for a missing value (`[data] missing = "drop"`, or a missing target).
    pub(super) dropped: usize,
    /// Feature cells missing and to be filled with the train split's mean (NaN until then).
    pub(super) filled: usize,
}

/// The target as the task reads it.
pub(super) struct Targets {
    /// Class names in index order (classification).
    pub(super) class_names: Vec<String>,
    /// Each row's class index (classification).
    pub(super) class_of_row: Vec<i64>,
    /// Each row's value (regression).
    pub(super) values: Vec<f64>,
}

impl Loader<'_> {
    /// Reads every row's cells; a cell that does not fit its column is an error at its line.
    pub(super) fn read_rows(
        &self,
        reader: &mut csv::Reader<&[u8]>,
        headers: &[String],
        columns: &Columns,
    ) -> Result<Cells> {
        let mut cells = Cells {
            features: Vec::new(),
            categories: Vec::new(),
            labels: Vec::new(),
            split_of_row: Vec::new(),
            dropped: 0,
            filled: 0,
        };
        for (row, record) in reader.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(|e| Error::input(format!("{}:{line}: {e}", self.shown)))?;
            let label = record[columns.target].to_string();
            if is_missing(&label) && self.spec.missing == Missing::Error {
                return Err(Error::input(format!(
                    "{}:{line}: the target `{}` is missing (`{label}`); set [data] missing = \"drop\" to leave such rows out",
                    self.shown, self.spec.target
                )));
            }
            let values = match is_missing(&label) {
                true => None,
                false => self.features_of(&record, line, headers, columns)?,
            };
            let Some(values) = values else {
                cells.dropped += 1;
                continue;
            };
            cells.filled += values.iter().filter(|v| v.is_nan()).count();
            cells.features.extend(values);
            cells
                .categories
                .extend(columns.categorical.iter().map(|&c| record[c].to_string()));
            cells.labels.push(label);
            if let Some(c) = columns.split {
                cells
                    .split_of_row
                    .push(self.split_of(&record[c], line, &headers[c])?);
            }
        }
        if cells.labels.is_empty() {
            return Err(self.at("path", format!("{} has a header but no rows", self.shown)));
        }
        Ok(cells)
    }

    /// A row's numeric features (NaN for a cell to fill with the mean), or `None` when a missing
    /// cell drops the row.
    fn features_of(
        &self,
        record: &csv::StringRecord,
        line: usize,
        headers: &[String],
        columns: &Columns,
    ) -> Result<Option<Vec<f64>>> {
        let mut values = Vec::with_capacity(columns.features.len());
        for &c in &columns.features {
            let cell = &record[c];
            if is_missing(cell) {
                match self.spec.missing {
                    Missing::Error => {
                        return Err(Error::input(format!(
                            "{}:{line}: column `{}` is missing (`{cell}`); set [data] missing = \"drop\" (leave such rows out) or \"mean\" (fill with the train split's mean)",
                            self.shown, headers[c]
                        )));
                    }
                    Missing::Drop => return Ok(None),
                    Missing::Mean => values.push(f64::NAN),
                }
                continue;
            }
            let value: f64 = cell.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                Error::input(format!(
                    "{}:{line}: column `{}` holds `{cell}`, which is not a number; feature columns must be numeric (list string columns in [data] categorical to embed them)",
                    self.shown, headers[c]
                ))
            })?;
            values.push(value);
        }
        Ok(Some(values))
    }

    /// The split a split column's cell names: 0 train, 1 val, 2 test.
    fn split_of(&self, cell: &str, line: usize, header: &str) -> Result<usize> {
        match cell {
            "train" => Ok(0),
            "val" => Ok(1),
            "test" => Ok(2),
            other => Err(Error::input(format!(
                "{}:{line}: split column `{header}` holds `{other}`; allowed: `train`, `val`, `test`",
                self.shown
            ))),
        }
    }

    /// Class indices (integers sort numerically, names alphabetically) or values.
    pub(super) fn targets(&self, labels: &[String], task: Task) -> Result<Targets> {
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
}
