//! The training loop of the built-in objective: mini-batches, loss, backprop, optimizer step,
//! evaluation, early stopping, best weights and checkpoints, once per epoch.

use super::data::{Dataset, Split};
use super::infer::{argmax, predict};
use super::model::{Architecture, DropoutMasks, Network};
use crate::checkpoint::{self, Slots, TrainingState};
use crate::device::Backend;
use crate::device::{DeviceName, burn_device};
use crate::files::write_atomic;
use crate::objective::{Decision, Trial, TrialError, TrialSummary};
use crate::rng::{Stream, stream};
use crate::settings::Settings;
use crate::train::settings::{Activation, Loss, ModelKind, Norm, Optimizer, Schedule};
use crate::train::spec::{EarlyStopping, Task};
use crate::trial::{Direction, Epoch, Metrics};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, RmsPropConfig, SgdConfig,
};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use rand::seq::SliceRandom;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    pub fn from_settings(s: &Settings, task: Task) -> Result<TrainConfig, String> {
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

    fn optimizer(&self) -> ModuleOptimizer {
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

/// What the loop needs besides the trial's settings.
pub struct TrainSetup<'a> {
    /// The prepared data.
    pub data: &'a Dataset,
    /// The trial's typed settings.
    pub config: TrainConfig,
    /// Patience, if any.
    pub early_stopping: Option<&'a EarlyStopping>,
    /// The objective metric and direction (for best weights).
    pub objective: (&'a str, Direction),
}

/// Trains one trial, resuming from its checkpoint when it has one.
pub fn train(trial: &mut Trial<'_>, setup: &TrainSetup<'_>) -> Result<TrialSummary, TrialError> {
    let (mut run, mut model) = Run::prepare(trial, setup)?;
    let summary = TrialSummary {
        n_params: Some(model.trainable_params() as u64),
        metrics: Metrics::new(),
    };
    model = run.resume(trial, model)?;
    if run.stopped || should_stop_early(&run.state, setup.early_stopping) {
        return run.finish(summary, model);
    }
    let mut order: Vec<usize> = (0..setup.data.train.rows).collect();
    for epoch in run.state.epoch + 1..=setup.config.epochs {
        let started = Instant::now();
        let lr = setup.config.learning_rate_at(epoch);
        order.sort_unstable();
        order.shuffle(&mut stream(trial.seed(), Stream::Shuffle, &[epoch as u64]));
        let (trained_model, loss_sum) = run.train_epoch(model, trial.seed(), epoch, lr, &order)?;
        model = trained_model;
        let metrics = run.evaluate(&model, epoch, loss_sum)?;
        // Training time ends here; what follows is bookkeeping and the checkpoint.
        let trained = started.elapsed().as_secs_f64();
        run.end_epoch(trial, &model, epoch, lr, metrics, trained)?;
        if run.stopped {
            break;
        }
    }
    run.finish(summary, model)
}

/// One trial's training, between epochs: what carries over from one epoch to the next
/// (and into the checkpoint), besides the model.
struct Run<'s> {
    setup: &'s TrainSetup<'s>,
    architecture: Architecture,
    device: Device,
    eval_device: Device,
    dir: PathBuf,
    optimizer: ModuleOptimizer,
    state: TrainingState,
    /// The best epoch's weights as burnpack bytes (empty before the first epoch).
    best_model: Vec<u8>,
    slots: Slots,
    /// Checkpoints are written after the first epoch, then whenever the training time since
    /// the last one reaches `checkpoint_ratio` times what it cost.
    since_checkpoint_s: f64,
    checkpoint_cost_s: f64,
    checkpoint_ratio: f64,
    /// The trial was told to stop, or patience ran out.
    stopped: bool,
}

impl<'s> Run<'s> {
    /// The trial's folder with its `model.json`, and a new model and optimizer.
    fn prepare(
        trial: &Trial<'_>,
        setup: &'s TrainSetup<'s>,
    ) -> Result<(Run<'s>, Network), TrialError> {
        let (config, data) = (&setup.config, setup.data);
        let assigned = (trial.device())
            .map(|name| name.parse::<DeviceName>())
            .transpose()?;
        let device = burn_device(config.backend, assigned)?.autodiff();
        let dir = trial.dir().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| TrialError::io(format!("cannot create {}", dir.display()), &e))?;
        let architecture = config.architecture(data);
        let params = architecture.dense_params();
        if params > super::model::MAX_PARAMS {
            return Err(format!(
                "the model would have about {params} parameters (hidden {}, layers {}), more than the {} kiln trains: lower `hidden` or `layers`",
                architecture.hidden,
                architecture.layers,
                super::model::MAX_PARAMS
            )
            .into());
        }
        let model = architecture.build(&mut stream(trial.seed(), Stream::Init, &[]), &device);
        super::saved::ModelDescription::new(architecture.clone(), data)
            .save(&dir)
            .map_err(|e| {
                TrialError::io(format!("cannot write {}/model.json", dir.display()), &e)
            })?;
        let run = Run {
            setup,
            architecture,
            eval_device: device.clone().inner(),
            device,
            slots: Slots::new(&dir),
            dir,
            optimizer: config.optimizer(),
            state: TrainingState::default(),
            best_model: Vec::new(),
            since_checkpoint_s: 0.0,
            checkpoint_cost_s: 0.0,
            checkpoint_ratio: checkpoint_cost_ratio(),
            stopped: false,
        };
        Ok((run, model))
    }

    /// Continues after the trial's checkpoint, if it has one, re-reporting the epochs the
    /// journal does not have. An older checkpoint than the journal's last epoch is fine:
    /// training is a pure function of the seed, so the epochs after it come out the same again.
    fn resume(&mut self, trial: &mut Trial<'_>, model: Network) -> Result<Network, TrialError> {
        let Some(checkpoint) = self.slots.load_owned(trial.owner(), u32::MAX) else {
            return Ok(model);
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(checkpoint.model))
            .map_err(|e| format!("cannot read the checkpoint's model: {e}"))?;
        let model = model
            .try_load_record(record)
            .map_err(|e| format!("cannot load the checkpoint's model: {e}"))?;
        let optimizer = std::mem::replace(&mut self.optimizer, self.setup.config.optimizer());
        self.optimizer = optimizer
            .from_bytes(Bytes::from_bytes_vec(checkpoint.optimizer))
            .map_err(|e| format!("cannot load the checkpoint's optimizer: {e}"))?;
        self.state = checkpoint.state;
        self.best_model = checkpoint.extra;
        // Of those, only the checkpoint's own epoch still has its checkpoint on disk.
        let missing: Vec<Epoch> = (self.state.reports.iter())
            .filter(|r| r.epoch > trial.journaled_epochs())
            .map(|r| Epoch {
                checkpointed: r.epoch == self.state.epoch,
                ..r.clone()
            })
            .collect();
        for report in missing {
            if trial.report_epoch(report) == Decision::Stop {
                self.stopped = true;
                break;
            }
        }
        Ok(model)
    }

    /// One pass over the train split in `order`; the trained model and the summed loss.
    fn train_epoch(
        &mut self,
        mut model: Network,
        seed: u64,
        epoch: u32,
        lr: f64,
        order: &[usize],
    ) -> Result<(Network, f64), TrialError> {
        let (config, data) = (&self.setup.config, self.setup.data);
        let inputs = data.n_features();
        let n_categorical = data.categorical.len();
        let mut dropout_rng = stream(seed, Stream::Dropout, &[epoch as u64]);
        let mut masks = DropoutMasks {
            p: config.dropout,
            rng: &mut dropout_rng,
        };
        // Read back once per epoch: on a GPU, reading each batch's loss would wait for it.
        let mut losses: Vec<Tensor<1>> = Vec::with_capacity(order.len() / config.batch_size + 1);
        let mut batch_x: Vec<f32> = Vec::with_capacity(config.batch_size * inputs);
        let mut batch_categories: Vec<i64> = Vec::new();
        for rows in order.chunks(config.batch_size) {
            batch_x.clear();
            batch_categories.clear();
            for &r in rows {
                batch_x.extend_from_slice(&data.train.x[r * inputs..(r + 1) * inputs]);
                batch_categories.extend_from_slice(
                    &data.train.categories[r * n_categorical..(r + 1) * n_categorical],
                );
            }
            let x = Tensor::<2>::from_data(
                TensorData::new(batch_x.clone(), [rows.len(), inputs]),
                &self.device,
            );
            let categories = (n_categorical > 0).then(|| {
                Tensor::<2, Int>::from_data(
                    TensorData::new(batch_categories.clone(), [rows.len(), n_categorical]),
                    &self.device,
                )
            });
            let output = model.forward(x, categories, &self.architecture, Some(&mut masks));
            let mut loss = training_loss(output, &data.train, rows, config, &self.device);
            if config.l1 > 0.0 {
                loss = loss + model.l1_norm().mul_scalar(config.l1);
            }
            losses.push(loss.clone().detach());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = self.optimizer.step(lr, model, grads);
        }
        let mut loss_sum = 0.0f64;
        let values = Tensor::cat(losses, 0).into_data();
        let values = values.iter::<f32>();
        for (loss, rows) in values.zip(order.chunks(config.batch_size)) {
            if !loss.is_finite() {
                return Err(format!("diverged at epoch {epoch} (training loss {loss})").into());
            }
            loss_sum += loss as f64 * rows.len() as f64;
        }
        Ok((model, loss_sum))
    }

    /// The epoch's metrics: the training loss, then validation's. The test split is measured
    /// once, when the trial ends ([`Run::finish`]): a metric in every epoch invites choosing
    /// by it.
    fn evaluate(&self, model: &Network, epoch: u32, loss_sum: f64) -> Result<Metrics, TrialError> {
        let (config, data) = (&self.setup.config, self.setup.data);
        let mut metrics = Metrics::new();
        metrics.insert(
            "train_loss".into(),
            clean(loss_sum / data.train.rows as f64),
        );
        evaluate(
            &model.valid(),
            &data.val,
            "val",
            config,
            &self.architecture,
            data,
            &self.eval_device,
            &mut metrics,
        );
        if let Some(bad) = metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(format!("diverged at epoch {epoch} ({} is {})", bad.0, bad.1).into());
        }
        Ok(metrics)
    }

    /// Bookkeeping after an epoch: best weights, patience, the checkpoint when it is due,
    /// and the report (the answer may stop the trial).
    fn end_epoch(
        &mut self,
        trial: &mut Trial<'_>,
        model: &Network,
        epoch: u32,
        lr: f64,
        metrics: Metrics,
        trained: f64,
    ) -> Result<(), TrialError> {
        let bookkeeping = Instant::now();
        let best_bytes = self.keep_best(model, &metrics)?;
        if let Some(es) = self.setup.early_stopping {
            self.state
                .observe_patience(es, metrics.get(&es.monitor).copied());
        }
        self.state.epoch = epoch;
        self.state.owner = trial.owner().to_string();
        self.state.elapsed_s += trained;
        self.since_checkpoint_s += trained;
        let checkpointed =
            self.since_checkpoint_s >= self.checkpoint_ratio * self.checkpoint_cost_s;
        let report = Epoch {
            epoch,
            elapsed_s: (self.state.elapsed_s * 1e6).round() / 1e6,
            lr: Some(lr),
            metrics,
            checkpointed,
        };
        self.state.reports.push(report.clone());
        if checkpointed {
            self.save(model, best_bytes)?;
            self.checkpoint_cost_s = bookkeeping.elapsed().as_secs_f64();
            self.since_checkpoint_s = 0.0;
        }
        if trial.report_epoch(report) == Decision::Stop
            || should_stop_early(&self.state, self.setup.early_stopping)
        {
            if !checkpointed {
                // Told to stop (Ctrl-C, say): a resumed trial continues from here.
                self.save(model, None)?;
            }
            self.stopped = true;
        }
        Ok(())
    }

    /// Keeps the model's weights when the objective metric improved; their bytes, then.
    fn keep_best(
        &mut self,
        model: &Network,
        metrics: &Metrics,
    ) -> Result<Option<Bytes>, TrialError> {
        let (objective_metric, direction) = self.setup.objective;
        let Some(&value) = metrics.get(objective_metric) else {
            return Ok(None);
        };
        if self
            .state
            .objective_best
            .is_some_and(|b| !direction.better(value, b))
        {
            return Ok(None);
        }
        self.state.objective_best = Some(value);
        let bytes = serialise(model)?;
        self.best_model = bytes.to_vec();
        Ok(Some(bytes))
    }

    /// The trial's end: the best epoch's weights written, and the test split measured with
    /// them (when the data has one).
    fn finish(
        &self,
        mut summary: TrialSummary,
        model: Network,
    ) -> Result<TrialSummary, TrialError> {
        let (config, data) = (&self.setup.config, self.setup.data);
        if let Some(test) = data.test.as_ref().filter(|_| !self.best_model.is_empty()) {
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.best_model.clone()))
                .map_err(|e| format!("cannot read the best epoch's weights: {e}"))?;
            let best = model
                .try_load_record(record)
                .map_err(|e| format!("cannot load the best epoch's weights: {e}"))?;
            evaluate(
                &best.valid(),
                test,
                "test",
                config,
                &self.architecture,
                data,
                &self.eval_device,
                &mut summary.metrics,
            );
        }
        finish(&self.dir, summary, &self.best_model)
    }

    /// Writes the checkpoint (`model_bytes`: the model's, when already serialised).
    fn save(&mut self, model: &Network, model_bytes: Option<Bytes>) -> Result<(), TrialError> {
        let model_bytes = match model_bytes {
            Some(bytes) => bytes,
            None => serialise(model)?,
        };
        let optimizer_bytes = self
            .optimizer
            .into_bytes()
            .map_err(|e| format!("cannot serialise the optimizer: {e}"))?;
        self.slots
            .save(
                &self.state,
                &model_bytes,
                &optimizer_bytes,
                &self.best_model,
            )
            .map_err(|e| {
                TrialError::io(
                    format!("cannot write the checkpoint in {}", self.dir.display()),
                    &e,
                )
            })
    }
}

impl TrainingState {
    /// Patience's bookkeeping: the monitored metric's best, and the epochs since it improved
    /// by more than `min_delta`.
    fn observe_patience(&mut self, es: &EarlyStopping, value: Option<f64>) {
        let improved = match (value, self.monitor_best) {
            (Some(v), None) => v.is_finite().then_some(v),
            (Some(v), Some(best)) => {
                let delta = match es.mode {
                    Direction::Maximize => v - best,
                    Direction::Minimize => best - v,
                };
                (delta > es.min_delta).then_some(v)
            }
            (None, _) => None,
        };
        match improved {
            Some(v) => {
                self.monitor_best = Some(v);
                self.epochs_without_improvement = 0;
            }
            None => self.epochs_without_improvement += 1,
        }
    }
}

/// How much training time may pass between checkpoints, as a multiple of what writing one
/// costs. Every epoch that takes longer than that is checkpointed; on tiny data sets, where an
/// epoch takes milliseconds, a checkpoint every epoch cost 7% of the training time (MLP
/// 64-256-256-10, batch 256, digits). Checkpointing only when 50 times its cost has been
/// trained bounds that to 2%, and what a crash can lose to 50 checkpoints' worth of training,
/// a fraction of a second: a resumed trial redoes those epochs, bit for bit.
/// `KILN_CHECKPOINT_RATIO` overrides it: 0 checkpoints every epoch.
const CHECKPOINT_COST_RATIO: f64 = 50.0;

fn checkpoint_cost_ratio() -> f64 {
    std::env::var("KILN_CHECKPOINT_RATIO")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|r| *r >= 0.0)
        .unwrap_or(CHECKPOINT_COST_RATIO)
}

/// A trial stops (complete, stopped early, or told to stop): its best weights become
/// `best.bpk`, durably. While it trains they live in the checkpoint, so that an improving epoch
/// costs no extra file (creating one took 0.46 ms here, a tenth of a small epoch).
fn finish(
    dir: &Path,
    summary: TrialSummary,
    best_model: &[u8],
) -> Result<TrialSummary, TrialError> {
    if !best_model.is_empty() {
        let best = dir.join("best.bpk");
        write_atomic(&best, best_model, true)
            .map_err(|e| TrialError::io(format!("cannot write {}", best.display()), &e))?;
        let sum = super::saved::checksum_path(&best);
        let hex = format!("{:016x}\n", checkpoint::checksum(&[best_model]));
        write_atomic(&sum, hex.as_bytes(), true)
            .map_err(|e| TrialError::io(format!("cannot write {}", sum.display()), &e))?;
    }
    Ok(summary)
}

fn should_stop_early(state: &TrainingState, early_stopping: Option<&EarlyStopping>) -> bool {
    early_stopping.is_some_and(|es| state.epochs_without_improvement >= es.patience)
}

fn training_loss(
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
fn evaluate(
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
fn clean(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.8e}").parse().unwrap_or(x)
}

fn serialise(model: &Network) -> Result<Bytes, String> {
    model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the model: {e}"))
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
