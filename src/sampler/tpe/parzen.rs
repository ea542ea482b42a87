//! TPE's densities over the unit cube: one truncated Gaussian per good (or bad) trial and a flat
//! prior per dimension, or one joint density over all dimensions (`multivariate`).

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

/// One dimension's density over `[0, 1)`.
pub(super) enum Density {
    /// Flat prior plus truncated Gaussians.
    Parzen(Vec<Kernel>),
    /// Category probabilities.
    Categorical(Vec<f64>),
}

/// One kernel per point, in the points' order; each as wide as the larger gap to its
/// neighbours (the interval's ends count as neighbours), at least 1 / min(100, n + 1).
pub(super) fn gaussian_kernels(points: &[f64]) -> Vec<Kernel> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a].total_cmp(&points[b]));
    let floor = 1.0 / (points.len() as f64 + 1.0).min(100.0);
    let mut kernels: Vec<Option<Kernel>> = (0..points.len()).map(|_| None).collect();
    for (rank, &i) in order.iter().enumerate() {
        let mean = points[i];
        let left = if rank == 0 {
            mean
        } else {
            mean - points[order[rank - 1]]
        };
        let right = match order.get(rank + 1) {
            Some(&next) => points[next] - mean,
            None => 1.0 - mean,
        };
        let width = left.max(right).clamp(floor, 1.0);
        let mass = normal_cdf((1.0 - mean) / width) - normal_cdf(-mean / width);
        kernels[i] = Some(Kernel {
            mean,
            width,
            scale: 1.0 / (width * std::f64::consts::TAU.sqrt() * mass.max(1e-12)),
        });
    }
    kernels.into_iter().flatten().collect()
}

impl Kernel {
    /// The density at `u`. Beyond 11 widths a kernel adds under 1e-26 of its peak, nothing
    /// next to the prior's 1, and skipping its exp() is most of the cost with many trials.
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

/// The multivariate variant (Falkner et al., BOHB, ICML 2018; Optuna's `multivariate`): one
/// component per trial, the product of its dimensions' kernels, so values that work well
/// together are proposed together.
pub(super) struct Joint {
    dims: Vec<JointDim>,
    components: usize,
}

/// One dimension of the joint model: the trials' kernels, or their categories (`None` where
/// the dimension was inactive in that trial: there it is flat).
pub(super) enum JointDim {
    Gauss(Vec<Option<Kernel>>),
    Choice {
        observed: Vec<Option<usize>>,
        categories: usize,
    },
}

/// The most finished bad trials `g` is fit to. Past it, `g` is fit to every k-th of them in loss
/// order, an even sample of the whole bad group: a proposal then costs the same at 10,000
/// trials as at 1,000 (fitting and scoring grow with the kernels), and sweeps of up to 1,025
/// finished trials are unaffected.
pub(super) const MAX_BAD: usize = 1000;

/// The weight a categorical kernel puts on its own trial's category.
pub(super) const OWN_CATEGORY: f64 = 0.8;

impl Joint {
    pub(super) fn fit(space: &Space, group: &[(Vec<f64>, f64)]) -> Joint {
        let dims = space
            .dimensions
            .iter()
            .enumerate()
            .map(|(d, dim)| {
                let points: Vec<f64> = group.iter().map(|(p, _)| p[d]).collect();
                match &dim.distribution {
                    Distribution::Choice(values) => JointDim::Choice {
                        observed: points
                            .iter()
                            .map(|&u| (!u.is_nan()).then(|| cell(u, values.len())))
                            .collect(),
                        categories: values.len(),
                    },
                    _ => {
                        let present: Vec<f64> =
                            points.iter().copied().filter(|u| !u.is_nan()).collect();
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
            components: group.len(),
        }
    }

    /// A categorical kernel's density over u in `[0, 1)`.
    pub(super) fn category_density(own: usize, categories: usize, u: f64) -> f64 {
        if categories == 1 {
            return 1.0;
        }
        let c = cell(u, categories);
        let p = if c == own {
            OWN_CATEGORY
        } else {
            (1.0 - OWN_CATEGORY) / (categories - 1) as f64
        };
        p * categories as f64
    }

    pub(super) fn sample(&self, rng: &mut Rng) -> Vec<f64> {
        let pick = rng.random_range(0..=self.components);
        self.dims
            .iter()
            .map(|dim| match dim {
                _ if pick == self.components => rng.random(), // the flat prior
                JointDim::Gauss(kernels) => match &kernels[pick] {
                    Some(kernel) => kernel.sample(rng),
                    None => rng.random(),
                },
                JointDim::Choice {
                    observed,
                    categories,
                } => {
                    let Some(own) = observed[pick] else {
                        return rng.random();
                    };
                    let c = if *categories == 1 || rng.random::<f64>() < OWN_CATEGORY {
                        own
                    } else {
                        let other = rng.random_range(0..categories - 1);
                        if other >= own { other + 1 } else { other }
                    };
                    cell_centre(c, *categories)
                }
            })
            .collect()
    }

    /// The log density at `point`, over the dimensions `active` in it (an inactive one is
    /// left out: its coordinate means nothing).
    pub(super) fn ln_density(&self, point: &[f64], active: &[bool]) -> f64 {
        let mixture: f64 = 1.0
            + (0..self.components)
                .map(|i| {
                    self.dims
                        .iter()
                        .zip(point)
                        .zip(active)
                        .filter(|(_, on)| **on)
                        .map(|((dim, &u), _)| match dim {
                            JointDim::Gauss(kernels) => {
                                kernels[i].as_ref().map_or(1.0, |k| k.density(u))
                            }
                            JointDim::Choice {
                                observed,
                                categories,
                            } => observed[i]
                                .map_or(1.0, |own| Joint::category_density(own, *categories, u)),
                        })
                        .product::<f64>()
                })
                .sum::<f64>();
        (mixture / (self.components as f64 + 1.0)).ln()
    }
}

impl Density {
    pub(super) fn fit(distribution: &Distribution, points: &[f64]) -> Density {
        if let Distribution::Choice(values) = distribution {
            let mut weights = vec![1.0; values.len()];
            for &u in points {
                weights[cell(u, values.len())] += 1.0;
            }
            let total: f64 = weights.iter().sum();
            return Density::Categorical(weights.into_iter().map(|w| w / total).collect());
        }
        Density::Parzen(gaussian_kernels(points))
    }

    pub(super) fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Density::Categorical(p) => {
                let mut r: f64 = rng.random();
                for (k, pk) in p.iter().enumerate() {
                    if r < *pk {
                        return cell_centre(k, p.len());
                    }
                    r -= pk;
                }
                cell_centre(p.len() - 1, p.len())
            }
            Density::Parzen(components) => {
                let pick = rng.random_range(0..=components.len());
                match components.get(pick) {
                    Some(kernel) => kernel.sample(rng),
                    None => rng.random(), // the flat prior
                }
            }
        }
    }

    pub(super) fn ln_density(&self, u: f64) -> f64 {
        match self {
            Density::Categorical(p) => p[cell(u, p.len())].ln(),
            Density::Parzen(components) => {
                let mixture: f64 = 1.0 + components.iter().map(|k| k.density(u)).sum::<f64>();
                (mixture / (components.len() as f64 + 1.0)).ln()
            }
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
