//! Objectives: what a trial computes. Every kind sits behind one trait, [`Objective`], and runs
//! the same way (worker processes, the journal, exact resume, pruning, reports):
//!
//! - `train` ([`crate::train::objective::BurnObjective`]): the built-in burn trainer, on `[data]`;
//! - `function` ([`function::FunctionObjective`]): synthetic test functions;
//! - `command` ([`command::CommandObjective`]): a training script in any language;
//! - any objective a program of your own registers in [`registry::Objectives`] and runs with
//!   [`crate::cli::main`] (`examples/custom_objective.rs`).
//!
//! `[objective] kind` chooses one by name. Each objective checks its own settings when it is
//! built and says which metrics it reports. kiln's own are registered by [`crate::builtin`],
//! the way a program of your own registers its: nothing here knows any of them.

pub mod checkpoint;
pub mod command;
pub mod function;
pub mod registry;

use crate::error::Result;
use crate::experiment::Experiment;
use crate::settings::Settings;
use crate::space::{ParamValue, Params};
use crate::trial::{Epoch, Metrics};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The orchestrator's answer to a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Train another epoch.
    Continue,
    /// Stop now (pruned, or the sweep is being interrupted); the last checkpoint stands.
    Stop,
}

/// What a trial's objective needs to know to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialTask {
    /// Trial number.
    pub number: u64,
    /// The trial's seed: all of its randomness derives from it.
    pub seed: u64,
    /// Its sampled parameters.
    pub params: Params,
    /// Epochs already in the journal (0 for a new trial): resume from the checkpoint after them.
    pub journaled_epochs: u32,
    /// Training time the journal holds for those epochs.
    #[serde(default)]
    pub journaled_elapsed_s: f64,
    /// The trial's folder (checkpoint, best weights). It survives resumes and, in a shared
    /// sweep, moves with the trial to whichever worker continues it.
    pub dir: PathBuf,
    /// Whose checkpoints the trial may load: a fingerprint of the sweep's experiment, the
    /// trial's seed and its parameters ([`owner`]).
    #[serde(default)]
    pub owner: String,
    /// Whether each report waits for the orchestrator's answer. A pruner needs that; without
    /// one, the only answer that is not "continue" is a Ctrl-C's "stop", which may as well
    /// arrive one epoch later, and not waiting saves a round trip between processes per epoch.
    #[serde(default)]
    pub await_decisions: bool,
}

/// The owner of a trial's checkpoints: the sweep's experiment (its fingerprint), the trial's
/// seed and its parameters. A checkpoint with another owner was left by another sweep.
pub fn owner(fingerprint: &str, seed: u64, params: &Params) -> String {
    let params = serde_json::to_string(params).unwrap_or_default();
    let text = format!("{fingerprint}/{seed}/{params}");
    format!("{:016x}", crate::files::fnv64(text.as_bytes()))
}

/// Where a trial's reports go, and where the decisions come from.
pub trait Reporter: Send {
    /// Records a report and answers whether to go on.
    fn report(&mut self, report: Epoch) -> Decision;

    /// Whether the sweep asked running trials to stop (Ctrl-C, SIGTERM) since the last
    /// report, without waiting. An objective whose epochs are long may stop mid-epoch.
    fn stop_requested(&mut self) -> bool {
        false
    }
}

/// A live trial: its parameters, and the way to report progress.
pub struct Trial<'a> {
    task: TrialTask,
    settings: Settings,
    reporter: &'a mut dyn Reporter,
    started: std::time::Instant,
    /// The checkpoint slots of the trial's folder (see [`crate::checkpoint::Slots`]).
    slots: std::cell::RefCell<crate::checkpoint::Slots>,
}

impl<'a> Trial<'a> {
    /// A trial handle over `task`, with settings resolved by the caller.
    pub fn new(task: TrialTask, settings: Settings, reporter: &'a mut dyn Reporter) -> Trial<'a> {
        Trial {
            slots: std::cell::RefCell::new(crate::checkpoint::Slots::new(&task.dir)),
            task,
            settings,
            reporter,
            started: std::time::Instant::now(),
        }
    }

    /// Trial number.
    pub fn number(&self) -> u64 {
        self.task.number
    }

    /// The trial's seed.
    pub fn seed(&self) -> u64 {
        self.task.seed
    }

    /// The device this trial's worker process was given (`[budget] devices`, e.g. `cuda:1`), if
    /// the experiment names devices: the objective places its work there. For a burn model,
    /// parse the name as a [`crate::device::DeviceName`] and ask it for its `device()` (kiln
    /// built with that backend's feature).
    pub fn device(&self) -> Option<String> {
        std::env::var(DEVICE_VARIABLE).ok()
    }

    /// Its sampled parameters.
    pub fn params(&self) -> &Params {
        &self.task.params
    }

    /// Resolved settings: defaults, fixed settings, then sampled parameters.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The trial's folder, for checkpoints and weights.
    pub fn dir(&self) -> &Path {
        &self.task.dir
    }

    /// Epochs the journal already holds: a resumed trial continues after them. A report of
    /// one of these epochs must repeat the journal's metrics (it is then skipped) or the trial
    /// fails: resume from a checkpoint no newer than this epoch.
    pub fn journaled_epochs(&self) -> u32 {
        self.task.journaled_epochs
    }

    /// Whose checkpoints this trial may load ([`TrialTask::owner`]).
    pub fn owner(&self) -> &str {
        &self.task.owner
    }

    /// Whether the sweep is stopping (Ctrl-C, SIGTERM): checkpoint and return soon. Reports
    /// answer [`Decision::Stop`] too; this is for epochs too long to wait for.
    pub fn stop_requested(&mut self) -> bool {
        self.reporter.stop_requested()
    }

    /// A random stream of this trial for `purpose` (any number you choose per use: weights,
    /// shuffling, ...) and `epoch`: the same numbers in every run and every resume, so a
    /// trial resumed at epoch N draws what an uninterrupted one draws there.
    pub fn rng(&self, purpose: u64, epoch: u32) -> crate::rng::Rng {
        crate::rng::stream(
            self.task.seed,
            crate::rng::Stream::User,
            &[purpose, epoch as u64],
        )
    }

    /// A seed of this trial for `purpose` and `epoch`, for libraries that take one, such as
    /// burn's backend RNG (`device.seed(trial.seed_for(0, epoch))` before each epoch makes its
    /// dropout masks, and before building the model its initial weights, the same in every run;
    /// that RNG is global to the process, which a worker process runs one trial at a time).
    pub fn seed_for(&self, purpose: u64, epoch: u32) -> u64 {
        crate::rng::derive(
            self.task.seed,
            crate::rng::Stream::User,
            &[purpose, epoch as u64],
        )
    }

    fn value(&self, name: &str) -> Option<&ParamValue> {
        self.task
            .params
            .get(name)
            .or_else(|| self.settings.get(name))
    }

    /// A float parameter or setting; an error naming it (which fails the trial, with that
    /// note) when the trial has none.
    pub fn float(&self, name: &str) -> Result<f64, TrialError> {
        self.value(name)
            .and_then(ParamValue::as_f64)
            .ok_or_else(|| self.missing(name, "numeric"))
    }

    /// An integer parameter or setting; an error naming it when the trial has none.
    pub fn int(&self, name: &str) -> Result<i64, TrialError> {
        match self.value(name) {
            Some(ParamValue::Int(i)) => Ok(*i),
            _ => Err(self.missing(name, "integer")),
        }
    }

    /// A string parameter or setting; an error naming it when the trial has none.
    pub fn string(&self, name: &str) -> Result<&str, TrialError> {
        match self.value(name) {
            Some(ParamValue::Str(s)) => Ok(s),
            _ => Err(self.missing(name, "string")),
        }
    }

    /// A boolean parameter or setting (`choice = [true, false]`); an error naming it when the
    /// trial has none.
    pub fn bool(&self, name: &str) -> Result<bool, TrialError> {
        match self.value(name) {
            Some(ParamValue::Bool(b)) => Ok(*b),
            _ => Err(self.missing(name, "boolean")),
        }
    }

    fn missing(&self, name: &str, kind: &str) -> TrialError {
        format!(
            "trial {} has no {kind} parameter or setting `{name}`: add it to [space], or give it a value in [objective]",
            self.number()
        )
        .into()
    }

    /// Reports a finished epoch's metrics; the answer says whether to train another. The
    /// elapsed time recorded is the journal's time for the epochs it held plus the time since
    /// this handle was made (this run of the trial).
    pub fn report(&mut self, epoch: u32, metrics: Metrics) -> Decision {
        let elapsed_s = self.elapsed_s();
        self.report_epoch(Epoch {
            epoch,
            elapsed_s,
            lr: None,
            metrics,
            checkpointed: false,
        })
    }

    /// Training time of the trial so far, across resumes, in seconds (microsecond steps).
    pub fn elapsed_s(&self) -> f64 {
        let total = self.task.journaled_elapsed_s + self.started.elapsed().as_secs_f64();
        (total * 1e6).round() / 1e6
    }

    /// Reports a finished epoch with its timing, learning rate and checkpoint.
    pub fn report_epoch(&mut self, mut report: Epoch) -> Decision {
        // Non-finite values cannot be stored as JSON numbers; a diverged trial fails anyway.
        report.metrics.retain(|_, v| v.is_finite());
        self.reporter.report(report)
    }
}

/// Why a trial did not complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialError {
    /// The trial failed; the message becomes its note, and the sweep goes on.
    Failed(String),
    /// The trial failed in a way another attempt would repeat (training diverged: a trial is
    /// a pure function of its seed and parameters): `[budget] retries` does not run it again.
    Repeats(String),
    /// The trial's own files could not be written (a full disk, an I/O error, a quota): not
    /// the trial's fault. The sweep stops with this message and the trial stays unfinished,
    /// to resume once there is room.
    Storage(String),
}

impl TrialError {
    /// `context: error`, a [`TrialError::Storage`] when `error` is one of the storage's own
    /// (a full disk or quota, an I/O error, a read-only file system), else a failure.
    pub fn io(context: impl std::fmt::Display, error: &std::io::Error) -> TrialError {
        let message = format!("{context}: {error}");
        if crate::files::is_storage_error(error) {
            TrialError::Storage(message)
        } else {
            TrialError::Failed(message)
        }
    }
}

impl From<String> for TrialError {
    fn from(message: String) -> TrialError {
        TrialError::Failed(message)
    }
}

impl From<crate::device::DeviceError> for TrialError {
    fn from(error: crate::device::DeviceError) -> TrialError {
        TrialError::Failed(error.to_string())
    }
}

impl From<crate::settings::SettingError> for TrialError {
    fn from(error: crate::settings::SettingError) -> TrialError {
        TrialError::Failed(error.to_string())
    }
}

impl From<&str> for TrialError {
    fn from(message: &str) -> TrialError {
        TrialError::Failed(message.to_string())
    }
}

impl std::fmt::Display for TrialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrialError::Failed(m) | TrialError::Repeats(m) | TrialError::Storage(m) => {
                f.write_str(m)
            }
        }
    }
}

/// [`Objective::repeat_tolerance`] of a run that repeats itself exactly (f64 printing noise).
pub const EXACT: f64 = 1e-9;

/// [`Objective::repeat_tolerance`] on a GPU: f32 rounding in a different order, compounded over
/// an epoch, stays orders of magnitude below this; a differently seeded run does not.
pub const GPU_ROUNDING: f64 = 1e-4;

/// The environment variable that holds a worker process's device (`[budget] devices`), which
/// a command objective's script inherits.
pub const DEVICE_VARIABLE: &str = "KILN_DEVICE";

/// What an objective returns when a trial ends normally.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialSummary {
    /// The model's parameter count, when there is a model.
    pub n_params: Option<u64>,
    /// Metrics measured once, as the trial ends, and never per epoch (the built-in trainer's
    /// test metrics, with the best epoch's weights): in the leaderboard, not in the curves.
    #[serde(default)]
    pub metrics: Metrics,
}

/// Trains or evaluates trials.
pub trait Objective: Send + Sync {
    /// The metric names this objective reports for `experiment` (the sweep's metric must be
    /// one of them; a report naming another fails its trial).
    fn metrics(&self, experiment: &Experiment) -> Result<Vec<String>>;

    /// The metrics measured once as a trial ends ([`TrialSummary::metrics`]): neither the
    /// objective nor a constraint may name them (they would steer the search by a metric kept
    /// for judging it, such as the test split's).
    fn final_metrics(&self, _experiment: &Experiment) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The most epochs a trial reports, when known (ASHA and Hyperband place their rungs by
    /// it). By default `[objective] epochs`.
    fn max_epochs(&self, experiment: &Experiment) -> Result<Option<u32>> {
        Ok(experiment.int_option("epochs", 1)?.map(|e| e as u32))
    }

    /// A fingerprint of the data the objective reads, when it has any: recorded when the sweep
    /// starts, and a sweep continues (resume, another worker) only on the same data.
    fn data_fingerprint(&self) -> Option<String> {
        None
    }

    /// How far, relative, an epoch that a resumed trial trains again may be from what the
    /// journal holds before the two count as different runs (and the trial fails rather than
    /// splice them). Exact by default: seeded training on the CPU repeats itself bit for bit.
    /// On a GPU, kernels whose floating-point order varies from run to run differ in the
    /// last digits.
    fn repeat_tolerance(&self) -> f64 {
        EXACT
    }

    /// The fixed settings a trial reads besides its parameters ([`Trial::float`] and the
    /// like). By default the single values of `[objective]` (`epochs = 30`).
    fn settings(&self, experiment: &Experiment) -> Settings {
        experiment.option_settings()
    }

    /// A line `kiln check` prints about how trials will run, when there is something to say.
    fn describe(&self) -> Option<String> {
        None
    }

    /// Runs one trial to its end: reports each epoch and stops when told to. An `Err` (or a
    /// panic) fails the trial with that message and the sweep goes on, except a
    /// [`TrialError::Storage`], which stops the sweep and leaves the trial to resume.
    fn run(&self, trial: &mut Trial<'_>) -> std::result::Result<TrialSummary, TrialError>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reporter that always answers "continue".
    pub(crate) struct Silent;
    impl Reporter for Silent {
        fn report(&mut self, _: Epoch) -> Decision {
            Decision::Continue
        }
    }

    #[test]
    fn a_missing_parameter_is_an_error_that_fails_the_trial_not_a_panic() {
        let task = TrialTask {
            number: 4,
            seed: 1,
            params: Params::from([
                ("lr".to_string(), ParamValue::Float(0.1)),
                ("nesterov".to_string(), ParamValue::Bool(true)),
            ]),
            journaled_epochs: 0,
            journaled_elapsed_s: 0.0,
            dir: std::env::temp_dir(),
            owner: String::new(),
            await_decisions: false,
        };
        let mut silent = Silent;
        let trial = Trial::new(task, Settings::default(), &mut silent);
        assert_eq!(trial.float("lr").unwrap(), 0.1);
        let e = trial.int("lr").unwrap_err();
        assert!(matches!(e, TrialError::Failed(_)), "{e}");
        assert!(
            e.to_string()
                .contains("trial 4 has no integer parameter or setting `lr`"),
            "{e}"
        );
        assert!(trial.string("width").is_err());
        assert!(trial.bool("nesterov").unwrap());
        assert!(trial.bool("lr").is_err());
    }
}
