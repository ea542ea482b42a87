//! Synthetic objectives: standard optimisation test functions, for testing and benchmarking
//! samplers and pruners without training anything.
//!
//! `[objective] kind = "function"` with `function = "branin"` (or `hartmann6`, `rosenbrock`,
//! `sphere`) and `epochs` (default 1); `[space]` names the inputs `x1`, `x2`, ... The objective
//! reports the metric `value` (to minimise) once per epoch along a simulated learning curve that
//! starts high and settles on the function's value, `f(x) + (1 + |f(x)|) * 0.7^(epoch - 1)`, so
//! a pruner can compare trials at equal epochs and good inputs are good early too.
//!
//! `zdt1`, `zdt2` and `zdt3` (Zitzler, Deb and Thiele, "Comparison of multiobjective
//! evolutionary algorithms", Evolutionary Computation 2000) have two objectives, both to
//! minimise: they report `f1` and `f2` (along the same curve), for sweeps of several objectives.
//! Their inputs lie in [0, 1]; the Pareto front is x2 = ... = xn = 0. `dtlz2` (Deb, Thiele,
//! Laumanns and Zitzler, "Scalable test problems for evolutionary multiobjective optimization",
//! 2005) has three, `f1`, `f2` and `f3`, on the sphere f1² + f2² + f3² = 1 where x3.. = 0.5.
//!
//! `ellipsoid` and `rastrigin` are the cores of COCO's BBOB f2 and f3 (Hansen et al., "Real-
//! parameter black-box optimization benchmarking", 2009) without their oscillation transforms,
//! and `ackley` is Ackley's function: each is shifted so that its minimum, 0, lies at
//! x_i = 4 frac(0.618034 i) - 2 rather than at the centre of the space, where a sampler that
//! starts in the middle would find it for free. `styblinski_tang` has its minimum,
//! -39.16617 per input, at x_i = -2.903534.

use crate::error::Result;
use crate::experiment::Experiment;
use crate::objective::{Decision, Objective, Trial, TrialError, TrialSummary};
use crate::text::quote_list;
use crate::trial::Metrics;

/// A test function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Branin-Hoo, 2 inputs (x1 in [-5, 10], x2 in [0, 15]); minimum 0.397887.
    Branin,
    /// Hartmann, 6 inputs in [0, 1]; minimum -3.32237.
    Hartmann6,
    /// Rosenbrock, 2 or more inputs; minimum 0 at (1, ..., 1).
    Rosenbrock,
    /// Sum of squares, 1 or more inputs; minimum 0 at 0.
    Sphere,
    /// ZDT1, 2 or more inputs in [0, 1]: a convex front, f2 = 1 - sqrt(f1).
    Zdt1,
    /// ZDT2: a concave front, f2 = 1 - f1^2.
    Zdt2,
    /// ZDT3: a front in five pieces.
    Zdt3,
    /// DTLZ2, 3 or more inputs in [0, 1], three objectives: a front on the unit sphere.
    Dtlz2,
    /// BBOB f2's separable ellipsoid, 2 or more inputs, shifted; condition number 10^6.
    Ellipsoid,
    /// BBOB f3's Rastrigin, 1 or more inputs, shifted: 10^n local minima in the usual range.
    Rastrigin,
    /// Ackley's function, 1 or more inputs, shifted: a flat plateau around a narrow funnel.
    Ackley,
    /// Styblinski-Tang, 1 or more inputs: its minimum is off-centre, near a corner.
    StyblinskiTang,
}

/// Where the shifted functions have their minimum along input `i` (0-based), inside [-2, 2].
pub fn shift(i: usize) -> f64 {
    4.0 * (0.618_033_988_749_895 * (i + 1) as f64).fract() - 2.0
}

impl Function {
    /// The names of the functions.
    pub const NAMES: &[&str] = &[
        "branin",
        "hartmann6",
        "rosenbrock",
        "sphere",
        "zdt1",
        "zdt2",
        "zdt3",
        "dtlz2",
        "ellipsoid",
        "rastrigin",
        "ackley",
        "styblinski_tang",
    ];

    /// The function of a name.
    pub fn from_name(name: &str) -> Option<Function> {
        match name {
            "branin" => Some(Function::Branin),
            "hartmann6" => Some(Function::Hartmann6),
            "rosenbrock" => Some(Function::Rosenbrock),
            "sphere" => Some(Function::Sphere),
            "zdt1" => Some(Function::Zdt1),
            "zdt2" => Some(Function::Zdt2),
            "zdt3" => Some(Function::Zdt3),
            "dtlz2" => Some(Function::Dtlz2),
            "ellipsoid" => Some(Function::Ellipsoid),
            "rastrigin" => Some(Function::Rastrigin),
            "ackley" => Some(Function::Ackley),
            "styblinski_tang" => Some(Function::StyblinskiTang),
            _ => None,
        }
    }

    /// How many inputs it takes: exactly, or at least.
    pub fn inputs(self) -> (usize, bool) {
        match self {
            Function::Branin => (2, true),
            Function::Hartmann6 => (6, true),
            Function::Rosenbrock => (2, false),
            Function::Sphere | Function::Rastrigin | Function::Ackley => (1, false),
            Function::StyblinskiTang => (1, false),
            Function::Zdt1 | Function::Zdt2 | Function::Zdt3 | Function::Ellipsoid => (2, false),
            Function::Dtlz2 => (3, false),
        }
    }

    /// The metrics it reports, each to minimise.
    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            Function::Zdt1 | Function::Zdt2 | Function::Zdt3 => &["f1", "f2"],
            Function::Dtlz2 => &["f1", "f2", "f3"],
            _ => &["value"],
        }
    }

    /// Its values at `x`, one per metric.
    pub fn objectives(self, x: &[f64]) -> Vec<f64> {
        let zdt = |shape: fn(f64, f64) -> f64| {
            let g = 1.0 + 9.0 * x[1..].iter().sum::<f64>() / (x.len() - 1) as f64;
            vec![x[0], g * shape(x[0], g)]
        };
        match self {
            Function::Zdt1 => zdt(|f1, g| 1.0 - (f1 / g).sqrt()),
            Function::Zdt2 => zdt(|f1, g| 1.0 - (f1 / g).powi(2)),
            Function::Zdt3 => zdt(|f1, g| {
                1.0 - (f1 / g).sqrt() - f1 / g * (10.0 * std::f64::consts::PI * f1).sin()
            }),
            Function::Dtlz2 => {
                let g: f64 = x[2..].iter().map(|v| (v - 0.5).powi(2)).sum();
                let half_pi = std::f64::consts::FRAC_PI_2;
                let (a, b) = (x[0] * half_pi, x[1] * half_pi);
                let r = 1.0 + g;
                vec![r * a.cos() * b.cos(), r * a.cos() * b.sin(), r * a.sin()]
            }
            _ => vec![self.evaluate(x)],
        }
    }

    /// Its usual search space, x1..xn (n for the functions that take any number of inputs):
    /// branin's two ranges, the unit cube for hartmann6, ZDT and DTLZ2, [-2, 2] for rosenbrock
    /// and [-5, 5] for the others (BBOB's range).
    pub fn domain(self, n: usize) -> crate::space::Space {
        let ranges = match self {
            Function::Branin => vec![(-5.0, 10.0), (0.0, 15.0)],
            Function::Hartmann6 => vec![(0.0, 1.0); 6],
            Function::Rosenbrock => vec![(-2.0, 2.0); n],
            Function::Zdt1 | Function::Zdt2 | Function::Zdt3 | Function::Dtlz2 => {
                vec![(0.0, 1.0); n]
            }
            _ => vec![(-5.0, 5.0); n],
        };
        let dimension = |(i, (low, high)): (usize, (f64, f64))| {
            let range = crate::space::Distribution::Uniform { low, high };
            crate::space::Dimension::new(&format!("x{}", i + 1), range)
        };
        crate::space::Space {
            dimensions: ranges.into_iter().enumerate().map(dimension).collect(),
        }
    }

    /// Its global minimum with `n` inputs, for regret (of the first objective, for ZDT and
    /// DTLZ2: 0).
    pub fn minimum(self, n: usize) -> f64 {
        match self {
            Function::Branin => 0.397_887_357_729_738,
            Function::Hartmann6 => -3.322_368_011_415_51,
            Function::StyblinskiTang => -39.166_165_703_771_42 * n as f64,
            _ => 0.0,
        }
    }

    /// The value at `x` (the first objective, for ZDT and DTLZ2).
    pub fn evaluate(self, x: &[f64]) -> f64 {
        let shifted = || x.iter().enumerate().map(|(i, v)| v - shift(i));
        let tau = std::f64::consts::TAU;
        match self {
            Function::Branin => {
                let (x1, x2) = (x[0], x[1]);
                let pi = std::f64::consts::PI;
                let b = 5.1 / (4.0 * pi * pi);
                let c = 5.0 / pi;
                let t = 1.0 / (8.0 * pi);
                (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
            }
            Function::Hartmann6 => {
                const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
                const A: [[f64; 6]; 4] = [
                    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
                    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
                    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
                    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
                ];
                const P: [[f64; 6]; 4] = [
                    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
                    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
                    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
                    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
                ];
                -(0..4)
                    .map(|i| {
                        let inner: f64 = (0..6).map(|j| A[i][j] * (x[j] - P[i][j]).powi(2)).sum();
                        ALPHA[i] * (-inner).exp()
                    })
                    .sum::<f64>()
            }
            Function::Rosenbrock => x
                .windows(2)
                .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
                .sum(),
            Function::Sphere => x.iter().map(|v| v * v).sum(),
            Function::Zdt1 | Function::Zdt2 | Function::Zdt3 => x[0],
            Function::Dtlz2 => self.objectives(x)[0],
            Function::Ellipsoid => {
                let n = x.len().max(2) as f64 - 1.0;
                (shifted().enumerate())
                    .map(|(i, z)| 10f64.powf(6.0 * i as f64 / n) * z * z)
                    .sum()
            }
            Function::Rastrigin => shifted()
                .map(|z| z * z - 10.0 * (tau * z).cos() + 10.0)
                .sum(),
            Function::Ackley => {
                let n = x.len() as f64;
                let squares = shifted().map(|z| z * z).sum::<f64>() / n;
                let cosines = shifted().map(|z| (tau * z).cos()).sum::<f64>() / n;
                -20.0 * (-0.2 * squares.sqrt()).exp() - cosines.exp() + 20.0 + std::f64::consts::E
            }
            Function::StyblinskiTang => {
                x.iter()
                    .map(|v| v.powi(4) - 16.0 * v * v + 5.0 * v)
                    .sum::<f64>()
                    / 2.0
            }
        }
    }
}

/// The `x1`, `x2`, ... of a `[space]` key, as its position (0-based).
pub fn input_index(name: &str) -> Option<usize> {
    name.strip_prefix('x')?
        .parse::<usize>()
        .ok()
        .filter(|&i| i >= 1)
        .map(|i| i - 1)
}

/// `sampler` run on `function` for `trials` trials, one after another, in this process (no
/// journal, no workers, one epoch each): the sweep's state, for tests and benchmarks of
/// samplers. The space's keys are the inputs x1, x2, ...
pub fn drive(
    function: Function,
    space: &crate::space::Space,
    sampler: &mut dyn crate::sampler::Sampler,
    trials: u64,
) -> crate::state::SweepState {
    let mut state = crate::state::SweepState::default();
    for trial in 0..trials {
        let Some(params) = sampler.sample(space, trial, &state.trials) else {
            break;
        };
        let mut x = vec![0.0; space.dimensions.len()];
        for (name, value) in &params {
            if let (Some(i), Some(v)) = (input_index(name), value.as_f64()) {
                x[i] = v;
            }
        }
        let metrics: Metrics = function
            .metrics()
            .iter()
            .zip(function.objectives(&x))
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        crate::state::ended_trial(
            &mut state,
            trial,
            params,
            metrics,
            crate::trial::EndState::Complete,
        );
    }
    state
}

/// The synthetic objective of an experiment.
pub struct FunctionObjective {
    function: Function,
    epochs: u32,
}

impl FunctionObjective {
    /// The objective of `experiment`: a known `function`, and `[space]` inputs x1..xn that fit it.
    pub fn new(experiment: &Experiment) -> Result<FunctionObjective> {
        experiment.refuse_other_options(&["function", "epochs"])?;
        let name = match experiment.objective.options.get("function") {
            Some(toml::Value::String(name)) => name.as_str(),
            Some(_) => {
                return Err(experiment.error_at(
                    &["objective", "function"],
                    format!("`function` must be a name: {}", quote_list(Function::NAMES)),
                ));
            }
            None => {
                return Err(experiment.error_at(
                    &["objective", "kind"],
                    format!(
                        "`kind = \"function\"` needs `function = \"branin\"` in [objective] (or {})",
                        quote_list(Function::NAMES)
                    ),
                ));
            }
        };
        let function = Function::from_name(name).ok_or_else(|| {
            let hint = crate::text::hint(name, Function::NAMES.iter().copied());
            experiment.error_at(
                &["objective", "function"],
                format!(
                    "unknown function `{name}`.{hint} Use {}",
                    quote_list(Function::NAMES)
                ),
            )
        })?;
        check_inputs(experiment, name, function)?;
        for goal in experiment.objective.goals() {
            if goal.direction == crate::trial::Direction::Maximize
                && function.metrics().contains(&goal.metric.as_str())
            {
                return Err(experiment.error_at(
                    &["objective", "direction"],
                    format!(
                        "`{name}` is to be minimised: `{}` cannot be maximised (write direction = \"minimize\", or one \"minimize\" per metric)",
                        goal.metric
                    ),
                ));
            }
        }
        Ok(FunctionObjective {
            function,
            epochs: experiment.int_option("epochs", 1)?.unwrap_or(1) as u32,
        })
    }
}

/// The `[space]` keys are x1, x2, ... and as many as the function takes.
fn check_inputs(experiment: &Experiment, name: &str, function: Function) -> Result<()> {
    let mut inputs: Vec<usize> = Vec::new();
    for name in experiment.space.names() {
        match input_index(name) {
            Some(i) => inputs.push(i),
            None => {
                return Err(experiment.error_at(
                    &["space", name],
                    format!("a function's inputs are `x1`, `x2`, ...; `{name}` is not one"),
                ));
            }
        }
    }
    inputs.sort();
    if function.metrics().len() > 1 {
        for d in &experiment.space.dimensions {
            let inside = match d.distribution {
                crate::space::Distribution::Uniform { low, high } => low >= 0.0 && high <= 1.0,
                _ => false,
            };
            if !inside {
                return Err(experiment.error_at(
                    &["space", &d.name],
                    format!(
                        "`{name}` is defined on [0, 1]: write {} = {{ uniform = [0.0, 1.0] }}",
                        d.name
                    ),
                ));
            }
        }
    }
    let (count, exact) = function.inputs();
    let contiguous = inputs.iter().enumerate().all(|(i, &x)| i == x);
    if !contiguous || inputs.len() < count || (exact && inputs.len() != count) {
        let want = if exact {
            format!("exactly {count}")
        } else {
            format!("at least {count}")
        };
        return Err(experiment.error_at(
            &["space"],
            format!(
                "`{name}` takes {want} inputs, named x1, x2, ... in [space]; found {}",
                inputs.len()
            ),
        ));
    }
    Ok(())
}

impl Objective for FunctionObjective {
    fn metrics(&self, _experiment: &Experiment) -> Result<Vec<String>> {
        Ok(self
            .function
            .metrics()
            .iter()
            .map(|m| m.to_string())
            .collect())
    }

    fn max_epochs(&self, _experiment: &Experiment) -> Result<Option<u32>> {
        Ok(Some(self.epochs))
    }

    fn run(&self, trial: &mut Trial<'_>) -> std::result::Result<TrialSummary, TrialError> {
        let mut inputs: Vec<(usize, f64)> = trial
            .params()
            .iter()
            .filter_map(|(name, value)| Some((input_index(name)?, value.as_f64()?)))
            .collect();
        inputs.sort_by_key(|(i, _)| *i);
        let x: Vec<f64> = inputs.into_iter().map(|(_, v)| v).collect();
        let values = self.function.objectives(&x);
        for epoch in trial.journaled_epochs() + 1..=self.epochs {
            let at = |value: f64| match epoch == self.epochs {
                true => value,
                false => value + (1.0 + value.abs()) * 0.7f64.powi(epoch as i32 - 1),
            };
            let metrics: Metrics = self
                .function
                .metrics()
                .iter()
                .zip(&values)
                .map(|(name, &value)| (name.to_string(), at(value)))
                .collect();
            if trial.report(epoch, metrics) == Decision::Stop {
                break;
            }
        }
        Ok(TrialSummary::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_minima() {
        let pi = std::f64::consts::PI;
        assert!(
            (Function::Branin.evaluate(&[pi, 2.275]) - Function::Branin.minimum(2)).abs() < 1e-5
        );
        let h = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573];
        assert!((Function::Hartmann6.evaluate(&h) - Function::Hartmann6.minimum(6)).abs() < 1e-4);
        assert_eq!(Function::Rosenbrock.evaluate(&[1.0, 1.0, 1.0]), 0.0);
        assert_eq!(input_index("x3"), Some(2));
        assert_eq!(input_index("x0"), None);
        // On the front (x2.. = 0) g = 1; away from it g grows to 10.
        let front = Function::Zdt1.objectives(&[0.25, 0.0, 0.0]);
        assert_eq!(front, [0.25, 0.5]);
        assert!((Function::Zdt2.objectives(&[0.5, 1.0, 1.0])[1] - 9.975).abs() < 1e-12);
        let zdt3 = Function::Zdt3.objectives(&[0.05, 0.0])[1];
        assert!((zdt3 - (1.0 - 0.05f64.sqrt() - 0.05)).abs() < 1e-12);
        let on_front = Function::Dtlz2.objectives(&[0.3, 0.7, 0.5, 0.5]);
        let radius: f64 = on_front.iter().map(|f| f * f).sum();
        assert!((radius - 1.0).abs() < 1e-12, "{on_front:?}");
    }

    #[test]
    fn the_shifted_functions_have_their_minimum_at_the_shift_not_the_centre() {
        let optimum: Vec<f64> = (0..5).map(shift).collect();
        for f in [Function::Ellipsoid, Function::Rastrigin, Function::Ackley] {
            assert!(f.evaluate(&optimum).abs() < 1e-12, "{f:?}");
            assert!(f.evaluate(&[0.0; 5]) > 1.0, "{f:?} at the centre");
        }
        assert!(optimum.iter().all(|v| v.abs() <= 2.0));
        let st = Function::StyblinskiTang;
        assert!((st.evaluate(&[-2.903_534; 3]) - st.minimum(3)).abs() < 1e-6);
    }
}
