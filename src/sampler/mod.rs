//! Samplers: where each trial's parameters come from.
//!
//! A sampler maps (space, trial number, history) to parameters, or to `None` when it has nothing
//! left to propose (an exhausted grid). The random and grid samplers ignore the history and depend
//! only on the sweep seed and the trial number, and so does sobol, so a trial's parameters do not
//! depend on how many workers ran or when the sweep was interrupted. TPE learns from the history
//! (and so, with several workers, from what has finished when it is asked).

mod grid;
mod random;
mod sobol;
mod tpe;

pub use grid::GridSampler;
pub use random::RandomSampler;
pub use sobol::{
    MAX_DIMENSIONS as SOBOL_MAX_DIMENSIONS, MAX_POINTS as SOBOL_MAX_POINTS, SobolSampler,
};
pub use tpe::{TpeSampler, TpeSettings};

use crate::experiment::{Experiment, SamplerKind};
use crate::space::{Params, Space};
use crate::state::TrialRecord;

/// Proposes parameters for new trials.
pub trait Sampler: Send {
    /// Parameters for trial `number`, given the trials so far; `None` when exhausted.
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params>;
}

/// The sweeps of `folders`, for a warm start; one that cannot be read is left out, with a
/// warning (the experiment checked that each holds a journal).
fn earlier_sweeps(folders: &[std::path::PathBuf]) -> Vec<crate::state::SweepState> {
    folders
        .iter()
        .filter_map(
            |dir| match crate::journal::FileJournal::fold(&crate::layout::journal(dir)) {
                Ok(state) => Some(state),
                Err(e) => {
                    tracing::warn!("warm start: {e}; its trials are left out");
                    None
                }
            },
        )
        .collect()
}

/// The sampler an experiment asks for.
pub fn build(experiment: &Experiment) -> Box<dyn Sampler> {
    let (spec, space, seed) = (&experiment.sampler, &experiment.space, experiment.seed);
    let objective = &experiment.objective;
    match spec.kind {
        SamplerKind::Random => Box::new(RandomSampler::new(seed)),
        SamplerKind::Grid => Box::new(GridSampler::new(space, spec.points)),
        SamplerKind::Sobol => Box::new(SobolSampler::new(seed)),
        SamplerKind::Tpe => Box::new(
            TpeSampler::new(
                seed,
                &objective.metric,
                objective.direction,
                TpeSettings {
                    startup_trials: spec.startup_trials,
                    gamma: spec.gamma,
                    candidates: spec.candidates,
                    multivariate: spec.multivariate,
                },
            )
            .constrained(&experiment.constraints)
            .warm_started(space, &earlier_sweeps(&spec.warm_start)),
        ),
    }
}
