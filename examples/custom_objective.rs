//! Tune a burn model of your own: this program is a kiln, with one more objective.
//!
//! The model (a small MLP fitting y = sin(3x)), its data and its training loop are ours; one
//! call in `main` gives this program kiln's whole command line, and `[objective] kind = "sine"`
//! in `examples/custom_objective.toml` chooses our objective. Trials run in worker processes of
//! this same program, with the journal, exact resume, pruning, Ctrl-C, PostgreSQL workers,
//! reports and plots:
//!
//! ```sh
//! cargo run --release --example custom_objective -- run examples/custom_objective.toml
//! cargo run --release --example custom_objective -- resume results/sine
//! cargo run --release --example custom_objective -- status results/sine
//! cargo run --release --example custom_objective -- worker --storage URL --sweep sine
//! ```
//!
//! Exact resume comes from three habits: weights initialised from the trial's seed, every
//! epoch's randomness derived from (seed, epoch), and a checkpoint saved before each report.

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::tanh;
use kiln::trial::Metrics;
use kiln::{Decision, Experiment, Objective, Objectives, Trial, TrialError, TrialSummary};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;

#[derive(Module, Debug)]
struct SineNet {
    hidden: Linear,
    output: Linear,
}

impl SineNet {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output.forward(tanh(self.hidden.forward(x)))
    }
}

/// Fits y = sin(3x) on [-1, 1]; validation on points between the training points.
struct SineObjective;

/// Our own state in the checkpoint.
#[derive(Serialize, Deserialize, Default)]
struct State {
    best_val_mse: Option<f64>,
}

/// The `n` points of a grid on [-1, 1], shifted by `offset` grid steps, and sin(3x) there.
fn points(n: usize, offset: f32) -> (Vec<f32>, Vec<f32>) {
    let xs: Vec<f32> = (0..n)
        .map(|i| -1.0 + (i as f32 + offset) * 2.0 / n as f32)
        .collect();
    let ys = xs.iter().map(|x| (3.0 * x).sin()).collect();
    (xs, ys)
}

fn column(values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
}

/// Random streams of a trial, by purpose.
const SHUFFLE: u64 = 1;
const BATCH: usize = 16;

impl Objective for SineObjective {
    fn metrics(&self, _experiment: &Experiment) -> kiln::Result<Vec<String>> {
        Ok(vec!["train_mse".into(), "val_mse".into()])
    }

    fn run(&self, trial: &mut Trial<'_>) -> Result<TrialSummary, TrialError> {
        let device = Device::flex().autodiff();
        let width = trial.int("width")? as usize;
        let learning_rate = trial.float("learning_rate")?;
        let epochs = trial.int("epochs")? as u32;
        // Weights from the trial's seed: burn's backend RNG is global to the process, which
        // runs one trial at a time. The parameters are drawn lazily, so one forward pass draws
        // them now, under this seed.
        device.seed(trial.seed_for(0, 0));
        let model = SineNet {
            hidden: LinearConfig::new(1, width).init(&device),
            output: LinearConfig::new(width, 1).init(&device),
        };
        let _ = model.forward(Tensor::zeros([1, 1], &device));
        let optimizer = AdamConfig::new().init();
        let (mut model, mut optimizer, mut state, start) =
            match trial.load_checkpoint::<_, State>(model.clone(), optimizer.clone())? {
                Some(r) => (r.model, r.optimizer, r.state, r.epoch + 1),
                None => (model, optimizer, State::default(), 1),
            };
        let (xs, ys) = points(128, 0.0);
        let (x_val, y_val) = points(64, 0.5);
        let (x_val, y_val) = (
            column(&x_val, &device.clone().inner()),
            column(&y_val, &device.clone().inner()),
        );
        for epoch in start..=epochs {
            // This epoch's shuffle depends on (seed, epoch) only: the same after a resume.
            let mut order: Vec<usize> = (0..xs.len()).collect();
            order.shuffle(&mut trial.rng(SHUFFLE, epoch));
            let mut train_mse = 0.0;
            for batch in order.chunks(BATCH) {
                let bx: Vec<f32> = batch.iter().map(|&i| xs[i]).collect();
                let by: Vec<f32> = batch.iter().map(|&i| ys[i]).collect();
                let error = model.forward(column(&bx, &device)) - column(&by, &device);
                let loss = (error.clone() * error).mean();
                train_mse += loss.clone().into_scalar::<f32>() as f64 / (xs.len() / BATCH) as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(learning_rate, model, grads);
            }
            let error = model.valid().forward(x_val.clone()) - y_val.clone();
            let val_mse = (error.clone() * error).mean().into_scalar::<f32>() as f64;
            if state.best_val_mse.is_none_or(|b| val_mse < b) {
                state.best_val_mse = Some(val_mse);
            }
            trial.save_checkpoint(epoch, &model, &optimizer, &state)?;
            let metrics =
                Metrics::from([("train_mse".into(), train_mse), ("val_mse".into(), val_mse)]);
            if trial.report(epoch, metrics) == Decision::Stop {
                break;
            }
        }
        Ok(TrialSummary {
            n_params: Some(model.num_params() as u64),
            ..TrialSummary::default()
        })
    }
}

fn main() -> ExitCode {
    kiln::cli::main(Objectives::builtin().with("sine", SineObjective))
}
