//! `kind = "auto"`: the sampler chosen from the experiment, in phases by trial number.
//!
//! The choice reads the space (numeric, choices, conditions) and the number of objectives, and
//! the phase the trial number, never the results, so it is a pure function of the experiment, and
//! each phase's sampler a pure function of the history and the trial number: `deterministic =
//! true` and exact resume hold as for the sampler of each phase. The rules, and why:
//! - a space with conditions or choices: `tpe` (MOTPE for several objectives), which models
//!   both; the GP models a choice only where every trial has it;
//! - a numeric space of at most [`GP_MAX_DIMENSIONS`] parameters: `gp` for the first
//!   [`GP_TRIALS`] trials (expected hypervolume improvement for several objectives), the
//!   strongest for small budgets of few parameters, then `tpe`, whose proposals stay cheap
//!   however long the sweep grows;
//! - otherwise `tpe` (MOTPE for several objectives).

use super::Sampler;
use crate::experiment::{Experiment, SamplerKind};
use crate::space::{Distribution, Params, Space};
use crate::state::TrialRecord;

/// The most parameters for which `auto` starts with the GP.
pub const GP_MAX_DIMENSIONS: usize = 10;
/// Trials `auto` runs with the GP before it hands over to TPE.
pub const GP_TRIALS: u64 = 200;

/// One phase of an automatic choice: from trial `from` on, `kind`, because `why`.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// The first trial of the phase.
    pub from: u64,
    /// Its sampler.
    pub kind: SamplerKind,
    /// Why, as `kiln check` says it.
    pub why: String,
}

/// The phases `auto` runs for `experiment`, the first from trial 0.
pub fn plan(experiment: &Experiment) -> Vec<Phase> {
    let phase = |from, kind, why: &str| Phase {
        from,
        kind,
        why: why.to_string(),
    };
    let space = &experiment.space;
    let numeric = space
        .dimensions
        .iter()
        .all(|d| !matches!(d.distribution, Distribution::Choice(_)));
    let n = space.dimensions.len();
    let objectives = match experiment.objective.is_multi() {
        true => "several objectives",
        false => "one objective",
    };
    if space.is_conditional() || !numeric {
        let why = match space.is_conditional() {
            true => format!("the space has conditions; {objectives}"),
            false => format!("the space has choices; {objectives}"),
        };
        return vec![phase(0, SamplerKind::Tpe, &why)];
    }
    if n > GP_MAX_DIMENSIONS {
        let why = format!("{n} parameters, more than the {GP_MAX_DIMENSIONS} the GP is for");
        return vec![phase(0, SamplerKind::Tpe, &why)];
    }
    let plural = if n == 1 { "" } else { "s" };
    let why = format!("{n} numeric parameter{plural}, {objectives}");
    let mut phases = vec![phase(0, SamplerKind::Gp, &why)];
    // Whatever the budget: a sweep extended with `kiln resume --trials` switches at the same
    // trial as one planned that long.
    let why = format!("from trial {GP_TRIALS} on, where TPE's proposals stay cheap");
    phases.push(phase(GP_TRIALS, SamplerKind::Tpe, &why));
    phases
}

/// The phases' samplers, each asked for the trials of its phase.
pub struct AutoSampler {
    phases: Vec<(u64, Box<dyn Sampler>)>,
}

impl AutoSampler {
    /// From each phase's first trial and sampler, the first from trial 0.
    pub fn new(phases: Vec<(u64, Box<dyn Sampler>)>) -> AutoSampler {
        AutoSampler { phases }
    }
}

impl Sampler for AutoSampler {
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params> {
        let (_, sampler) = self
            .phases
            .iter_mut()
            .rev()
            .find(|(from, _)| *from <= number)?;
        sampler.sample(space, number, history)
    }
}
