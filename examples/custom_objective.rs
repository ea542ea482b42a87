//! Tune a burn model of your own with kiln's library API.
//!
//! The model (a small MLP fitting y = sin(3x)), its data and its training loop are ours; kiln
//! samples the parameters, runs trials on worker threads, records every epoch in the journal and
//! writes the leaderboard. Run it with:
//!
//! ```sh
//! cargo run --release --example custom_objective
//! ```

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::tanh;
use kiln::experiment::Experiment;
use kiln::journal::Metrics;
use kiln::sweep::{Execution, SweepOptions};
use kiln::{Decision, Objective, Trial, TrialSummary};
use std::path::Path;
use std::sync::Arc;

const EXPERIMENT: &str = r#"
name = "sine"
seed = 1

[objective]
metric = "val_mse"
direction = "minimize"

[budget]
trials = 6
workers = 2

[space]
learning_rate = { log_uniform = [1e-3, 3e-2] }
width = { choice = [8, 32] }
"#;

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

fn points(n: usize, offset: f32, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let xs: Vec<f32> = (0..n)
        .map(|i| -1.0 + (i as f32 + offset) * 2.0 / n as f32)
        .collect();
    let ys: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
    (
        Tensor::from_data(TensorData::new(xs, [n, 1]), device),
        Tensor::from_data(TensorData::new(ys, [n, 1]), device),
    )
}

impl Objective for SineObjective {
    fn metrics(&self, _experiment: &Experiment) -> kiln::Result<Vec<String>> {
        Ok(vec!["train_mse".into(), "val_mse".into()])
    }

    fn run(&self, trial: &mut Trial<'_>) -> Result<TrialSummary, String> {
        let device = Device::flex().autodiff();
        let width = trial.int("width") as usize;
        let learning_rate = trial.float("learning_rate");
        let mut model = SineNet {
            hidden: LinearConfig::new(1, width).init(&device),
            output: LinearConfig::new(width, 1).init(&device),
        };
        let mut optimizer = AdamConfig::new().init();
        let (x, y) = points(128, 0.0, &device);
        let (x_val, y_val) = points(64, 0.5, &device.clone().inner());
        for epoch in 1..=30 {
            let mut train_mse = 0.0;
            for _ in 0..20 {
                let error = model.forward(x.clone()) - y.clone();
                let loss = (error.clone() * error).mean();
                train_mse = loss.clone().into_scalar::<f32>() as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(learning_rate, model, grads);
            }
            let error = model.valid().forward(x_val.clone()) - y_val.clone();
            let val_mse = (error.clone() * error).mean().into_scalar::<f32>() as f64;
            let metrics =
                Metrics::from([("train_mse".into(), train_mse), ("val_mse".into(), val_mse)]);
            if trial.report(epoch, metrics) == Decision::Stop {
                break;
            }
        }
        Ok(TrialSummary {
            n_params: Some(model.num_params() as u64),
        })
    }
}

fn sweep(results_dir: &Path) -> kiln::Result<kiln::SweepOutcome> {
    let experiment = Experiment::parse_custom(EXPERIMENT, Path::new("sine.toml"), Path::new("."))?;
    let options = SweepOptions {
        results_dir: results_dir.to_path_buf(),
        quiet: true,
        ..SweepOptions::default()
    };
    kiln::sweep::run(
        &experiment,
        &options,
        Execution::Custom(Arc::new(SineObjective)),
    )
}

fn main() -> kiln::Result<()> {
    let dir = Path::new("results/sine");
    let outcome = sweep(dir)?;
    let (best, value) = outcome
        .state
        .best("val_mse", kiln::experiment::Direction::Minimize)
        .expect("a trial completed");
    println!(
        "best trial {}: val_mse {value:.5} with {:?}",
        best.number, best.params
    );
    println!("leaderboard: {}", dir.join("leaderboard.csv").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_sweep_learns_the_sine() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = super::sweep(dir.path()).unwrap();
        assert_eq!(outcome.state.trials.len(), 6);
        let (_, best) = outcome
            .state
            .best("val_mse", kiln::experiment::Direction::Minimize)
            .unwrap();
        // The variance of sin(3x) on [-1, 1] is about 0.5: a trained net does far better.
        assert!(best < 0.05, "best val_mse {best}");
        let leaderboard = std::fs::read_to_string(dir.path().join("leaderboard.csv")).unwrap();
        assert!(leaderboard.starts_with("rank,trial,state,objective,best_epoch,epochs,duration_s,n_params,train_mse,val_mse,gap,learning_rate,width,note"), "{leaderboard}");
    }
}
