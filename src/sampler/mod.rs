//! Samplers: where each trial's parameters come from.
//!
//! A sampler maps (space, trial number, history) to parameters, or to `None` when it has nothing
//! left to propose (an exhausted grid). The random and grid samplers ignore the history and depend
//! only on the sweep seed and the trial number, so a trial's parameters do not depend on how many
//! workers ran or when the sweep was interrupted.

mod grid;
mod random;

pub use grid::GridSampler;
pub use random::RandomSampler;

use crate::experiment::SamplerSpec;
use crate::space::{Params, Space};
use crate::state::TrialRecord;

/// Proposes parameters for new trials.
pub trait Sampler: Send {
    /// Parameters for trial `number`, given the trials so far; `None` when exhausted.
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params>;
}

/// The sampler an experiment asks for.
pub fn build(spec: &SamplerSpec, space: &Space, seed: u64) -> Box<dyn Sampler> {
    match spec.kind.as_str() {
        "grid" => Box::new(GridSampler::new(space, spec.points)),
        _ => Box::new(RandomSampler::new(seed)),
    }
}
