//! The Gaussian process of `gp`: a Matérn 5/2 kernel with one length scale per dimension (a
//! choice counts as distance 1 between different categories), a signal and a noise variance
//! fitted by maximising the marginal likelihood times weak priors, and what the acquisition
//! asks of it (predictions, log expected improvement, the probability of lying below a bound).

use crate::space::cell;
use nalgebra::{DMatrix, DVector};

/// Keeps at most `max` of the points: the best `max / 2` by loss and an even sample of the
/// others, in their order.
pub(super) fn keep_at_most(x: &mut Vec<Vec<f64>>, losses: &mut Vec<f64>, max: usize) {
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

/// What the model knows of a dimension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Axis {
    /// A coordinate in [0, 1).
    Numeric,
    /// A category among this many.
    Choice(usize),
}

/// The training data: points (unit coordinates; a choice as its cell centre) and losses.
pub(super) struct Data {
    pub(super) axes: Vec<Axis>,
    pub(super) x: Vec<Vec<f64>>,
    pub(super) y: DVector<f64>,
    /// Per dimension, the n x n matrix of [`Data::term`] between the points: what the kernel
    /// needs of them, computed once per fit.
    terms: Vec<DMatrix<f64>>,
}

/// A fitted model.
pub(super) struct Model<'a> {
    pub(super) data: &'a Data,
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
    pub(super) fn subset(&self, max: usize) -> Data {
        let (mut x, mut y) = (self.x.clone(), self.y.iter().copied().collect());
        keep_at_most(&mut x, &mut y, max);
        Data::new(self.axes.clone(), x, DVector::from_vec(y))
    }

    /// The data of points `x` and losses `y`.
    pub(super) fn new(axes: Vec<Axis>, x: Vec<Vec<f64>>, y: DVector<f64>) -> Data {
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
pub(super) fn prior(dimensions: usize, j: usize) -> (f64, f64) {
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
    pub(super) fn fit(&self, start: Vec<f64>, iterations: usize) -> Vec<f64> {
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
    pub(super) fn model(&self, theta: &[f64]) -> Option<Model<'_>> {
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
    pub(super) fn predict(&self, x: &[f64]) -> (f64, f64) {
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
    pub(super) fn log_ei(&self, x: &[f64], best: f64) -> f64 {
        let (mean, variance) = self.predict(x);
        let sd = variance.sqrt();
        sd.ln() + log_h((best - mean) / sd)
    }
}

/// ln(z Φ(z) + φ(z)), the expected improvement of a standard normal, accurate far into the
/// left tail where both terms nearly cancel.
pub(super) fn log_h(z: f64) -> f64 {
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
pub(super) fn erfc(x: f64) -> f64 {
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

impl Model<'_> {
    /// ln P(the value at `x` is at most `threshold`).
    pub(super) fn log_probability_below(&self, x: &[f64], threshold: f64) -> f64 {
        let (mean, variance) = self.predict(x);
        let z = (threshold - mean) / variance.sqrt();
        (0.5 * erfc(-z / std::f64::consts::SQRT_2)).max(1e-300).ln()
    }
}
