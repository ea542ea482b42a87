//! The experiment file: TOML in, a validated [`Experiment`] out, or one error that names the
//! file, line and column, says what is wrong and lists what is allowed.
//!
//! Parsing has two stages. serde reads the file's shape into raw structs (unknown keys and wrong
//! types fail here, with toml's own spans). Then each section is checked by the part that uses
//! it, in an `impl Builder` of that part's own module: `[budget]` in [`crate::budget`],
//! `[sampler]` in [`crate::sampler::spec`], `[pruner]` in [`crate::pruner::spec`], `[space]` and
//! `[[enqueue]]` in `space/parse.rs`, `[[constraint]]` in [`crate::constraint`], `[objective]`
//! in [`objective`], and the built-in trainer's rules in [`crate::train::sections`]. This module
//! assembles their specs; [`source`] places every error with a span index built by `toml_edit`
//! over the same text.

pub(crate) mod objective;
pub(crate) mod source;

pub use crate::budget::Budget;
pub(crate) use crate::budget::RawBudget;
pub(crate) use crate::pruner::spec::RawPruner;
pub use crate::pruner::spec::{PrunerKind, PrunerSpec};
pub(crate) use crate::sampler::spec::RawSampler;
pub use crate::sampler::spec::{
    CmaSettings, DEFAULT_LAG, Restart, SamplerKind, SamplerSpec, grid_size,
};
pub use crate::train::sections::TrainerSections;
pub(crate) use objective::RawObjective;
pub use objective::{DEFAULT_METRIC, ObjectiveSpec};
pub(crate) use source::{Builder, scalar, serde_error};
pub use source::{MAX_NAME, Source, check_name, differences, fingerprint, parse_duration};

use crate::constraint::Constraint;
use crate::device::Backend;
use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::space::{Params, Space};
use crate::text::{hint, quote_list};
use crate::trial::Direction;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

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
pub(crate) struct Raw {
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
pub(crate) struct RawStorage {
    url: String,
}

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

impl Builder {
    pub(crate) fn storage(&self, storage: &RawStorage) -> Result<String> {
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

    pub(crate) fn build(self, raw: Raw) -> Result<Experiment> {
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
        let objectives = 1 + objective.others.len();
        let budget = self.budget(&raw.budget, &sampler, &space, gpu, objectives)?;
        let pruner = self.pruner(&raw.pruner, &objective)?;
        if sampler.kind == SamplerKind::Cmaes && objective.is_multi() {
            return Err(self.err(
                &["sampler", "kind"],
                "the `cmaes` sampler optimises one objective; for several, use kind = \"tpe\" (MOTPE), \"gp\" or \"nsga2\"",
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
