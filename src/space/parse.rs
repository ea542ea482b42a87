//! `[space]` and `[[enqueue]]`: each key's distribution, range, grid points and condition,
//! checked, with errors at the key.

use crate::error::{Error, Result};
use crate::experiment::source::{key_offsets, scalar};
use crate::names::Named;
use crate::space::{Condition, Dimension, Distribution, Params, Space};
use crate::text::{hint, quote_list};

crate::named! {
    /// The distributions a `[space]` key can name.
    pub(crate) enum DistributionKind {
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

pub(crate) const DISTRIBUTIONS: &[&str] = <DistributionKind as Named>::NAMES;

pub(crate) const DIMENSION_KEYS: &[&str] = &[
    "uniform",
    "log_uniform",
    "int",
    "choice",
    "log",
    "step",
    "points",
    "when",
];

impl crate::experiment::source::Builder {
    pub(crate) fn space(&self, table: &toml::Table) -> Result<Space> {
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
    pub(crate) fn conditions(
        &self,
        name: &str,
        when: &toml::Value,
        space: &Space,
    ) -> Result<Vec<Condition>> {
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

    /// `[[enqueue]]` tables: each a configuration the space admits.
    pub(crate) fn enqueue(&self, tables: &[toml::Table], space: &Space) -> Result<Vec<Params>> {
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
    pub(crate) fn no_circle(&self, space: &Space) -> Result<()> {
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
    pub(crate) fn dimension(&self, name: &str, value: &toml::Value) -> Result<Dimension> {
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
    pub(crate) fn space_err(&self, name: &str, key: &str, message: String) -> Error {
        let located = self.err(&["space", name, key], "").to_string();
        Error::input(format!("{located}{message}"))
    }

    /// An optional integer option of a `[space]` key (`points`, `step`), at least `min`.
    pub(crate) fn int_option(
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
    pub(crate) fn no_int_options(&self, name: &str, table: &toml::Table) -> Result<()> {
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
    pub(crate) fn float_range(
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
    pub(crate) fn int_range(&self, name: &str, table: &toml::Table) -> Result<Distribution> {
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
    pub(crate) fn choice(&self, name: &str, table: &toml::Table) -> Result<Distribution> {
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

    pub(crate) fn bounds<T: PartialOrd + Copy + std::fmt::Display>(
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
