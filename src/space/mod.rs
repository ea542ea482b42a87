//! Search spaces: the distributions of `[space]`, the values they produce, and the mapping
//! from the unit cube to values that every sampler shares.
//!
//! A sampler only ever produces a point `u` in `[0, 1)^d`; [`Distribution::from_unit`] turns each
//! coordinate into a value. That keeps log spacing, integer steps and categories in one place, so
//! every sampler respects them the same way.

mod grid;
mod parse;
mod value;

pub use grid::Grid;
pub use value::ParamValue;

use std::collections::BTreeMap;
use std::fmt;

/// Which of `k` equal cells of `[0, 1)` holds `u`: how a unit coordinate picks a category.
pub fn cell(u: f64, k: usize) -> usize {
    ((u * k as f64) as usize).min(k - 1)
}

/// The middle of cell `i` of `k`: the unit coordinate that stands for category `i`.
pub fn cell_centre(i: usize, k: usize) -> f64 {
    (i as f64 + 0.5) / k as f64
}

/// A trial's sampled hyperparameters, by `[space]` key.
pub type Params = BTreeMap<String, ParamValue>;

/// Parameters as a person reads them on one line: `key=value key=value`.
pub fn shown(params: &Params) -> String {
    let pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

/// Where one hyperparameter's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high]`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Uniform in `ln x` on `[low, high]`, both bounds > 0.
    LogUniform {
        /// Lower bound (> 0).
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Integers `low, low + step, ..., <= high`; with `log`, spaced evenly in `ln x` (step 1).
    Int {
        /// Lowest value.
        low: i64,
        /// Highest value (included when on a step).
        high: i64,
        /// Distance between values.
        step: i64,
        /// Spaced evenly in `ln x`.
        log: bool,
    },
    /// One of a list of values.
    Choice(Vec<ParamValue>),
}

/// The most values a grid enumerates along one integer axis without `points`.
const MAX_GRID_AXIS: u64 = 1_000_000;

impl Distribution {
    /// Maps `u` in `[0, 1)` to a value of this distribution.
    pub fn from_unit(&self, u: f64) -> ParamValue {
        let u = u.clamp(0.0, 1.0);
        match self {
            Distribution::Uniform { low, high } => ParamValue::Float(low + u * (high - low)),
            Distribution::LogUniform { low, high } => ParamValue::Float(
                (low.ln() + u * (high.ln() - low.ln()))
                    .exp()
                    .clamp(*low, *high),
            ),
            Distribution::Int {
                low,
                high,
                step,
                log: false,
            } => {
                let count = (high - low) / step + 1;
                let index = ((u * count as f64) as i64).min(count - 1);
                ParamValue::Int(low + index * step)
            }
            Distribution::Int {
                low,
                high,
                log: true,
                ..
            } => {
                // Even in ln x over [low, high + 1), floored: each integer gets the log-width
                // of its own unit interval.
                let (a, b) = ((*low as f64).ln(), (*high as f64 + 1.0).ln());
                let x = (a + u * (b - a)).exp().floor() as i64;
                ParamValue::Int(x.clamp(*low, *high))
            }
            Distribution::Choice(values) => values[cell(u, values.len())].clone(),
        }
    }

    /// Where `value` lies in `[0, 1)`: the inverse of [`Distribution::from_unit`] (the middle
    /// of the interval that maps to an integer or a category). Samplers that learn from past
    /// trials (TPE) work in these coordinates.
    pub fn to_unit(&self, value: &ParamValue) -> Option<f64> {
        let x = value.as_f64();
        let u = match self {
            Distribution::Uniform { low, high } => (x? - low) / (high - low),
            Distribution::LogUniform { low, high } => (x?.ln() - low.ln()) / (high.ln() - low.ln()),
            Distribution::Int {
                low,
                high,
                step,
                log: false,
            } => {
                let count = ((high - low) / step + 1) as f64;
                ((x? - *low as f64) / *step as f64 + 0.5) / count
            }
            Distribution::Int {
                low,
                high,
                log: true,
                ..
            } => {
                let (a, b) = ((*low as f64).ln(), (*high as f64 + 1.0).ln());
                let (left, right) = (x?.ln(), (x? + 1.0).ln());
                ((left + right) / 2.0 - a) / (b - a)
            }
            Distribution::Choice(values) => {
                let index = values.iter().position(|v| v == value)?;
                cell_centre(index, values.len())
            }
        };
        Some(u.clamp(0.0, 1.0))
    }

    /// `value` as this distribution holds it (an integer given for a float range becomes a
    /// float; a number matches a numeric choice equal to it), or why it is not one of its values.
    pub fn admit(&self, value: &ParamValue) -> Result<ParamValue, String> {
        let outside = || format!("`{value}` is outside {self}");
        match (self, value.as_f64()) {
            (
                Distribution::Uniform { low, high } | Distribution::LogUniform { low, high },
                Some(x),
            ) => {
                if (*low..=*high).contains(&x) {
                    Ok(ParamValue::Float(x))
                } else {
                    Err(outside())
                }
            }
            (
                Distribution::Int {
                    low, high, step, ..
                },
                Some(x),
            ) => match value {
                ParamValue::Int(i) if (low..=high).contains(&i) && (i - low) % step == 0 => {
                    Ok(ParamValue::Int(*i))
                }
                ParamValue::Int(_) => Err(outside()),
                _ => Err(format!(
                    "`{x}` is not an integer: {self} takes whole numbers"
                )),
            },
            (Distribution::Choice(values), _) => values
                .iter()
                .find(|c| *c == value || (c.as_f64().is_some() && c.as_f64() == value.as_f64()))
                .cloned()
                .ok_or_else(|| format!("`{value}` is not one of {self}")),
            (_, None) => Err(format!(
                "`{value}` is {}, but {self} takes numbers",
                value.type_name()
            )),
        }
    }

    /// A value of this distribution written as text (`kiln enqueue DIR key=value`).
    pub fn parse(&self, text: &str) -> Result<ParamValue, String> {
        let value = match self {
            Distribution::Choice(values) => values
                .iter()
                .find(|c| c.to_string() == text)
                .cloned()
                .unwrap_or_else(|| ParamValue::Str(text.to_string())),
            _ => match (text.parse::<i64>(), text.parse::<f64>()) {
                (Ok(i), _) => ParamValue::Int(i),
                (_, Ok(x)) => ParamValue::Float(x),
                _ => return Err(format!("`{text}` is not a number; {self} takes numbers")),
            },
        };
        self.admit(&value)
    }

    /// The values a grid takes along this dimension: every choice and every integer step, or
    /// `points` evenly spaced values (in `ln x` for log distributions) of a range.
    /// An integer range is a grid axis of all its values up to this many; past it, of
    /// `points` values.
    pub fn grid_values(&self, points: Option<usize>) -> Result<Vec<ParamValue>, String> {
        let spaced = |n: usize| -> Vec<f64> {
            if n == 1 {
                vec![0.5]
            } else {
                (0..n).map(|i| i as f64 / (n - 1) as f64).collect()
            }
        };
        match self {
            Distribution::Choice(values) => Ok(values.clone()),
            Distribution::Int {
                low,
                high,
                step,
                log,
            } => match points {
                None if ((high - low) / step) as u64 >= MAX_GRID_AXIS => Err(format!(
                    "`int` [{low}, {high}] holds {} values, too many for a grid axis (at most {MAX_GRID_AXIS}): give `points = N`",
                    (high - low) as u64 / *step as u64 + 1
                )),
                None if !log => Ok((0..=(high - low) / step)
                    .map(|i| ParamValue::Int(low + i * step))
                    .collect()),
                None => Ok((*low..=*high).map(ParamValue::Int).collect()),
                Some(n) => {
                    let mut values: Vec<ParamValue> = spaced(n)
                        .into_iter()
                        .map(|u| {
                            let x = if *log {
                                ((*low as f64).ln()
                                    + u * ((*high as f64).ln() - (*low as f64).ln()))
                                .exp()
                            } else {
                                *low as f64 + u * (*high - *low) as f64
                            };
                            let snapped =
                                low + ((x - *low as f64) / *step as f64).round() as i64 * step;
                            ParamValue::Int(snapped.clamp(*low, *high))
                        })
                        .collect();
                    values.dedup();
                    Ok(values)
                }
            },
            Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => {
                let n = points.ok_or_else(|| {
                    "a grid needs `points = N` for a continuous range (in the key, or `[sampler] points`)"
                        .to_string()
                })?;
                let log = matches!(self, Distribution::LogUniform { .. });
                Ok(spaced(n)
                    .into_iter()
                    .map(|u| {
                        if log {
                            ParamValue::Float((low.ln() + u * (high.ln() - low.ln())).exp())
                        } else {
                            ParamValue::Float(low + u * (high - low))
                        }
                    })
                    .collect())
            }
        }
    }

    /// For integers, the width in the unit cube of the narrowest value's cell (the largest
    /// value's, on a log scale); `None` for continuous ranges and choices.
    pub fn narrowest_cell(&self) -> Option<f64> {
        match *self {
            Distribution::Int {
                low,
                high,
                step,
                log: false,
            } => Some(1.0 / ((high - low) / step + 1) as f64),
            Distribution::Int {
                low,
                high,
                log: true,
                ..
            } => {
                let (a, b) = ((low as f64).ln(), (high as f64 + 1.0).ln());
                Some((b - (high as f64).ln()) / (b - a))
            }
            _ => None,
        }
    }

    /// Whether values are spaced evenly in `ln x` (plots and samplers use log axes for these).
    pub fn is_log(&self) -> bool {
        matches!(
            self,
            Distribution::LogUniform { .. } | Distribution::Int { log: true, .. }
        )
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distribution::Uniform { low, high } => write!(f, "uniform [{low}, {high}]"),
            Distribution::LogUniform { low, high } => write!(f, "log_uniform [{low}, {high}]"),
            Distribution::Int {
                low,
                high,
                step,
                log,
            } => {
                write!(f, "int [{low}, {high}]")?;
                if *step != 1 {
                    write!(f, " step {step}")?;
                }
                if *log {
                    write!(f, " log")?;
                }
                Ok(())
            }
            Distribution::Choice(values) => {
                let shown: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
                write!(f, "choice {{{}}}", shown.join(", "))
            }
        }
    }
}

/// One searched hyperparameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    /// The `[space]` key, which is also the setting it overrides.
    pub name: String,
    /// Its distribution.
    pub distribution: Distribution,
    /// Grid points for a continuous range (grid sampler only).
    pub points: Option<usize>,
    /// When it is active: every condition must hold (none: always). An inactive parameter is
    /// absent from the trial.
    pub when: Vec<Condition>,
}

impl Dimension {
    /// An always-active dimension.
    pub fn new(name: &str, distribution: Distribution) -> Dimension {
        Dimension {
            name: name.to_string(),
            distribution,
            points: None,
            when: Vec::new(),
        }
    }
}

/// `when = { parent = [values] }`: the parent (a `choice` of the space) holds one of `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The parent's `[space]` key.
    pub parent: String,
    /// The values of the parent under which the dimension is active.
    pub values: Vec<ParamValue>,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = self.values.iter().map(ToString::to_string).collect();
        write!(f, "{} in {{{}}}", self.parent, values.join(", "))
    }
}

/// The whole `[space]`, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Space {
    /// The dimensions, in the order they appear in the experiment file.
    pub dimensions: Vec<Dimension>,
}

impl Space {
    /// Maps a point of the unit cube (one coordinate per dimension) to parameters: the
    /// coordinates of inactive dimensions are ignored, their parameters left out.
    pub fn params_from_unit(&self, point: &[f64]) -> Params {
        self.fill(&Params::new(), point)
    }

    /// `given` completed from `point` of the unit cube (the values not given), then with the
    /// inactive parameters left out: a queued configuration as a trial takes it.
    pub fn fill(&self, given: &Params, point: &[f64]) -> Params {
        let mut params: Params = self
            .dimensions
            .iter()
            .zip(point)
            .map(|(d, &u)| {
                let value = given.get(&d.name).cloned();
                (
                    d.name.clone(),
                    value.unwrap_or_else(|| d.distribution.from_unit(u)),
                )
            })
            .collect();
        self.drop_inactive(&mut params);
        params
    }

    /// Removes the parameters whose conditions do not hold, in as many passes as conditions
    /// chain: a parameter whose parent was removed is removed too.
    pub fn drop_inactive(&self, params: &mut Params) {
        while let Some(inactive) = self
            .dimensions
            .iter()
            .find(|d| params.contains_key(&d.name) && !Space::holds(d, params))
        {
            params.remove(&inactive.name);
        }
    }

    /// Whether every condition of `d` holds in `params`.
    fn holds(d: &Dimension, params: &Params) -> bool {
        d.when.iter().all(|c| {
            params
                .get(&c.parent)
                .is_some_and(|value| c.values.contains(value))
        })
    }

    /// Checks a configuration given by a person (`[[enqueue]]`, `kiln enqueue`): each key a
    /// dimension, each value one of its values, none inactive under the values given with
    /// it. Returns it as the space holds it, or the key at fault and why.
    pub fn admit(&self, given: &Params) -> Result<Params, (String, String)> {
        let mut admitted = Params::new();
        for (key, value) in given {
            let Some(d) = self.dimensions.iter().find(|d| d.name == *key) else {
                let names: Vec<&str> = self.names().collect();
                return Err((
                    key.clone(),
                    format!(
                        "`{key}` is not a key of [space]; it has {}",
                        names.join(", ")
                    ),
                ));
            };
            let value = d
                .distribution
                .admit(value)
                .map_err(|why| (key.clone(), why))?;
            admitted.insert(key.clone(), value);
        }
        for d in &self.dimensions {
            let decided = d.when.iter().all(|c| admitted.contains_key(&c.parent));
            if admitted.contains_key(&d.name) && decided && !Space::holds(d, &admitted) {
                let when: Vec<String> = d.when.iter().map(ToString::to_string).collect();
                return Err((
                    d.name.clone(),
                    format!(
                        "`{}` is inactive with the values given (it is searched when {})",
                        d.name,
                        when.join(" and ")
                    ),
                ));
            }
        }
        Ok(admitted)
    }

    /// Whether some dimension has conditions.
    pub fn is_conditional(&self) -> bool {
        self.dimensions.iter().any(|d| !d.when.is_empty())
    }

    /// The inverse of [`Space::params_from_unit`]: the point of the unit cube of `params`
    /// (NaN where a conditional dimension is inactive), if every other dimension has its value
    /// there.
    pub fn unit_from_params(&self, params: &Params) -> Option<Vec<f64>> {
        self.dimensions
            .iter()
            .map(|d| match params.get(&d.name) {
                Some(value) => d.distribution.to_unit(value),
                None if !d.when.is_empty() => Some(f64::NAN),
                None => None,
            })
            .collect()
    }

    /// The dimension's names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.dimensions.iter().map(|d| d.name.as_str())
    }
}

/// Test helper: a `choice` of strings.
#[cfg(test)]
pub(crate) fn string_choice(values: &[&str]) -> Distribution {
    Distribution::Choice(
        values
            .iter()
            .map(|v| ParamValue::Str(v.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
