//! The built-in burn objective: trains the experiment's model on its data, one trial at a time.
//!
//! The data set is loaded and prepared once per [`BurnObjective`] (so once per worker process)
//! and shared by all the trials it trains.

mod adamw;
pub mod checkpoint;
pub mod data;
pub mod model;
pub mod saved;
pub mod trainer;

use crate::error::Result;
use crate::experiment::{Experiment, Task};
use crate::objective::{Objective, Trial, TrialSummary};
use data::Dataset;
use std::sync::OnceLock;
use trainer::{TrainConfig, TrainSetup};

/// Trains burn models as described by an experiment.
pub struct BurnObjective {
    experiment: Experiment,
    data: OnceLock<Dataset>,
}

impl BurnObjective {
    /// An objective for `experiment`; the data is loaded on first use.
    pub fn new(experiment: Experiment) -> BurnObjective {
        BurnObjective {
            experiment,
            data: OnceLock::new(),
        }
    }

    /// The prepared data set (loaded once).
    pub fn data(&self) -> Result<&Dataset> {
        if let Some(data) = self.data.get() {
            return Ok(data);
        }
        let data = Dataset::load(&self.experiment)?;
        Ok(self.data.get_or_init(|| data))
    }
}

/// The metrics the built-in trainer reports for a data set.
pub fn metric_names(data: &Dataset) -> Vec<String> {
    let per_split: &[&str] = match data.task {
        Task::Classification => &["loss", "accuracy", "f1"],
        Task::Regression => &["loss", "rmse", "mae", "r2"],
    };
    let mut names = vec!["train_loss".to_string()];
    let splits: &[&str] = if data.test.is_some() {
        &["val", "test"]
    } else {
        &["val"]
    };
    for split in splits {
        names.extend(per_split.iter().map(|m| format!("{split}_{m}")));
    }
    names
}

impl Objective for BurnObjective {
    fn metrics(&self, _experiment: &Experiment) -> Result<Vec<String>> {
        Ok(metric_names(self.data()?))
    }

    fn run(&self, trial: &mut Trial<'_>) -> std::result::Result<TrialSummary, String> {
        let data = self.data().map_err(|e| e.to_string())?;
        let setup = TrainSetup {
            data,
            config: TrainConfig::from_settings(trial.settings(), data.task),
            early_stopping: self.experiment.early_stopping.as_ref(),
            objective: (
                &self.experiment.objective.metric,
                self.experiment.objective.direction,
            ),
        };
        trainer::train(trial, &setup)
    }
}
