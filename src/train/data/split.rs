//! Which rows train, validate and test: a split column, or seeded fractions (stratified by
//! class for classification).

use super::Loader;
use super::cells::{Cells, Targets};
use super::columns::Columns;
use crate::error::Result;
use crate::rng::{Stream, stream};
use crate::train::spec::SplitSpec;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;

impl Loader<'_> {
    /// The rows of train, val and test; train and val must have rows, and every class
    /// training rows.
    pub(super) fn split(
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
