//! A trial's training settings, typed: the network's shape, the optimizer and the learning
//! rate of each epoch, read once from the trial's resolved settings.

use super::data::Dataset;
use super::model::Architecture;
use crate::device::Backend;
use crate::settings::{SettingError, Settings};
use crate::train::settings::{Activation, Loss, ModelKind, Norm, Optimizer, Schedule};
use crate::train::spec::Task;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, RmsPropConfig, SgdConfig};

/// A trial's training settings, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Hidden width.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
    /// Activation.
    pub activation: Activation,
    /// Normalisation after each hidden layer.
    pub norm: Norm,
    /// Model family.
    pub kind: ModelKind,
    /// CNN: channels of the first convolution.
    pub channels: usize,
    /// CNN: kernel size.
    pub kernel_size: usize,
    /// CNN: convolutions.
    pub conv_layers: usize,
    /// Width of categorical embeddings.
    pub embedding_dim: usize,
    /// Dropout probability.
    pub dropout: f64,
    /// Maximum epochs.
    pub epochs: u32,
    /// Rows per batch.
    pub batch_size: usize,
    /// Base learning rate.
    pub learning_rate: f64,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Momentum (sgd, rmsprop).
    pub momentum: f64,
    /// Nesterov momentum (sgd).
    pub nesterov: bool,
    /// Adam betas.
    pub betas: (f64, f64),
    /// Adam/RMSprop epsilon.
    pub epsilon: f64,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Step decay period.
    pub step_size: u32,
    /// Decay factor.
    pub gamma: f64,
    /// Warm-up epochs.
    pub warmup_epochs: u32,
    /// L2 / decoupled weight decay.
    pub weight_decay: f64,
    /// L1 penalty.
    pub l1: f64,
    /// Label smoothing.
    pub label_smoothing: f64,
    /// Gradient norm clipping.
    pub grad_clip_norm: Option<f64>,
    /// Gradient value clipping.
    pub grad_clip_value: Option<f64>,
    /// The loss.
    pub loss: Loss,
    /// The backend.
    pub backend: Backend,
}

impl TrainConfig {
    /// Reads typed values from resolved settings (validated when the experiment was parsed;
    /// a name that is not one of its setting's is refused again here, never defaulted).
    pub fn from_settings(s: &Settings, task: Task) -> Result<TrainConfig, SettingError> {
        let int = |n: &str| s.int(n).unwrap_or(0).max(0) as u64;
        let float = |n: &str| s.float(n).unwrap_or(0.0);
        Ok(TrainConfig {
            hidden: int("hidden") as usize,
            layers: int("layers") as usize,
            activation: s.named("activation")?,
            norm: s.named("norm")?,
            kind: s.named("kind")?,
            channels: int("channels") as usize,
            kernel_size: int("kernel_size") as usize,
            conv_layers: int("conv_layers") as usize,
            embedding_dim: int("embedding_dim") as usize,
            dropout: float("dropout"),
            epochs: int("epochs") as u32,
            batch_size: int("batch_size").max(1) as usize,
            learning_rate: float("learning_rate"),
            optimizer: s.named("optimizer")?,
            momentum: float("momentum"),
            nesterov: s.flag("nesterov").unwrap_or(false),
            betas: (float("beta1"), float("beta2")),
            epsilon: float("epsilon"),
            schedule: s.named("lr_schedule")?,
            step_size: int("step_size").max(1) as u32,
            gamma: float("gamma"),
            warmup_epochs: int("warmup_epochs") as u32,
            weight_decay: float("weight_decay"),
            l1: float("l1"),
            label_smoothing: float("label_smoothing"),
            grad_clip_norm: s.float("grad_clip_norm"),
            grad_clip_value: s.float("grad_clip_value"),
            loss: match s.get("loss") {
                Some(_) => s.named("loss")?,
                None => match task {
                    Task::Classification => Loss::CrossEntropy,
                    Task::Regression => Loss::Mse,
                },
            },
            backend: s.named("backend")?,
        })
    }

    /// The network's shape for a data set.
    pub fn architecture(&self, data: &Dataset) -> Architecture {
        Architecture {
            kind: self.kind,
            inputs: data.n_features(),
            outputs: data.n_outputs(),
            hidden: self.hidden,
            layers: self.layers,
            activation: self.activation,
            norm: self.norm,
            image: data.image,
            channels: self.channels,
            kernel_size: self.kernel_size,
            conv_layers: self.conv_layers,
            embeddings: data.vocabularies.iter().map(|v| v.len() + 1).collect(),
            embedding_dim: self.embedding_dim,
        }
    }

    /// The learning rate of `epoch` (from 1): linear warm-up, then the schedule.
    pub fn learning_rate_at(&self, epoch: u32) -> f64 {
        let lr = self.learning_rate;
        if epoch <= self.warmup_epochs {
            return lr * epoch as f64 / (self.warmup_epochs + 1) as f64;
        }
        let t = (epoch - self.warmup_epochs - 1) as f64;
        match self.schedule {
            Schedule::Constant => lr,
            Schedule::Step => lr * self.gamma.powi((t as u32 / self.step_size) as i32),
            Schedule::Exponential => lr * self.gamma.powf(t),
            Schedule::Cosine => {
                let span = (self.epochs.saturating_sub(self.warmup_epochs)).max(1) as f64;
                0.5 * lr * (1.0 + (std::f64::consts::PI * t / span).cos())
            }
        }
    }

    pub(super) fn optimizer(&self) -> ModuleOptimizer {
        let clipping = match (self.grad_clip_norm, self.grad_clip_value) {
            (Some(norm), _) => Some(GradientClippingConfig::Norm(norm as f32)),
            (None, Some(value)) => Some(GradientClippingConfig::Value(value as f32)),
            (None, None) => None,
        };
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.optimizer {
            Optimizer::Sgd => SgdConfig::new()
                .with_momentum((self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(0.0)
                        .with_nesterov(self.nesterov)
                }))
                .with_weight_decay(decay)
                .with_gradient_clipping(clipping)
                .init(),
            Optimizer::Adam => AdamConfig::new()
                .with_beta_1(self.betas.0 as f32)
                .with_beta_2(self.betas.1 as f32)
                .with_epsilon(self.epsilon as f32)
                .with_weight_decay(decay)
                .with_grad_clipping(clipping)
                .init(),
            Optimizer::RmsProp => RmsPropConfig::new()
                .with_momentum(self.momentum as f32)
                .with_epsilon(self.epsilon as f32)
                .with_weight_decay(decay)
                .with_grad_clipping(clipping)
                .init(),
            // The fused update runs on the host: on a GPU, burn's AdamW keeps the weights
            // where they are. Both keep `AdamWState`, so a checkpoint suits either.
            Optimizer::AdamW if self.backend.on_gpu() => AdamWConfig::new()
                .with_beta_1(self.betas.0 as f32)
                .with_beta_2(self.betas.1 as f32)
                .with_epsilon(self.epsilon as f32)
                .with_weight_decay(self.weight_decay as f32)
                .with_grad_clipping(clipping)
                .init(),
            Optimizer::AdamW => {
                let optimizer = ModuleOptimizer::from(super::adamw::FusedAdamW {
                    beta_1: self.betas.0 as f32,
                    beta_2: self.betas.1 as f32,
                    epsilon: self.epsilon as f32,
                    weight_decay: self.weight_decay as f32,
                });
                match clipping {
                    Some(clipping) => optimizer.with_grad_clipping(clipping.init()),
                    None => optimizer,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: &str, warmup: u32) -> TrainConfig {
        let mut settings = Settings::with_defaults(&Default::default());
        settings = settings.with_params(
            &[(
                "lr_schedule".to_string(),
                crate::space::ParamValue::Str(schedule.into()),
            )]
            .into(),
        );
        let mut c = TrainConfig::from_settings(&settings, Task::Classification).unwrap();
        c.learning_rate = 0.1;
        c.warmup_epochs = warmup;
        c.epochs = 10;
        c.gamma = 0.5;
        c.step_size = 2;
        c
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let step = config("step", 0);
        assert_eq!(
            [1, 2, 3, 5].map(|e| step.learning_rate_at(e)),
            [0.1, 0.1, 0.05, 0.025]
        );
        let warm = config("constant", 3);
        assert_eq!(
            [1, 3, 4].map(|e| warm.learning_rate_at(e)),
            [0.025, 0.07500000000000001, 0.1]
        );
        let cosine = config("cosine", 0);
        assert!((cosine.learning_rate_at(6) - 0.05).abs() < 1e-12);
    }
}
