//! The objectives a program knows, by `[objective] kind`, and the checks that bind one to an
//! experiment: its own settings, the sweep's metric, what the pruner needs.

use crate::error::Result;
use crate::experiment::Experiment;
use crate::objective::Objective;
use crate::text::quote_list;
use std::sync::Arc;

/// Builds an objective for an experiment, checking the objective's own settings.
pub type Build = dyn Fn(&Experiment) -> Result<Arc<dyn Objective>> + Send + Sync;

/// The objectives a program knows, by `[objective] kind`.
#[derive(Clone)]
pub struct Objectives {
    kinds: Vec<(String, Arc<Build>)>,
}

/// An objective built for an experiment, with what the orchestrator needs to know of it.
#[derive(Clone)]
pub struct Prepared {
    /// The objective.
    pub objective: Arc<dyn Objective>,
    /// The metrics it reports.
    pub metrics: Vec<String>,
    /// The most epochs a trial reports, when known.
    pub max_epochs: Option<u32>,
    /// A fingerprint of the objective's data, when it has some.
    pub data: Option<String>,
    /// How far a repeated epoch's metrics may be from the journal's, relative.
    pub repeat_tolerance: f64,
}

impl Objectives {
    /// No objective yet: [`Objectives::builtin`] has kiln's own.
    pub fn empty() -> Objectives {
        Objectives { kinds: Vec::new() }
    }

    /// Adds `objective` as `kind = "NAME"` (one instance serves every trial of a process).
    pub fn with(self, name: &str, objective: impl Objective + 'static) -> Objectives {
        let objective: Arc<dyn Objective> = Arc::new(objective);
        self.with_builder(name, move |_| Ok(Arc::clone(&objective)))
    }

    /// Adds an objective built from each experiment (to read and check its options once).
    pub fn with_builder(
        mut self,
        name: &str,
        build: impl Fn(&Experiment) -> Result<Arc<dyn Objective>> + Send + Sync + 'static,
    ) -> Objectives {
        self.kinds.retain(|(n, _)| n != name);
        self.kinds.push((name.to_string(), Arc::new(build)));
        self
    }

    /// The names of the objectives, in the order they were added.
    pub fn names(&self) -> Vec<&str> {
        self.kinds.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The objective `[objective] kind` names, built and checked against the experiment: its
    /// own settings, the sweep's metric, and what the pruner needs.
    pub fn build(&self, experiment: &Experiment) -> Result<Prepared> {
        let kind = experiment.objective.kind.as_str();
        let Some((_, build)) = self.kinds.iter().find(|(n, _)| n == kind) else {
            let names = self.names();
            let hint = crate::text::hint(kind, names.iter().copied());
            return Err(experiment.error_at(
                &["objective", "kind"],
                format!(
                    "unknown objective `{kind}`.{hint} This program runs {} (a program of your own adds its objectives with kiln::cli::main)",
                    crate::text::quote_list(&names)
                ),
            ));
        };
        if kind != "train"
            && let Some(section) = experiment.trainer.first_present()
        {
            return Err(experiment.error_at(
                &[section],
                format!("[{section}] belongs to the built-in trainer (`kind = \"train\"`); the `{kind}` objective does not read it: remove it"),
            ));
        }
        let objective = build(experiment)?;
        prepare(experiment, objective)
    }
}

/// An error when `metric` is one of the `finals`, measured once per trial to judge the trials
/// chosen: the objective and the constraints steer which trials are chosen, so neither may
/// read it.
fn refuse_final(
    experiment: &Experiment,
    metric: &str,
    at: &[&str],
    finals: &[String],
    metrics: &[String],
) -> Result<()> {
    if !finals.iter().any(|f| f == metric) {
        return Ok(());
    }
    let validation: Vec<&str> = metrics
        .iter()
        .filter(|m| m.starts_with("val_"))
        .map(String::as_str)
        .collect();
    Err(experiment.error_at(
        at,
        format!(
            "`{metric}` is measured once per trial, with the best epoch's weights, to judge the trials chosen: steering by it would tune on the test split. Use a validation metric ({})",
            quote_list(&validation)
        ),
    ))
}

/// What the orchestrator needs to know of `objective`, checked against `experiment`.
pub fn prepare(experiment: &Experiment, objective: Arc<dyn Objective>) -> Result<Prepared> {
    let metrics = objective.metrics(experiment)?;
    let finals = objective.final_metrics(experiment)?;
    let with_size: Vec<String> = metrics
        .iter()
        .cloned()
        .chain([crate::trial::N_PARAMS.to_string()])
        .collect();
    for (i, goal) in experiment.objective.goals().iter().enumerate() {
        let index = i.to_string();
        let at: &[&str] = match experiment.objective.is_multi() {
            true => &["objective", "metric", &index],
            false => &["objective", "metric"],
        };
        refuse_final(experiment, &goal.metric, at, &finals, &metrics)?;
        let available = if i == 0 { &metrics } else { &with_size };
        experiment.check_metric(&goal.metric, at, available)?;
    }
    for (i, c) in experiment.constraints.iter().enumerate() {
        let index = i.to_string();
        let at = ["constraint", &index, "metric"];
        refuse_final(experiment, &c.metric, &at, &finals, &metrics)?;
        experiment.check_metric(&c.metric, &at, &with_size)?;
    }
    let max_epochs = objective.max_epochs(experiment)?;
    crate::pruner::check(experiment, max_epochs)?;
    Ok(Prepared {
        data: objective.data_fingerprint(),
        repeat_tolerance: objective.repeat_tolerance(),
        objective,
        metrics,
        max_epochs,
    })
}
