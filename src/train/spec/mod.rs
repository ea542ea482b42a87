//! The built-in trainer's rules: `[data]`, `[model]`, `[train]` and `[early_stopping]`, and
//! which `[space]` keys it can search. The experiment parser keeps these sections as written
//! ([`crate::train::sections`]); [`TrainSpec::parse`] checks them, with the same file:line:col
//! errors. `[data]` is [`data`]'s.

use crate::device::Backend;
use crate::device::{self, DeviceError, DeviceName};
use crate::error::{Error, Result};
use crate::experiment::{Experiment, scalar};
use crate::settings::Settings;
use crate::space::{Distribution, ParamValue};
use crate::text::{hint, quote_list};
use crate::train::settings;
use crate::train::settings::Loss;
use crate::train::settings::{Kind, Section};
use crate::trial::Direction;
use data::RawData;
use serde::Deserialize;
use std::collections::BTreeMap;

mod data;

pub use data::{DataSpec, FeatureColumns, Missing, SplitSpec};

crate::named! {
    /// Classification or regression (`[data] task`).
    pub enum Task {
        /// Predict a class; softmax cross-entropy.
        Classification = "classification",
        /// Predict a number; MSE by default.
        Regression = "regression",
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEarlyStopping {
    monitor: Option<String>,
    patience: Option<i64>,
    min_delta: Option<f64>,
    mode: Option<String>,
}

/// The built-in trainer's part of an experiment, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSpec {
    /// `[data]`.
    pub data: DataSpec,
    /// Settings as written in `[model]` and `[train]`.
    pub fixed: BTreeMap<String, ParamValue>,
    /// Defaults overridden by the fixed settings.
    pub settings: Settings,
    /// `[early_stopping]`: patience within a trial.
    pub early_stopping: Option<EarlyStopping>,
}

/// The sections of the file this reads, by serde (for its error positions); the rest of the
/// file is the experiment parser's.
#[derive(Deserialize)]
struct RawSections {
    data: Option<RawData>,
    early_stopping: Option<RawEarlyStopping>,
}

impl TrainSpec {
    /// Validates the trainer's sections of `experiment` and its `[space]` keys.
    pub fn parse(experiment: &Experiment) -> Result<TrainSpec> {
        let b = SpecBuilder { experiment };
        let raw: RawSections = toml::from_str(&experiment.source.text)
            .map_err(|e| crate::experiment::serde_error(&experiment.source, &e))?;
        let sections = &experiment.trainer;
        let mut fixed = b.fixed_settings(&sections.model, Section::Model)?;
        fixed.extend(b.fixed_settings(&sections.train, Section::Train)?);
        for d in &experiment.space.dimensions {
            b.check_dimension(&d.name, &d.distribution)?;
        }
        let data = raw.data.as_ref().ok_or_else(|| {
            experiment.error_at(&[], "the experiment has no [data] section: the built-in trainer needs `[data] path` and `target` (or choose another objective with `[objective] kind`)")
        })?;
        let spec = TrainSpec {
            data: b.data(data)?,
            settings: Settings::with_defaults(&fixed),
            fixed,
            early_stopping: raw
                .early_stopping
                .as_ref()
                .map(|e| b.early_stopping(e))
                .transpose()?,
        };
        b.check_supported(&spec)?;
        Ok(spec)
    }

    /// Every value a setting can take in this sweep: its fixed value, or its `[space]` values
    /// (all choices; the bounds of a range).
    pub fn possible_values(&self, experiment: &Experiment, name: &str) -> Vec<ParamValue> {
        match experiment.space.dimensions.iter().find(|d| d.name == name) {
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

    /// Every backend a trial of this sweep may train on: the fixed one, or those searched.
    pub fn backends(&self, experiment: &Experiment) -> Vec<Backend> {
        (self.possible_values(experiment, "backend").iter())
            .filter_map(|v| match v {
                ParamValue::Str(name) => Backend::from_name(name),
                _ => None,
            })
            .collect()
    }

    /// The most epochs a trial trains.
    pub fn max_epochs(&self, experiment: &Experiment) -> u32 {
        self.possible_values(experiment, "epochs")
            .iter()
            .filter_map(ParamValue::as_f64)
            .fold(1.0f64, f64::max) as u32
    }
}

struct SpecBuilder<'a> {
    experiment: &'a Experiment,
}

impl SpecBuilder<'_> {
    fn err(&self, path: &[&str], message: impl AsRef<str>) -> Error {
        self.experiment.error_at(path, message)
    }

    /// A `[space]` key must be a setting, and its distribution must fit the setting.
    fn check_dimension(&self, name: &str, distribution: &Distribution) -> Result<()> {
        let Some(spec) = settings::spec(name) else {
            let all: Vec<&str> = settings::SETTINGS.iter().map(|s| s.name).collect();
            let hint = hint(name, all.iter().copied());
            return Err(self.err(
                &["space", name],
                format!(
                    "`{name}` is not a setting the built-in trainer can search.{hint} Allowed: {}",
                    quote_list(&all)
                ),
            ));
        };
        let kind = match distribution {
            Distribution::Uniform { .. } => "uniform",
            Distribution::LogUniform { .. } => "log_uniform",
            Distribution::Int { .. } => "int",
            Distribution::Choice(_) => "choice",
        };
        self.check_dimension_fits(name, spec, kind, distribution)
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
                    let hint = hint(key, names.iter().copied());
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
            let value = spec
                .check(&value)
                .map_err(|e| self.err(&path, e.to_string()))?;
            values.insert(key.clone(), value);
        }
        Ok(values)
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
            spec.check(value)
                .map_err(|e| self.err(&path, e.to_string()))?;
        }
        Ok(())
    }

    /// Combinations of settings the trainer cannot run.
    fn check_supported(&self, spec: &TrainSpec) -> Result<()> {
        let experiment = self.experiment;
        let data = &spec.data;
        let possible = |name: &str| spec.possible_values(experiment, name);
        let cnn = possible("kind").contains(&ParamValue::Str("cnn".into()));
        if cnn && !data.categorical.is_empty() {
            return Err(self.err(
                &["data", "categorical"],
                "the cnn model reads image pixels only; categorical columns need `kind = \"mlp\"`",
            ));
        }
        if cnn && data.image.is_none() {
            return Err(self.err(
                &["data"],
                "the cnn model needs `image = [channels, height, width]` in [data] (digits: [1, 8, 8])",
            ));
        }
        if cnn
            && let Some(even) = possible("kernel_size")
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
        self.check_backend(spec)
    }

    /// `[budget] devices` belong to the one backend the file names, and every backend the
    /// sweep may use is built in.
    fn check_backend(&self, spec: &TrainSpec) -> Result<()> {
        let experiment = self.experiment;
        let searched = experiment.space.names().any(|n| n == "backend");
        let backends = spec.backends(experiment);
        if !experiment.budget.devices.is_empty() {
            self.check_devices(&backends, searched)?;
        }
        match backends.iter().find(|b| !device::built_with(**b)) {
            Some(missing) => Err(self.err(
                if searched {
                    &["space", "backend"]
                } else {
                    &["train", "backend"]
                },
                format!(
                    "backend `{0}` needs kiln built with its feature: cargo build --release --features {0}",
                    missing.name()
                ),
            )),
            None => Ok(()),
        }
    }

    fn check_devices(&self, backends: &[Backend], searched: bool) -> Result<()> {
        let at = ["budget", "devices"];
        let backend = match backends {
            [b] if b.on_gpu() && !searched => *b,
            _ => return Err(self.err(&at, "`devices` are GPUs: set `[train] backend = \"cuda\"` or `\"wgpu\"` (one backend, not searched)")),
        };
        for name in &self.experiment.budget.devices {
            let device: DeviceName = name
                .parse()
                .map_err(|e: DeviceError| self.err(&at, e.to_string()))?;
            if device.backend() != backend {
                return Err(self.err(
                    &at,
                    format!(
                        "device `{device}` belongs to the `{}` backend, and [train] backend is `{}`",
                        device.backend().name(),
                        backend.name()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl TrainSpec {
    /// Checks the losses this sweep can use against the task (known once the data is read).
    pub fn check_loss(&self, experiment: &Experiment, task: Task) -> Result<()> {
        for loss in &self.possible_values(experiment, "loss") {
            let ParamValue::Str(loss) = loss else {
                continue;
            };
            let fits = match task {
                Task::Classification => loss == Loss::CrossEntropy.name(),
                Task::Regression => loss != Loss::CrossEntropy.name(),
            };
            if !fits {
                let allowed = match task {
                    Task::Classification => "`cross_entropy`",
                    Task::Regression => "`mse`, `mae`, `huber`",
                };
                let path: Vec<&str> = if experiment.space.names().any(|n| n == "loss") {
                    vec!["space", "loss"]
                } else {
                    vec!["train", "loss"]
                };
                return Err(experiment.error_at(
                    &path,
                    format!("loss `{loss}` does not fit a {task} task: use {allowed}"),
                ));
            }
        }
        Ok(())
    }
}
