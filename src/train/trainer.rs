//! The training loop of the built-in objective: mini-batches, loss, backprop, optimizer step,
//! evaluation, early stopping, best weights and checkpoints, once per epoch.

use super::config::TrainConfig;
use super::data::Dataset;
use super::metrics::{clean, evaluate, training_loss};
use super::model::{Architecture, DropoutMasks, Network};
use crate::checkpoint::{self, Slots, TrainingState};
use crate::device::{DeviceName, burn_device};
use crate::files::write_atomic;
use crate::objective::{Decision, Trial, TrialError, TrialSummary};
use crate::rng::{Stream, stream};
use crate::train::spec::EarlyStopping;
use crate::trial::{Direction, Epoch, Metrics};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use rand::seq::SliceRandom;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
                return Err(TrialError::Repeats(format!(
                    "diverged at epoch {epoch} (training loss {loss})"
                )));
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
/// costs. An epoch that takes longer than that is always checkpointed; on small data sets,
/// where writing a checkpoint costs about as much as an epoch, the ratio bounds checkpointing to
/// 1/50 of the training time, and what a crash can lose to 50 checkpoints' worth of training:
/// a resumed trial redoes those epochs, bit for bit. `KILN_CHECKPOINT_RATIO` overrides it: 0
/// checkpoints every epoch.
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
/// costs no extra file.
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

fn serialise(model: &Network) -> Result<Bytes, String> {
    model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the model: {e}"))
}
