//! `[budget]`: how many trials, how many at once, for how long, and on which devices.

use crate::device::Backend;
use crate::device::DeviceName;
use crate::error::Result;
use crate::experiment::source::parse_duration;
use crate::sampler::spec::{SamplerKind, SamplerSpec, grid_size};
use crate::space::Space;
use serde::Deserialize;
use std::time::Duration;

/// `[budget]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Trials to run (for grid: at most the grid's size).
    pub trials: u64,
    /// Trials trained at once.
    pub workers: usize,
    /// Stop starting new trials after this long.
    pub max_time: Option<Duration>,
    /// Stop the sweep after this many trials fail in a row (0: never); before any trial has
    /// succeeded, after [`FIRST_FAILURES`] (or this, if fewer).
    pub max_failures: u64,
    /// How many times a failed trial runs again, from its last checkpoint, before its failure
    /// is final (0: never).
    pub retries: u32,
    /// Whether an ended trial keeps its checkpoints; without, a complete or pruned trial keeps
    /// only its best weights (a failed one keeps them for `kiln retry`).
    pub keep_checkpoints: bool,
    /// Rules that end the sweep before its budget is spent.
    pub stop: StopRules,
    /// `devices`: the device of each worker process, by worker (each device named
    /// `trials_per_device` times, in turn); empty without.
    pub devices: Vec<String>,
}

/// `[budget] target`, `no_improvement` and `regret_bound`: each ends a sweep (no new trials;
/// running ones finish) before its budget is spent. What they say of a sweep is in
/// [`crate::stopping`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopRules {
    /// Stop once the best trial's objective reaches this.
    pub target: Option<f64>,
    /// Stop once this many trials ended (complete or pruned) after the best one.
    pub no_improvement: Option<u64>,
    /// Stop once the best is unlikely to improve by more than this: the regret bound of a
    /// Gaussian process fitted to the trials.
    pub regret_bound: Option<RegretThreshold>,
}

/// What the regret bound is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegretThreshold {
    /// The noise between trials: the variation the parameters do not explain, as the Gaussian
    /// process fitted to them estimates it.
    Noise,
    /// A difference in the objective's units too small to matter.
    Value(f64),
}

/// Trials that may fail in a row before a sweep stops, by default.
pub const DEFAULT_MAX_FAILURES: u64 = 10;
/// Trials that may fail before a sweep stops when none has succeeded yet: a script or a setting
/// that fails every trial is reported after a few, not after the budget.
pub const FIRST_FAILURES: u64 = 3;

impl Budget {
    /// Whether a sweep stops after `in_row` failures in a row, `succeeded` saying whether any
    /// trial of this run has completed or been pruned.
    pub fn fails_fast(&self, in_row: u64, succeeded: bool) -> bool {
        let limit = match succeeded {
            true => self.max_failures,
            false => self.max_failures.min(FIRST_FAILURES),
        };
        self.max_failures > 0 && in_row >= limit
    }

    /// The device of worker `id` (its `KILN_DEVICE`), if the experiment names devices.
    pub fn device_of(&self, id: usize) -> Option<&str> {
        self.devices.get(id).map(String::as_str)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub(crate) trials: Option<u64>,
    pub(crate) workers: Option<u64>,
    pub(crate) max_time: Option<String>,
    pub(crate) max_failures: Option<i64>,
    pub(crate) retries: Option<i64>,
    pub(crate) keep_checkpoints: Option<bool>,
    pub(crate) target: Option<f64>,
    pub(crate) no_improvement: Option<i64>,
    pub(crate) regret_bound: Option<RawRegret>,
    pub(crate) devices: Option<RawDevices>,
    pub(crate) trials_per_device: Option<i64>,
}

/// `[budget] regret_bound`: true (the noise), or a value.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawRegret {
    On(bool),
    Value(f64),
}

/// `[budget] devices`: names, or "all".
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawDevices {
    Names(Vec<String>),
    Word(String),
}

/// Trials trained at once by default: the machine's cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl crate::experiment::source::Builder {
    /// `[budget]`; `gpu` is the backend whose names `devices = "all"` gives.
    pub(crate) fn budget(
        &self,
        raw: &RawBudget,
        sampler: &SamplerSpec,
        space: &Space,
        gpu: Backend,
        objectives: usize,
    ) -> Result<Budget> {
        if raw.trials == Some(0) {
            return Err(self.err(&["budget", "trials"], "`trials` must be at least 1"));
        }
        if raw.workers == Some(0) {
            return Err(self.err(&["budget", "workers"], "`workers` must be at least 1"));
        }
        let max_time = raw
            .max_time
            .as_deref()
            .map(|t| {
                parse_duration(t).ok_or_else(|| {
                    self.err(
                        &["budget", "max_time"],
                        format!("cannot read `{t}` as a duration: write e.g. \"90s\", \"30m\", \"2h\" or \"1h30m\""),
                    )
                })
            })
            .transpose()?;
        let (max_failures, retries) = self.failure_rules(raw)?;
        let grid_size = if sampler.kind == SamplerKind::Grid {
            Some(
                grid_size(space, sampler.points)
                    .map_err(|(name, e)| self.err(&["space", &name], e))?,
            )
        } else {
            None
        };
        let trials = match (raw.trials, grid_size) {
            (Some(t), Some(g)) => t.min(g),
            (Some(t), None) => t,
            (None, Some(g)) => g,
            (None, None) => 20,
        };
        let devices = self.devices(raw, gpu)?;
        let workers = match (raw.workers, devices.len()) {
            (Some(w), capacity) if capacity > 0 && w as usize > capacity => {
                return Err(self.err(
                    &["budget", "workers"],
                    format!("{w} workers, but the devices take only {capacity} at once (devices x trials_per_device): lower `workers` or raise `trials_per_device`"),
                ));
            }
            (Some(w), _) => w as usize,
            (None, 0) => default_workers(),
            (None, capacity) => capacity,
        };
        Ok(Budget {
            trials,
            workers,
            max_time,
            max_failures,
            retries,
            keep_checkpoints: raw.keep_checkpoints.unwrap_or(false),
            stop: self.stop_rules(raw, objectives)?,
            devices,
        })
    }

    /// `[budget] target`, `no_improvement` and `regret_bound`, for a sweep of `objectives`
    /// objectives (the rules judge one).
    fn stop_rules(&self, raw: &RawBudget, objectives: usize) -> Result<StopRules> {
        let set = [
            ("target", raw.target.is_some()),
            ("no_improvement", raw.no_improvement.is_some()),
            ("regret_bound", raw.regret_bound.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|(_, on)| *on).filter(|_| objectives > 1) {
            return Err(self.err(
                &["budget", key],
                format!("`{key}` judges one objective's best trial, and this sweep has {objectives}: remove it, or stop with `trials` and `max_time`"),
            ));
        }
        if let Some(t) = raw.target.filter(|t| !t.is_finite()) {
            return Err(self.err(
                &["budget", "target"],
                format!("`target` must be a finite number, not {t}"),
            ));
        }
        let no_improvement = match raw.no_improvement {
            Some(n) if n < 1 => {
                return Err(self.err(
                    &["budget", "no_improvement"],
                    "`no_improvement` is how many trials may end without beating the best before the sweep stops: an integer >= 1",
                ));
            }
            n => n.map(|n| n as u64),
        };
        let regret_bound = match raw.regret_bound {
            None | Some(RawRegret::On(false)) => None,
            Some(RawRegret::On(true)) => Some(RegretThreshold::Noise),
            Some(RawRegret::Value(v)) if v.is_finite() && v > 0.0 => {
                Some(RegretThreshold::Value(v))
            }
            Some(RawRegret::Value(v)) => {
                return Err(self.err(
                    &["budget", "regret_bound"],
                    format!("`regret_bound` is true (stop when more trials are unlikely to beat the best by more than the noise between trials) or a positive difference in the objective's units, not {v}"),
                ));
            }
        };
        Ok(StopRules {
            target: raw.target,
            no_improvement,
            regret_bound,
        })
    }

    /// `[budget] max_failures` and `retries`.
    fn failure_rules(&self, raw: &RawBudget) -> Result<(u64, u32)> {
        let max_failures = match raw.max_failures {
            Some(n) if n < 0 => {
                return Err(self.err(
                    &["budget", "max_failures"],
                    "`max_failures` is how many trials may fail in a row before the sweep stops: an integer >= 1, or 0 never to stop",
                ));
            }
            Some(n) => n as u64,
            None => DEFAULT_MAX_FAILURES,
        };
        let retries = match raw.retries {
            Some(n) if !(0..=100).contains(&n) => {
                return Err(self.err(
                    &["budget", "retries"],
                    "`retries` is how many times a failed trial runs again: an integer from 0 to 100",
                ));
            }
            Some(n) => n as u32,
            None => 0,
        };
        Ok((max_failures, retries))
    }

    /// `[budget] devices` and `trials_per_device`: the device of each worker slot, every
    /// device once before any twice.
    pub(crate) fn devices(&self, raw: &RawBudget, gpu: Backend) -> Result<Vec<String>> {
        let per_device = match raw.trials_per_device {
            Some(n) if n < 1 => {
                return Err(self.err(
                    &["budget", "trials_per_device"],
                    "`trials_per_device` must be an integer >= 1",
                ));
            }
            Some(_) if raw.devices.is_none() => {
                return Err(self.err(
                    &["budget", "trials_per_device"],
                    "`trials_per_device` needs `devices = [\"cuda:0\", ...]` in [budget]",
                ));
            }
            n => n.unwrap_or(1) as usize,
        };
        let at = ["budget", "devices"];
        let names = match &raw.devices {
            None => return Ok(Vec::new()),
            Some(RawDevices::Names(names)) => names.clone(),
            Some(RawDevices::Word(word)) if word == "all" => {
                let found = crate::device::nvidia_gpus();
                if found.is_empty() {
                    return Err(self.err(&at, "`devices = \"all\"` found no GPU (no NVIDIA driver lists one in /proc/driver/nvidia/gpus): name the devices, e.g. devices = [\"wgpu\"]"));
                }
                (0..found.len())
                    .map(|n| DeviceName::nth(gpu, n).to_string())
                    .collect()
            }
            Some(RawDevices::Word(_)) => {
                return Err(self.err(&at, "`devices` is a list of names, e.g. [\"cuda:0\", \"cuda:1\"], or \"all\" (every GPU found)"));
            }
        };
        if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
            return Err(self.err(&at, "`devices` names each device a worker process gets, e.g. devices = [\"cuda:0\", \"cuda:1\"]"));
        }
        Ok((0..per_device)
            .flat_map(|_| names.iter().cloned())
            .collect())
    }
}
