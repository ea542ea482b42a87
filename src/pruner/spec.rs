//! `[pruner]`: which pruner, and its settings, parsed and checked.

use crate::error::Result;
use crate::experiment::objective::ObjectiveSpec;
use crate::text::quote_list;
use serde::Deserialize;

crate::named! {
    /// The pruners (`[pruner] kind`).
    pub enum PrunerKind {
        /// No pruning (the default).
        None = "none",
        /// Stop a trial worse than the median of the others at the same epoch.
        Median = "median",
        /// Asynchronous successive halving.
        Asha = "asha",
        /// Several ASHA brackets of different first rungs.
        Hyperband = "hyperband",
    }
}

/// `[pruner]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunerSpec {
    /// Which pruner.
    pub kind: PrunerKind,
    /// median: epochs a trial trains before it can be pruned.
    pub warmup_epochs: u32,
    /// median: other trials that must have reached an epoch before it is judged.
    pub min_trials: usize,
    /// asha, hyperband: epochs of the first rung.
    pub min_epochs: u32,
    /// asha, hyperband: 1 in `reduction_factor` trials goes on at each rung.
    pub reduction_factor: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPruner {
    pub(crate) kind: Option<String>,
    pub(crate) warmup_epochs: Option<i64>,
    pub(crate) min_trials: Option<i64>,
    pub(crate) min_epochs: Option<i64>,
    pub(crate) reduction_factor: Option<i64>,
}

impl crate::experiment::source::Builder {
    pub(crate) fn pruner(&self, raw: &RawPruner, objective: &ObjectiveSpec) -> Result<PrunerSpec> {
        let kind = self.named(&["pruner", "kind"], "pruner", raw.kind.as_deref())?;
        if kind != PrunerKind::None && objective.is_multi() {
            let metrics: Vec<String> = objective.goals().into_iter().map(|g| g.metric).collect();
            return Err(self.err(
                &["pruner", "kind"],
                format!(
                    "a pruner stops trials that are behind on one objective, and this sweep has {} ({}): a trial behind on one may be the best on another. Remove [pruner], or optimise one metric",
                    metrics.len(),
                    quote_list(&metrics.iter().map(String::as_str).collect::<Vec<_>>())
                ),
            ));
        }
        let at_least = |key: &str, value: Option<i64>, min: i64, default: i64| -> Result<i64> {
            match value {
                Some(v) if v < min => Err(self.err(
                    &["pruner", key],
                    format!("`{key}` must be an integer >= {min}"),
                )),
                v => Ok(v.unwrap_or(default)),
            }
        };
        Ok(PrunerSpec {
            kind,
            warmup_epochs: at_least("warmup_epochs", raw.warmup_epochs, 0, 2)? as u32,
            min_trials: at_least("min_trials", raw.min_trials, 1, 5)? as usize,
            min_epochs: at_least("min_epochs", raw.min_epochs, 1, 1)? as u32,
            reduction_factor: at_least("reduction_factor", raw.reduction_factor, 2, 3)? as u32,
        })
    }
}
