//! Asynchronous successive halving (Li et al., "A System for Massively Parallel Hyperparameter
//! Tuning", MLSys 2020) and Hyperband (Li et al., JMLR 2018) on top of it. The resource is epochs.
//!
//! Rungs sit at `min_epochs * reduction_factor^k` epochs, below the last epoch. A trial reaching a
//! rung goes on only if its best value so far ranks in the top `1 / reduction_factor` of the
//! trials that have reached that rung (at least the best one, so the first trials are not all
//! stopped). Hyperband runs several such brackets, each starting at a later first rung, and
//! assigns trials to them in turn by trial number; a trial competes only within its bracket.

use super::{Pruner, best_until};
use crate::state::{SweepState, TrialRecord};
use crate::trial::Goal;

/// The rung epochs from `first`, multiplied by `eta`, below `max_epochs`.
pub fn rungs(first: u32, eta: u32, max_epochs: u32) -> Vec<u32> {
    let mut rungs = Vec::new();
    let mut r = first;
    while r < max_epochs {
        rungs.push(r);
        r = r.saturating_mul(eta);
    }
    rungs
}

/// Hyperband's number of brackets: one per rung of the most aggressive bracket (at least one).
pub fn brackets(min_epochs: u32, eta: u32, max_epochs: u32) -> u32 {
    (rungs(min_epochs, eta, max_epochs).len() as u32).max(1)
}

/// ASHA, or Hyperband as several ASHA brackets.
pub struct Asha {
    goal: Goal,
    min_epochs: u32,
    eta: u32,
    max_epochs: u32,
    brackets: u32,
}

impl Asha {
    /// ASHA with `brackets` brackets (1: plain ASHA).
    pub fn new(goal: Goal, min_epochs: u32, eta: u32, max_epochs: u32, brackets: u32) -> Asha {
        Asha {
            goal,
            min_epochs,
            eta,
            max_epochs,
            brackets: brackets.max(1),
        }
    }

    /// Hyperband: every bracket from the most aggressive one to (almost) no pruning.
    pub fn hyperband(goal: Goal, min_epochs: u32, eta: u32, max_epochs: u32) -> Asha {
        Asha::new(
            goal,
            min_epochs,
            eta,
            max_epochs,
            brackets(min_epochs, eta, max_epochs),
        )
    }
}

impl Pruner for Asha {
    fn decide(&self, trial: &TrialRecord, state: &SweepState) -> Option<String> {
        let epoch = trial.epochs.last()?.epoch;
        let bracket = (trial.number % self.brackets as u64) as u32;
        let first = self
            .min_epochs
            .saturating_mul(self.eta.saturating_pow(bracket));
        let rung = rungs(first, self.eta, self.max_epochs)
            .iter()
            .position(|&r| r == epoch)?;
        let mine = best_until(&self.goal, trial, epoch)?;
        let direction = self.goal.direction;
        let mut peers: Vec<(f64, u64)> = state
            .trials
            .iter()
            .filter(|t| t.number % self.brackets as u64 == bracket as u64)
            .filter(|t| t.epochs.iter().any(|e| e.epoch >= epoch))
            .filter_map(|t| Some((best_until(&self.goal, t, epoch)?, t.number)))
            .collect();
        peers.sort_by(|a, b| {
            let order = if direction.better(a.0, b.0) {
                std::cmp::Ordering::Less
            } else if direction.better(b.0, a.0) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            };
            order.then(a.1.cmp(&b.1))
        });
        let promoted = (peers.len() / self.eta as usize).max(1);
        let rank = peers.iter().position(|p| p.1 == trial.number)?;
        let name = if self.brackets > 1 {
            "hyperband"
        } else {
            "asha"
        };
        (rank >= promoted).then(|| {
            format!(
                "pruned at epoch {epoch} by {name} (rung {rung}{}): {mine:.6} ranks {} of {}, the top {promoted} go on",
                if self.brackets > 1 { format!(" of bracket {bracket}") } else { String::new() },
                rank + 1,
                peers.len()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pruner::tests::state_with;
    use crate::trial::Direction;

    fn asha() -> Asha {
        let goal = Goal {
            metric: "loss".into(),
            direction: Direction::Minimize,
        };
        Asha::new(goal, 1, 3, 27, 1)
    }

    #[test]
    fn rungs_and_brackets() {
        assert_eq!(rungs(1, 3, 27), vec![1, 3, 9]);
        assert_eq!(rungs(3, 3, 27), vec![3, 9]);
        assert_eq!(brackets(1, 3, 27), 3);
        assert_eq!(brackets(5, 3, 4), 1);
    }

    #[test]
    fn promotes_the_top_third_at_each_rung() {
        // Nine trials reach epoch 1 with losses 1..=9: the best three go on, the rest stop.
        let curves: Vec<Vec<f64>> = (1..=9).map(|v| vec![v as f64]).collect();
        let state = state_with(&curves);
        let pruned: Vec<bool> = state
            .trials
            .iter()
            .map(|t| asha().decide(t, &state).is_some())
            .collect();
        assert_eq!(
            pruned,
            [false, false, false, true, true, true, true, true, true]
        );
        // At epoch 2 (no rung) nobody is judged.
        let state = state_with(&[vec![1.0, 1.0], vec![9.0, 9.0]]);
        assert!(asha().decide(&state.trials[1], &state).is_none());
        // The first trial at a rung is always promoted.
        let alone = state_with(&[vec![5.0]]);
        assert!(asha().decide(&alone.trials[0], &alone).is_none());
    }

    #[test]
    fn hyperband_compares_trials_within_their_bracket() {
        let goal = Goal {
            metric: "loss".into(),
            direction: Direction::Minimize,
        };
        let hyperband = Asha::hyperband(goal, 1, 3, 27);
        // Trials 0, 3, 6 are in bracket 0 (first rung at epoch 1); 1, 4, 7 in bracket 1 (rung 3).
        let curves: Vec<Vec<f64>> = (0..9).map(|i| vec![9.0 - i as f64]).collect();
        let state = state_with(&curves);
        let judged: Vec<Option<bool>> = state
            .trials
            .iter()
            .map(|t| (t.number % 3 == 0).then(|| hyperband.decide(t, &state).is_some()))
            .collect();
        // In bracket 0, trial 6 (loss 3) is best of 3: only it goes on.
        assert_eq!(judged[0], Some(true));
        assert_eq!(judged[3], Some(true));
        assert_eq!(judged[6], Some(false));
        // Bracket 1 has no rung at epoch 1.
        assert!(hyperband.decide(&state.trials[1], &state).is_none());
    }
}
