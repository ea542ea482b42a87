//! Search spaces: the distributions of `[space]`, the values they produce, and the mapping
//! from the unit cube to values that every sampler shares.
//!
//! A sampler only ever produces a point `u` in `[0, 1)^d`; [`Distribution::from_unit`] turns each
//! coordinate into a value. That keeps log spacing, integer steps and categories in one place, so
//! every sampler respects them the same way.

mod parse;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One hyperparameter value: what a distribution yields and what a setting holds. Written
/// as the plain JSON or TOML value; read back by its type (an integer that fits `i64` is an
/// `Int`, any other number a `Float`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean (`choice = [true, false]`).
    Bool(bool),
    /// An integer (`int`, or integer choices).
    Int(i64),
    /// A float (`uniform`, `log_uniform`, or float choices).
    Float(f64),
    /// A string (`choice = ["adam", "sgd"]`).
    Str(String),
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // By the value's own type, without buffering it as `untagged` would: the journal
        // holds a parameter per trial and dimension.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ParamValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, a number or a string")
            }
            fn visit_bool<E>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ParamValue, E> {
                Ok(i64::try_from(v).map_or(ParamValue::Float(v as f64), ParamValue::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ParamValue, E> {
                Ok(ParamValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue::Str(v))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl ParamValue {
    /// The value as a float, for numeric values.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "a boolean",
            ParamValue::Int(_) => "an integer",
            ParamValue::Float(_) => "a float",
            ParamValue::Str(_) => "a string",
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Str(s) => write!(f, "{s}"),
        }
    }
}

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

/// The grid of a space: the product of every dimension's grid values, the last dimension
/// fastest; in a space with conditions, its distinct points once inactive parameters are left
/// out (an inactive parameter's values would only repeat its branch's points), in that order.
#[derive(Debug, Default)]
pub struct Grid {
    axes: Vec<(String, Vec<ParamValue>)>,
    distinct: Option<Vec<Params>>,
}

/// The most points of a conditional grid's product: it is enumerated to find the distinct ones.
const MAX_CONDITIONAL_GRID: u64 = 1_000_000;

impl Grid {
    /// The grid of `space`, with `default_points` for ranges that name no `points`; or the
    /// dimension that cannot be gridded and why.
    pub fn new(space: &Space, default_points: Option<usize>) -> Result<Grid, (String, String)> {
        let mut axes = Vec::new();
        let mut product: u64 = 1;
        for d in &space.dimensions {
            let values = d
                .distribution
                .grid_values(d.points.or(default_points))
                .map_err(|e| (d.name.clone(), e))?;
            product = product.checked_mul(values.len() as u64).ok_or_else(|| {
                (
                    d.name.clone(),
                    "the grid has more than 2^64 points: give fewer `points`, or use the random, sobol or tpe sampler".to_string(),
                )
            })?;
            axes.push((d.name.clone(), values));
        }
        let mut grid = Grid {
            axes,
            distinct: None,
        };
        if space.is_conditional() {
            if product > MAX_CONDITIONAL_GRID {
                let last = space.dimensions.last().map(|d| d.name.clone());
                return Err((
                    last.unwrap_or_default(),
                    format!(
                        "a grid with conditions may have at most {MAX_CONDITIONAL_GRID} points before the inactive ones are left out; this one has {product}: give fewer `points`"
                    ),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            let points = (0..product)
                .map(|n| {
                    let mut params = grid.product_point(n);
                    space.drop_inactive(&mut params);
                    params
                })
                .filter(|p| seen.insert(format!("{p:?}")))
                .collect();
            grid.distinct = Some(points);
        }
        Ok(grid)
    }

    /// Number of points.
    pub fn size(&self) -> u64 {
        match &self.distinct {
            Some(points) => points.len() as u64,
            None => self.axes.iter().map(|(_, v)| v.len() as u64).product(),
        }
    }

    /// Point `number`, if the grid has it.
    pub fn point(&self, number: u64) -> Option<Params> {
        match &self.distinct {
            Some(points) => points.get(number as usize).cloned(),
            None => (number < self.size()).then(|| self.product_point(number)),
        }
    }

    /// Point `number` of the whole product.
    fn product_point(&self, number: u64) -> Params {
        let mut rest = number;
        let mut params = Params::new();
        for (name, values) in self.axes.iter().rev() {
            let n = values.len() as u64;
            params.insert(name.clone(), values[(rest % n) as usize].clone());
            rest /= n;
        }
        params
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn parameter_values_read_back_by_their_type() {
        for value in [
            ParamValue::Bool(true),
            ParamValue::Int(-3),
            ParamValue::Float(0.1),
            ParamValue::Float(2.0),
            ParamValue::Str("adam".into()),
        ] {
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(
                serde_json::from_str::<ParamValue>(&json).unwrap(),
                value,
                "{json}"
            );
        }
        let big: ParamValue = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(big, ParamValue::Float(u64::MAX as f64));
        assert!(serde_json::from_str::<ParamValue>("null").is_err());
        assert!(serde_json::from_str::<ParamValue>("[1]").is_err());
    }
    use super::*;

    #[test]
    fn log_uniform_spans_decades_evenly() {
        let d = Distribution::LogUniform {
            low: 1e-4,
            high: 1e-1,
        };
        let mid = d.from_unit(0.5).as_f64().unwrap();
        assert!((mid.log10() - -2.5).abs() < 1e-9, "{mid}");
        assert!((d.from_unit(0.0).as_f64().unwrap() / 1e-4 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn int_respects_step_and_bounds() {
        let d = Distribution::Int {
            low: 16,
            high: 64,
            step: 16,
            log: false,
        };
        let seen: Vec<i64> = (0..100)
            .map(|i| match d.from_unit(i as f64 / 100.0) {
                ParamValue::Int(x) => x,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(seen.iter().all(|x| [16, 32, 48, 64].contains(x)));
        assert_eq!(seen.iter().filter(|&&x| x == 64).count(), 25);
    }

    #[test]
    fn a_log_int_range_up_to_the_largest_integer_samples_all_of_it() {
        let d = Distribution::Int {
            low: 1,
            high: i64::MAX,
            step: 1,
            log: true,
        };
        let seen: Vec<f64> = (0..100)
            .map(|i| d.from_unit(i as f64 / 100.0).as_f64().unwrap())
            .collect();
        assert!(
            seen[0] < 10.0 && seen[50] > 1e8 && seen[50] < 1e11,
            "{seen:?}"
        );
        assert!(seen[99] > 1e18, "{seen:?}");
        let u = d.to_unit(&ParamValue::Int(3_000_000_000)).unwrap();
        assert!(u > 0.4 && u < 0.6, "{u}");
        assert!(d.narrowest_cell().unwrap().is_finite());
    }

    #[test]
    fn log_int_favours_small_values() {
        let d = Distribution::Int {
            low: 1,
            high: 100,
            step: 1,
            log: true,
        };
        let small = (0..1000)
            .filter(|i| d.from_unit(*i as f64 / 1000.0).as_f64().unwrap() < 10.0)
            .count();
        assert!((480..=520).contains(&small), "{small}");
    }

    #[test]
    fn to_unit_inverts_from_unit() {
        let dims = [
            Distribution::Uniform {
                low: -2.0,
                high: 3.0,
            },
            Distribution::LogUniform {
                low: 1e-4,
                high: 1e-1,
            },
            Distribution::Int {
                low: 16,
                high: 64,
                step: 16,
                log: false,
            },
            Distribution::Int {
                low: 1,
                high: 100,
                step: 1,
                log: true,
            },
            Distribution::Choice(vec![
                ParamValue::Str("a".into()),
                ParamValue::Str("b".into()),
            ]),
        ];
        for d in &dims {
            for i in 0..50 {
                let value = d.from_unit(i as f64 / 50.0);
                let back = d.from_unit(d.to_unit(&value).unwrap());
                match (&back, &value) {
                    (ParamValue::Float(a), ParamValue::Float(b)) => {
                        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{d}: {a} {b}")
                    }
                    _ => assert_eq!(back, value, "{d}"),
                }
            }
        }
    }

    #[test]
    fn grid_of_a_log_range_is_geometric() {
        let d = Distribution::LogUniform {
            low: 1e-3,
            high: 1e-1,
        };
        let v: Vec<f64> = d
            .grid_values(Some(3))
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!((v[1] - 1e-2).abs() < 1e-12, "{v:?}");
        assert!(d.grid_values(None).is_err());
        let wide = Distribution::Int {
            low: 0,
            high: i64::MAX - 1,
            step: 1,
            log: false,
        };
        let refused = wide.grid_values(None).unwrap_err();
        assert!(refused.contains("give `points = N`"), "{refused}");
        assert_eq!(wide.grid_values(Some(3)).unwrap().len(), 3);
    }

    #[test]
    fn conditions_chain_and_an_inactive_parameter_is_left_out() {
        let choice = crate::space::string_choice;
        let when = |parent: &str, value: &str| {
            vec![Condition {
                parent: parent.into(),
                values: vec![ParamValue::Str(value.into())],
            }]
        };
        let mut schedule = Dimension::new("schedule", choice(&["step", "constant"]));
        schedule.when = when("optimizer", "sgd");
        let mut step = Dimension::new(
            "step",
            Distribution::Uniform {
                low: 0.0,
                high: 1.0,
            },
        );
        step.when = when("schedule", "step");
        let space = Space {
            dimensions: vec![
                step,
                schedule,
                Dimension::new("optimizer", choice(&["sgd", "adamw"])),
            ],
        };
        // The child is listed before its parents: activity does not depend on file order.
        let sgd_step = space.params_from_unit(&[0.3, 0.1, 0.1]);
        assert_eq!(sgd_step.len(), 3, "{sgd_step:?}");
        let sgd_constant = space.params_from_unit(&[0.3, 0.9, 0.1]);
        assert!(!sgd_constant.contains_key("step"), "{sgd_constant:?}");
        let adamw = space.params_from_unit(&[0.3, 0.1, 0.9]);
        assert_eq!(
            adamw.keys().collect::<Vec<_>>(),
            ["optimizer"],
            "a chain ends with its root"
        );
        let unit = space.unit_from_params(&adamw).unwrap();
        assert!(unit[0].is_nan() && unit[1].is_nan() && !unit[2].is_nan());
    }
}
