//! How much better than the best trial the rest of the space may still be: the regret bound of
//! Makarova et al. ("Automatic Termination for Hyperparameter Optimization", AutoML 2022), the
//! idea of Optuna's Terminator. A Gaussian process fitted to the complete trials' losses gives
//! an upper confidence bound at each trial and a lower one everywhere; the regret bound is the
//! lowest upper bound among the trials minus the lowest lower bound in the space. Once it is
//! below the noise between trials, further trials are unlikely to find a better configuration
//! by more than measuring the same one again would.

use super::model::Axis;
use super::{FIT_STEPS, GpSampler, MAX_FITTED, Standardised, prior, snapped};
use crate::rng::{Stream, stream};
use crate::space::Space;
use crate::state::TrialRecord;
use crate::trial::{EndState, Goal};

/// Complete trials before the bound is computed (Optuna's Terminator waits for 20).
pub const MIN_TRIALS: usize = 20;
/// The bound holds with probability 1 - DELTA (the confidence of the bounds' width).
const DELTA: f64 = 0.1;

/// The regret bound and the noise, both in the objective's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegretBound {
    /// How much better than the best trial some configuration may still be.
    pub bound: f64,
    /// The noise between trials: the standard deviation the model attributes to noise.
    pub noise: f64,
}

/// The regret bound of `goal` over `trials` in `space` (a pure function of them), `None`
/// before [`MIN_TRIALS`] complete trials or when no model fits. The better half of the trials
/// (and at least [`MIN_TRIALS`]) are modelled: the bound is about where the best lies.
pub fn regret_bound(space: &Space, goal: &Goal, trials: &[TrialRecord]) -> Option<RegretBound> {
    let axes: Vec<(usize, Axis)> = GpSampler::axes(space);
    if axes.is_empty() {
        return None;
    }
    let mut observed: Vec<(Vec<f64>, f64)> = (trials.iter())
        .filter(|t| t.state == crate::state::TrialState::Ended(EndState::Complete))
        .filter_map(|t| {
            let loss = t.losses(std::slice::from_ref(goal))?[0];
            let unit = space.unit_from_params(&t.params)?;
            let x = axes.iter().map(|(i, _)| unit[*i]).collect();
            loss.is_finite().then_some((x, loss))
        })
        .collect();
    if observed.len() < MIN_TRIALS {
        return None;
    }
    observed.sort_by(|a, b| a.1.total_cmp(&b.1));
    observed.truncate((observed.len() / 2).max(MIN_TRIALS));
    let (x, losses): (Vec<Vec<f64>>, Vec<f64>) = observed.into_iter().unzip();
    let n = x.len();
    let data = Standardised::new(&axes, x, losses, &[]);
    let dims = axes.len();
    let start = (0..dims + 2).map(|j| prior(dims, j).0).collect();
    let theta = data.data.subset(MAX_FITTED).fit(start, FIT_STEPS);
    let model = data.data.model(&theta)?;
    // The width of the bounds (Srinivas et al. 2010), divided by 5 as Optuna's Terminator does.
    let beta = 2.0
        * (dims as f64 * (n * n) as f64 * std::f64::consts::PI.powi(2) / (6.0 * DELTA)).ln()
        / 5.0;
    let width = beta.max(0.0).sqrt();
    let upper = |x: &[f64]| {
        let (mean, variance) = model.predict(x);
        mean + width * variance.sqrt()
    };
    let lower = |x: &[f64]| {
        let (mean, variance) = model.predict(x);
        mean - width * variance.sqrt()
    };
    let best_upper = (data.data.x.iter())
        .map(|x| upper(x))
        .fold(f64::INFINITY, f64::min);
    let mut rng = stream(n as u64, Stream::Sampler, &[]);
    let snap = |x: Vec<f64>| snapped(space, &axes, x);
    let sampler = GpSampler::new(0, goal.clone(), &[], 0);
    let lowest = sampler.propose(&data.data, &|x| -lower(x), &snap, &mut rng);
    let bound = (best_upper - lower(&lowest)).max(0.0);
    Some(RegretBound {
        bound: bound * data.sd,
        noise: theta[dims + 1].exp().sqrt() * data.sd,
    })
}
