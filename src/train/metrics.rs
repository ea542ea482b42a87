//! What the loop measures: the training loss on a batch (on the device, for backprop) and a
//! split's metrics (on the host, in f64).

use super::data::{Dataset, Split};
use super::infer::{argmax, predict};
use super::model::{Architecture, Network};
use crate::train::config::TrainConfig;
use crate::train::settings::Loss;
use crate::train::spec::Task;
use crate::trial::Metrics;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

impl Loss {
    /// A regression loss of one row's error.
    fn of_error(self, e: f64) -> f64 {
        match self {
            Loss::Mae => e.abs(),
            Loss::Huber => {
                let c = e.abs().min(1.0);
                c * (e.abs() - 0.5 * c)
            }
            Loss::Mse => e * e,
            Loss::CrossEntropy => {
                unreachable!("cross_entropy on a regression task is refused when checked")
            }
        }
    }
}

pub(super) fn training_loss(
    output: Tensor<2>,
    split: &Split,
    rows: &[usize],
    config: &TrainConfig,
    device: &Device,
) -> Tensor<1> {
    match config.loss {
        Loss::CrossEntropy => {
            let targets: Vec<i64> = rows.iter().map(|&r| split.classes[r]).collect();
            let targets =
                Tensor::<1, Int>::from_data(TensorData::new(targets, [rows.len()]), device);
            let smoothing = (config.label_smoothing > 0.0).then_some(config.label_smoothing as f32);
            CrossEntropyLossConfig::new()
                .with_smoothing(smoothing)
                .init(device)
                .forward(output, targets)
        }
        regression @ (Loss::Mse | Loss::Mae | Loss::Huber) => {
            let targets: Vec<f32> = rows.iter().map(|&r| split.values[r]).collect();
            let targets = Tensor::<2>::from_data(TensorData::new(targets, [rows.len(), 1]), device);
            let error = output - targets;
            let per_row = match regression {
                Loss::Mae => error.abs(),
                Loss::Huber => {
                    // Huber with delta 1: a²/2 inside, |a| - 1/2 outside; c = min(|a|, 1) gives both.
                    let a = error.abs();
                    let c = a.clone().clamp_max(1.0);
                    c.clone() * (a - c.mul_scalar(0.5))
                }
                Loss::Mse => error.clone() * error,
                Loss::CrossEntropy => unreachable!("matched above"),
            };
            per_row.mean()
        }
    }
}

/// Computes a split's metrics on the host in f64: loss, and accuracy or RMSE/MAE/R².
#[allow(clippy::too_many_arguments)]
pub(super) fn evaluate(
    model: &Network,
    split: &Split,
    prefix: &str,
    config: &TrainConfig,
    architecture: &Architecture,
    data: &Dataset,
    device: &Device,
    metrics: &mut Metrics,
) {
    let outputs = predict(model, split, architecture, device);
    let width = data.n_outputs();
    match data.task {
        Task::Classification => {
            let (mut loss, mut correct) = (0.0f64, 0usize);
            // Per class: true positives, predicted, actual (for macro F1).
            let mut counts = vec![(0usize, 0usize, 0usize); width];
            for (row, logits) in outputs.chunks(width).enumerate() {
                let target = split.classes[row] as usize;
                let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
                let log_sum = logits
                    .iter()
                    .map(|&v| (v as f64 - max).exp())
                    .sum::<f64>()
                    .ln()
                    + max;
                loss += log_sum - logits[target] as f64;
                let predicted = argmax(logits);
                correct += usize::from(predicted == target);
                counts[target].0 += usize::from(predicted == target);
                counts[predicted].1 += 1;
                counts[target].2 += 1;
            }
            let n = split.rows as f64;
            // Macro F1: the mean over classes of 2 TP / (predicted + actual).
            let f1 = counts
                .iter()
                .map(|&(tp, predicted, actual)| match predicted + actual {
                    0 => 0.0,
                    total => 2.0 * tp as f64 / total as f64,
                })
                .sum::<f64>()
                / width as f64;
            metrics.insert(format!("{prefix}_loss"), clean(loss / n));
            metrics.insert(format!("{prefix}_accuracy"), correct as f64 / n);
            metrics.insert(format!("{prefix}_f1"), clean(f1));
        }
        Task::Regression => {
            let (mean, std) = data.target_stats;
            let n = split.rows as f64;
            let (mut loss, mut squared, mut absolute) = (0.0f64, 0.0f64, 0.0f64);
            for (prediction, target) in outputs.iter().zip(&split.values) {
                let e = (*prediction - *target) as f64;
                loss += config.loss.of_error(e);
                squared += (e * std).powi(2);
                absolute += (e * std).abs();
            }
            let truth_mean = split
                .values
                .iter()
                .map(|&v| v as f64 * std + mean)
                .sum::<f64>()
                / n;
            let total: f64 = split
                .values
                .iter()
                .map(|&v| (v as f64 * std + mean - truth_mean).powi(2))
                .sum();
            metrics.insert(format!("{prefix}_loss"), clean(loss / n));
            metrics.insert(format!("{prefix}_rmse"), clean((squared / n).sqrt()));
            metrics.insert(format!("{prefix}_mae"), clean(absolute / n));
            metrics.insert(
                format!("{prefix}_r2"),
                clean(1.0 - squared / total.max(f64::MIN_POSITIVE)),
            );
        }
    }
}

/// Rounds to 9 significant digits: metrics computed from f32 outputs carry no more, and short
/// numbers keep the CSV files readable.
pub(super) fn clean(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.8e}").parse().unwrap_or(x)
}
