//! Whether a sweep's stopping rules (`[budget] target`, `no_improvement`, `regret_bound`) end it
//! before its budget. Each rule is a pure function of the sweep's trials, so the journal needs
//! no record of a stop: a resumed sweep stops where it stopped, and `kiln status` says which
//! rule holds. A stop starts no new trial; running and reopened ones finish.

use crate::budget::{RegretThreshold, StopRules};
use crate::report::{self, ReportSpec};
use crate::state::{SweepState, TrialState};
use crate::trial::{EndState, Goal};

/// The rule that ended a sweep, and what it saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The best trial reached `[budget] target`.
    Target {
        /// The best trial.
        trial: u64,
        /// Its objective.
        value: f64,
        /// The target.
        target: f64,
    },
    /// `[budget] no_improvement` trials ended after the best one.
    NoImprovement {
        /// The best trial.
        best: u64,
        /// Trials ended (complete or pruned) after it.
        since: u64,
        /// The rule's number.
        limit: u64,
    },
    /// The regret bound fell below the threshold.
    RegretBound {
        /// How much better than the best some configuration may still be.
        bound: f64,
        /// What it fell below.
        threshold: f64,
        /// Whether the threshold is the noise between trials (else the value set).
        noise: bool,
    },
}

impl Stop {
    /// What fired, for people.
    pub fn describe(&self, metric: &str) -> String {
        let show = report::for_people;
        match self {
            Stop::Target {
                trial,
                value,
                target,
            } => format!(
                "[budget] target = {target} reached: trial {trial}'s {metric} is {}",
                show(*value)
            ),
            Stop::NoImprovement { best, since, limit } => format!(
                "[budget] no_improvement = {limit}: {since} trials ended after trial {best}, the best, without beating it"
            ),
            Stop::RegretBound {
                bound,
                threshold,
                noise,
            } => format!(
                "[budget] regret_bound: more trials are unlikely to beat the best {metric} by more than {} (the bound), below {} ({})",
                show(*bound),
                show(*threshold),
                if *noise {
                    "the noise between trials"
                } else {
                    "the threshold set"
                }
            ),
        }
    }
}

/// The first of `rules` that holds for `state`, if any.
pub fn fired(rules: &StopRules, state: &SweepState, spec: &ReportSpec<'_>) -> Option<Stop> {
    if *rules == StopRules::default() {
        return None;
    }
    let (best, value) = report::best(state, spec)?;
    if let Some(target) = rules.target
        && spec.direction.loss(value) <= spec.direction.loss(target)
    {
        return Some(Stop::Target {
            trial: best.number,
            value,
            target,
        });
    }
    if let Some(limit) = rules.no_improvement {
        let since = (state.trials[best.number as usize + 1..].iter())
            .filter(|t| {
                matches!(
                    t.state,
                    TrialState::Ended(EndState::Complete | EndState::Pruned)
                )
            })
            .count() as u64;
        if since >= limit {
            return Some(Stop::NoImprovement {
                best: best.number,
                since,
                limit,
            });
        }
    }
    let threshold = rules.regret_bound?;
    let goal = Goal::new(spec.metric, spec.direction);
    let found = crate::sampler::regret_bound(spec.space, &goal, &state.trials)?;
    tracing::debug!(
        "regret bound after {} trials: {} (noise between trials {})",
        state.trials.len(),
        found.bound,
        found.noise
    );
    let (threshold, noise) = match threshold {
        RegretThreshold::Noise => (found.noise, true),
        RegretThreshold::Value(v) => (v, false),
    };
    (found.bound < threshold).then_some(Stop::RegretBound {
        bound: found.bound,
        threshold,
        noise,
    })
}
