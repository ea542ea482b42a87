//! `[objective]`: the metrics a sweep optimises, their directions, and the objective's kind
//! and options (which the objective itself checks when it is built).

use crate::error::Result;
use crate::text::{did_you_mean, quote_list};
use crate::trial::{Direction, Goal};
use serde::Deserialize;

/// `[objective]`: what the sweep optimises.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveSpec {
    /// A metric the objective reports each epoch: the first objective, whose best epoch is
    /// where a trial's other metrics are read.
    pub metric: String,
    /// Whether to maximise or minimise it.
    pub direction: Direction,
    /// The objectives after the first (`metric = ["val_accuracy", "n_params"]`): none for a
    /// sweep of one objective.
    pub others: Vec<Goal>,
    /// Which objective computes it: `train` (the built-in burn trainer, the default),
    /// `function`, `command` (the default when `command` is given), or the name of an
    /// objective a program registered ([`crate::objective::registry::Objectives`]).
    pub kind: String,
    /// The rest of `[objective]`: the objective's own options, which it validates.
    pub options: toml::Table,
    /// Whether the file left `[objective]` out, and this is the default.
    pub by_default: bool,
}

impl ObjectiveSpec {
    /// Every objective, the first first.
    pub fn goals(&self) -> Vec<Goal> {
        let first = Goal {
            metric: self.metric.clone(),
            direction: self.direction,
        };
        std::iter::once(first)
            .chain(self.others.iter().cloned())
            .collect()
    }

    /// Whether the sweep has several objectives (and so a Pareto front, not one best trial).
    pub fn is_multi(&self) -> bool {
        !self.others.is_empty()
    }
}

#[derive(Deserialize)]
pub(crate) struct RawObjective {
    pub(crate) metric: Option<toml::Value>,
    pub(crate) direction: Option<toml::Value>,
    pub(crate) kind: Option<String>,
    #[serde(flatten)]
    pub(crate) options: toml::Table,
}

/// The metric a file without `[objective]` optimises: every task of the built-in trainer
/// reports it.
pub const DEFAULT_METRIC: &str = "val_loss";

impl crate::experiment::source::Builder {
    pub(crate) fn objective(&self, raw: &RawObjective) -> Result<ObjectiveSpec> {
        let Some(metric) = &raw.metric else {
            let typo = raw
                .options
                .keys()
                .find(|k| did_you_mean(k, ["metric"]).is_some());
            return Err(match typo {
                Some(key) => self.err(
                    &["objective", key],
                    format!("unknown key `{key}`. Did you mean `metric`?"),
                ),
                None => self.err(
                    &["objective"],
                    "[objective] needs `metric`: the metric to optimise, e.g. metric = \"val_loss\"",
                ),
            });
        };
        let metrics = self.metrics(metric)?;
        let directions = self.directions(raw.direction.as_ref(), &metrics)?;
        let mut goals = metrics
            .into_iter()
            .zip(directions)
            .map(|(metric, direction)| Goal { metric, direction });
        let Goal { metric, direction } = goals.next().expect("at least one metric");
        let kind = match (&raw.kind, raw.options.contains_key("command")) {
            (Some(kind), _) => kind.clone(),
            (None, true) => "command".to_string(),
            (None, false) => "train".to_string(),
        };
        if kind.trim().is_empty() {
            return Err(self.err(
                &["objective", "kind"],
                "`kind` is empty: name an objective, e.g. `train`, `function` or `command`",
            ));
        }
        Ok(ObjectiveSpec {
            metric,
            direction,
            others: goals.collect(),
            kind,
            options: raw.options.clone(),
            by_default: false,
        })
    }

    /// `metric = "name"` or `metric = ["name", ...]`: names, none twice; the first is reported
    /// each epoch (it picks the epoch a trial's values are read at), so not `n_params`.
    pub(crate) fn metrics(&self, value: &toml::Value) -> Result<Vec<String>> {
        let wrong = || {
            self.err(
                &["objective", "metric"],
                "`metric` is a metric's name, or a list of names for several objectives, e.g. metric = [\"val_accuracy\", \"n_params\"]",
            )
        };
        let metrics: Vec<String> = match value {
            toml::Value::String(name) => vec![name.clone()],
            toml::Value::Array(names) if !names.is_empty() => names
                .iter()
                .map(|n| n.as_str().map(str::to_string).ok_or_else(wrong))
                .collect::<Result<_>>()?,
            _ => return Err(wrong()),
        };
        for (i, name) in metrics.iter().enumerate() {
            let at = ["objective", "metric", &i.to_string()].map(str::to_string);
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            let at = if metrics.len() == 1 {
                &at[..2]
            } else {
                &at[..]
            };
            if metrics[..i].contains(name) {
                return Err(self.err(at, format!("`{name}` is named twice: each objective once")));
            }
            if i == 0 && name == crate::trial::N_PARAMS {
                return Err(self.err(at, "the first metric must be one the objective reports each epoch (a trial's other values are read at its best epoch by it); put `n_params` after it, e.g. metric = [\"val_accuracy\", \"n_params\"]"));
            }
        }
        Ok(metrics)
    }

    /// `direction`: one per metric, or left out for each metric's natural one (maximise
    /// accuracy, R², F1; minimise the rest). One name for one metric.
    pub(crate) fn directions(
        &self,
        value: Option<&toml::Value>,
        metrics: &[String],
    ) -> Result<Vec<Direction>> {
        let at = ["objective", "direction"];
        let names: Vec<&str> = match value {
            None => return Ok(metrics.iter().map(|m| Direction::natural_for(m)).collect()),
            Some(toml::Value::String(name)) if metrics.len() == 1 => vec![name.as_str()],
            Some(toml::Value::Array(names)) if names.len() == metrics.len() => names
                .iter()
                .map(|n| {
                    n.as_str().ok_or_else(|| {
                        self.err(&at, "each direction is \"maximize\" or \"minimize\"")
                    })
                })
                .collect::<Result<_>>()?,
            Some(_) if metrics.len() == 1 => {
                return Err(self.err(&at, "`direction` is \"maximize\" or \"minimize\""));
            }
            Some(_) => {
                return Err(self.err(
                    &at,
                    format!(
                        "`direction` must list one direction per metric, in order: {} metrics ({}), e.g. direction = [{}]",
                        metrics.len(),
                        quote_list(&metrics.iter().map(String::as_str).collect::<Vec<_>>()),
                        metrics
                            .iter()
                            .map(|m| format!("\"{}\"", Direction::natural_for(m).name()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        names
            .into_iter()
            .map(|name| self.named(&at, "direction", Some(name)))
            .collect()
    }
}
