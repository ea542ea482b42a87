//! What a candidate promises over the feasible trials: the expected improvement of the best
//! loss for one objective, and for several the expected improvement of the Pareto front's
//! hypervolume (EHVI; Emmerich et al. 2006), estimated from a fixed set of joint normal draws
//! so that the same history gives the same estimate.

use super::model::Model;
use crate::pareto;
use crate::rng::Rng;

/// Draws of the predictive distribution per candidate for the hypervolume's estimate.
const DRAWS: usize = 64;

/// The acquisition's improvement term.
pub(super) enum Improvement<'a> {
    /// No feasible trial yet: nothing to improve on.
    Nothing,
    /// One objective: log expected improvement over the best feasible loss.
    Best { model: Model<'a>, best: f64 },
    /// Several: the front (feasible, non-dominated losses in standard units), its reference
    /// point and hypervolume, and the standard normal draws shared by every candidate.
    Front {
        models: Vec<Model<'a>>,
        front: Vec<Vec<f64>>,
        reference: Vec<f64>,
        volume: f64,
        draws: Vec<Vec<f64>>,
    },
}

impl<'a> Improvement<'a> {
    /// The improvement term for `models` (one per objective) over the `feasible` trials'
    /// losses, its draws taken from `rng`.
    pub(super) fn new(models: Vec<Model<'a>>, feasible: &[Vec<f64>], rng: &mut Rng) -> Self {
        if feasible.is_empty() {
            return Improvement::Nothing;
        }
        if models.len() == 1 {
            let best = feasible.iter().map(|l| l[0]).fold(f64::INFINITY, f64::min);
            let model = models.into_iter().next().expect("one model");
            return Improvement::Best { model, best };
        }
        let ranks = pareto::ranks(feasible);
        let front: Vec<Vec<f64>> = (feasible.iter().zip(&ranks))
            .filter(|(_, r)| **r == 0)
            .map(|(l, _)| l.clone())
            .collect();
        let reference = pareto::reference(feasible);
        let volume = pareto::hypervolume(&front, &reference);
        let draws = (0..DRAWS)
            .map(|_| {
                (0..models.len())
                    .map(|_| crate::sampler::standard_normal(rng))
                    .collect()
            })
            .collect();
        Improvement::Front {
            models,
            front,
            reference,
            volume,
            draws,
        }
    }

    /// The log of the expected improvement at `x`; `None` with nothing to improve on.
    pub(super) fn log_at(&self, x: &[f64]) -> Option<f64> {
        match self {
            Improvement::Nothing => None,
            Improvement::Best { model, best } => Some(model.log_ei(x, *best)),
            Improvement::Front {
                models,
                front,
                reference,
                volume,
                draws,
            } => {
                let predicted: Vec<(f64, f64)> = (models.iter())
                    .map(|m| {
                        let (mean, variance) = m.predict(x);
                        (mean, variance.sqrt())
                    })
                    .collect();
                let mut total = 0.0;
                for z in draws {
                    let y: Vec<f64> = (predicted.iter().zip(z))
                        .map(|((mean, sd), z)| mean + sd * z)
                        .collect();
                    if front.iter().any(|f| f.iter().zip(&y).all(|(a, b)| a <= b)) {
                        continue;
                    }
                    let mut with = front.clone();
                    with.push(y);
                    total += pareto::hypervolume(&with, reference) - volume;
                }
                Some((total / draws.len() as f64).max(1e-300).ln())
            }
        }
    }
}
