//! `kind = "train"`: the built-in burn trainer. It trains the experiment's model (`[model]`,
//! `[train]`) on its data (`[data]`), one trial at a time; the data set is loaded and prepared
//! once per objective (so once per worker process) and shared by the trials it trains.

use crate::error::Result;
use crate::experiment::Experiment;
use crate::objective::{Objective, Trial, TrialError, TrialSummary};
use crate::settings::Settings;
use crate::train::config::TrainConfig;
use crate::train::data::Dataset;
use crate::train::metric_names;
use crate::train::model::MAX_PARAMS;
use crate::train::spec::TrainSpec;
use crate::train::trainer::{self, TrainSetup};

/// Refuses a sweep whose largest model (the widest `hidden`, the most `layers`, the widest
/// embeddings it may sample) has more parameters than a trial builds: every trial would fail.
fn check_size(experiment: &Experiment, spec: &TrainSpec, data: &Dataset) -> Result<()> {
    const SIZES: [&str; 3] = ["hidden", "layers", "embedding_dim"];
    let most = |name: &str, default: usize| {
        (spec.possible_values(experiment, name).iter())
            .filter_map(crate::space::ParamValue::as_f64)
            .reduce(f64::max)
            .map_or(default, |v| v as usize)
    };
    let Ok(mut config) = TrainConfig::from_settings(&spec.settings, data.task) else {
        return Ok(());
    };
    config.hidden = most(SIZES[0], config.hidden);
    config.layers = most(SIZES[1], config.layers);
    config.embedding_dim = most(SIZES[2], config.embedding_dim);
    let params = config.architecture(data).dense_params();
    if params <= MAX_PARAMS {
        return Ok(());
    }
    let searched = SIZES
        .iter()
        .find(|s| experiment.space.names().any(|n| n == **s));
    let path = match searched {
        Some(name) => ["space", name],
        None => [
            "model",
            SIZES
                .iter()
                .find(|s| spec.settings.get(s).is_some())
                .unwrap_or(&"hidden"),
        ],
    };
    Err(experiment.error_at(
        &path,
        format!(
            "the largest model of this sweep (hidden {}, layers {}) would have about {:.1e} parameters, more than the {MAX_PARAMS} a trial builds: lower `hidden` or `layers`",
            config.hidden, config.layers, params as f64
        ),
    ))
}

/// Trains burn models as an experiment describes.
pub struct BurnObjective {
    experiment: Experiment,
    spec: TrainSpec,
    data: Dataset,
}

impl BurnObjective {
    /// Checks the trainer's settings of `experiment` and loads its data.
    pub fn new(experiment: &Experiment) -> Result<BurnObjective> {
        experiment.refuse_other_options(&[])?;
        let spec = TrainSpec::parse(experiment)?;
        let data = Dataset::load(experiment, &spec.data)?;
        spec.check_loss(experiment, data.task)?;
        check_size(experiment, &spec, &data)?;
        if let Some(es) = &spec.early_stopping {
            experiment.check_metric(
                &es.monitor,
                &["early_stopping", "monitor"],
                &metric_names(&data),
            )?;
        }
        Ok(BurnObjective {
            experiment: experiment.clone(),
            spec,
            data,
        })
    }

    /// The prepared data set.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The trainer's validated settings.
    pub fn spec(&self) -> &TrainSpec {
        &self.spec
    }
}

impl Objective for BurnObjective {
    fn metrics(&self, _experiment: &Experiment) -> Result<Vec<String>> {
        Ok(metric_names(&self.data))
    }

    fn final_metrics(&self, _experiment: &Experiment) -> Result<Vec<String>> {
        Ok(crate::train::test_metric_names(&self.data))
    }

    fn data_fingerprint(&self) -> Option<String> {
        Some(self.data.fingerprint.clone())
    }

    fn max_epochs(&self, experiment: &Experiment) -> Result<Option<u32>> {
        Ok(Some(self.spec.max_epochs(experiment)))
    }

    fn repeat_tolerance(&self) -> f64 {
        let backends = self.spec.backends(&self.experiment);
        if backends.iter().any(|b| b.on_gpu()) {
            crate::objective::GPU_ROUNDING
        } else {
            crate::objective::EXACT
        }
    }

    fn settings(&self, _experiment: &Experiment) -> Settings {
        self.spec.settings.clone()
    }

    fn run(&self, trial: &mut Trial<'_>) -> std::result::Result<TrialSummary, TrialError> {
        let setup = TrainSetup {
            data: &self.data,
            config: TrainConfig::from_settings(trial.settings(), self.data.task)?,
            early_stopping: self.spec.early_stopping.as_ref(),
            objective: (
                &self.experiment.objective.metric,
                self.experiment.objective.direction,
            ),
        };
        trainer::train(trial, &setup)
    }
}
