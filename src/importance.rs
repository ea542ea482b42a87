//! Which hyperparameters mattered: PED-ANOVA (Watanabe, Bansal and Hutter, "PED-ANOVA:
//! Efficiently Quantifying Hyperparameter Importance in Arbitrary Subspaces", IJCAI 2023).
//!
//! For each parameter, compare where the best trials (the top `GAMMA` fraction) put it with where
//! all trials put it: the Pearson divergence between the two densities, estimated with 1-D
//! kernels in the unit cube (so log ranges count in log space, as they are searched). A parameter
//! whose value does not matter is spread the same way among the best trials as among all of
//! them: divergence near 0. Importances are scaled to sum to 1. Unlike fANOVA it needs no model
//! to fit, and its cost stops growing past a few thousand trials.

use crate::space::{Distribution, Space};
use crate::state::{SweepState, TrialState};
use crate::trial::{Direction, EndState};

/// The fraction of trials that counts as best.
pub const GAMMA: f64 = 0.1;
/// Grid points on which densities are compared.
const GRID: usize = 200;

/// `(parameter, importance)`, most important first; empty with fewer than 10 complete trials.
pub fn importance(
    state: &SweepState,
    space: &Space,
    metric: &str,
    direction: Direction,
) -> Vec<(String, f64)> {
    let mut trials: Vec<(Vec<f64>, f64)> = state
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Ended(EndState::Complete))
        .filter_map(|t| {
            let value = t.best_value(metric, direction)?;
            Some((space.unit_from_params(&t.params)?, direction.loss(value)))
        })
        .collect();
    if trials.len() < 10 || space.dimensions.is_empty() {
        return Vec::new();
    }
    trials.sort_by(|a, b| a.1.total_cmp(&b.1));
    let top = ((trials.len() as f64 * GAMMA).ceil() as usize).max(2);
    let divergences: Vec<f64> = space
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            // A conditional parameter is judged on the trials where it was active.
            let present = |trials: &[(Vec<f64>, f64)]| -> Vec<f64> {
                trials
                    .iter()
                    .map(|(p, _)| p[d])
                    .filter(|u| !u.is_nan())
                    .collect()
            };
            let (best, all) = (present(&trials[..top]), present(&trials));
            if best.len() < 2 || all.len() < 10 {
                return 0.0;
            }
            pearson_divergence(&dim.distribution, &best, &all)
        })
        .collect();
    let total: f64 = divergences.iter().sum();
    let mut out: Vec<(String, f64)> = space
        .dimensions
        .iter()
        .zip(&divergences)
        .map(|(d, &v)| (d.name.clone(), if total > 0.0 { v / total } else { 0.0 }))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// ∫ (p_top / p_all - 1)² p_all: how differently the best trials are spread.
fn pearson_divergence(distribution: &Distribution, top: &[f64], all: &[f64]) -> f64 {
    if let Distribution::Choice(values) = distribution {
        let k = values.len();
        let frequencies = |points: &[f64]| -> Vec<f64> {
            let mut counts = vec![1.0; k]; // one pseudo-count each, so no category has zero
            for &u in points {
                counts[crate::space::cell(u, k)] += 1.0;
            }
            let total: f64 = counts.iter().sum();
            counts.into_iter().map(|c| c / total).collect()
        };
        let (p, q) = (frequencies(top), frequencies(all));
        return p
            .iter()
            .zip(&q)
            .map(|(p, q)| q * (p / q - 1.0).powi(2))
            .sum();
    }
    let (p, q) = (kde(top), kde(all));
    let step = 1.0 / GRID as f64;
    (0..GRID)
        .map(|i| {
            let x = (i as f64 + 0.5) * step;
            let (p, q) = (p(x), q(x));
            q * (p / q - 1.0).powi(2) * step
        })
        .sum()
}

/// Bins the points are gathered into before the kernels are summed: a kernel is at least 0.02
/// wide, 40 bins, so moving a point to its bin's centre changes a density by under 1e-4 of
/// itself, and the cost stops growing with the trials past a few thousand.
const BINS: usize = 2048;

/// A Gaussian kernel density over `[0, 1]` with Scott's bandwidth (at least 0.02), plus a
/// small flat floor so ratios stay finite.
fn kde(points: &[f64]) -> impl Fn(f64) -> f64 {
    let n = points.len() as f64;
    let mean = points.iter().sum::<f64>() / n;
    let std = (points.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let width = (1.06 * std * n.powf(-0.2)).max(0.02);
    let mut counts = vec![0u32; BINS];
    for &p in points {
        counts[((p * BINS as f64) as usize).min(BINS - 1)] += 1;
    }
    let bins: Vec<(f64, f64)> = (counts.iter().enumerate())
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| ((i as f64 + 0.5) / BINS as f64, c as f64))
        .collect();
    move |x: f64| {
        let density: f64 = bins
            .iter()
            .map(|&(centre, count)| {
                let z = (x - centre) / width;
                count * (-0.5 * z * z).exp()
            })
            .sum::<f64>()
            / (n * width * std::f64::consts::TAU.sqrt());
        density + 1e-3
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dimension, ParamValue, Params};

    #[test]
    fn the_parameter_that_drives_the_objective_ranks_first() {
        let space = Space {
            dimensions: ["noise", "signal", "kind"]
                .iter()
                .map(|name| Dimension {
                    name: name.to_string(),
                    distribution: if *name == "kind" {
                        Distribution::Choice(vec![
                            ParamValue::Str("a".into()),
                            ParamValue::Str("b".into()),
                        ])
                    } else {
                        Distribution::Uniform {
                            low: 0.0,
                            high: 1.0,
                        }
                    },
                    points: None,
                    when: Vec::new(),
                })
                .collect(),
        };
        let mut state = SweepState::default();
        let mut rng = crate::rng::stream(1, crate::rng::Stream::Sampler, &[]);
        for n in 0..200u64 {
            let point: Vec<f64> = (0..3).map(|_| rand::Rng::random::<f64>(&mut rng)).collect();
            let params: Params = space.params_from_unit(&point);
            let value = (params["signal"].as_f64().unwrap() - 0.7).powi(2);
            crate::state::complete_trial(&mut state, n, params, "value", value);
        }
        let ranked = importance(&state, &space, "value", Direction::Minimize);
        assert_eq!(ranked[0].0, "signal", "{ranked:?}");
        assert!(ranked[0].1 > 0.8, "{ranked:?}");
        let total: f64 = ranked.iter().map(|r| r.1).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_conditional_parameter_is_judged_on_the_trials_where_it_was_active() {
        use crate::space::Condition;
        let optimizer = Dimension::new(
            "optimizer",
            Distribution::Choice(vec![
                ParamValue::Str("sgd".into()),
                ParamValue::Str("adamw".into()),
            ]),
        );
        let mut momentum = Dimension::new(
            "momentum",
            Distribution::Uniform {
                low: 0.0,
                high: 1.0,
            },
        );
        momentum.when = vec![Condition {
            parent: "optimizer".into(),
            values: vec![ParamValue::Str("sgd".into())],
        }];
        let space = Space {
            dimensions: vec![optimizer, momentum],
        };
        // adamw is what matters; momentum, where it exists, is noise.
        let mut state = SweepState::default();
        for n in 0..60u64 {
            let sgd = n % 2 == 0;
            let mut params = Params::from([(
                "optimizer".to_string(),
                ParamValue::Str(if sgd { "sgd" } else { "adamw" }.into()),
            )]);
            if sgd {
                params.insert(
                    "momentum".into(),
                    ParamValue::Float((n as f64 * 0.618) % 1.0),
                );
            }
            let value = if sgd {
                1.0 + (n % 7) as f64 * 0.01
            } else {
                0.1
            };
            crate::state::complete_trial(&mut state, n, params, "value", value);
        }
        let ranked = importance(&state, &space, "value", Direction::Minimize);
        assert_eq!(ranked[0].0, "optimizer", "{ranked:?}");
        assert!(ranked.iter().all(|(_, v)| v.is_finite()), "{ranked:?}");
    }
}
