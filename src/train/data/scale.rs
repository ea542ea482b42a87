//! Standardisation, fit on the train split only.

use super::cells::{Cells, Targets};
use super::{Split, category_index};

/// What the train split teaches about scaling: each feature's and the target's mean and
/// standard deviation, and each categorical column's vocabulary. Fit on train rows only, so
/// nothing about validation or test rows leaks into training.
pub(super) struct Standardise {
    width: usize,
    pub(super) vocabularies: Vec<Vec<String>>,
    pub(super) feature_stats: Vec<(f64, f64)>,
    pub(super) target_stats: (f64, f64),
}

impl Standardise {
    pub(super) fn fit(
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
    pub(super) fn split(&self, cells: &Cells, targets: &Targets, rows_of: &[usize]) -> Split {
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

/// Mean and (population) standard deviation; a constant column gets 1 so it stays 0.
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    (mean, if std > 1e-12 { std } else { 1.0 })
}
