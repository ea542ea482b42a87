//! TPE, the tree-structured Parzen estimator (Bergstra, Bardenet, Bengio and Kégl, "Algorithms
//! for Hyper-Parameter Optimization", NeurIPS 2011) in the unit cube, with the components of
//! Optuna 5 (Watanabe, "Tree-Structured Parzen Estimator: Understanding Its Algorithm
//! Components", 2023): jointly over all dimensions by default for one objective, one dimension at
//! a time for several (or as `multivariate` says).
//!
//! After `startup_trials` random trials, the trials with a result are split into the best
//! ("good": `gamma` of them, at most 25 with one objective) and the rest ("bad"). Each group
//! gets a density over the unit cube: a weighted mixture of one kernel per trial (a truncated
//! Gaussian, as wide as the larger gap to its neighbours; for a choice, a categorical kernel)
//! and a broad prior, the older trials of a group of more than 25 weighing less
//! ([`parzen::recency_weights`]). `candidates` points are drawn from the good density, and the
//! one with the largest `ln l - ln g` becomes the trial. Working in the unit cube makes log
//! ranges log-spaced and integers and steps exact, through the same mapping as every other
//! sampler. Running trials count as bad (a "constant liar"), so free workers are not all sent
//! to the same spot. Everything random comes from the stream of (seed, trial number), and the
//! history is read in trial order: the same seed and history give the same proposal.
//!
//! With several objectives it is MOTPE (Ozaki, Tanigaki, Watanabe and Onishi, "Multiobjective
//! tree-structured Parzen estimator", JAIR 2022, as Optuna splits): the good trials are the
//! first Pareto fronts, and of the front that does not fit whole, those that together cover the
//! most hypervolume (chosen greedily).

mod parzen;

use super::Sampler;
use crate::rng::{Rng, Stream, stream};
use crate::space::{Params, Space};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Goal};
use parzen::{Density, Group, Joint, MAX_BAD};
use rayon::prelude::*;

/// TPE's settings (`[sampler]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TpeSettings {
    /// Random trials before the model takes over.
    pub startup_trials: usize,
    /// Fraction of trials that count as good.
    pub gamma: f64,
    /// Candidates drawn from the good density per trial.
    pub candidates: usize,
    /// Model the dimensions jointly instead of one by one.
    pub multivariate: bool,
}

/// The TPE sampler.
pub struct TpeSampler {
    seed: u64,
    /// The objectives; the first orders trials of one objective.
    goals: Vec<Goal>,
    settings: TpeSettings,
    constraints: Vec<crate::constraint::Constraint>,
    /// Complete trials of earlier sweeps (`warm_start`), in loss order: history that was
    /// never this sweep's.
    earlier: Vec<((Loss, u64), Seen)>,
    finished: Finished,
}

/// A finished trial as TPE sees it: its point in the unit cube, and its objectives as losses.
#[derive(Debug, Clone)]
struct Seen {
    point: Vec<f64>,
    losses: Vec<f64>,
}

/// The finished trials (complete or pruned) as TPE sees them, gathered as they end: an ended
/// trial never changes, so each is read from the history once, not once per proposal.
///
/// Invariant: `by_loss` holds exactly the complete or pruned trials among `history[..scanned]`
/// that have a value and parameters in the space, and every trial there has ended.
#[derive(Default)]
struct Finished {
    /// (loss, trial number) -> the trial; in loss order, ties in trial order.
    by_loss: std::collections::BTreeMap<(Loss, u64), Seen>,
    /// The length of the ended prefix of the history read so far.
    scanned: usize,
    /// The number of the last trial of that prefix, to notice a history that is not the one
    /// read before (a sampler reused on another sweep): the gathering then starts again.
    last: Option<u64>,
}

/// A trial's standing with a total order, lower is better: feasible trials by their loss,
/// then infeasible ones by how far outside the constraints they are (Optuna's constrained
/// TPE orders them the same way).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Loss {
    /// How far outside the constraints (0: feasible).
    violation: f64,
    /// The (first) objective as a loss.
    value: f64,
}

impl Eq for Loss {}

impl PartialOrd for Loss {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Loss {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.violation.total_cmp(&other.violation)).then(self.value.total_cmp(&other.value))
    }
}

impl TpeSampler {
    /// TPE for a sweep seeded `seed` that optimises `goals` (MOTPE for several).
    pub fn new(seed: u64, goals: &[Goal], settings: TpeSettings) -> TpeSampler {
        TpeSampler {
            seed,
            goals: goals.to_vec(),
            settings,
            constraints: Vec::new(),
            earlier: Vec::new(),
            finished: Finished::default(),
        }
    }

    /// The same sampler, steered away from trials that break `constraints`.
    pub fn constrained(mut self, constraints: &[crate::constraint::Constraint]) -> TpeSampler {
        self.constraints = constraints.to_vec();
        self
    }

    /// The same sampler, starting from the complete trials of `sweeps` (those whose
    /// parameters lie in this space and that report the metric) as if they were its own.
    pub fn warm_started(
        mut self,
        space: &Space,
        sweeps: &[crate::state::SweepState],
    ) -> TpeSampler {
        let complete = sweeps
            .iter()
            .flat_map(|s| &s.trials)
            .filter(|t| t.state == TrialState::Ended(EndState::Complete));
        // Numbered past any trial of this sweep, in a total order of their own.
        for (i, t) in complete.enumerate() {
            if let Some((seen, loss)) = self.observation(space, t) {
                self.earlier.push(((loss, EARLIER + i as u64), seen));
            }
        }
        self.earlier.sort_by_key(|(key, _)| *key);
        self
    }

    fn judge(&self) -> crate::constraint::Judge<'_> {
        crate::constraint::Judge {
            constraints: &self.constraints,
            objective: &self.goals[0].metric,
            direction: self.goals[0].direction,
        }
    }

    /// A finished trial as TPE sees it and its loss (lower is better whatever the direction),
    /// if it has every objective and parameters in the space.
    fn observation(&self, space: &Space, t: &TrialRecord) -> Option<(Seen, Loss)> {
        if !matches!(
            t.state,
            TrialState::Ended(EndState::Complete | EndState::Pruned)
        ) {
            return None;
        }
        let losses = t.losses(&self.goals)?;
        let loss = Loss {
            violation: self.judge().violation(t),
            value: losses[0],
        };
        let point = space.unit_from_params(&t.params)?;
        Some((Seen { point, losses }, loss))
    }

    /// Brings [`Finished`] up to date with `history`: reads the trials past its ended prefix
    /// that have ended since.
    fn gather(&mut self, space: &Space, history: &[TrialRecord]) {
        let seen = self.finished.scanned;
        let same = seen == 0 || history.get(seen - 1).map(|t| t.number) == self.finished.last;
        if !same {
            self.finished = Finished::default();
        }
        let mut finished = std::mem::take(&mut self.finished);
        while let Some(t) = history.get(finished.scanned) {
            if !matches!(t.state, TrialState::Ended(_)) {
                break;
            }
            if let Some((seen, loss)) = self.observation(space, t) {
                finished.by_loss.insert((loss, t.number), seen);
            }
            finished.scanned += 1;
            finished.last = Some(t.number);
        }
        self.finished = finished;
    }
}

/// The finished trials in loss order (ties in trial order): those gathered, merged with the
/// late ones (sorted the same way).
fn merge_by_loss<'a>(
    gathered: &'a std::collections::BTreeMap<(Loss, u64), Seen>,
    late: &'a [((Loss, u64), Seen)],
) -> Vec<Observed<'a>> {
    let mut merged = Vec::with_capacity(gathered.len() + late.len());
    let mut late = late.iter().peekable();
    for (key, seen) in gathered {
        while let Some((k, s)) = late.next_if(|(k, _)| k < key) {
            merged.push((k.0, k.1, s));
        }
        merged.push((key.0, key.1, seen));
    }
    merged.extend(late.map(|(k, s)| (k.0, k.1, s)));
    merged
}

/// A finished trial with its loss and number.
type Observed<'a> = (Loss, u64, &'a Seen);

/// Trials of earlier sweeps (`warm_start`) are numbered from here, past any of this sweep's.
const EARLIER: u64 = u64::MAX / 2;

/// `points` (trial number, point) weighted by recency ([`parzen::recency_weights`]; all 1 when
/// not `by_recency`): earlier sweeps' trials first, then this sweep's in trial order.
fn weighted(mut points: Vec<(u64, Vec<f64>)>, by_recency: bool) -> Vec<(Vec<f64>, f64)> {
    points.sort_by_key(|&(n, _)| (n < EARLIER, n));
    let weights = match by_recency {
        true => parzen::recency_weights(points.len()),
        false => vec![1.0; points.len()],
    };
    points.into_iter().map(|(_, p)| p).zip(weights).collect()
}

/// The finished trials (in loss order) reordered for several objectives, so that the first
/// `n_good` are MOTPE's good ones: feasible trials by Pareto front, and within the front that
/// straddles `n_good`, first those that together cover the most hypervolume; infeasible ones
/// after, as they were.
fn pareto_order(observed: Vec<Observed<'_>>, n_good: usize) -> Vec<Observed<'_>> {
    let feasible = observed.partition_point(|(l, ..)| l.violation == 0.0);
    let losses: Vec<&[f64]> = observed[..feasible]
        .iter()
        .map(|(_, _, s)| s.losses.as_slice())
        .collect();
    let ranks = crate::pareto::ranks(&losses);
    let mut order: Vec<usize> = (0..feasible).collect();
    order.sort_by_key(|&i| ranks[i]);
    if n_good < feasible {
        let edge = ranks[order[n_good - 1]];
        let start = order.partition_point(|&i| ranks[i] < edge);
        let end = order.partition_point(|&i| ranks[i] <= edge);
        let front: Vec<&[f64]> = order[start..end].iter().map(|&i| losses[i]).collect();
        let reference = crate::pareto::reference(&front);
        let chosen = crate::pareto::greedy_subset(&front, n_good - start, &reference);
        let mut edge_order: Vec<usize> = chosen.iter().map(|&k| order[start + k]).collect();
        edge_order.extend(
            (0..front.len())
                .filter(|k| !chosen.contains(k))
                .map(|k| order[start + k]),
        );
        order.splice(start..end, edge_order);
    }
    let mut reordered: Vec<Observed<'_>> = order.into_iter().map(|i| observed[i]).collect();
    reordered.extend_from_slice(&observed[feasible..]);
    reordered
}

/// Which dimensions are active at `point` (all, in a space without conditions): a candidate
/// is scored on those alone, so a parameter its branch leaves out cannot sway the choice.
fn active_dimensions(space: &Space, point: &[f64]) -> Vec<bool> {
    if !space.is_conditional() {
        return vec![true; point.len()];
    }
    let params = space.params_from_unit(point);
    space
        .dimensions
        .iter()
        .map(|d| params.contains_key(&d.name))
        .collect()
}

/// The candidate with the highest score (the first, on ties). Candidates are drawn in order
/// from the trial's stream before any is scored, and scoring (the cost, with many past trials)
/// runs on rayon's pool: the choice does not depend on the number of threads.
fn best_candidate(
    candidates: Vec<Vec<f64>>,
    score: impl Fn(&[f64]) -> f64 + Sync,
) -> Option<Vec<f64>> {
    let scores: Vec<f64> = candidates.par_iter().map(|c| score(c)).collect();
    let best =
        (0..scores.len()).reduce(|best, i| if scores[i] > scores[best] { i } else { best })?;
    candidates.into_iter().nth(best)
}

impl TpeSampler {
    /// How many of `n` finished trials are good: `gamma` of them, at most 25 with one
    /// objective (Optuna's `default_gamma`; uncapped for several, as its MOTPE).
    fn n_good(&self, n: usize) -> usize {
        let n_good = ((self.settings.gamma * n as f64).ceil() as usize).max(1);
        match self.goals.len() {
            1 => n_good.min(25),
            _ => n_good,
        }
    }
}

impl Sampler for TpeSampler {
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params> {
        let mut rng = stream(self.seed, Stream::Sampler, &[number]);
        self.gather(space, history);
        // Past the ended prefix: trials that ended out of order, and the running ones.
        let tail = &history[self.finished.scanned..];
        let mut late: Vec<((Loss, u64), Seen)> = tail
            .iter()
            .filter_map(|t| {
                let (seen, loss) = self.observation(space, t)?;
                Some(((loss, t.number), seen))
            })
            .collect();
        late.extend(self.earlier.iter().cloned());
        late.sort_by_key(|(key, _)| *key);
        let n_observed = self.finished.by_loss.len() + late.len();
        if n_observed < self.settings.startup_trials {
            // The same draws as the random sampler: the start of a TPE sweep is a random one.
            return super::RandomSampler::new(self.seed).sample(space, number, history);
        }
        let observed = merge_by_loss(&self.finished.by_loss, &late);
        let single = self.goals.len() == 1;
        let n_good = self.n_good(n_observed);
        let observed = match single {
            true => observed,
            false => pareto_order(observed, n_good),
        };
        let (good, bad) = observed.split_at(n_good.min(observed.len()));
        let good = good.iter().map(|(_, n, s)| (*n, s.point.clone())).collect();
        let stride = bad.len().div_ceil(MAX_BAD).max(1);
        // Running trials count as bad (a constant liar), so free workers spread out.
        let liars = tail
            .iter()
            .filter(|t| t.state == TrialState::Running && t.number < number)
            .filter_map(|t| Some((t.number, space.unit_from_params(&t.params)?)));
        let bad = bad
            .iter()
            .step_by(stride)
            .map(|(_, n, s)| (*n, s.point.clone()))
            .chain(liars)
            .collect();
        let (good, bad) = (weighted(good, single), weighted(bad, true));
        let n = self.settings.candidates;
        let point = match self.settings.multivariate {
            true => joint(space, &good, &bad, n, &mut rng),
            false => independent(space, &good, &bad, n, &mut rng),
        };
        point.map(|point| space.params_from_unit(&point))
    }
}

/// The candidate of `n` drawn from the good trials' joint density that best separates it from
/// the bad trials' (multivariate TPE).
fn joint(space: &Space, good: &Group, bad: &Group, n: usize, rng: &mut Rng) -> Option<Vec<f64>> {
    let (l, g) = (Joint::fit(space, good), Joint::fit(space, bad));
    let candidates = (0..n).map(|_| l.sample(rng)).collect();
    best_candidate(candidates, |p| {
        let active = active_dimensions(space, p);
        l.ln_density(p, &active) - g.ln_density(p, &active)
    })
}

/// The same with one density per dimension, fit on the trials where it was active.
fn independent(
    space: &Space,
    good: &Group,
    bad: &Group,
    n: usize,
    rng: &mut Rng,
) -> Option<Vec<f64>> {
    let fit = |distribution, group: &Group, d: usize| {
        let (points, weights): (Vec<f64>, Vec<f64>) = group
            .iter()
            .map(|(p, w)| (p[d], *w))
            .filter(|(u, _)| !u.is_nan())
            .unzip();
        Density::fit(distribution, &points, &weights)
    };
    let densities: Vec<(Density, Density)> = space
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            (
                fit(&dim.distribution, good, d),
                fit(&dim.distribution, bad, d),
            )
        })
        .collect();
    let candidates = (0..n)
        .map(|_| densities.iter().map(|(l, _)| l.sample(rng)).collect())
        .collect();
    best_candidate(candidates, |point| {
        densities
            .iter()
            .zip(point)
            .zip(active_dimensions(space, point))
            .filter(|(_, active)| *active)
            .map(|(((l, g), &u), _)| l.ln_density(u) - g.ln_density(u))
            .sum()
    })
}

#[cfg(test)]
mod tests;
