//! The [`Objective`] trait the orchestrator drives, and the [`Trial`] handle it gets.
//!
//! An objective trains (or evaluates) one trial: it reads the trial's parameters, reports each
//! epoch's metrics with [`Trial::report`], and stops when told to. The built-in burn trainer
//! ([`crate::train::BurnObjective`]) is one implementation; a user's own model is another
//! (`examples/custom_objective.rs`).

use crate::experiment::Experiment;
use crate::journal::Metrics;
use crate::settings::Settings;
use crate::space::{ParamValue, Params};
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

/// What an objective reports at the end of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch, from 1.
    pub epoch: u32,
    /// Cumulative training time of the trial at the end of this epoch, across resumes.
    pub elapsed_s: f64,
    /// Learning rate used in this epoch, if the objective has one.
    pub lr: Option<f64>,
    /// The epoch's metrics.
    pub metrics: Metrics,
    /// Whether a checkpoint of this epoch was saved before the report.
    pub checkpointed: bool,
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
    /// The trial's folder (checkpoint, best weights).
    pub dir: PathBuf,
    /// Whether each report waits for the orchestrator's answer. A pruner needs that; without
    /// one, the only answer that is not "continue" is a Ctrl-C's "stop", which may as well
    /// arrive one epoch later, and not waiting saves a round trip between processes per epoch
    /// (0.3 ms here, half of what checkpointing and reporting cost a small epoch).
    #[serde(default)]
    pub await_decisions: bool,
}

/// Where a trial's reports go, and where the decisions come from.
pub trait Reporter: Send {
    /// Records a report and answers whether to go on.
    fn report(&mut self, report: EpochReport) -> Decision;
}

/// A live trial: its parameters, and the way to report progress.
pub struct Trial<'a> {
    task: TrialTask,
    settings: Settings,
    reporter: &'a mut dyn Reporter,
    started: std::time::Instant,
}

impl<'a> Trial<'a> {
    /// A trial handle over `task`, with settings resolved by the caller.
    pub fn new(task: TrialTask, settings: Settings, reporter: &'a mut dyn Reporter) -> Trial<'a> {
        Trial {
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

    /// Epochs the journal already holds: a resumed trial continues after them.
    pub fn journaled_epochs(&self) -> u32 {
        self.task.journaled_epochs
    }

    fn value(&self, name: &str) -> Option<&ParamValue> {
        self.task
            .params
            .get(name)
            .or_else(|| self.settings.get(name))
    }

    /// A float parameter or setting. Panics (failing the trial with this message) when absent.
    pub fn float(&self, name: &str) -> f64 {
        self.value(name)
            .and_then(ParamValue::as_f64)
            .unwrap_or_else(|| panic!("trial {} has no numeric parameter `{name}`", self.number()))
    }

    /// An integer parameter or setting. Panics (failing the trial) when absent.
    pub fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            Some(ParamValue::Int(i)) => *i,
            _ => panic!("trial {} has no integer parameter `{name}`", self.number()),
        }
    }

    /// A string parameter or setting. Panics (failing the trial) when absent.
    pub fn string(&self, name: &str) -> &str {
        match self.value(name) {
            Some(ParamValue::Str(s)) => s,
            _ => panic!("trial {} has no string parameter `{name}`", self.number()),
        }
    }

    /// Reports a finished epoch's metrics; the answer says whether to train another. The
    /// elapsed time recorded is the time since this handle was made (this run of the trial).
    pub fn report(&mut self, epoch: u32, metrics: Metrics) -> Decision {
        self.report_epoch(EpochReport {
            epoch,
            elapsed_s: (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e6,
            lr: None,
            metrics,
            checkpointed: false,
        })
    }

    /// Reports a finished epoch with its timing, learning rate and checkpoint.
    pub fn report_epoch(&mut self, mut report: EpochReport) -> Decision {
        // Non-finite values cannot be stored as JSON numbers; a diverged trial fails anyway.
        report.metrics.retain(|_, v| v.is_finite());
        self.reporter.report(report)
    }
}

/// What an objective returns when a trial ends normally.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialSummary {
    /// The model's parameter count, when there is a model.
    pub n_params: Option<u64>,
}

/// Trains or evaluates trials.
pub trait Objective: Send + Sync {
    /// The metric names this objective reports for `experiment` (checked against
    /// `[objective] metric` before anything runs).
    fn metrics(&self, experiment: &Experiment) -> crate::error::Result<Vec<String>>;

    /// Runs one trial to its end: reports each epoch and stops when told to. An `Err` (or a
    /// panic) fails the trial with that message; the sweep goes on.
    fn run(&self, trial: &mut Trial<'_>) -> Result<TrialSummary, String>;
}
