//! Pruners: cross-trial early stopping. Patience within one trial lives with training; a pruner
//! compares a trial with the others at the same epoch.
//!
//! A pruner is a pure judge: given the sweep's state (which already holds the epoch just
//! reported) and the trial, it says whether to stop the trial and why. It keeps no state of its
//! own and writes nothing; the orchestrator records its decision in the journal (the trial ends
//! `pruned`, with the reason as its note), so a resumed sweep neither forgets nor repeats it, and
//! the same history always gives the same decision.

mod asha;
mod median;
pub mod spec;

pub use asha::Asha;
pub use median::Median;

use crate::experiment::{Experiment, PrunerKind};
use crate::state::{SweepState, TrialRecord};
use crate::trial::Goal;

/// Decides whether a trial should stop early.
pub trait Pruner: Send {
    /// `Some(reason)` to stop `trial`, which just reported its latest epoch.
    fn decide(&self, trial: &TrialRecord, state: &SweepState) -> Option<String>;
}

/// The best value of `goal`'s metric in `trial`'s epochs up to `epoch` (inclusive): what
/// every pruner compares.
pub fn best_until(goal: &Goal, trial: &TrialRecord, epoch: u32) -> Option<f64> {
    trial
        .epochs
        .iter()
        .filter(|e| e.epoch <= epoch)
        .filter_map(|e| e.metrics.get(&goal.metric).copied())
        .reduce(|a, b| if goal.direction.better(b, a) { b } else { a })
}

/// Refuses a pruner that places rungs by the most epochs a trial reports when the objective
/// does not say how many that is.
pub fn check(experiment: &Experiment, max_epochs: Option<u32>) -> crate::error::Result<()> {
    let kind = experiment.pruner.kind;
    if max_epochs.is_none() && matches!(kind, PrunerKind::Asha | PrunerKind::Hyperband) {
        return Err(experiment.error_at(
            &["pruner", "kind"],
            format!("the `{kind}` pruner places its rungs by the most epochs a trial reports: set `epochs` in [objective] (or use the `median` pruner)"),
        ));
    }
    Ok(())
}

/// The pruner an experiment asks for, if any; `max_epochs` is the most epochs a trial reports.
pub fn build(experiment: &Experiment, max_epochs: Option<u32>) -> Option<Box<dyn Pruner>> {
    let spec = &experiment.pruner;
    let goal = Goal {
        metric: experiment.objective.metric.clone(),
        direction: experiment.objective.direction,
    };
    let max_epochs = max_epochs.unwrap_or(1).max(1);
    match spec.kind {
        PrunerKind::None => None,
        PrunerKind::Median => Some(Box::new(Median {
            goal,
            warmup_epochs: spec.warmup_epochs,
            min_trials: spec.min_trials,
        })),
        PrunerKind::Asha => Some(Box::new(Asha::new(
            goal,
            spec.min_epochs,
            spec.reduction_factor,
            max_epochs,
            1,
        ))),
        PrunerKind::Hyperband => Some(Box::new(Asha::hyperband(
            goal,
            spec.min_epochs,
            spec.reduction_factor,
            max_epochs,
        ))),
    }
}

/// A one-line description of the pruner and, for ASHA and Hyperband, its rungs (`kiln check`).
pub fn describe(experiment: &Experiment, max_epochs: Option<u32>) -> String {
    let spec = &experiment.pruner;
    let max_epochs = max_epochs.unwrap_or(1).max(1);
    match spec.kind {
        PrunerKind::None => "none".to_string(),
        PrunerKind::Median => format!(
            "median (prune a trial whose best so far is worse than the median of other trials at the same epoch; after {} epochs and {} trials)",
            spec.warmup_epochs, spec.min_trials
        ),
        PrunerKind::Asha => format!(
            "asha (reduction factor {}; rungs at epochs {:?})",
            spec.reduction_factor,
            asha::rungs(spec.min_epochs, spec.reduction_factor, max_epochs)
        ),
        PrunerKind::Hyperband => {
            let brackets = asha::brackets(spec.min_epochs, spec.reduction_factor, max_epochs);
            let rungs: Vec<String> = (0..brackets)
                .map(|b| {
                    let first = spec.min_epochs * spec.reduction_factor.pow(b);
                    format!(
                        "{:?}",
                        asha::rungs(first, spec.reduction_factor, max_epochs)
                    )
                })
                .collect();
            format!(
                "hyperband (reduction factor {}; {brackets} brackets, trials assigned in turn, rungs {})",
                spec.reduction_factor,
                rungs.join(" ")
            )
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::journal::Event;
    use crate::space::Params;
    use crate::state::SweepState;

    /// A state with one trial per curve, each reporting `loss` = the curve's values, epoch by
    /// epoch, still running.
    pub fn state_with(curves: &[Vec<f64>]) -> SweepState {
        let mut state = SweepState::default();
        for (number, curve) in curves.iter().enumerate() {
            state.apply(&Event::TrialCreated {
                trial: number as u64,
                seed: 0,
                params: Params::new(),
                queued: false,
                time: 0.0,
            });
            for (i, &loss) in curve.iter().enumerate() {
                state.apply(&Event::EpochReported {
                    trial: number as u64,
                    epoch: i as u32 + 1,
                    elapsed_s: 0.0,
                    lr: None,
                    metrics: [("loss".to_string(), loss)].into(),
                    checkpointed: false,
                    time: 0.0,
                });
            }
        }
        state
    }
}
