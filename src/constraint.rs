//! Constraints (`[[constraint]]`): bounds a trial must keep on a reported metric or on its
//! model's size (`n_params`). A trial that breaks one is infeasible: it ranks after every
//! feasible trial with the reason in the leaderboard's note, it is never the best, and TPE
//! counts it among the bad trials (the farther outside, the worse), so that sampling moves to
//! where the constraints hold.

use crate::state::TrialRecord;
use crate::trial::Direction;

/// `[[constraint]] metric = "...", min = ..., max = ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// A metric the objective reports, or `n_params`.
    pub metric: String,
    /// The least value allowed.
    pub min: Option<f64>,
    /// The largest value allowed.
    pub max: Option<f64>,
}

pub use crate::trial::N_PARAMS;

impl Constraint {
    /// The trial's value of this constraint's metric at its best epoch (by the objective), or
    /// its parameter count; `None` when it has none (yet).
    fn value(&self, trial: &TrialRecord, objective: &str, direction: Direction) -> Option<f64> {
        let best = trial.best_epoch(objective, direction)?;
        trial.value_at(&self.metric, best)
    }

    /// How far outside its bounds the trial's value is: positive outside (by how much),
    /// negative or 0 inside; `None` when it has no value.
    pub fn slack(&self, trial: &TrialRecord, objective: &str, direction: Direction) -> Option<f64> {
        let value = self.value(trial, objective, direction)?;
        let above = self.max.map_or(f64::NEG_INFINITY, |max| value - max);
        let below = self.min.map_or(f64::NEG_INFINITY, |min| min - value);
        Some(above.max(below))
    }

    /// How the trial breaks this constraint, if it does.
    fn judge(
        &self,
        trial: &TrialRecord,
        objective: &str,
        direction: Direction,
    ) -> Option<Broken<'_>> {
        let value = self.value(trial, objective, direction)?;
        let broken = |bound| Broken {
            metric: &self.metric,
            value,
            bound,
        };
        if let Some(max) = self.max.filter(|&max| value > max) {
            return Some(broken(Bound::Max(max)));
        }
        if let Some(min) = self.min.filter(|&min| value < min) {
            return Some(broken(Bound::Min(min)));
        }
        None
    }
}

/// A bound of a constraint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// The least value allowed.
    Min(f64),
    /// The largest value allowed.
    Max(f64),
}

/// A constraint a trial breaks: its value of the metric, and the bound it is beyond.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Broken<'a> {
    /// The constrained metric.
    pub metric: &'a str,
    /// The trial's value of it.
    pub value: f64,
    /// The bound it is beyond.
    pub bound: Bound,
}

impl Broken<'_> {
    /// How far beyond the bound.
    pub fn by(&self) -> f64 {
        match self.bound {
            Bound::Max(max) => self.value - max,
            Bound::Min(min) => min - self.value,
        }
    }
}

/// The constraints of a sweep, judged against trials.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// The constraints.
    pub constraints: &'a [Constraint],
    /// The objective metric, whose best epoch is where metrics are judged.
    pub objective: &'a str,
    /// Its direction.
    pub direction: Direction,
}

impl Judge<'_> {
    /// The total amount by which `trial` breaks the constraints (0: feasible).
    pub fn violation(&self, trial: &TrialRecord) -> f64 {
        self.broken(trial).iter().map(Broken::by).sum()
    }

    /// Every constraint `trial` breaks (none: it is feasible).
    pub fn broken(&self, trial: &TrialRecord) -> Vec<Broken<'_>> {
        self.constraints
            .iter()
            .filter_map(|c| c.judge(trial, self.objective, self.direction))
            .collect()
    }
}

impl crate::experiment::source::Builder {
    /// `[[constraint]]` tables: `metric` and `min` and/or `max` (which metrics exist is the
    /// objective's to say: [`crate::objective::registry::prepare`]).
    pub(crate) fn constraints(&self, tables: &[toml::Table]) -> crate::Result<Vec<Constraint>> {
        let mut constraints = Vec::new();
        for (i, table) in tables.iter().enumerate() {
            let index = i.to_string();
            let at = |key: &'static str| ["constraint", index.as_str(), key];
            for key in table.keys() {
                if !["metric", "min", "max"].contains(&key.as_str()) {
                    return Err(self.err(
                        &["constraint", &index, key],
                        format!(
                            "unknown key `{key}` in [[constraint]]; allowed: `metric`, `min`, `max`"
                        ),
                    ));
                }
            }
            let metric = match table.get("metric") {
                Some(toml::Value::String(m)) => m.clone(),
                _ => {
                    return Err(self.err(&["constraint", &index], "[[constraint]] needs `metric`: a metric the objective reports, or n_params"));
                }
            };
            let bound = |key: &'static str| -> crate::Result<Option<f64>> {
                match table.get(key) {
                    None => Ok(None),
                    Some(toml::Value::Float(x)) => Ok(Some(*x)),
                    Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
                    Some(_) => Err(self.err(&at(key), format!("`{key}` must be a number"))),
                }
            };
            let (min, max) = (bound("min")?, bound("max")?);
            match (min, max) {
                (None, None) => {
                    return Err(self.err(
                        &at("metric"),
                        format!(
                            "the constraint on `{metric}` has no bound: give `min`, `max` or both"
                        ),
                    ));
                }
                (Some(low), Some(high)) if low > high => {
                    return Err(self.err(
                        &at("min"),
                        format!("min {low} is above max {high}: no trial could keep both"),
                    ));
                }
                _ => {}
            }
            constraints.push(Constraint { metric, min, max });
        }
        Ok(constraints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SweepState, ended_trial};
    use crate::trial::{EndState, Metrics};

    #[test]
    fn a_trial_outside_a_bound_is_infeasible_by_how_far_and_says_why() {
        let mut state = SweepState::default();
        let metrics = Metrics::from([("val_loss".into(), 0.3), ("val_accuracy".into(), 0.9)]);
        ended_trial(
            &mut state,
            0,
            Default::default(),
            metrics,
            EndState::Complete,
        );
        let trial = &state.trials[0];
        let constraints = [
            Constraint {
                metric: "val_loss".into(),
                min: None,
                max: Some(0.25),
            },
            Constraint {
                metric: "val_accuracy".into(),
                min: Some(0.5),
                max: None,
            },
        ];
        let judge = Judge {
            constraints: &constraints,
            objective: "val_accuracy",
            direction: Direction::Maximize,
        };
        assert!((judge.violation(trial) - 0.05).abs() < 1e-12);
        let broken = judge.broken(trial);
        assert_eq!(broken.len(), 1);
        assert_eq!(
            (broken[0].metric, broken[0].bound),
            ("val_loss", Bound::Max(0.25))
        );
        let loose = [Constraint {
            metric: "val_loss".into(),
            min: None,
            max: Some(0.5),
        }];
        let judge = Judge {
            constraints: &loose,
            ..judge
        };
        assert_eq!((judge.violation(trial), judge.broken(trial)), (0.0, vec![]));
    }
}
