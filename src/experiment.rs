//! The experiment file: TOML in, a validated [`Experiment`] out, or one error that names the
//! file, line and column, says what is wrong and lists what is allowed.
//!
//! Parsing has two stages. serde reads the file's shape into raw structs (unknown keys and wrong
//! types fail here, with toml's own spans). Then each value is checked against its meaning
//! (ranges, names, the settings table), and errors are placed with a span index built by
//! `toml_edit` over the same text.

use crate::constraint::Constraint;
use crate::device::DeviceName;
use crate::error::{Error, Result};
use crate::names::Named;
use crate::settings::{Backend, Settings, did_you_mean, hint, quote_list};
use crate::space::{Condition, Dimension, Distribution, ParamValue, Params, Space};
use crate::trial::{Direction, Goal};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The sections only the built-in trainer reads, kept as written for it to validate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainerSections {
    /// `[data]`.
    pub data: Option<toml::Table>,
    /// `[model]`.
    pub model: toml::Table,
    /// `[train]`.
    pub train: toml::Table,
    /// `[early_stopping]`.
    pub early_stopping: Option<toml::Table>,
}

impl TrainerSections {
    /// The first of these sections the file has, by name.
    pub fn first_present(&self) -> Option<&'static str> {
        [
            ("data", self.data.is_some()),
            ("model", !self.model.is_empty()),
            ("train", !self.train.is_empty()),
            ("early_stopping", self.early_stopping.is_some()),
        ]
        .into_iter()
        .find(|(_, present)| *present)
        .map(|(name, _)| name)
    }
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
    /// `devices`: the device of each worker process, by worker (each device named
    /// `trials_per_device` times, in turn); empty without.
    pub devices: Vec<String>,
}

impl Budget {
    /// The device of worker `id` (its `KILN_DEVICE`), if the experiment names devices.
    pub fn device_of(&self, id: usize) -> Option<&str> {
        self.devices.get(id).map(String::as_str)
    }
}

crate::named! {
    /// The samplers (`[sampler] kind`).
    pub enum SamplerKind {
        /// Independent uniform draws in the unit cube (the default).
        Random = "random",
        /// Every combination of the dimensions' points, in order.
        Grid = "grid",
        /// A scrambled Sobol sequence: low-discrepancy, evenly spread.
        Sobol = "sobol",
        /// The tree-structured Parzen estimator (MOTPE with several objectives).
        Tpe = "tpe",
        /// NSGA-II, the genetic algorithm for several objectives.
        Nsga2 = "nsga2",
        /// CMA-ES, the evolution strategy for continuous parameters.
        Cmaes = "cmaes",
        /// Bayesian optimisation with a Gaussian process.
        Gp = "gp",
    }
}

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

crate::named! {
    /// What CMA-ES does when its search has converged.
    pub enum Restart {
        /// Start again from a random mean with twice the population (IPOP).
        Ipop = "ipop",
        /// Keep refining where it is.
        None = "none",
    }
}

/// CMA-ES settings (`[sampler]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CmaSettings {
    /// The first step size, in the unit cube.
    pub sigma0: f64,
    /// Trials per generation of the first run (`None`: 4 + 3 ln n).
    pub popsize: Option<usize>,
    /// What to do on convergence.
    pub restart: Restart,
}

/// `[sampler]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerSpec {
    /// Which sampler.
    pub kind: SamplerKind,
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
    /// TPE: results folders of earlier sweeps whose complete trials it starts from.
    pub warm_start: Vec<PathBuf>,
    /// NSGA-II: trials per generation.
    pub population: usize,
    /// CMA-ES: its first step size, population and restarts.
    pub cmaes: CmaSettings,
    /// `deterministic = true`: trial N is proposed from the first N - `lag` trials alone, once
    /// they have ended (`lag`, default 4); `None` without.
    pub lag: Option<u64>,
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
    /// `[data]`, `[model]`, `[train]`, `[early_stopping]`: the built-in trainer's.
    pub trainer: TrainerSections,
    /// How trials are sampled.
    pub sampler: SamplerSpec,
    /// How trials are pruned.
    pub pruner: PrunerSpec,
    /// What is searched.
    pub space: Space,
    /// `[[enqueue]]`: configurations (some or all parameters) the first trials take, in order.
    pub enqueue: Vec<Params>,
    /// `[[constraint]]`: bounds a feasible trial keeps.
    pub constraints: Vec<Constraint>,
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
    /// Absent: the built-in trainer, minimising `val_loss` (every task reports it).
    #[serde(default)]
    objective: Option<RawObjective>,
    #[serde(default)]
    budget: RawBudget,
    data: Option<toml::Table>,
    #[serde(default)]
    model: toml::Table,
    #[serde(default)]
    train: toml::Table,
    early_stopping: Option<toml::Table>,
    #[serde(default)]
    sampler: RawSampler,
    #[serde(default)]
    pruner: RawPruner,
    #[serde(default)]
    space: toml::Table,
    #[serde(default)]
    enqueue: Vec<toml::Table>,
    #[serde(default)]
    constraint: Vec<toml::Table>,
    storage: Option<RawStorage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: String,
}

#[derive(Deserialize)]
struct RawObjective {
    metric: Option<toml::Value>,
    direction: Option<toml::Value>,
    kind: Option<String>,
    #[serde(flatten)]
    options: toml::Table,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    trials: Option<u64>,
    workers: Option<u64>,
    max_time: Option<String>,
    devices: Option<RawDevices>,
    trials_per_device: Option<i64>,
}

/// `[budget] devices`: names, or "all".
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDevices {
    Names(Vec<String>),
    Word(String),
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
    #[serde(default)]
    warm_start: Vec<String>,
    population: Option<i64>,
    sigma0: Option<f64>,
    popsize: Option<i64>,
    restart: Option<String>,
    deterministic: Option<bool>,
    lag: Option<i64>,
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

crate::named! {
    /// The distributions a `[space]` key can name.
    enum DistributionKind {
        /// A float range.
        Uniform = "uniform",
        /// A float range searched in log space.
        LogUniform = "log_uniform",
        /// An integer range.
        Int = "int",
        /// A list of values.
        Choice = "choice",
    }
}

const DISTRIBUTIONS: &[&str] = <DistributionKind as Named>::NAMES;
const DIMENSION_KEYS: &[&str] = &[
    "uniform",
    "log_uniform",
    "int",
    "choice",
    "log",
    "step",
    "points",
    "when",
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

    /// Validates the common sections of an experiment's text; `path` is shown in errors,
    /// `base_dir` resolves relative paths. The objective validates its own settings when it is
    /// built ([`crate::objective::registry::Objectives::build`]): reading a sweep's results needs only
    /// what this checks.
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Experiment> {
        let source = Source {
            path: path.to_path_buf(),
            text: text.to_string(),
            base_dir: base_dir.to_path_buf(),
        };
        let raw: Raw = toml::from_str(text).map_err(|e| serde_error(&source, &e))?;
        Builder { source }.build(raw)
    }

    /// The metric names the settings' `[space]` keys and the leaderboard's parameter columns use.
    pub fn param_names(&self) -> Vec<String> {
        self.space.names().map(str::to_string).collect()
    }

    /// What a user should hear before the sweep starts: trials that can only differ in their
    /// seed (no `[space]`), which is a seed study when meant and a forgotten section when not.
    pub fn warning(&self) -> Option<String> {
        (self.space.dimensions.is_empty() && self.budget.trials > 1).then(|| {
            format!(
                "{}: no [space]: all {} trials train the same settings and differ only in their seed; add a [space] table to search",
                self.source.path.display(),
                self.budget.trials
            )
        })
    }

    /// Checks that `metric` (written at `path`) is among `available`, the metrics the
    /// objective reports.
    pub fn check_metric(&self, metric: &str, path: &[&str], available: &[String]) -> Result<()> {
        let names = || available.iter().map(String::as_str);
        if available.iter().any(|m| m == metric) {
            return Ok(());
        }
        let hint = hint(metric, names());
        Err(self.source.error_at(
            path,
            format!(
                "unknown metric `{metric}`: this objective reports {}.{hint}",
                quote_list(&names().collect::<Vec<_>>())
            ),
        ))
    }

    /// A bad-input error at a TOML path of this experiment's file.
    pub fn error_at(&self, path: &[&str], message: impl AsRef<str>) -> Error {
        self.source.error_at(path, message)
    }

    /// The objective's options that are single values (`epochs = 30`), as settings: what a
    /// registered objective reads with [`crate::objective::Trial::int`] and the like.
    pub fn option_settings(&self) -> Settings {
        Settings::from_values(
            self.objective
                .options
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), scalar(v)?)))
                .collect(),
        )
    }

    /// An `[objective]` option that must be an integer >= `min`, if given.
    pub fn int_option(&self, key: &str, min: i64) -> Result<Option<i64>> {
        match self.objective.options.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= min => Ok(Some(*i)),
            Some(_) => Err(self.error_at(
                &["objective", key],
                format!("`{key}` must be an integer >= {min}"),
            )),
        }
    }

    /// An `[objective]` option that must be a duration ("90s", "10m"), if given.
    pub fn duration_option(&self, key: &str) -> Result<Option<Duration>> {
        match self.objective.options.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(s)) if *s >= 0 => Ok(Some(Duration::from_secs(*s as u64))),
            Some(toml::Value::String(t)) if parse_duration(t).is_some() => Ok(parse_duration(t)),
            Some(_) => Err(self.error_at(
                &["objective", key],
                format!("`{key}` must be a duration such as \"90s\", \"10m\" or \"1h30m\""),
            )),
        }
    }

    /// Refuses `[objective]` options other than `allowed` (the objective's own).
    pub fn refuse_other_options(&self, allowed: &[&str]) -> Result<()> {
        let Some(key) = self
            .objective
            .options
            .keys()
            .find(|k| !allowed.contains(&k.as_str()))
        else {
            return Ok(());
        };
        let mut all = vec!["metric", "direction", "kind"];
        all.extend_from_slice(allowed);
        let hint = hint(key, all.iter().copied());
        Err(self.error_at(
            &["objective", key],
            format!(
                "unknown key `{key}` for the `{}` objective.{hint} Allowed here: {}",
                self.objective.kind,
                quote_list(&all)
            ),
        ))
    }
}

struct Builder {
    source: Source,
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
        if crate::redact::has_password(url) {
            return Err(self.err(
                &["storage", "url"],
                "the URL holds a password, and experiment files get shared and committed: remove it and set the PGPASSWORD environment variable instead",
            ));
        }
        Ok(url.to_string())
    }

    fn build(self, raw: Raw) -> Result<Experiment> {
        check_name(&raw.name).map_err(|e| self.err(&["name"], e))?;
        let objective = match &raw.objective {
            Some(objective) => self.objective(objective)?,
            None => ObjectiveSpec {
                metric: DEFAULT_METRIC.to_string(),
                direction: Direction::Minimize,
                others: Vec::new(),
                kind: "train".to_string(),
                options: toml::Table::new(),
                by_default: true,
            },
        };
        let mut space = self.space(&raw.space)?;
        if objective.kind == "train" {
            self.conditions_of_settings(&mut space, &raw.train)?;
        }
        let sampler = self.sampler(&raw.sampler)?;
        // Without a GPU backend in [train] (the trainer checks that later), "all" means CUDA.
        let gpu = (raw.train.get("backend").and_then(toml::Value::as_str))
            .and_then(Backend::from_name)
            .filter(|b| b.on_gpu())
            .unwrap_or(Backend::Cuda);
        let budget = self.budget(&raw.budget, &sampler, &space, gpu)?;
        let pruner = self.pruner(&raw.pruner, &objective)?;
        if matches!(sampler.kind, SamplerKind::Cmaes | SamplerKind::Gp) && objective.is_multi() {
            return Err(self.err(
                &["sampler", "kind"],
                format!("the `{}` sampler optimises one objective; for several, use kind = \"tpe\" (MOTPE) or \"nsga2\"", sampler.kind.name()),
            ));
        }
        if sampler.lag.is_some() && pruner.kind != PrunerKind::None {
            return Err(self.err(
                &["pruner", "kind"],
                "a pruner judges a trial against the trials that reached its epoch first, which depends on timing, and `[sampler] deterministic = true` promises the same sweep with any number of workers: remove [pruner] or `deterministic`",
            ));
        }
        let experiment = Experiment {
            name: raw.name.clone(),
            seed: raw.seed.unwrap_or(0),
            objective,
            budget,
            trainer: TrainerSections {
                data: raw.data,
                model: raw.model,
                train: raw.train,
                early_stopping: raw.early_stopping,
            },
            pruner,
            sampler,
            enqueue: self.enqueue(&raw.enqueue, &space)?,
            constraints: self.constraints(&raw.constraint)?,
            space,
            storage_url: raw.storage.as_ref().map(|s| self.storage(s)).transpose()?,
            source: self.source.clone(),
        };
        Ok(experiment)
    }

    fn objective(&self, raw: &RawObjective) -> Result<ObjectiveSpec> {
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
    fn metrics(&self, value: &toml::Value) -> Result<Vec<String>> {
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
    fn directions(
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

    /// `[budget]`; `gpu` is the backend whose names `devices = "all"` gives.
    fn budget(
        &self,
        raw: &RawBudget,
        sampler: &SamplerSpec,
        space: &Space,
        gpu: Backend,
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
            devices,
        })
    }

    /// `[budget] devices` and `trials_per_device`: the device of each worker slot, every
    /// device once before any twice.
    fn devices(&self, raw: &RawBudget, gpu: Backend) -> Result<Vec<String>> {
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

    fn sampler(&self, raw: &RawSampler) -> Result<SamplerSpec> {
        let kind: SamplerKind = self.named(&["sampler", "kind"], "sampler", raw.kind.as_deref())?;
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
        let population = at_least_one("population", raw.population)?;
        if population.is_some() && kind != SamplerKind::Nsga2 {
            return Err(self.err(&["sampler", "population"], format!("`population` is the generation size of NSGA-II; the `{}` sampler has none (set kind = \"nsga2\")", kind.name())));
        }
        let mut warm_start = Vec::new();
        for (i, folder) in raw.warm_start.iter().enumerate() {
            let at = ["sampler", "warm_start", &i.to_string()].map(str::to_string);
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            if kind != SamplerKind::Tpe {
                return Err(self.err(&at, format!("`warm_start` gives TPE the trials of earlier sweeps; the `{}` sampler does not use them (set kind = \"tpe\")", kind.name())));
            }
            let dir = self.source.base_dir.join(folder);
            if !crate::layout::journal(&dir).is_file() {
                return Err(self.err(&at, format!("`{folder}` holds no sweep (no {} in {}); name the results folder of an earlier sweep", crate::layout::JOURNAL, dir.display())));
            }
            warm_start.push(dir);
        }
        Ok(SamplerSpec {
            kind,
            points,
            startup_trials,
            gamma,
            candidates,
            multivariate: raw.multivariate.unwrap_or(false),
            warm_start,
            population: population.unwrap_or(50),
            cmaes: self.cmaes(raw, kind)?,
            lag: self.lag(raw)?,
        })
    }

    /// `sigma0`, `popsize` and `restart`, which only CMA-ES reads.
    fn cmaes(&self, raw: &RawSampler, kind: SamplerKind) -> Result<CmaSettings> {
        let given = [
            ("sigma0", raw.sigma0.is_some()),
            ("popsize", raw.popsize.is_some()),
            ("restart", raw.restart.is_some()),
        ];
        if kind != SamplerKind::Cmaes
            && let Some((key, _)) = given.iter().find(|(_, given)| *given)
        {
            return Err(self.err(&["sampler", key], format!("`{key}` is a setting of CMA-ES; the `{}` sampler has none (set kind = \"cmaes\")", kind.name())));
        }
        let sigma0 = raw.sigma0.unwrap_or(1.0 / 6.0);
        if !(sigma0 > 0.0 && sigma0 <= 1.0) {
            return Err(self.err(
                &["sampler", "sigma0"],
                "`sigma0` is the first step size as a fraction of each range: in (0, 1], e.g. 0.2",
            ));
        }
        let popsize = match raw.popsize {
            Some(p) if p < 2 => {
                return Err(self.err(&["sampler", "popsize"], "`popsize` must be an integer >= 2"));
            }
            p => p.map(|p| p as usize),
        };
        Ok(CmaSettings {
            sigma0,
            popsize,
            restart: self.named(&["sampler", "restart"], "restart", raw.restart.as_deref())?,
        })
    }

    /// `deterministic` and `lag`: the lag of a deterministic sweep.
    fn lag(&self, raw: &RawSampler) -> Result<Option<u64>> {
        match (raw.deterministic.unwrap_or(false), raw.lag) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(self.err(
                &["sampler", "lag"],
                "`lag` belongs to a deterministic sweep: add `deterministic = true`",
            )),
            (true, Some(lag)) if lag < 0 => Err(self.err(
                &["sampler", "lag"],
                "`lag` must be an integer >= 0: how many of the latest trials a proposal may go without",
            )),
            (true, lag) => Ok(Some(lag.unwrap_or(DEFAULT_LAG) as u64)),
        }
    }

    fn pruner(&self, raw: &RawPruner, objective: &ObjectiveSpec) -> Result<PrunerSpec> {
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

    /// The variant `name` spells (the first variant when absent), or an error listing them.
    fn named<T: Named>(&self, path: &[&str], what: &str, name: Option<&str>) -> Result<T> {
        let Some(name) = name else {
            return Ok(T::ALL[0]);
        };
        T::from_name(name).ok_or_else(|| {
            let hint = hint(name, T::NAMES.iter().copied());
            self.err(
                path,
                format!(
                    "unknown {what} `{name}`: use {}.{hint}",
                    quote_list(T::NAMES)
                ),
            )
        })
    }

    fn space(&self, table: &toml::Table) -> Result<Space> {
        // Keep the file's order: toml's Table is sorted, so order keys by where they appear.
        let mut keys: Vec<&String> = table.keys().collect();
        let offsets = key_offsets(&self.source.text, "space");
        keys.sort_by_key(|k| offsets.get(k.as_str()).copied().unwrap_or(usize::MAX));
        let mut dimensions = Vec::new();
        for key in &keys {
            dimensions.push(self.dimension(key, &table[key.as_str()])?);
        }
        let mut space = Space { dimensions };
        for (i, key) in keys.iter().enumerate() {
            if let Some(when) = table[key.as_str()].get("when") {
                space.dimensions[i].when = self.conditions(key, when, &space)?;
            }
        }
        self.no_circle(&space)?;
        Ok(space)
    }

    /// `when = { parent = [values] }` of `[space] name`: each parent a `choice` of the space,
    /// each value one of its choices.
    fn conditions(&self, name: &str, when: &toml::Value, space: &Space) -> Result<Vec<Condition>> {
        let example = "e.g. when = { optimizer = [\"sgd\", \"rmsprop\"] }";
        let table = when.as_table().filter(|t| !t.is_empty()).ok_or_else(|| {
            self.space_err(
                name,
                "when",
                format!("`when` must be a table of conditions, {example}"),
            )
        })?;
        let mut conditions = Vec::new();
        for (parent, values) in table {
            let path = ["space", name, "when", parent.as_str()];
            let choices = match space.dimensions.iter().find(|d| d.name == *parent) {
                _ if parent == name => {
                    return Err(self.err(&path, format!("`{name}` cannot depend on itself")));
                }
                Some(Dimension {
                    distribution: Distribution::Choice(choices),
                    ..
                }) => choices,
                Some(d) => {
                    return Err(self.err(
                        &path,
                        format!("`{parent}` is {}, not a `choice`: a condition names values of a choice", d.distribution),
                    ));
                }
                None => {
                    let hint = hint(parent, space.names());
                    return Err(self.err(
                        &path,
                        format!("`{parent}` is not a key of [space].{hint} A condition names a `choice` of [space], {example}"),
                    ));
                }
            };
            let listed = match values {
                toml::Value::Array(values) => values.clone(),
                single => vec![single.clone()],
            };
            if listed.is_empty() {
                return Err(self.err(
                    &path,
                    format!(
                        "no values: name the values of `{parent}` under which `{name}` is searched"
                    ),
                ));
            }
            let mut wanted = Vec::new();
            for (i, value) in listed.iter().enumerate() {
                let value = scalar(value)
                    .filter(|v| choices.contains(v))
                    .ok_or_else(|| {
                        let allowed: Vec<String> =
                            choices.iter().map(ToString::to_string).collect();
                        self.err(
                            &path,
                            format!(
                                "value {} `{value}` is not one of the choices of `{parent}`: {}",
                                i + 1,
                                quote_list(&allowed.iter().map(String::as_str).collect::<Vec<_>>())
                            ),
                        )
                    })?;
                wanted.push(value);
            }
            conditions.push(Condition {
                parent: parent.clone(),
                values: wanted,
            });
        }
        Ok(conditions)
    }

    /// The built-in trainer's settings that only some choices use ([`crate::settings::APPLIES`]),
    /// searched without `when`: conditional on the choices that use them when those are
    /// searched too; refused when the fixed choice ignores them.
    fn conditions_of_settings(&self, space: &mut Space, train: &toml::Table) -> Result<()> {
        for &(setting, parent, users) in crate::settings::APPLIES {
            let Some(i) = space.dimensions.iter().position(|d| d.name == setting) else {
                self.check_fixed_setting(space, train, (setting, parent, users))?;
                continue;
            };
            if !space.dimensions[i].when.is_empty() {
                continue;
            }
            let uses = |v: &ParamValue| users.iter().any(|u| *u == v.to_string());
            match space.dimensions.iter().find(|d| d.name == parent) {
                Some(Dimension {
                    distribution: Distribution::Choice(choices),
                    ..
                }) => {
                    let values: Vec<ParamValue> =
                        choices.iter().filter(|v| uses(v)).cloned().collect();
                    if values.is_empty() {
                        return Err(self.err(
                            &["space", setting],
                            format!("`{setting}` is searched, but no searched `{parent}` uses it (only {} do)", users.join(", ")),
                        ));
                    }
                    if values.len() < choices.len() {
                        space.dimensions[i].when = vec![Condition {
                            parent: parent.to_string(),
                            values,
                        }];
                    }
                }
                Some(_) => {}
                None => {
                    let fixed = train
                        .get(parent)
                        .and_then(scalar)
                        .or_else(|| crate::settings::default_of(parent));
                    if let Some(fixed) = fixed.filter(|f| !uses(f)) {
                        return Err(self.err(
                            &["space", setting],
                            format!("`{setting}` is searched, but {parent} = \"{fixed}\" ignores it (only {} use it): search {parent} too, or drop {setting}", users.join(", ")),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A setting fixed in `[train]` that no choice of its parent uses (`momentum` with
    /// `optimizer = "adam"`) would be read by nothing: refused, at the setting.
    fn check_fixed_setting(
        &self,
        space: &Space,
        train: &toml::Table,
        (setting, parent, users): (&str, &str, &[&str]),
    ) -> Result<()> {
        if !train.contains_key(setting) {
            return Ok(());
        }
        let uses = |v: &ParamValue| users.iter().any(|u| *u == v.to_string());
        let parents: Vec<ParamValue> = match space.dimensions.iter().find(|d| d.name == parent) {
            Some(Dimension {
                distribution: Distribution::Choice(choices),
                ..
            }) => choices.clone(),
            Some(_) => return Ok(()),
            None => (train.get(parent).and_then(scalar))
                .or_else(|| crate::settings::default_of(parent))
                .into_iter()
                .collect(),
        };
        if parents.is_empty() || parents.iter().any(uses) {
            return Ok(());
        }
        let names: Vec<String> = parents.iter().map(|p| format!("\"{p}\"")).collect();
        Err(self.err(
            &["train", setting],
            format!(
                "`{setting}` is set, but {parent} = {} ignores it (only {} use it): remove {setting}, or change {parent}",
                names.join(" or "),
                users.join(", ")
            ),
        ))
    }

    /// `[[constraint]]` tables: `metric` and `min` and/or `max` (which metrics exist is the
    /// objective's to say: [`crate::objective::registry::prepare`]).
    fn constraints(&self, tables: &[toml::Table]) -> Result<Vec<Constraint>> {
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
            let bound = |key: &'static str| -> Result<Option<f64>> {
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

    /// `[[enqueue]]` tables: each a configuration the space admits.
    fn enqueue(&self, tables: &[toml::Table], space: &Space) -> Result<Vec<Params>> {
        let mut queue = Vec::new();
        for (i, table) in tables.iter().enumerate() {
            let index = i.to_string();
            if table.is_empty() {
                return Err(self.err(&["enqueue", &index], "an empty [[enqueue]]: give some parameters of [space], e.g. learning_rate = 0.01"));
            }
            let mut given = Params::new();
            for (key, value) in table {
                let value = scalar(value).ok_or_else(|| {
                    self.err(
                        &["enqueue", &index, key],
                        "a value must be a number, a string or a boolean",
                    )
                })?;
                given.insert(key.clone(), value);
            }
            let admitted = space
                .admit(&given)
                .map_err(|(key, why)| self.err(&["enqueue", &index, &key], why))?;
            queue.push(admitted);
        }
        Ok(queue)
    }

    /// Refuses conditions that go round (`a` when `b`, `b` when `a`): no trial could have them.
    fn no_circle(&self, space: &Space) -> Result<()> {
        let parents = |name: &str| -> Vec<String> {
            space
                .dimensions
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.when.iter().map(|c| c.parent.clone()).collect())
                .unwrap_or_default()
        };
        for d in &space.dimensions {
            // Walk up from d; reaching d again is a circle.
            let mut seen = vec![d.name.clone()];
            let mut frontier = parents(&d.name);
            while let Some(parent) = frontier.pop() {
                if parent == d.name {
                    return Err(self.space_err(
                        &d.name,
                        "when",
                        format!("the conditions go round ({} and back): each parameter's condition must end at a parameter searched without one", seen.join(" -> ")),
                    ));
                }
                if !seen.contains(&parent) {
                    seen.push(parent.clone());
                    frontier.extend(parents(&parent));
                }
            }
        }
        Ok(())
    }

    /// A `[space]` key's distribution, checked for its shape only: what the parameter means
    /// (and so which names and values are allowed) is the objective's to check.
    fn dimension(&self, name: &str, value: &toml::Value) -> Result<Dimension> {
        let path = ["space", name];
        let table = value.as_table().ok_or_else(|| {
            self.err(
                &path,
                format!("`{name}` must be a distribution such as {{ uniform = [0.0, 0.5] }}; use one of {}", quote_list(DISTRIBUTIONS)),
            )
        })?;
        for key in table.keys() {
            if !DIMENSION_KEYS.contains(&key.as_str()) {
                let hint = hint(key, DIMENSION_KEYS.iter().copied());
                return Err(self.err(
                    &["space", name, key],
                    format!(
                        "unknown key `{key}` in `{name}`.{hint} Allowed: {}",
                        quote_list(DIMENSION_KEYS)
                    ),
                ));
            }
        }
        let given: Vec<DistributionKind> = (DistributionKind::ALL.iter().copied())
            .filter(|d| table.contains_key(d.name()))
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
                let names: Vec<&str> = given.iter().map(|d| d.name()).collect();
                return Err(self.err(
                    &path,
                    format!(
                        "`{name}` names several distributions ({}): use exactly one",
                        quote_list(&names)
                    ),
                ));
            }
        };
        let points = self
            .int_option(name, table, "points", 1)?
            .map(|p| p as usize);
        let distribution = match kind {
            DistributionKind::Uniform | DistributionKind::LogUniform => {
                self.no_int_options(name, table)?;
                self.float_range(name, kind, table)?
            }
            DistributionKind::Int => self.int_range(name, table)?,
            DistributionKind::Choice => {
                self.no_int_options(name, table)?;
                self.choice(name, table)?
            }
        };
        Ok(Dimension {
            name: name.to_string(),
            distribution,
            points,
            when: Vec::new(),
        })
    }

    /// The error at `[space] name.key`.
    fn space_err(&self, name: &str, key: &str, message: String) -> Error {
        let located = self.err(&["space", name, key], "").to_string();
        Error::input(format!("{located}{message}"))
    }

    /// An optional integer option of a `[space]` key (`points`, `step`), at least `min`.
    fn int_option(
        &self,
        name: &str,
        table: &toml::Table,
        key: &str,
        min: i64,
    ) -> Result<Option<i64>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= min => Ok(Some(*i)),
            Some(_) => {
                Err(self.space_err(name, key, format!("`{key}` must be an integer >= {min}")))
            }
        }
    }

    /// Refuses `step` and `log`, which only `int` ranges take.
    fn no_int_options(&self, name: &str, table: &toml::Table) -> Result<()> {
        self.int_option(name, table, "step", 1)?;
        match ["step", "log"].into_iter().find(|k| table.contains_key(*k)) {
            Some(key) => Err(self.space_err(
                name,
                key,
                format!(
                    "`{key}` applies to `int` ranges only (use `log_uniform` for a log-spaced float range)"
                ),
            )),
            None => Ok(()),
        }
    }

    /// `uniform = [low, high]` or `log_uniform = [low, high]`.
    fn float_range(
        &self,
        name: &str,
        kind: DistributionKind,
        table: &toml::Table,
    ) -> Result<Distribution> {
        let (low, high) = self.bounds(name, kind.name(), table, |v| match v {
            toml::Value::Float(f) => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        })?;
        // A journal holds finite numbers only, and a sample is low + u * (high - low).
        if !(low.is_finite() && high.is_finite() && (high - low).is_finite()) {
            return Err(self.space_err(
                name,
                kind.name(),
                format!(
                    "the bounds must be finite numbers less than 1.8e308 apart, got [{low}, {high}]"
                ),
            ));
        }
        if kind == DistributionKind::Uniform {
            return Ok(Distribution::Uniform { low, high });
        }
        if low <= 0.0 {
            return Err(self.space_err(
                name,
                kind.name(),
                format!(
                    "`log_uniform` needs both bounds > 0, got [{low}, {high}]; use `uniform` to include 0"
                ),
            ));
        }
        Ok(Distribution::LogUniform { low, high })
    }

    /// `int = [low, high]`, with `step` or `log = true`.
    fn int_range(&self, name: &str, table: &toml::Table) -> Result<Distribution> {
        let step = self.int_option(name, table, "step", 1)?;
        let log = match table.get("log") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => {
                return Err(self.space_err(name, "log", "`log` must be true or false".into()));
            }
        };
        let (low, high) = self.bounds(name, "int", table, |v| v.as_integer())?;
        if high
            .checked_sub(low)
            .and_then(|w| w.checked_add(1))
            .is_none()
        {
            return Err(self.space_err(
                name,
                "int",
                format!(
                    "the range [{low}, {high}] is wider than a 64-bit integer can count; narrow it"
                ),
            ));
        }
        if log && low <= 0 {
            return Err(self.space_err(
                name,
                "int",
                format!("a log `int` range needs low >= 1, got {low}"),
            ));
        }
        if log && step.is_some_and(|s| s != 1) {
            return Err(self.space_err(
                name,
                "step",
                "`step` cannot be combined with `log = true`".into(),
            ));
        }
        Ok(Distribution::Int {
            low,
            high,
            step: step.unwrap_or(1),
            log,
        })
    }

    /// `choice = [...]`: numbers, strings or booleans, each once.
    fn choice(&self, name: &str, table: &toml::Table) -> Result<Distribution> {
        let values = table["choice"].as_array().ok_or_else(|| {
            self.space_err(
                name,
                "choice",
                "`choice` must be a list, e.g. [16, 32, 64]".into(),
            )
        })?;
        if values.is_empty() {
            return Err(self.space_err(
                name,
                "choice",
                "`choice` is empty: give at least one value".into(),
            ));
        }
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, v) in values.iter().enumerate() {
            let index = i.to_string();
            let v = scalar(v).ok_or_else(|| {
                self.err(
                    &["space", name, "choice", &index],
                    "choices must be numbers, strings or booleans",
                )
            })?;
            if v.as_f64().is_some_and(|x| !x.is_finite()) {
                return Err(self.err(
                    &["space", name, "choice", &index],
                    format!("`{v}` is not a finite number (a journal holds finite numbers only)"),
                ));
            }
            // Debug tells 1 from 1.0 as equality does, and keeps this linear.
            if !seen.insert(format!("{v:?}")) {
                return Err(self.err(
                    &["space", name, "choice", &index],
                    format!("`{v}` is listed twice"),
                ));
            }
            out.push(v);
        }
        Ok(Distribution::Choice(out))
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
}

/// Number of grid points (the distinct active ones, in a space with conditions), or the
/// dimension that cannot be gridded and why.
pub fn grid_size(
    space: &Space,
    default_points: Option<usize>,
) -> std::result::Result<u64, (String, String)> {
    crate::space::Grid::new(space, default_points).map(|grid| grid.size())
}

/// The metric a file without `[objective]` optimises: every task of the built-in trainer
/// reports it.
pub const DEFAULT_METRIC: &str = "val_loss";

/// `[sampler] lag` of a deterministic sweep when left out: trial N is proposed from trials
/// 0..N-4, so four workers rarely wait.
pub const DEFAULT_LAG: i64 = 4;

/// The longest sweep name: it names a folder, a database row and a scratch folder.
pub const MAX_NAME: usize = 100;

/// The one rule for a sweep's name, wherever it comes from (the file's `name`, `--sweep-name`,
/// `--sweep`): letters, digits, `-`, `_` and `.`, not starting with `.`, at most
/// [`MAX_NAME`] characters. A name can then never leave its folder (`..`, `/`) or be empty.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(format!(
            "invalid name `{name}`: use letters, digits, `-`, `_` and `.`, not starting with `.` (it names the results folder)"
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "the name is {} characters long; at most {MAX_NAME} are allowed (it names the results folder)",
            name.len()
        ));
    }
    Ok(())
}

/// Trials trained at once by default: the machine's cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub(crate) fn scalar(value: &toml::Value) -> Option<ParamValue> {
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
pub(crate) fn serde_error(source: &Source, error: &toml::de::Error) -> Error {
    let message = error.message().trim().to_string();
    let message = match unknown_field(&message) {
        Some((field, expected)) => {
            let hint = hint(&field, expected.iter().map(String::as_str));
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

/// Byte offsets of the keys of table `table`, from one parse of the text (parsing once per key
/// made files of thousands of dimensions take minutes).
fn key_offsets(text: &str, table: &str) -> std::collections::HashMap<String, usize> {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return Default::default();
    };
    let Some(table) = doc.get(table).and_then(|t| t.as_table_like()) else {
        return Default::default();
    };
    table
        .iter()
        .filter_map(|(key, _)| {
            let (key, _) = table.get_key_value(key)?;
            Some((key.get().to_string(), key.span()?.start))
        })
        .collect()
}

/// Byte offset of the key (or, for an array index, the element) at `path`.
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut offset = None;
    let mut segments = path.iter();
    while let Some(segment) = segments.next() {
        if let Some(array) = item.as_array() {
            let value = array.get(segment.parse().ok()?)?;
            return value.span().map(|s| s.start).or(offset);
        }
        let (table, key): (&dyn toml_edit::TableLike, &str) = match item.as_array_of_tables() {
            // `[[enqueue]]`: the segment is the table's index, the next one a key in it.
            Some(tables) => {
                let table = tables.get(segment.parse().ok()?)?;
                offset = table.span().map(|s| s.start).or(offset);
                match segments.next() {
                    Some(key) => (table, key),
                    None => return offset,
                }
            }
            None => (item.as_table_like()?, segment),
        };
        let (key, next) = table.get_key_value(key)?;
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
    format!("{:016x}", crate::files::fnv64(canonical.as_bytes()))
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
        assert_eq!(e.objective.kind, "train");
        assert_eq!(e.budget.trials, 20);
        assert!(e.trainer.data.is_some());
    }

    #[test]
    fn a_command_is_the_default_kind_when_given() {
        let text = "name = \"t\"\n[objective]\nmetric = \"m\"\ncommand = [\"x\"]\n";
        assert_eq!(parse(text).unwrap().objective.kind, "command");
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
