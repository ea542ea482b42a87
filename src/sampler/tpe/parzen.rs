//! TPE's densities over the unit cube: one truncated Gaussian per good (or bad) trial and a
//! broad prior per dimension, or one joint density over all dimensions (`multivariate`). The
//! bandwidths, weights, prior and categorical kernels are Optuna 5's (Watanabe, "Tree-Structured
//! Parzen Estimator: Understanding Its Algorithm Components", 2023).

use crate::rng::Rng;
use crate::space::{Distribution, Space, cell, cell_centre};
use rand::Rng as _;

/// A Gaussian truncated to `[0, 1)`, with its normalisation computed once.
pub(super) struct Kernel {
    mean: f64,
    width: f64,
    /// 1 / (width * sqrt(2 pi) * the mass inside [0, 1)).
    scale: f64,
}

/// The prior every density mixes in, with the weight of one trial: a Gaussian at the middle of
/// the range as wide as the range (nearly flat), as in Optuna.
fn prior() -> Kernel {
    Kernel::new(0.5, 1.0)
}

/// Observations of one group (good or bad): points in the unit cube and their weights (NaN
/// where a dimension was inactive in that trial).
pub(super) type Group = [(Vec<f64>, f64)];

/// The mixture weights of a group's trials, oldest first (Optuna's `default_weights`): equal
/// up to 25 trials; past that, the 25 newest weigh 1 and the older ones ramp from 1/n up, so
/// that the model follows where the search has gone.
pub(super) fn recency_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    (0..ramp)
        .map(|i| match ramp {
            1 => 1.0 / n as f64,
            _ => 1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64,
        })
        .chain(std::iter::repeat_n(1.0, 25))
        .collect()
}

/// One dimension's density over `[0, 1)`.
pub(super) enum Density {
    /// Weighted truncated Gaussians, the prior last.
    Parzen {
        kernels: Vec<Kernel>,
        /// The components' weights, summing to 1.
        weights: Vec<f64>,
    },
    /// Category probabilities.
    Categorical(Vec<f64>),
}

/// The bandwidth of each point's kernel, in the points' order (Optuna's rule, after Bergstra
/// et al.): the larger gap to its neighbours, where the outermost points look only inwards
/// (the range's ends are no neighbours), clipped to [1 / min(100, n + 2), 1].
pub(super) fn bandwidths(points: &[f64]) -> Vec<f64> {
    let n = points.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| points[a].total_cmp(&points[b]));
    let sorted: Vec<f64> = order.iter().map(|&i| points[i]).collect();
    let floor = 1.0 / (n as f64 + 2.0).min(100.0);
    let mut widths = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        let left = if rank == 0 {
            sorted[0]
        } else {
            sorted[rank] - sorted[rank - 1]
        };
        let right = match sorted.get(rank + 1) {
            Some(next) => next - sorted[rank],
            None => 1.0 - sorted[rank],
        };
        let width = match (rank, n) {
            (_, 1) => left.max(right),
            (0, _) => right,
            (r, _) if r == n - 1 => left,
            _ => left.max(right),
        };
        widths[i] = width.clamp(floor, 1.0);
    }
    widths
}

/// One kernel per point, in the points' order, with [`bandwidths`].
pub(super) fn gaussian_kernels(points: &[f64]) -> Vec<Kernel> {
    points
        .iter()
        .zip(bandwidths(points))
        .map(|(&mean, width)| Kernel::new(mean, width))
        .collect()
}

impl Kernel {
    fn new(mean: f64, width: f64) -> Kernel {
        let mass = normal_cdf((1.0 - mean) / width) - normal_cdf(-mean / width);
        Kernel {
            mean,
            width,
            scale: 1.0 / (width * std::f64::consts::TAU.sqrt() * mass.max(1e-12)),
        }
    }

    /// The density at `u`. Beyond 11 widths a kernel adds under 1e-26 of its peak, nothing
    /// next to the prior, and skipping its exp() is most of the cost with many trials.
    pub(super) fn density(&self, u: f64) -> f64 {
        let z = (u - self.mean) / self.width;
        if z.abs() > 11.0 {
            0.0
        } else {
            (-0.5 * z * z).exp() * self.scale
        }
    }

    /// A draw inside `[0, 1)`, by rejection.
    pub(super) fn sample(&self, rng: &mut Rng) -> f64 {
        for _ in 0..64 {
            let x = self.mean + self.width * crate::sampler::standard_normal(rng);
            if (0.0..1.0).contains(&x) {
                return x;
            }
        }
        self.mean.clamp(0.0, 1.0 - f64::EPSILON)
    }
}

/// The mixture weights of trials weighing `weights` and the prior (weight 1), summing to 1.
fn normalised(weights: impl Iterator<Item = f64> + Clone) -> Vec<f64> {
    let total: f64 = weights.clone().sum::<f64>() + 1.0;
    weights.map(|w| w / total).chain([1.0 / total]).collect()
}

/// A categorical kernel of a group of `n` trials over `categories` (Optuna's): its own
/// category gets 1 + 1/(n+1), every category 1/(n+1), normalised. With few trials it is broad;
/// with many, nearly the trial's own category.
#[derive(Debug, Clone, Copy)]
pub(super) struct CategoryKernel {
    own: f64,
    other: f64,
}

impl CategoryKernel {
    pub(super) fn new(n: usize, categories: usize) -> CategoryKernel {
        let base = 1.0 / (n as f64 + 1.0);
        let total = 1.0 + base * categories as f64;
        CategoryKernel {
            own: (1.0 + base) / total,
            other: base / total,
        }
    }

    /// The probability of category `c` under the kernel of a trial of category `own`.
    pub(super) fn probability(&self, own: usize, c: usize) -> f64 {
        if c == own { self.own } else { self.other }
    }
}

/// The multivariate variant (Falkner et al., BOHB, ICML 2018; Optuna's default for one
/// objective): one component per trial, the product of its dimensions' kernels, so values that
/// work well together are proposed together.
pub(super) struct Joint {
    dims: Vec<JointDim>,
    /// The components' weights, the prior's last, summing to 1.
    weights: Vec<f64>,
    /// The prior's kernel along every numeric dimension.
    prior: Kernel,
}

/// One dimension of the joint model: the trials' kernels, or their categories (`None` where
/// the dimension was inactive in that trial: there it is flat).
pub(super) enum JointDim {
    Gauss(Vec<Option<Kernel>>),
    Choice {
        observed: Vec<Option<usize>>,
        categories: usize,
        kernel: CategoryKernel,
    },
}

/// The most finished bad trials `g` is fit to. Past it, `g` is fit to every k-th of them in loss
/// order, an even sample of the whole bad group: a proposal then costs the same at 10,000
/// trials as at 1,000 (fitting and scoring grow with the kernels), and sweeps of up to 1,025
/// finished trials are unaffected.
pub(super) const MAX_BAD: usize = 1000;

impl Joint {
    pub(super) fn fit(space: &Space, group: &Group) -> Joint {
        let dims = space
            .dimensions
            .iter()
            .enumerate()
            .map(|(d, dim)| {
                let points: Vec<f64> = group.iter().map(|(p, _)| p[d]).collect();
                let present: Vec<f64> = points.iter().copied().filter(|u| !u.is_nan()).collect();
                match &dim.distribution {
                    Distribution::Choice(values) => JointDim::Choice {
                        observed: points
                            .iter()
                            .map(|&u| (!u.is_nan()).then(|| cell(u, values.len())))
                            .collect(),
                        categories: values.len(),
                        kernel: CategoryKernel::new(present.len(), values.len()),
                    },
                    _ => {
                        let mut kernels = gaussian_kernels(&present).into_iter();
                        JointDim::Gauss(
                            points
                                .iter()
                                .map(|u| if u.is_nan() { None } else { kernels.next() })
                                .collect(),
                        )
                    }
                }
            })
            .collect();
        Joint {
            dims,
            weights: normalised(group.iter().map(|(_, w)| *w)),
            prior: prior(),
        }
    }

    /// The index of the prior component.
    fn prior_component(&self) -> usize {
        self.weights.len() - 1
    }

    pub(super) fn sample(&self, rng: &mut Rng) -> Vec<f64> {
        let component = crate::sampler::pick(&self.weights, rng);
        let is_prior = component == self.prior_component();
        self.dims
            .iter()
            .map(|dim| match dim {
                JointDim::Gauss(_) if is_prior => self.prior.sample(rng),
                JointDim::Gauss(kernels) => match &kernels[component] {
                    Some(kernel) => kernel.sample(rng),
                    None => rng.random(),
                },
                JointDim::Choice { categories, .. } if is_prior => {
                    cell_centre(rng.random_range(0..*categories), *categories)
                }
                JointDim::Choice {
                    observed,
                    categories,
                    kernel,
                } => {
                    let Some(own) = observed[component] else {
                        return rng.random();
                    };
                    let probabilities: Vec<f64> = (0..*categories)
                        .map(|c| kernel.probability(own, c))
                        .collect();
                    cell_centre(crate::sampler::pick(&probabilities, rng), *categories)
                }
            })
            .collect()
    }

    /// The log density at `point`, over the dimensions `active` in it (an inactive one is
    /// left out: its coordinate means nothing).
    pub(super) fn ln_density(&self, point: &[f64], active: &[bool]) -> f64 {
        let on = || {
            self.dims
                .iter()
                .zip(point)
                .zip(active)
                .filter(|(_, on)| **on)
        };
        let prior_density: f64 = on()
            .map(|((dim, &u), _)| match dim {
                JointDim::Gauss(_) => self.prior.density(u),
                JointDim::Choice { .. } => 1.0,
            })
            .product();
        let mixture: f64 = (0..self.prior_component())
            .map(|i| {
                self.weights[i]
                    * on()
                        .map(|((dim, &u), _)| match dim {
                            JointDim::Gauss(kernels) => {
                                kernels[i].as_ref().map_or(1.0, |k| k.density(u))
                            }
                            JointDim::Choice {
                                observed,
                                categories,
                                kernel,
                            } => observed[i].map_or(1.0, |own| {
                                kernel.probability(own, cell(u, *categories)) * *categories as f64
                            }),
                        })
                        .product::<f64>()
            })
            .sum::<f64>()
            + self.weights[self.prior_component()] * prior_density;
        mixture.ln()
    }
}

impl Density {
    /// One dimension's density from `points` (its coordinates in the trials where it was
    /// active) with `weights`.
    pub(super) fn fit(distribution: &Distribution, points: &[f64], weights: &[f64]) -> Density {
        let mixture = normalised(weights.iter().copied());
        if let Distribution::Choice(values) = distribution {
            let k = values.len();
            let kernel = CategoryKernel::new(points.len(), k);
            let mut p = vec![mixture[points.len()] / k as f64; k];
            for (&u, w) in points.iter().zip(&mixture) {
                let own = cell(u, k);
                for (c, pc) in p.iter_mut().enumerate() {
                    *pc += w * kernel.probability(own, c);
                }
            }
            return Density::Categorical(p);
        }
        let mut kernels = gaussian_kernels(points);
        kernels.push(prior());
        Density::Parzen {
            kernels,
            weights: mixture,
        }
    }

    pub(super) fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Density::Categorical(p) => cell_centre(crate::sampler::pick(p, rng), p.len()),
            Density::Parzen { kernels, weights } => {
                kernels[crate::sampler::pick(weights, rng)].sample(rng)
            }
        }
    }

    pub(super) fn ln_density(&self, u: f64) -> f64 {
        match self {
            Density::Categorical(p) => (p[cell(u, p.len())] * p.len() as f64).ln(),
            Density::Parzen { kernels, weights } => kernels
                .iter()
                .zip(weights)
                .map(|(k, w)| w * k.density(u))
                .sum::<f64>()
                .ln(),
        }
    }
}

/// Φ(z), from erf by Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
pub(super) fn normal_cdf(z: f64) -> f64 {
    // Past 8 standard deviations the answer is 0 or 1 to double precision: most kernels sit
    // well inside [0, 1), and this spares their two erf evaluations.
    if z.abs() > 8.0 {
        return if z > 0.0 { 1.0 } else { 0.0 };
    }
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}
