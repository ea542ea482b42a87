//! Bayesian optimisation with a Gaussian process, in the unit cube.
//!
//! After `startup_trials` random trials, each proposal fits a Gaussian process to the trials'
//! losses (standardised): a Matérn 5/2 kernel with one length scale per dimension (a choice
//! counts as distance 1 between different categories, as Optuna's GPSampler does), a signal
//! variance and a noise variance, set by maximising the marginal likelihood times weak priors
//! (Rprop on the log hyperparameters, from the priors' means each time, so that a proposal
//! depends on the history alone and a resumed sweep makes the same one). The next trial maximises the
//! log expected improvement over the best loss: 512 random points and the best five trials
//! are scored, and the five best of those refined by a shrinking random local search. Running
//! trials count as the worst loss seen (a "constant liar"), so free workers spread out. With
//! constraints, each constraint's slack gets a Gaussian process of its own, and the acquisition
//! is the expected improvement over the best feasible trial times the probability that every
//! constraint holds (Gardner et al., "Bayesian Optimization with Inequality Constraints", ICML
//! 2014, as Optuna's GPSampler). Choices and parameters with a `when` are modelled only when every trial has them: the
//! others are drawn at random, as Optuna does.

use super::Sampler;
use crate::constraint::Constraint;
use crate::rng::{Rng, Stream, stream};
use crate::space::{Distribution, Params, Space, cell, cell_centre};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Goal};
use nalgebra::{DMatrix, DVector};
use rand::Rng as _;
use rayon::prelude::*;

/// Random points scored per proposal.
const RANDOM_CANDIDATES: usize = 512;
/// Candidates refined by local search.
const REFINED: usize = 5;
/// Steps of local search per refined candidate.
const LOCAL_STEPS: usize = 40;
/// Rprop steps of each hyperparameter fit.
const FIT_STEPS: usize = 40;
/// The most trials the hyperparameters are fitted to (the same choice as [`MAX_MODELLED`]):
/// a fit evaluates the likelihood [`FIT_STEPS`] times, the model once.
const MAX_FITTED: usize = 100;
/// The most finished trials a model is fit to: past it, the best half of them and an even
/// sample of the rest by loss, so that a proposal's cost (cubic in the trials)
/// stops growing with the sweep.
const MAX_MODELLED: usize = 200;

/// Keeps at most `max` of the points: the best `max / 2` by loss and an even sample of the
/// others, in their order.
fn keep_at_most(x: &mut Vec<Vec<f64>>, losses: &mut Vec<f64>, max: usize) {
    if x.len() <= max {
        return;
    }
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]).then(a.cmp(&b)));
    let mut keep = vec![false; x.len()];
    for &i in &order[..max / 2] {
        keep[i] = true;
    }
    let rest: Vec<usize> = order[max / 2..].to_vec();
    let stride = rest.len().div_ceil(max - max / 2);
    let mut sampled: Vec<usize> = rest.iter().copied().step_by(stride).collect();
    sampled.sort();
    for i in sampled {
        keep[i] = true;
    }
    let mut i = 0;
    x.retain(|_| (keep[i], i += 1).0);
    let mut j = 0;
    losses.retain(|_| (keep[j], j += 1).0);
}

/// The GP sampler.
pub struct GpSampler {
    seed: u64,
    goal: Goal,
    constraints: Vec<Constraint>,
    startup_trials: usize,
}

/// What the model knows of a dimension.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Axis {
    /// A coordinate in [0, 1).
    Numeric,
    /// A category among this many.
    Choice(usize),
}

/// The training data: points (unit coordinates; a choice as its cell centre) and losses.
struct Data {
    axes: Vec<Axis>,
    x: Vec<Vec<f64>>,
    y: DVector<f64>,
    /// Per dimension, the n x n matrix of [`Data::term`] between the points: what the kernel
    /// needs of them, computed once per fit.
    terms: Vec<DMatrix<f64>>,
}

/// A fitted model.
struct Model<'a> {
    data: &'a Data,
    /// exp of the log hyperparameters: inverse squared length scales, then signal and noise
    /// variance.
    inv_ls2: Vec<f64>,
    signal: f64,
    alpha: DVector<f64>,
    k_inv: DMatrix<f64>,
}

impl Data {
    /// The per-dimension squared distances between a and b, divided by the squared length
    /// scales, summed.
    fn r2(&self, a: &[f64], b: &[f64], inv_ls2: &[f64]) -> f64 {
        self.axes
            .iter()
            .zip(a.iter().zip(b))
            .zip(inv_ls2)
            .map(|((axis, (p, q)), w)| match axis {
                Axis::Numeric => (p - q).powi(2) * w,
                Axis::Choice(n) if cell(*p, *n) != cell(*q, *n) => *w,
                Axis::Choice(_) => 0.0,
            })
            .sum()
    }

    /// One dimension's term of [`Data::r2`], before the length scale.
    fn term(axis: Axis, p: f64, q: f64) -> f64 {
        match axis {
            Axis::Numeric => (p - q).powi(2),
            Axis::Choice(n) => f64::from(cell(p, n) != cell(q, n)),
        }
    }

    /// At most `max` of the points, as [`keep_at_most`] chooses them.
    fn subset(&self, max: usize) -> Data {
        let (mut x, mut y) = (self.x.clone(), self.y.iter().copied().collect());
        keep_at_most(&mut x, &mut y, max);
        Data::new(self.axes.clone(), x, DVector::from_vec(y))
    }

    /// The data of points `x` and losses `y`.
    fn new(axes: Vec<Axis>, x: Vec<Vec<f64>>, y: DVector<f64>) -> Data {
        let n = x.len();
        let terms = (0..axes.len())
            .map(|d| DMatrix::from_fn(n, n, |i, j| Data::term(axes[d], x[i][d], x[j][d])))
            .collect();
        Data { axes, x, y, terms }
    }
}

/// The log posterior of some hyperparameters, with what the model needs of the kernel matrix.
struct Evaluation {
    log_post: f64,
    /// In the log hyperparameters.
    gradient: Vec<f64>,
    /// K^-1 y.
    alpha: DVector<f64>,
    k_inv: DMatrix<f64>,
}

/// Matérn 5/2 of a scaled squared distance, and its derivative in that distance.
fn matern(r2: f64) -> (f64, f64) {
    let s = (5.0 * r2).sqrt();
    let e = (-s).exp();
    ((1.0 + s + s * s / 3.0) * e, -5.0 / 6.0 * (1.0 + s) * e)
}

/// Weak priors on the log hyperparameters (mean, standard deviation): length scales near half
/// the cube, a signal variance near the standardised data's, little noise.
fn prior(dimensions: usize, j: usize) -> (f64, f64) {
    match j {
        j if j < dimensions => (4.0f64.ln(), 1.5),
        j if j == dimensions => (0.0, 1.0),
        _ => (-8.0, 3.0),
    }
}

/// The log hyperparameters' bounds.
fn bounds(dimensions: usize, j: usize) -> (f64, f64) {
    match j {
        j if j < dimensions => ((1e-2f64).ln(), (1e4f64).ln()),
        j if j == dimensions => ((1e-2f64).ln(), (1e2f64).ln()),
        _ => ((1e-8f64).ln(), (1.0f64).ln()),
    }
}

impl Data {
    /// The kernel matrix at `theta`, its Cholesky factor, and the log posterior with its
    /// gradient; `None` when the matrix is not positive definite.
    fn evaluate(&self, theta: &[f64]) -> Option<Evaluation> {
        let (n, dims) = (self.x.len(), self.axes.len());
        let inv_ls2: Vec<f64> = theta[..dims].iter().map(|t| t.exp()).collect();
        let (signal, noise) = (theta[dims].exp(), theta[dims + 1].exp());
        let mut r2 = DMatrix::zeros(n, n);
        for (term, w) in self.terms.iter().zip(&inv_ls2) {
            r2 += term * *w;
        }
        let mut k = DMatrix::zeros(n, n);
        let mut dk = DMatrix::zeros(n, n);
        for (index, &r) in r2.iter().enumerate() {
            let (value, slope) = matern(r);
            k[index] = signal * value;
            dk[index] = signal * slope;
        }
        let kernel_only = k.clone();
        for i in 0..n {
            k[(i, i)] += noise + 1e-9;
        }
        let cholesky = k.clone().cholesky()?;
        let alpha = cholesky.solve(&self.y);
        let k_inv = cholesky.inverse();
        let log_det: f64 = cholesky.l_dirty().diagonal().iter().map(|d| d.ln()).sum();
        let mut log_post = -0.5 * self.y.dot(&alpha) - log_det;
        // W = alpha alpha^T - K^-1; the gradient of the log likelihood is tr(W dK) / 2.
        let w = &alpha * alpha.transpose() - &k_inv;
        let w_dk = w.component_mul(&dk);
        let mut gradient: Vec<f64> = self
            .terms
            .iter()
            .zip(&inv_ls2)
            .map(|(term, l)| 0.5 * w_dk.dot(term) * l)
            .collect();
        gradient.push(0.5 * w.dot(&kernel_only));
        gradient.push(0.5 * w.trace() * noise);
        for (j, g) in gradient.iter_mut().enumerate() {
            let (mean, sd) = prior(dims, j);
            log_post -= 0.5 * ((theta[j] - mean) / sd).powi(2);
            *g -= (theta[j] - mean) / (sd * sd);
        }
        Some(Evaluation {
            log_post,
            gradient,
            alpha,
            k_inv,
        })
    }

    /// The log hyperparameters that maximise the posterior, searched by Rprop from `start`.
    fn fit(&self, start: Vec<f64>, iterations: usize) -> Vec<f64> {
        let dims = self.axes.len();
        let mut theta = start;
        let mut step = vec![0.1f64; theta.len()];
        let mut last_sign = vec![0.0f64; theta.len()];
        let mut best: Option<(f64, Vec<f64>)> = None;
        for _ in 0..iterations {
            let Some(Evaluation {
                log_post: value,
                gradient,
                ..
            }) = self.evaluate(&theta)
            else {
                break;
            };
            if best.as_ref().is_none_or(|(b, _)| value > *b) {
                best = Some((value, theta.clone()));
            }
            for j in 0..theta.len() {
                let sign = gradient[j].signum();
                if sign * last_sign[j] < 0.0 {
                    step[j] = (step[j] * 0.5).max(1e-4);
                    last_sign[j] = 0.0;
                    continue;
                }
                if sign * last_sign[j] > 0.0 {
                    step[j] = (step[j] * 1.2).min(1.0);
                }
                let (low, high) = bounds(dims, j);
                theta[j] = (theta[j] + sign * step[j]).clamp(low, high);
                last_sign[j] = sign;
            }
        }
        best.map(|(_, t)| t).unwrap_or(theta)
    }

    /// The model of this data with log hyperparameters `theta`.
    fn model(&self, theta: &[f64]) -> Option<Model<'_>> {
        let dims = self.axes.len();
        let Evaluation { alpha, k_inv, .. } = self.evaluate(theta)?;
        Some(Model {
            data: self,
            inv_ls2: theta[..dims].iter().map(|t| t.exp()).collect(),
            signal: theta[dims].exp(),
            alpha,
            k_inv,
        })
    }
}

impl Model<'_> {
    /// The predictive mean and variance at `x`.
    fn predict(&self, x: &[f64]) -> (f64, f64) {
        let k: DVector<f64> = DVector::from_iterator(
            self.data.x.len(),
            self.data
                .x
                .iter()
                .map(|xi| self.signal * matern(self.data.r2(x, xi, &self.inv_ls2)).0),
        );
        let mean = k.dot(&self.alpha);
        let variance = (self.signal - k.dot(&(&self.k_inv * &k))).max(1e-12);
        (mean, variance)
    }

    /// The log expected improvement of a loss below `best` at `x`.
    fn log_ei(&self, x: &[f64], best: f64) -> f64 {
        let (mean, variance) = self.predict(x);
        let sd = variance.sqrt();
        sd.ln() + log_h((best - mean) / sd)
    }
}

/// ln(z Φ(z) + φ(z)), the expected improvement of a standard normal, accurate far into the
/// left tail where both terms nearly cancel.
fn log_h(z: f64) -> f64 {
    let ln_phi = -0.5 * z * z - 0.5 * std::f64::consts::TAU.ln();
    // Past -20 the two terms agree to 1 part in 400 and the series is exact to 4e-8.
    if z > -20.0 {
        let cdf = 0.5 * erfc(-z / std::f64::consts::SQRT_2);
        (z * cdf + ln_phi.exp()).ln()
    } else {
        // φ(z) / z² (1 - 3/z² + 15/z⁴ - 105/z⁶), the asymptotic series.
        let q = 1.0 / (z * z);
        ln_phi + q.ln() + (1.0 - 3.0 * q + 15.0 * q * q - 105.0 * q * q * q).ln()
    }
}

/// The complementary error function, with a relative error below 1.2e-7 everywhere
/// (Chebyshev fit of Press et al., Numerical Recipes, 6.2).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Training data in standard units: `(value - mean) / sd` of the values observed.
struct Standardised {
    data: Data,
    mean: f64,
    sd: f64,
}

impl Standardised {
    /// At most [`MAX_MODELLED`] of the points `x` and their `values`, and `liars` at the worst
    /// value (a constant liar, so free workers spread out), standardised.
    fn new(
        axes: &[(usize, Axis)],
        mut x: Vec<Vec<f64>>,
        mut values: Vec<f64>,
        liars: &[Vec<f64>],
    ) -> Standardised {
        let liar = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        keep_at_most(&mut x, &mut values, MAX_MODELLED);
        x.extend(liars.iter().cloned());
        values.resize(x.len(), liar);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let sd = (values.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / values.len() as f64)
            .sqrt()
            .max(1e-12);
        let y = DVector::from_iterator(values.len(), values.iter().map(|l| (l - mean) / sd));
        Standardised {
            data: Data::new(axes.iter().map(|(_, a)| *a).collect(), x, y),
            mean,
            sd,
        }
    }

    /// `value` in standard units.
    fn scaled(&self, value: f64) -> f64 {
        (value - self.mean) / self.sd
    }

    /// The model fitted to this data (hyperparameters from the priors' means, each time).
    fn fit(&self) -> Option<Model<'_>> {
        let dims = self.data.axes.len();
        let start = (0..dims + 2).map(|j| prior(dims, j).0).collect();
        let theta = self.data.subset(MAX_FITTED).fit(start, FIT_STEPS);
        self.data.model(&theta)
    }
}

/// What a proposal is made from: the objective's data, each constraint's slack (positive
/// outside its bounds), and the best feasible loss in the objective's units, if any.
struct Training {
    objective: Standardised,
    constraints: Vec<Standardised>,
    best: Option<f64>,
}

impl Model<'_> {
    /// ln P(the value at `x` is at most `threshold`).
    fn log_probability_below(&self, x: &[f64], threshold: f64) -> f64 {
        let (mean, variance) = self.predict(x);
        let z = (threshold - mean) / variance.sqrt();
        (0.5 * erfc(-z / std::f64::consts::SQRT_2)).max(1e-300).ln()
    }
}

impl GpSampler {
    /// GP-BO for a sweep seeded `seed` that optimises `goal`, after `startup_trials` random
    /// trials, steered away from trials that break `constraints`.
    pub fn new(
        seed: u64,
        goal: Goal,
        constraints: &[Constraint],
        startup_trials: usize,
    ) -> GpSampler {
        GpSampler {
            seed,
            goal,
            constraints: constraints.to_vec(),
            startup_trials,
        }
    }

    /// The modelled dimensions (those every trial has) and what each is.
    fn axes(space: &Space) -> Vec<(usize, Axis)> {
        space
            .dimensions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.when.is_empty())
            .map(|(i, d)| match &d.distribution {
                Distribution::Choice(values) => (i, Axis::Choice(values.len())),
                _ => (i, Axis::Numeric),
            })
            .collect()
    }

    /// The trials as training data, `None` below the startup trials: the objective's (ended
    /// trials with a value, and the running ones as the worst loss seen) and each constraint's.
    fn training(
        &self,
        space: &Space,
        axes: &[(usize, Axis)],
        history: &[TrialRecord],
    ) -> Option<Training> {
        let (objective, direction) = (&self.goal.metric, self.goal.direction);
        let point = |t: &TrialRecord| -> Option<Vec<f64>> {
            let unit = space.unit_from_params(&t.params)?;
            Some(axes.iter().map(|(i, _)| unit[*i]).collect())
        };
        let mut observed: Vec<(Vec<f64>, f64, Vec<Option<f64>>)> = Vec::new();
        let mut running: Vec<Vec<f64>> = Vec::new();
        for t in history {
            match t.state {
                TrialState::Running => running.extend(point(t)),
                TrialState::Ended(EndState::Complete | EndState::Pruned) => {
                    let value = t.best_value(objective, direction);
                    if let (Some(x), Some(v)) = (point(t), value.filter(|v| v.is_finite())) {
                        let slacks = (self.constraints.iter())
                            .map(|c| c.slack(t, objective, direction))
                            .collect();
                        observed.push((x, direction.loss(v), slacks));
                    }
                }
                TrialState::Ended(EndState::Failed) => {}
            }
        }
        if observed.len() < self.startup_trials.max(2) {
            return None;
        }
        let feasible = |slacks: &[Option<f64>]| slacks.iter().all(|s| s.is_none_or(|s| s <= 0.0));
        let best_feasible = (observed.iter())
            .filter(|o| feasible(&o.2))
            .map(|o| o.1)
            .fold(f64::INFINITY, f64::min);
        let constraints = (0..self.constraints.len())
            .filter_map(|c| {
                let (x, slack): (Vec<Vec<f64>>, Vec<f64>) = (observed.iter())
                    .filter_map(|o| Some((o.0.clone(), o.2[c]?)))
                    .unzip();
                (x.len() >= 2).then(|| Standardised::new(axes, x, slack, &[]))
            })
            .collect();
        let (x, losses): (Vec<Vec<f64>>, Vec<f64>) =
            observed.into_iter().map(|o| (o.0, o.1)).unzip();
        let objective = Standardised::new(axes, x, losses, &running);
        let best = best_feasible
            .is_finite()
            .then(|| objective.scaled(best_feasible));
        Some(Training {
            objective,
            constraints,
            best,
        })
    }

    /// The point of the modelled dimensions with the largest acquisition `score`, searched
    /// around random points and the best trials of `data`.
    fn propose(
        &self,
        data: &Data,
        acquisition: &(dyn Fn(&[f64]) -> f64 + Sync),
        rng: &mut Rng,
    ) -> Vec<f64> {
        let draw = |rng: &mut Rng| -> Vec<f64> {
            data.axes
                .iter()
                .map(|axis| match axis {
                    Axis::Numeric => rng.random(),
                    Axis::Choice(n) => cell_centre(rng.random_range(0..*n), *n),
                })
                .collect()
        };
        let mut candidates: Vec<Vec<f64>> = (0..RANDOM_CANDIDATES).map(|_| draw(rng)).collect();
        let mut by_loss: Vec<usize> = (0..data.x.len()).collect();
        by_loss.sort_by(|&a, &b| data.y[a].total_cmp(&data.y[b]));
        candidates.extend(by_loss.iter().take(REFINED).map(|&i| data.x[i].clone()));
        let scores: Vec<f64> = candidates.par_iter().map(|c| acquisition(c)).collect();
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        // Each refinement's moves are drawn before any runs, so the result does not depend
        // on the number of threads.
        let starts: Vec<(Vec<f64>, f64, Rng)> = order
            .iter()
            .take(REFINED)
            .enumerate()
            .map(|(k, &i)| {
                let seed = rng.random::<u64>() ^ k as u64;
                (
                    candidates[i].clone(),
                    scores[i],
                    stream(seed, Stream::Sampler, &[]),
                )
            })
            .collect();
        let refined: Vec<(Vec<f64>, f64)> = starts
            .into_par_iter()
            .map(|(mut x, mut score, mut rng)| {
                for step in 0..LOCAL_STEPS {
                    let scale = 0.1 * 0.9f64.powi(step as i32);
                    let trial: Vec<f64> = x
                        .iter()
                        .zip(&data.axes)
                        .map(|(&v, axis)| match axis {
                            Axis::Numeric => (v + scale * super::standard_normal(&mut rng))
                                .clamp(0.0, 1.0 - f64::EPSILON),
                            Axis::Choice(n)
                                if rng.random::<f64>() < 1.0 / data.axes.len() as f64 =>
                            {
                                cell_centre(rng.random_range(0..*n), *n)
                            }
                            Axis::Choice(_) => v,
                        })
                        .collect();
                    let s = acquisition(&trial);
                    if s > score {
                        (x, score) = (trial, s);
                    }
                }
                (x, score)
            })
            .collect();
        refined
            .into_iter()
            .reduce(|a, b| if b.1 > a.1 { b } else { a })
            .map(|(x, _)| x)
            .expect("there are candidates")
    }
}

impl Sampler for GpSampler {
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params> {
        let mut rng = stream(self.seed, Stream::Sampler, &[number]);
        // Every coordinate drawn at random first (the random sampler's draws); the modelled ones
        // then come from the model.
        let mut unit: Vec<f64> = (0..space.dimensions.len()).map(|_| rng.random()).collect();
        let axes = GpSampler::axes(space);
        let Some(training) = (!axes.is_empty())
            .then(|| self.training(space, &axes, history))
            .flatten()
        else {
            return Some(space.params_from_unit(&unit));
        };
        let Some(objective) = training.objective.fit() else {
            return Some(space.params_from_unit(&unit));
        };
        let constraints: Vec<(Model<'_>, f64)> = (training.constraints.iter())
            .filter_map(|c| Some((c.fit()?, c.scaled(0.0))))
            .collect();
        // Expected improvement over the best feasible trial, times the probability that every
        // constraint holds (Gardner et al., ICML 2014); only the latter while none is feasible.
        let score = |x: &[f64]| -> f64 {
            let feasible: f64 = (constraints.iter())
                .map(|(model, threshold)| model.log_probability_below(x, *threshold))
                .sum();
            match training.best {
                Some(best) => objective.log_ei(x, best) + feasible,
                None => feasible,
            }
        };
        let x = self.propose(&training.objective.data, &score, &mut rng);
        for ((i, _), v) in axes.iter().zip(x) {
            unit[*i] = v;
        }
        Some(space.params_from_unit(&unit))
    }
}

#[cfg(test)]
mod regret;
#[cfg(test)]
mod tests;
