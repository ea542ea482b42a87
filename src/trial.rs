//! A trial's vocabulary, shared by objectives, the journal, the state and the reports: its
//! metrics, one epoch's report, how it ended, and which way is better.
//!
//! The other names of a trial, each for one stage of its life:
//! - [`TrialTask`](crate::objective::TrialTask): what the coordinator sends a worker to start
//!   one (number, seed, parameters, folder);
//! - [`Trial`](crate::objective::Trial): the live handle an objective trains with, while it runs;
//! - [`TrialSummary`](crate::objective::TrialSummary): what an objective returns as it ends;
//! - [`TrialRecord`](crate::state::TrialRecord): what the journal says of it, folded;
//! - [`TrialState`](crate::state::TrialState): running, or ended with an [`EndState`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metric values by name.
pub type Metrics = BTreeMap<String, f64>;

/// One epoch of a trial, as its objective reports it and the sweep's state keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    /// Epoch, from 1.
    pub epoch: u32,
    /// Cumulative training time of the trial at the end of this epoch, across resumes.
    pub elapsed_s: f64,
    /// Learning rate used in this epoch, if the objective has one.
    pub lr: Option<f64>,
    /// The epoch's metrics.
    pub metrics: Metrics,
    /// Whether a checkpoint of this epoch was saved before the report.
    pub checkpointed: bool,
}

crate::named! {
    /// How a trial ended.
    pub enum EndState {
        /// Trained to its last epoch or stopped by patience.
        Complete = "complete",
        /// Stopped early by a cross-trial pruner.
        Pruned = "pruned",
        /// Diverged, panicked or returned an error.
        Failed = "failed",
    }
}

crate::named! {
    /// Whether the objective is to be made large or small.
    pub enum Direction {
        /// Larger is better (accuracy, R²).
        Maximize = "maximize",
        /// Smaller is better (losses, errors).
        Minimize = "minimize",
    }
}

impl Direction {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        }
    }

    /// `value` as a loss: lower is better, whichever way the metric points.
    pub fn loss(self, value: f64) -> f64 {
        match self {
            Direction::Maximize => -value,
            Direction::Minimize => value,
        }
    }

    /// The natural direction of a metric, from its name.
    pub fn natural_for(metric: &str) -> Direction {
        if ["accuracy", "r2", "f1"].iter().any(|m| metric.ends_with(m)) {
            Direction::Maximize
        } else {
            Direction::Minimize
        }
    }
}

/// The longest note a trial's end keeps (in the journal, the leaderboard and on the terminal):
/// a script may print a line of any length, which its log keeps whole.
pub const NOTE_LIMIT: usize = 2000;

/// `text` cut to at most `limit` bytes at a character boundary, saying how much was left out.
pub fn shorten(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let cut = (0..=limit)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{} ... ({} bytes more)", &text[..cut], text.len() - cut).into()
}

/// The name that stands for a trial's parameter count where a metric may be named (an
/// objective, a constraint).
pub const N_PARAMS: &str = "n_params";

/// One objective of a sweep: a metric and which way is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// A metric the objective reports, or `n_params` (the model's parameter count).
    pub metric: String,
    /// Whether to maximise or minimise it.
    pub direction: Direction,
}

impl Goal {
    /// `metric`, in `direction`.
    pub fn new(metric: &str, direction: Direction) -> Goal {
        Goal {
            metric: metric.to_string(),
            direction,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary_saying_how_much_is_left_out() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("ééé", 3), "é ... (4 bytes more)");
        assert_eq!(shorten(&"x".repeat(50), 8), "xxxxxxxx ... (42 bytes more)");
    }
}
