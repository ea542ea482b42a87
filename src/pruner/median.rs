//! The median stopping rule (Golovin et al., "Google Vizier", KDD 2017): stop a trial whose best
//! value so far is worse than the median of the other trials' best values up to the same epoch.

use super::{Pruner, best_until};
use crate::state::{SweepState, TrialRecord};
use crate::trial::Goal;

/// The median rule.
pub struct Median {
    /// What is compared.
    pub goal: Goal,
    /// Epochs a trial trains before it can be pruned.
    pub warmup_epochs: u32,
    /// Other trials that must have reached the epoch before a trial is judged there.
    pub min_trials: usize,
}

impl Pruner for Median {
    fn decide(&self, trial: &TrialRecord, state: &SweepState) -> Option<String> {
        let epoch = trial.epochs.last()?.epoch;
        if epoch <= self.warmup_epochs {
            return None;
        }
        let mine = best_until(&self.goal, trial, epoch)?;
        let mut others: Vec<f64> = state
            .trials
            .iter()
            .filter(|t| t.number != trial.number && t.epochs.iter().any(|e| e.epoch >= epoch))
            .filter_map(|t| best_until(&self.goal, t, epoch))
            .collect();
        if others.len() < self.min_trials {
            return None;
        }
        others.sort_by(f64::total_cmp);
        let n = others.len();
        let median = if n % 2 == 1 {
            others[n / 2]
        } else {
            (others[n / 2 - 1] + others[n / 2]) / 2.0
        };
        self.goal.direction.better(median, mine).then(|| {
            format!(
                "pruned at epoch {epoch} by the median rule: best {mine:.6} is worse than the median {median:.6} of {n} trials"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pruner::tests::state_with;
    use crate::trial::Direction;

    fn median() -> Median {
        Median {
            goal: Goal {
                metric: "loss".into(),
                direction: Direction::Minimize,
            },
            warmup_epochs: 2,
            min_trials: 3,
        }
    }

    #[test]
    fn prunes_a_trial_worse_than_the_median_and_nothing_before_warmup() {
        // Trials 0-3 finished 5 epochs with losses 1, 2, 3, 4 (flat); trial 4 reports 3.5 a epoch.
        let curves = [
            vec![1.0; 5],
            vec![2.0; 5],
            vec![3.0; 5],
            vec![4.0; 5],
            vec![3.5; 3],
        ];
        let state = state_with(&curves);
        let trial = &state.trials[4];
        let reason = median()
            .decide(trial, &state)
            .expect("3.5 is worse than the median 2.5");
        assert!(
            reason.contains("epoch 3") && reason.contains("2.5"),
            "{reason}"
        );
        // At epoch 2 (warm-up) nothing is pruned, however bad.
        let early = state_with(&[
            vec![1.0; 5],
            vec![2.0; 5],
            vec![3.0; 5],
            vec![4.0; 5],
            vec![9.0; 2],
        ]);
        assert!(median().decide(&early.trials[4], &early).is_none());
        // A good trial goes on.
        let good = state_with(&[
            vec![1.0; 5],
            vec![2.0; 5],
            vec![3.0; 5],
            vec![4.0; 5],
            vec![1.5; 3],
        ]);
        assert!(median().decide(&good.trials[4], &good).is_none());
        // Too few others at that epoch: no decision.
        let few = state_with(&[vec![1.0; 5], vec![2.0; 5], vec![9.0; 3]]);
        assert!(median().decide(&few.trials[2], &few).is_none());
    }
}
