//! The experiment file: TOML in, a validated [`Experiment`] out, or one error that names the
//! file, line and column, says what is wrong and lists what is allowed.
//!
//! Parsing has two stages. serde reads the file's shape into raw structs (unknown keys and wrong
//! types fail here, with toml's own spans). Then each value is checked against its meaning
//! (ranges, names, the settings table), and errors are placed with a span index built by
//! `toml_edit` over the same text.

use crate::error::{Error, Result};
use crate::settings::{self, Kind, Section, Settings, did_you_mean, quote_list};
use crate::space::{Dimension, Distribution, ParamValue, Space};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether the objective is to be made large or small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Larger is better (accuracy, R²).
    Maximize,
    /// Smaller is better (losses, errors).
    Minimize,
}

impl Direction {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
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

    /// As written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        }
    }
}

/// `[objective]`: what the sweep optimises.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveSpec {
    /// A metric the objective reports each epoch.
    pub metric: String,
    /// Whether to maximise or minimise it.
    pub direction: Direction,
}

/// `[budget]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Trials to run (for grid: at most the grid's size).
    pub trials: u64,
    /// Trials trained at once.
    pub workers: usize,
    /// Stop starting new trials after this long.
    pub max_time: Option<Duration>,
}

/// Classification or regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Predict a class; softmax cross-entropy.
    Classification,
    /// Predict a number; MSE by default.
    Regression,
}

/// How rows are split into train, validation and test.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitSpec {
    /// Seeded fractions, stratified by class for classification.
    Fractions {
        /// Fraction of rows for training.
        train: f64,
        /// Fraction for validation.
        val: f64,
        /// Fraction for test (may be 0).
        test: f64,
    },
    /// A column of the CSV whose values are `train`, `val` or `test`.
    Column(String),
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// The CSV file, resolved against the experiment file's folder.
    pub path: PathBuf,
    /// The target column.
    pub target: String,
    /// Classification or regression.
    pub task: Task,
    /// How rows are split.
    pub split: SplitSpec,
    /// `[channels, height, width]` for image-shaped rows.
    pub image: Option<[usize; 3]>,
    /// String columns embedded as categories (each gets a learned vector of `embedding_dim`).
    pub categorical: Vec<String>,
}

/// `[early_stopping]`: patience within one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    /// The metric watched.
    pub monitor: String,
    /// Epochs without improvement before stopping.
    pub patience: u32,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Whether the monitored metric should go up or down.
    pub mode: Direction,
}

/// `[sampler]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerSpec {
    /// `random`, `grid`, `sobol` or `tpe`.
    pub kind: String,
    /// Default grid points for continuous ranges.
    pub points: Option<usize>,
    /// TPE: random trials before the model takes over.
    pub startup_trials: usize,
    /// TPE: the fraction of trials that count as good.
    pub gamma: f64,
    /// TPE: candidates drawn from the good model per trial.
    pub candidates: usize,
    /// TPE: model the dimensions jointly.
    pub multivariate: bool,
}

/// `[pruner]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunerSpec {
    /// `none`, `median`, `asha` or `hyperband`.
    pub kind: String,
    /// median: epochs a trial trains before it can be pruned.
    pub warmup_epochs: u32,
    /// median: other trials that must have reached an epoch before it is judged.
    pub min_trials: usize,
    /// asha, hyperband: epochs of the first rung.
    pub min_epochs: u32,
    /// asha, hyperband: 1 in `reduction_factor` trials goes on at each rung.
    pub reduction_factor: u32,
}

/// Where the experiment came from: its text, kept for error positions and for freezing.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The path as the user gave it (shown in errors).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// The folder relative paths in the file are resolved against.
    pub base_dir: PathBuf,
}

impl Source {
    /// A bad-input error located at a TOML path (`["space", "learning_rate"]`), or at the file
    /// when the path has no position.
    pub fn error_at(&self, path: &[&str], message: impl AsRef<str>) -> Error {
        let position = locate(&self.text, path)
            .map(|offset| {
                let (line, column) = line_column(&self.text, offset);
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        Error::input(format!(
            "{}{position}: {}",
            self.path.display(),
            message.as_ref()
        ))
    }
}

/// A validated experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// The sweep's name; `results/<name>` by default.
    pub name: String,
    /// The sweep seed; every trial's seed derives from it.
    pub seed: u64,
    /// What to optimise.
    pub objective: ObjectiveSpec,
    /// How many trials, how many at once, for how long.
    pub budget: Budget,
    /// The data (the built-in trainer needs it).
    pub data: Option<DataSpec>,
    /// Settings as written in `[model]` and `[train]`.
    pub fixed: BTreeMap<String, ParamValue>,
    /// Defaults overridden by the fixed settings.
    pub settings: Settings,
    /// Patience within a trial.
    pub early_stopping: Option<EarlyStopping>,
    /// How trials are sampled.
    pub sampler: SamplerSpec,
    /// How trials are pruned.
    pub pruner: PrunerSpec,
    /// What is searched.
    pub space: Space,
    /// `[storage] url`: the PostgreSQL database that keeps the sweep, shared by workers.
    pub storage_url: Option<String>,
    /// The file it came from.
    pub source: Source,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    seed: Option<u64>,
    objective: RawObjective,
    #[serde(default)]
    budget: RawBudget,
    data: Option<RawData>,
    #[serde(default)]
    model: toml::Table,
    #[serde(default)]
    train: toml::Table,
    early_stopping: Option<RawEarlyStopping>,
    #[serde(default)]
    sampler: RawSampler,
    #[serde(default)]
    pruner: RawPruner,
    #[serde(default)]
    space: toml::Table,
    storage: Option<RawStorage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    metric: String,
    direction: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    trials: Option<u64>,
    workers: Option<u64>,
    max_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    path: String,
    target: String,
    task: String,
    split: Option<RawSplit>,
    split_column: Option<String>,
    image: Option<Vec<i64>>,
    #[serde(default)]
    categorical: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplit {
    train: f64,
    val: f64,
    #[serde(default)]
    test: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEarlyStopping {
    monitor: Option<String>,
    patience: Option<i64>,
    min_delta: Option<f64>,
    mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSampler {
    kind: Option<String>,
    points: Option<i64>,
    startup_trials: Option<i64>,
    gamma: Option<f64>,
    candidates: Option<i64>,
    multivariate: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPruner {
    kind: Option<String>,
    warmup_epochs: Option<i64>,
    min_trials: Option<i64>,
    min_epochs: Option<i64>,
    reduction_factor: Option<i64>,
}

/// Samplers this version runs.
pub const SAMPLERS: &[&str] = &["random", "grid", "sobol", "tpe"];
/// Samplers of the design that come later.
const SAMPLERS_LATER: &[&str] = &[];
/// Pruners this version runs.
pub const PRUNERS: &[&str] = &["none", "median", "asha", "hyperband"];
const PRUNERS_LATER: &[&str] = &[];
const DISTRIBUTIONS: &[&str] = &["uniform", "log_uniform", "int", "choice"];
const DIMENSION_KEYS: &[&str] = &[
    "uniform",
    "log_uniform",
    "int",
    "choice",
    "log",
    "step",
    "points",
];

impl Experiment {
    /// Reads and validates an experiment file.
    pub fn load(path: &Path) -> Result<Experiment> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::input(format!(
                "{}: cannot read the experiment file: {e}",
                path.display()
            ))
        })?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let base_dir = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
        Experiment::parse(&text, path, &base_dir)
    }

    /// Validates an experiment's text; `path` is shown in errors, `base_dir` resolves `[data] path`.
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Experiment> {
        Experiment::parse_as(text, path, base_dir, false)
    }

    /// Validates an experiment for a user's own objective (library use): `[space]` may name
    /// parameters that are not kiln settings, and `[data]` is optional.
    pub fn parse_custom(text: &str, path: &Path, base_dir: &Path) -> Result<Experiment> {
        Experiment::parse_as(text, path, base_dir, true)
    }

    fn parse_as(text: &str, path: &Path, base_dir: &Path, custom: bool) -> Result<Experiment> {
        let source = Source {
            path: path.to_path_buf(),
            text: text.to_string(),
            base_dir: base_dir.to_path_buf(),
        };
        let raw: Raw = toml::from_str(text).map_err(|e| serde_error(&source, &e))?;
        Builder { source, custom }.build(raw)
    }

    /// The metric names the settings' `[space]` keys and the leaderboard's parameter columns use.
    pub fn param_names(&self) -> Vec<String> {
        self.space.names().map(str::to_string).collect()
    }

    /// Checks that the objective metric and the early-stopping monitor are among `available`,
    /// the metrics the objective reports.
    pub fn check_metrics(&self, available: &[String]) -> Result<()> {
        let names = || available.iter().map(String::as_str);
        let check = |metric: &str, path: &[&str]| -> Result<()> {
            if available.iter().any(|m| m == metric) {
                return Ok(());
            }
            let hint = did_you_mean(metric, names())
                .map(|m| format!(" Did you mean `{m}`?"))
                .unwrap_or_default();
            Err(self.source.error_at(
                path,
                format!(
                    "unknown metric `{metric}`: this objective reports {}.{hint}",
                    quote_list(&names().collect::<Vec<_>>())
                ),
            ))
        };
        check(&self.objective.metric, &["objective", "metric"])?;
        if let Some(es) = &self.early_stopping {
            check(&es.monitor, &["early_stopping", "monitor"])?;
        }
        Ok(())
    }

    /// The settings of one trial: the fixed settings with its parameters applied.
    pub fn trial_settings(&self, params: &crate::space::Params) -> Settings {
        self.settings.with_params(params)
    }

    /// Every value a setting can take in this sweep: its fixed value, or its `[space]` values
    /// (all choices; the bounds of a range).
    pub fn possible_values(&self, name: &str) -> Vec<ParamValue> {
        match self.space.dimensions.iter().find(|d| d.name == name) {
            Some(d) => match &d.distribution {
                Distribution::Choice(values) => values.clone(),
                Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => {
                    vec![ParamValue::Float(*low), ParamValue::Float(*high)]
                }
                Distribution::Int { low, high, .. } => {
                    vec![ParamValue::Int(*low), ParamValue::Int(*high)]
                }
            },
            None => self.settings.get(name).cloned().into_iter().collect(),
        }
    }
}

struct Builder {
    source: Source,
    /// A user's objective: free `[space]` keys, no built-in model checks.
    custom: bool,
}

impl Builder {
    fn err(&self, path: &[&str], message: impl AsRef<str>) -> Error {
        self.source.error_at(path, message)
    }

    fn storage(&self, storage: &RawStorage) -> Result<String> {
        let url = storage.url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(self.err(
                &["storage", "url"],
                format!("`{url}` is not a PostgreSQL URL: use postgres://USER@HOST:PORT/DATABASE"),
            ));
        }
        if crate::db::has_password(url) {
            return Err(self.err(
                &["storage", "url"],
                "the URL holds a password, and experiment files get shared and committed: remove it and set the PGPASSWORD environment variable instead",
            ));
        }
        Ok(url.to_string())
    }

    fn build(self, raw: Raw) -> Result<Experiment> {
        if raw.name.trim().is_empty()
            || raw
                .name
                .chars()
                .any(|c| !(c.is_alphanumeric() || "-_.".contains(c)))
            || raw.name.starts_with('.')
        {
            return Err(self.err(
                &["name"],
                format!(
                    "invalid name `{}`: use letters, digits, `-`, `_` and `.` (it names the results folder)",
                    raw.name
                ),
            ));
        }
        let objective = self.objective(&raw.objective)?;
        let fixed = self.fixed_settings(&raw.model, Section::Model)?;
        let mut all_fixed = fixed;
        all_fixed.extend(self.fixed_settings(&raw.train, Section::Train)?);
        let function = all_fixed.get("kind") == Some(&ParamValue::Str("function".into()));
        let space = self.space(&raw.space, function)?;
        let sampler = self.sampler(&raw.sampler)?;
        let budget = self.budget(&raw.budget, &sampler, &space)?;
        let experiment = Experiment {
            name: raw.name.clone(),
            seed: raw.seed.unwrap_or(0),
            objective,
            budget,
            data: raw.data.as_ref().map(|d| self.data(d)).transpose()?,
            settings: Settings::with_defaults(&all_fixed),
            fixed: all_fixed,
            early_stopping: raw
                .early_stopping
                .as_ref()
                .map(|e| self.early_stopping(e))
                .transpose()?,
            pruner: self.pruner(&raw.pruner)?,
            sampler,
            space,
            storage_url: raw.storage.as_ref().map(|s| self.storage(s)).transpose()?,
            source: self.source.clone(),
        };
        if !self.custom {
            self.check_supported(&experiment)?;
        }
        Ok(experiment)
    }

    fn objective(&self, raw: &RawObjective) -> Result<ObjectiveSpec> {
        let direction = match raw.direction.as_deref() {
            None => Direction::natural_for(&raw.metric),
            Some("maximize") => Direction::Maximize,
            Some("minimize") => Direction::Minimize,
            Some(other) => {
                return Err(self.err(
                    &["objective", "direction"],
                    format!("unknown direction `{other}`: use `maximize` or `minimize`"),
                ));
            }
        };
        Ok(ObjectiveSpec {
            metric: raw.metric.clone(),
            direction,
        })
    }

    fn budget(&self, raw: &RawBudget, sampler: &SamplerSpec, space: &Space) -> Result<Budget> {
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
        let grid_size = if sampler.kind == "grid" {
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
        Ok(Budget {
            trials,
            workers: raw
                .workers
                .map(|w| w as usize)
                .unwrap_or_else(default_workers),
            max_time,
        })
    }

    fn data(&self, raw: &RawData) -> Result<DataSpec> {
        let task = match raw.task.as_str() {
            "classification" => Task::Classification,
            "regression" => Task::Regression,
            other => {
                return Err(self.err(
                    &["data", "task"],
                    format!("unknown task `{other}`: use `classification` or `regression`"),
                ));
            }
        };
        let split = match (&raw.split, &raw.split_column) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    &["data", "split_column"],
                    "give either `split` (fractions) or `split_column`, not both",
                ));
            }
            (None, Some(column)) => SplitSpec::Column(column.clone()),
            (None, None) => SplitSpec::Fractions {
                train: 0.7,
                val: 0.15,
                test: 0.15,
            },
            (Some(s), None) => {
                let parts = [("train", s.train), ("val", s.val), ("test", s.test)];
                if let Some((name, value)) = parts.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
                    return Err(self.err(
                        &["data", "split"],
                        format!("split `{name}` = {value} is not a fraction in [0, 1]"),
                    ));
                }
                if s.train <= 0.0 || s.val <= 0.0 {
                    return Err(self.err(
                        &["data", "split"],
                        "the split needs train > 0 and val > 0 (test may be 0)",
                    ));
                }
                let total = s.train + s.val + s.test;
                if (total - 1.0).abs() > 1e-6 {
                    return Err(self.err(
                        &["data", "split"],
                        format!(
                            "split fractions add up to {total}, not 1 (train {} + val {} + test {})",
                            s.train, s.val, s.test
                        ),
                    ));
                }
                SplitSpec::Fractions {
                    train: s.train,
                    val: s.val,
                    test: s.test,
                }
            }
        };
        let image = match &raw.image {
            None => None,
            Some(dims) if dims.len() == 3 && dims.iter().all(|&d| d >= 1) => {
                Some([dims[0] as usize, dims[1] as usize, dims[2] as usize])
            }
            Some(_) => {
                return Err(self.err(
                    &["data", "image"],
                    "`image` must be [channels, height, width], three integers >= 1",
                ));
            }
        };
        Ok(DataSpec {
            path: self.source.base_dir.join(&raw.path),
            target: raw.target.clone(),
            task,
            split,
            image,
            categorical: raw.categorical.clone(),
        })
    }

    fn early_stopping(&self, raw: &RawEarlyStopping) -> Result<EarlyStopping> {
        let monitor = raw
            .monitor
            .clone()
            .unwrap_or_else(|| "val_loss".to_string());
        let patience = raw.patience.unwrap_or(5);
        if patience < 1 {
            return Err(self.err(
                &["early_stopping", "patience"],
                "`patience` must be an integer >= 1",
            ));
        }
        let min_delta = raw.min_delta.unwrap_or(0.0);
        if !(min_delta >= 0.0 && min_delta.is_finite()) {
            return Err(self.err(
                &["early_stopping", "min_delta"],
                "`min_delta` must be a number >= 0",
            ));
        }
        let mode = match raw.mode.as_deref() {
            None => Direction::natural_for(&monitor),
            Some("max") => Direction::Maximize,
            Some("min") => Direction::Minimize,
            Some(other) => {
                return Err(self.err(
                    &["early_stopping", "mode"],
                    format!("unknown mode `{other}`: use `min` or `max`"),
                ));
            }
        };
        Ok(EarlyStopping {
            monitor,
            patience: patience as u32,
            min_delta,
            mode,
        })
    }

    fn sampler(&self, raw: &RawSampler) -> Result<SamplerSpec> {
        let kind = raw.kind.clone().unwrap_or_else(|| "random".to_string());
        self.check_kind(
            &["sampler", "kind"],
            "sampler",
            &kind,
            SAMPLERS,
            SAMPLERS_LATER,
        )?;
        let at_least_one = |key: &str, value: Option<i64>| -> Result<Option<usize>> {
            match value {
                Some(v) if v < 1 => Err(self.err(
                    &["sampler", key],
                    format!("`{key}` must be an integer >= 1"),
                )),
                v => Ok(v.map(|v| v as usize)),
            }
        };
        let points = at_least_one("points", raw.points)?;
        let startup_trials = at_least_one("startup_trials", raw.startup_trials)?.unwrap_or(10);
        let candidates = at_least_one("candidates", raw.candidates)?.unwrap_or(24);
        let gamma = raw.gamma.unwrap_or(0.25);
        if !(gamma > 0.0 && gamma < 1.0) {
            return Err(self.err(
                &["sampler", "gamma"],
                "`gamma` must be a fraction in (0, 1), e.g. 0.25",
            ));
        }
        Ok(SamplerSpec {
            kind,
            points,
            startup_trials,
            gamma,
            candidates,
            multivariate: raw.multivariate.unwrap_or(false),
        })
    }

    fn pruner(&self, raw: &RawPruner) -> Result<PrunerSpec> {
        let kind = raw.kind.clone().unwrap_or_else(|| "none".to_string());
        self.check_kind(&["pruner", "kind"], "pruner", &kind, PRUNERS, PRUNERS_LATER)?;
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

    fn check_kind(
        &self,
        path: &[&str],
        what: &str,
        kind: &str,
        now: &[&str],
        later: &[&str],
    ) -> Result<()> {
        if now.contains(&kind) {
            Ok(())
        } else if later.contains(&kind) {
            Err(self.err(
                path,
                format!(
                    "{what} `{kind}` is not available in this version of kiln; use {}",
                    quote_list(now)
                ),
            ))
        } else {
            let all: Vec<&str> = now.iter().chain(later).copied().collect();
            let hint = did_you_mean(kind, all.iter().copied())
                .map(|m| format!(" Did you mean `{m}`?"))
                .unwrap_or_default();
            Err(self.err(
                path,
                format!("unknown {what} `{kind}`: use {}.{hint}", quote_list(now)),
            ))
        }
    }

    fn fixed_settings(
        &self,
        table: &toml::Table,
        section: Section,
    ) -> Result<BTreeMap<String, ParamValue>> {
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let path = [section.name(), key.as_str()];
            let spec = match settings::spec(key) {
                Some(spec) if spec.section == section => spec,
                other => {
                    let names = settings::names_in(section);
                    let elsewhere = other
                        .map(|s| format!(" (`{key}` belongs in [{}])", s.section.name()))
                        .unwrap_or_default();
                    let hint = did_you_mean(key, names.iter().copied())
                        .map(|m| format!(" Did you mean `{m}`?"))
                        .unwrap_or_default();
                    return Err(self.err(
                        &path,
                        format!(
                            "unknown setting `{key}` in [{}]{elsewhere}.{hint} Allowed: {}",
                            section.name(),
                            quote_list(&names)
                        ),
                    ));
                }
            };
            let value = scalar(value).ok_or_else(|| {
                self.err(
                    &path,
                    format!("`{key}` must be a single value, not {}", value.type_str()),
                )
            })?;
            let value = spec.check(&value).map_err(|e| self.err(&path, e))?;
            values.insert(key.clone(), value);
        }
        Ok(values)
    }

    fn space(&self, table: &toml::Table, function: bool) -> Result<Space> {
        // Keep the file's order: toml's Table is sorted, so order keys by where they appear.
        let mut keys: Vec<&String> = table.keys().collect();
        keys.sort_by_key(|k| locate(&self.source.text, &["space", k]).unwrap_or(usize::MAX));
        let mut dimensions = Vec::new();
        for key in keys {
            dimensions.push(self.dimension(key, &table[key.as_str()], function)?);
        }
        Ok(Space { dimensions })
    }

    fn dimension(&self, name: &str, value: &toml::Value, function: bool) -> Result<Dimension> {
        let path = ["space", name];
        let spec = match settings::spec(name) {
            // A user's objective gives its parameters their meaning; kiln checks only the shape.
            _ if self.custom => None,
            // A synthetic function's inputs x1, x2, ...
            None if function && crate::functions::input_index(name).is_some() => None,
            Some(spec) => Some(spec),
            None => {
                let all: Vec<&str> = settings::SETTINGS.iter().map(|s| s.name).collect();
                let hint = did_you_mean(name, all.iter().copied())
                    .map(|m| format!(" Did you mean `{m}`?"))
                    .unwrap_or_default();
                return Err(self.err(
                    &path,
                    format!(
                        "`{name}` is not a setting that can be searched.{hint} Allowed: {}",
                        quote_list(&all)
                    ),
                ));
            }
        };
        let table = value.as_table().ok_or_else(|| {
            self.err(
                &path,
                format!("`{name}` must be a distribution such as {{ uniform = [0.0, 0.5] }}; use one of {}", quote_list(DISTRIBUTIONS)),
            )
        })?;
        for key in table.keys() {
            if !DIMENSION_KEYS.contains(&key.as_str()) {
                let hint = did_you_mean(key, DIMENSION_KEYS.iter().copied())
                    .map(|m| format!(" Did you mean `{m}`?"))
                    .unwrap_or_default();
                return Err(self.err(
                    &["space", name, key],
                    format!(
                        "unknown key `{key}` in `{name}`.{hint} Allowed: {}",
                        quote_list(DIMENSION_KEYS)
                    ),
                ));
            }
        }
        let given: Vec<&str> = DISTRIBUTIONS
            .iter()
            .copied()
            .filter(|d| table.contains_key(*d))
            .collect();
        let kind = match given.as_slice() {
            [one] => *one,
            [] => {
                return Err(self.err(
                    &path,
                    format!(
                        "`{name}` names no distribution: use one of {}",
                        quote_list(DISTRIBUTIONS)
                    ),
                ));
            }
            _ => {
                return Err(self.err(
                    &path,
                    format!(
                        "`{name}` names several distributions ({}): use exactly one",
                        quote_list(&given)
                    ),
                ));
            }
        };
        let at = |key: &str| self.err(&["space", name, key], "");
        let err = |key: &str, message: String| -> Error {
            let located = at(key).to_string();
            Error::input(format!("{located}{message}"))
        };
        let int_option = |key: &str, min: i64| -> Result<Option<i64>> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::Integer(i)) if *i >= min => Ok(Some(*i)),
                Some(_) => Err(err(key, format!("`{key}` must be an integer >= {min}"))),
            }
        };
        let points = int_option("points", 1)?.map(|p| p as usize);
        let step = int_option("step", 1)?;
        let log = match table.get("log") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => return Err(err("log", "`log` must be true or false".into())),
        };
        if kind != "int" && (step.is_some() || table.contains_key("log")) {
            let key = if step.is_some() { "step" } else { "log" };
            return Err(err(
                key,
                format!(
                    "`{key}` applies to `int` ranges only (use `log_uniform` for a log-spaced float range)"
                ),
            ));
        }
        let distribution = match kind {
            "uniform" | "log_uniform" => {
                let (low, high) = self.bounds(name, kind, table, |v| match v {
                    toml::Value::Float(f) => Some(*f),
                    toml::Value::Integer(i) => Some(*i as f64),
                    _ => None,
                })?;
                if kind == "log_uniform" && low <= 0.0 {
                    return Err(err(
                        kind,
                        format!(
                            "`log_uniform` needs both bounds > 0, got [{low}, {high}]; use `uniform` to include 0"
                        ),
                    ));
                }
                if kind == "uniform" {
                    Distribution::Uniform { low, high }
                } else {
                    Distribution::LogUniform { low, high }
                }
            }
            "int" => {
                let (low, high) = self.bounds(name, kind, table, |v| v.as_integer())?;
                if log && low <= 0 {
                    return Err(err(
                        kind,
                        format!("a log `int` range needs low >= 1, got {low}"),
                    ));
                }
                if log && step.is_some_and(|s| s != 1) {
                    return Err(err(
                        "step",
                        "`step` cannot be combined with `log = true`".into(),
                    ));
                }
                Distribution::Int {
                    low,
                    high,
                    step: step.unwrap_or(1),
                    log,
                }
            }
            _ => {
                let values = table["choice"].as_array().ok_or_else(|| {
                    err(
                        "choice",
                        "`choice` must be a list, e.g. [16, 32, 64]".into(),
                    )
                })?;
                if values.is_empty() {
                    return Err(err(
                        "choice",
                        "`choice` is empty: give at least one value".into(),
                    ));
                }
                let mut out = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    let index = i.to_string();
                    let v = scalar(v).ok_or_else(|| {
                        self.err(
                            &["space", name, "choice", &index],
                            "choices must be numbers, strings or booleans",
                        )
                    })?;
                    if out.contains(&v) {
                        return Err(self.err(
                            &["space", name, "choice", &index],
                            format!("`{v}` is listed twice"),
                        ));
                    }
                    out.push(v);
                }
                Distribution::Choice(out)
            }
        };
        if let Some(spec) = spec {
            self.check_dimension_fits(name, spec, kind, &distribution)?;
        }
        Ok(Dimension {
            name: name.to_string(),
            distribution,
            points,
        })
    }

    fn bounds<T: PartialOrd + Copy + std::fmt::Display>(
        &self,
        name: &str,
        kind: &str,
        table: &toml::Table,
        read: impl Fn(&toml::Value) -> Option<T>,
    ) -> Result<(T, T)> {
        let path = ["space", name, kind];
        let what = if kind == "int" { "integers" } else { "numbers" };
        let pair = table[kind]
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or_else(|| {
                self.err(
                    &path,
                    format!("`{kind}` must be a pair [low, high] of {what}"),
                )
            })?;
        let (Some(low), Some(high)) = (read(&pair[0]), read(&pair[1])) else {
            return Err(self.err(
                &path,
                format!("`{kind}` must be a pair [low, high] of {what}"),
            ));
        };
        if low.partial_cmp(&high) != Some(std::cmp::Ordering::Less) {
            return Err(self.err(
                &path,
                format!("empty or reversed range [{low}, {high}]: low must be below high (fix a single value in [model] or [train] instead)"),
            ));
        }
        Ok((low, high))
    }

    fn check_dimension_fits(
        &self,
        name: &str,
        spec: &settings::Spec,
        kind: &str,
        distribution: &Distribution,
    ) -> Result<()> {
        let path = ["space", name, kind];
        match (spec.kind, distribution) {
            (Kind::Int { .. }, Distribution::Uniform { .. } | Distribution::LogUniform { .. }) => {
                return Err(self.err(
                    &path,
                    format!("`{name}` is an integer setting: use `int = [low, high]` (with `log = true` for log spacing) or `choice`"),
                ));
            }
            (Kind::Bool | Kind::Name(_), Distribution::Choice(_)) => {}
            (Kind::Bool | Kind::Name(_), _) => {
                return Err(self.err(
                    &path,
                    format!("`{name}` takes names, not numbers: use `choice = [...]`"),
                ));
            }
            _ => {}
        }
        let candidates: Vec<ParamValue> = match distribution {
            Distribution::Choice(values) => values.clone(),
            Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => {
                vec![ParamValue::Float(*low), ParamValue::Float(*high)]
            }
            Distribution::Int { low, high, .. } => match spec.kind {
                Kind::Float { .. } => vec![
                    ParamValue::Float(*low as f64),
                    ParamValue::Float(*high as f64),
                ],
                _ => vec![ParamValue::Int(*low), ParamValue::Int(*high)],
            },
        };
        for value in &candidates {
            spec.check(value).map_err(|e| self.err(&path, e))?;
        }
        Ok(())
    }

    /// A synthetic function: a known `function`, and inputs x1..xn that fit it.
    fn check_function(&self, experiment: &Experiment) -> Result<()> {
        let Some(name) = experiment.settings.name("function") else {
            return Err(self.err(&["model", "kind"], "`kind = \"function\"` needs `function = \"branin\"` (or hartmann6, rosenbrock, sphere) in [model]"));
        };
        let function = crate::functions::Function::from_name(name)
            .expect("checked against the settings table");
        let mut inputs: Vec<usize> = Vec::new();
        for name in experiment.space.names() {
            match crate::functions::input_index(name) {
                Some(i) => inputs.push(i),
                None => {
                    return Err(self.err(
                        &["space", name],
                        format!("a function's inputs are `x1`, `x2`, ...; `{name}` is not one"),
                    ));
                }
            }
        }
        inputs.sort();
        let (count, exact) = function.inputs();
        let contiguous = inputs.iter().enumerate().all(|(i, &x)| i == x);
        if !contiguous || inputs.len() < count || (exact && inputs.len() != count) {
            let want = if exact {
                format!("exactly {count}")
            } else {
                format!("at least {count}")
            };
            return Err(self.err(
                &["space"],
                format!(
                    "`{name}` takes {want} inputs, named x1, x2, ... in [space]; found {}",
                    inputs.len()
                ),
            ));
        }
        if experiment.objective.metric != "value" {
            return Err(self.err(
                &["objective", "metric"],
                format!(
                    "a synthetic function reports `value`, not `{}`",
                    experiment.objective.metric
                ),
            ));
        }
        Ok(())
    }

    /// Settings that the schema knows but this version's trainer does not run yet.
    fn check_supported(&self, experiment: &Experiment) -> Result<()> {
        if experiment.space.names().any(|n| n == "kind")
            && experiment
                .possible_values("kind")
                .contains(&ParamValue::Str("function".into()))
        {
            return Err(self.err(
                &["space", "kind"],
                "`kind = \"function\"` cannot be searched: fix it in [model]",
            ));
        }
        if experiment.settings.name("kind") == Some("function") {
            return self.check_function(experiment);
        }
        let cnn = experiment
            .possible_values("kind")
            .contains(&ParamValue::Str("cnn".into()));
        if cnn
            && experiment
                .data
                .as_ref()
                .is_some_and(|d| !d.categorical.is_empty())
        {
            return Err(self.err(
                &["data", "categorical"],
                "the cnn model reads image pixels only; categorical columns need `kind = \"mlp\"`",
            ));
        }
        if cnn && experiment.data.as_ref().is_none_or(|d| d.image.is_none()) {
            return Err(self.err(
                &["data"],
                "the cnn model needs `image = [channels, height, width]` in [data] (digits: [1, 8, 8])",
            ));
        }
        if cnn
            && let Some(even) = experiment
                .possible_values("kernel_size")
                .into_iter()
                .find(|k| matches!(k, ParamValue::Int(k) if k % 2 == 0))
        {
            let path: Vec<&str> = if experiment.space.names().any(|n| n == "kernel_size") {
                vec!["space", "kernel_size"]
            } else {
                vec!["model", "kernel_size"]
            };
            return Err(self.err(&path, format!("`kernel_size` {even} is even; the CNN pads to keep the image size, which needs an odd kernel (3, 5, ...)")));
        }
        if let Some(data) = &experiment.data {
            let losses = experiment.possible_values("loss");
            for loss in &losses {
                let ParamValue::Str(loss) = loss else {
                    continue;
                };
                let fits = match data.task {
                    Task::Classification => loss == "cross_entropy",
                    Task::Regression => loss != "cross_entropy",
                };
                if !fits {
                    let allowed = match data.task {
                        Task::Classification => "`cross_entropy`",
                        Task::Regression => "`mse`, `mae`, `huber`",
                    };
                    let path: Vec<&str> = if experiment.space.names().any(|n| n == "loss") {
                        vec!["space", "loss"]
                    } else {
                        vec!["train", "loss"]
                    };
                    return Err(self.err(
                        &path,
                        format!(
                            "loss `{loss}` does not fit a {} task: use {allowed}",
                            task_name(data.task)
                        ),
                    ));
                }
            }
        } else if experiment
            .possible_values("kind")
            .contains(&ParamValue::Str("mlp".into()))
        {
            return Err(self.err(&[], "the experiment has no [data] section: the mlp model needs `[data] path`, `target` and `task`"));
        }
        Ok(())
    }
}

/// `classification` or `regression`.
pub fn task_name(task: Task) -> &'static str {
    match task {
        Task::Classification => "classification",
        Task::Regression => "regression",
    }
}

/// Number of grid points, or the dimension that cannot be gridded and why.
pub fn grid_size(
    space: &Space,
    default_points: Option<usize>,
) -> std::result::Result<u64, (String, String)> {
    let mut size: u64 = 1;
    for d in &space.dimensions {
        let n = d
            .distribution
            .grid_values(d.points.or(default_points))
            .map_err(|e| (d.name.clone(), e))?
            .len() as u64;
        size = size.saturating_mul(n);
    }
    Ok(size)
}

/// Trials trained at once by default: the machine's cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn scalar(value: &toml::Value) -> Option<ParamValue> {
    match value {
        toml::Value::Integer(i) => Some(ParamValue::Int(*i)),
        toml::Value::Float(f) => Some(ParamValue::Float(*f)),
        toml::Value::String(s) => Some(ParamValue::Str(s.clone())),
        toml::Value::Boolean(b) => Some(ParamValue::Bool(*b)),
        _ => None,
    }
}

/// "90s", "30m", "2h", "1h30m" or a number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// Turns serde's error into ours, with position and a "did you mean" for unknown keys.
fn serde_error(source: &Source, error: &toml::de::Error) -> Error {
    let message = error.message().trim().to_string();
    let message = match unknown_field(&message) {
        Some((field, expected)) => {
            let hint = did_you_mean(&field, expected.iter().map(String::as_str))
                .map(|m| format!(" Did you mean `{m}`?"))
                .unwrap_or_default();
            let list: Vec<&str> = expected.iter().map(String::as_str).collect();
            format!(
                "unknown key `{field}`.{hint} Allowed here: {}",
                quote_list(&list)
            )
        }
        None => message,
    };
    let position = error
        .span()
        .map(|span| {
            let (line, column) = line_column(&source.text, span.start);
            format!(":{line}:{column}")
        })
        .unwrap_or_default();
    Error::input(format!("{}{position}: {message}", source.path.display()))
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((field.to_string(), expected))
}

/// Byte offset of the key (or, for an array index, the element) at `path`.
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut offset = None;
    for segment in path {
        if let Some(array) = item.as_array() {
            let value = array.get(segment.parse().ok()?)?;
            offset = value.span().map(|s| s.start).or(offset);
            return offset;
        }
        let table = item.as_table_like()?;
        let (key, next) = table.get_key_value(segment)?;
        offset = key
            .span()
            .or_else(|| next.span())
            .map(|s| s.start)
            .or(offset);
        item = next;
    }
    if path.is_empty() { None } else { offset }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A fingerprint of what makes a sweep itself: everything but `[budget]` (more trials or
/// workers continue the same sweep). Whitespace, comments and key order do not count.
pub fn fingerprint(text: &str) -> String {
    let mut table: toml::Table = toml::from_str(text).unwrap_or_default();
    // How many trials, and where the sweep is kept, do not change what a trial computes.
    table.remove("budget");
    table.remove("storage");
    let canonical = toml::to_string(&table).unwrap_or_default();
    // FNV-1a, 64 bits: stable across platforms and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in canonical.bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The keys whose values differ between two experiment texts (ignoring `[budget]`), as
/// "`train.epochs`: 30 -> 20" lines.
pub fn differences(old: &str, new: &str) -> Vec<String> {
    fn walk(
        prefix: &str,
        old: Option<&toml::Value>,
        new: Option<&toml::Value>,
        out: &mut Vec<String>,
    ) {
        match (old, new) {
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    if prefix.is_empty() && (key == "budget" || key == "storage") {
                        continue;
                    }
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, a.get(key), b.get(key), out);
                }
            }
            (a, b) if a != b => {
                let show =
                    |v: Option<&toml::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
                out.push(format!("`{prefix}`: {} -> {}", show(a), show(b)));
            }
            _ => {}
        }
    }
    let parse = |t: &str| {
        toml::from_str::<toml::Table>(t)
            .map(toml::Value::Table)
            .ok()
    };
    let mut out = Vec::new();
    walk("", parse(old).as_ref(), parse(new).as_ref(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[objective]
metric = "val_accuracy"
[data]
path = "d.csv"
target = "label"
task = "classification"
"#;

    fn parse(text: &str) -> Result<Experiment> {
        Experiment::parse(text, Path::new("x.toml"), Path::new("/tmp"))
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let e = parse(MINIMAL).unwrap();
        assert_eq!(e.objective.direction, Direction::Maximize);
        assert_eq!(e.budget.trials, 20);
        assert_eq!(e.settings.name("optimizer"), Some("adamw"));
        assert_eq!(e.data.unwrap().path, Path::new("/tmp/d.csv"));
    }

    #[test]
    fn unknown_space_key_points_at_its_line() {
        let text = format!("{MINIMAL}[space]\nlearnin_rate = {{ log_uniform = [1e-4, 1e-1] }}\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("x.toml:10:1:"), "{e}");
        assert!(e.contains("Did you mean `learning_rate`?"), "{e}");
    }

    #[test]
    fn reversed_range_is_refused() {
        let text = format!("{MINIMAL}[space]\ndropout = {{ uniform = [0.5, 0.1] }}\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("x.toml:10:") && e.contains("reversed"), "{e}");
    }

    #[test]
    fn space_keeps_file_order() {
        let text = format!(
            "{MINIMAL}[space]\nlearning_rate = {{ log_uniform = [1e-4, 1e-1] }}\nbatch_size = {{ choice = [16, 32] }}\n"
        );
        let e = parse(&text).unwrap();
        assert_eq!(e.param_names(), ["learning_rate", "batch_size"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5x"), None);
    }
}
