//! TPE, the tree-structured Parzen estimator (Bergstra, Bardenet, Bengio and Kégl, "Algorithms
//! for Hyper-Parameter Optimization", NeurIPS 2011) in the unit cube: univariate by default, one
//! joint density over all dimensions with `multivariate = true`.
//!
//! After `startup_trials` random trials, the trials with a result are split into the best
//! `gamma` fraction ("good") and the rest ("bad"). Each dimension gets two densities over `[0, 1)`:
//! `l` from the good trials and `g` from the bad ones, each a mixture of a flat prior and one
//! truncated Gaussian per trial (width: the larger gap to its neighbours, as in the paper), or for
//! a choice, category frequencies plus one. `candidates` points are drawn from `l`, and the one
//! with the largest `sum over dimensions of ln l - ln g` becomes the trial. Working in the unit
//! cube makes log ranges log-spaced and integers and steps exact, through the same mapping as
//! every other sampler. Running trials count as bad with the worst value seen (a "constant
//! liar"), so free workers are not all sent to the same spot. Everything random comes from the
//! stream of (seed, trial number), and the history is read in trial order: the same seed and
//! history give the same proposal.
//!
//! With several objectives it is MOTPE (Ozaki, Tanigaki, Watanabe and Onishi, "Multiobjective
//! tree-structured Parzen estimator", JAIR 2022, as Optuna splits): the good trials are the
//! first Pareto fronts, and of the front that does not fit whole, those that together cover the
//! most hypervolume (chosen greedily).

use super::Sampler;
use crate::rng::{Rng, Stream, stream};
use crate::space::{Distribution, Params, Space, cell, cell_centre};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Goal};
use rand::Rng as _;
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
                self.earlier.push(((loss, u64::MAX / 2 + i as u64), seen));
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
) -> Vec<(Loss, &'a Seen)> {
    let mut merged = Vec::with_capacity(gathered.len() + late.len());
    let mut late = late.iter().peekable();
    for (key, seen) in gathered {
        while let Some((k, s)) = late.next_if(|(k, _)| k < key) {
            merged.push((k.0, s));
        }
        merged.push((key.0, seen));
    }
    merged.extend(late.map(|(k, s)| (k.0, s)));
    merged
}

/// The finished trials (in loss order) reordered for several objectives, so that the first
/// `n_good` are MOTPE's good ones: feasible trials by Pareto front, and within the front that
/// straddles `n_good`, first those that together cover the most hypervolume; infeasible ones
/// after, as they were.
fn pareto_order(observed: Vec<(Loss, &Seen)>, n_good: usize) -> Vec<(Loss, &Seen)> {
    let feasible = observed.partition_point(|(l, _)| l.violation == 0.0);
    let losses: Vec<&[f64]> = observed[..feasible]
        .iter()
        .map(|(_, s)| s.losses.as_slice())
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
    let mut reordered: Vec<(Loss, &Seen)> = order.into_iter().map(|i| observed[i]).collect();
    reordered.extend_from_slice(&observed[feasible..]);
    reordered
}

/// A Gaussian truncated to `[0, 1)`, with its normalisation computed once.
struct Kernel {
    mean: f64,
    width: f64,
    /// 1 / (width * sqrt(2 pi) * the mass inside [0, 1)).
    scale: f64,
}

/// One dimension's density over `[0, 1)`.
enum Density {
    /// Flat prior plus truncated Gaussians.
    Parzen(Vec<Kernel>),
    /// Category probabilities.
    Categorical(Vec<f64>),
}

/// One kernel per point, in the points' order; each as wide as the larger gap to its
/// neighbours (the interval's ends count as neighbours), at least 1 / min(100, n + 1).
fn gaussian_kernels(points: &[f64]) -> Vec<Kernel> {
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
    fn density(&self, u: f64) -> f64 {
        let z = (u - self.mean) / self.width;
        if z.abs() > 11.0 {
            0.0
        } else {
            (-0.5 * z * z).exp() * self.scale
        }
    }

    /// A draw inside `[0, 1)`, by rejection.
    fn sample(&self, rng: &mut Rng) -> f64 {
        for _ in 0..64 {
            let x = self.mean + self.width * super::standard_normal(rng);
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
struct Joint {
    dims: Vec<JointDim>,
    components: usize,
}

/// One dimension of the joint model: the trials' kernels, or their categories (`None` where
/// the dimension was inactive in that trial: there it is flat).
enum JointDim {
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
const MAX_BAD: usize = 1000;

/// The weight a categorical kernel puts on its own trial's category.
const OWN_CATEGORY: f64 = 0.8;

impl Joint {
    fn fit(space: &Space, group: &[(Vec<f64>, f64)]) -> Joint {
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
    fn category_density(own: usize, categories: usize, u: f64) -> f64 {
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

    fn sample(&self, rng: &mut Rng) -> Vec<f64> {
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
    fn ln_density(&self, point: &[f64], active: &[bool]) -> f64 {
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
    fn fit(distribution: &Distribution, points: &[f64]) -> Density {
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

    fn sample(&self, rng: &mut Rng) -> f64 {
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

    fn ln_density(&self, u: f64) -> f64 {
        match self {
            Density::Categorical(p) => p[cell(u, p.len())].ln(),
            Density::Parzen(components) => {
                let mixture: f64 = 1.0 + components.iter().map(|k| k.density(u)).sum::<f64>();
                (mixture / (components.len() as f64 + 1.0)).ln()
            }
        }
    }
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

/// Φ(z), from erf by Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
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
        let n_good = ((self.settings.gamma * n_observed as f64).ceil() as usize).clamp(1, 25);
        let observed = match self.goals.len() {
            1 => observed,
            _ => pareto_order(observed, n_good),
        };
        let worst = observed.last().map_or(0.0, |(loss, _)| loss.value);
        let (good, bad) = observed.split_at(n_good.min(observed.len()));
        let good: Vec<(Vec<f64>, f64)> = good
            .iter()
            .map(|(l, s)| (s.point.clone(), l.value))
            .collect();
        let stride = bad.len().div_ceil(MAX_BAD).max(1);
        let liars = tail
            .iter()
            .filter(|t| t.state == TrialState::Running && t.number < number)
            .filter_map(|t| Some((space.unit_from_params(&t.params)?, worst)));
        let bad: Vec<(Vec<f64>, f64)> = bad
            .iter()
            .step_by(stride)
            .map(|(l, s)| (s.point.clone(), l.value))
            .chain(liars)
            .collect();
        if self.settings.multivariate {
            let (l, g) = (Joint::fit(space, &good), Joint::fit(space, &bad));
            let candidates = (0..self.settings.candidates)
                .map(|_| l.sample(&mut rng))
                .collect();
            let best = best_candidate(candidates, |p| {
                let active = active_dimensions(space, p);
                l.ln_density(p, &active) - g.ln_density(p, &active)
            });
            return best.map(|point| space.params_from_unit(&point));
        }
        // A dimension's densities come from the trials where it was active.
        let column = |group: &[(Vec<f64>, f64)], d: usize| -> Vec<f64> {
            group
                .iter()
                .map(|(p, _)| p[d])
                .filter(|u| !u.is_nan())
                .collect()
        };
        let densities: Vec<(Density, Density)> = space
            .dimensions
            .iter()
            .enumerate()
            .map(|(d, dim)| {
                (
                    Density::fit(&dim.distribution, &column(&good, d)),
                    Density::fit(&dim.distribution, &column(&bad, d)),
                )
            })
            .collect();
        let candidates = (0..self.settings.candidates)
            .map(|_| densities.iter().map(|(l, _)| l.sample(&mut rng)).collect())
            .collect();
        let best = best_candidate(candidates, |point| {
            densities
                .iter()
                .zip(point)
                .zip(active_dimensions(space, point))
                .filter(|(_, active)| *active)
                .map(|(((l, g), &u), _)| l.ln_density(u) - g.ln_density(u))
                .sum()
        });
        best.map(|point| space.params_from_unit(&point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;
    use crate::space::{Dimension, ParamValue};
    use crate::state::{SweepState, complete_trial};
    use crate::trial::Direction;

    fn space() -> Space {
        Space {
            dimensions: vec![
                Dimension {
                    name: "x".into(),
                    distribution: Distribution::Uniform {
                        low: -5.0,
                        high: 5.0,
                    },
                    points: None,
                    when: Vec::new(),
                },
                Dimension {
                    name: "lr".into(),
                    distribution: Distribution::LogUniform {
                        low: 1e-4,
                        high: 1e-1,
                    },
                    points: None,
                    when: Vec::new(),
                },
                Dimension {
                    name: "k".into(),
                    distribution: Distribution::Choice(vec![
                        ParamValue::Str("a".into()),
                        ParamValue::Str("b".into()),
                    ]),
                    points: None,
                    when: Vec::new(),
                },
            ],
        }
    }

    fn tpe() -> TpeSampler {
        TpeSampler::new(
            1,
            &[Goal::new("value", Direction::Minimize)],
            TpeSettings {
                startup_trials: 10,
                gamma: 0.25,
                candidates: 24,
                multivariate: false,
            },
        )
    }

    /// A sweep of `n` trials of (x - 2)^2 proposed by `sampler` (`lr` and `k` do not matter).
    fn run_with(mut sampler: TpeSampler, n: u64) -> SweepState {
        let space = space();
        let mut state = SweepState::default();
        for number in 0..n {
            let params = sampler.sample(&space, number, &state.trials).unwrap();
            let value = (params["x"].as_f64().unwrap() - 2.0).powi(2);
            complete_trial(&mut state, number, params, "value", value);
        }
        state
    }

    fn run(n: u64) -> SweepState {
        run_with(tpe(), n)
    }

    #[test]
    fn stays_in_bounds_is_deterministic_and_finds_the_minimum() {
        let state = run(60);
        assert_eq!(state, run(60), "same seed and history, same proposals");
        for t in &state.trials {
            let lr = t.params["lr"].as_f64().unwrap();
            assert!((1e-4..=1e-1).contains(&lr));
            assert!((-5.0..=5.0).contains(&t.params["x"].as_f64().unwrap()));
        }
        let (_, best) = state.best("value", Direction::Minimize).unwrap();
        assert!(best < 0.01, "best {best}");
        // After the random start, proposals gather near the minimum: a uniform draw lands
        // within 1 of x = 2 a fifth of the time.
        let near = state.trials[30..]
            .iter()
            .filter(|t| (t.params["x"].as_f64().unwrap() - 2.0).abs() < 1.0)
            .count();
        assert!(near > 20, "{near} of 30 near the minimum");
    }

    #[test]
    fn the_multivariate_variant_also_finds_the_minimum_deterministically() {
        let multivariate = || {
            let mut sampler = tpe();
            sampler.settings.multivariate = true;
            run_with(sampler, 60)
        };
        let state = multivariate();
        assert_eq!(state, multivariate());
        let (_, best) = state.best("value", Direction::Minimize).unwrap();
        assert!(best < 0.01, "best {best}");
    }

    #[test]
    fn a_running_trial_pushes_the_next_proposal_away() {
        let space = space();
        let mut state = run(20);
        let mut sampler = tpe();
        let first = sampler.sample(&space, 20, &state.trials).unwrap();
        state.apply(&Event::TrialCreated {
            trial: 20,
            seed: 0,
            params: first.clone(),
            queued: false,
            time: 0.0,
        });
        let second = sampler.sample(&space, 21, &state.trials).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn what_the_sampler_gathers_between_proposals_never_changes_a_proposal() {
        // Past MAX_BAD finished trials too, where the bad group is sampled.
        let state = run(1_200);
        let space = space();
        for k in [30, 700, 1_100, 1_199] {
            let fresh = tpe().sample(&space, k as u64, &state.trials[..k]);
            assert_eq!(fresh.as_ref(), Some(&state.trials[k].params), "trial {k}");
        }
        // A trial still running while later ones end, then ending; then another history.
        let mut history = state.trials[..60].to_vec();
        let ended = history[5].clone();
        history[5].state = TrialState::Running;
        let mut reused = tpe();
        let fresh = |h: &[TrialRecord]| tpe().sample(&space, 60, h);
        assert_eq!(reused.sample(&space, 60, &history), fresh(&history));
        history[5] = ended;
        assert_eq!(reused.sample(&space, 60, &history), fresh(&history));
        let other = run_with(tpe(), 40).trials;
        let mut shifted = other.clone();
        shifted.rotate_left(1);
        assert_eq!(
            reused.sample(&space, 40, &shifted),
            fresh_at(&space, 40, &shifted)
        );
        assert_eq!(
            reused.sample(&space, 40, &other),
            fresh_at(&space, 40, &other)
        );
    }

    fn fresh_at(space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params> {
        tpe().sample(space, number, history)
    }

    #[test]
    fn normal_cdf_is_accurate() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.0) - 0.158_655).abs() < 1e-5);
    }

    /// A space whose good region needs the right branch: branch a is 1 at best; branch b is 0
    /// at (xb1, xb2) = (0.83, 0.31) and better than a over most of its square. xa, xb1 and xb2
    /// are active only in their branch.
    fn conditional_problem() -> (Space, impl Fn(&Params) -> f64) {
        let branch = Dimension::new(
            "branch",
            Distribution::Choice(vec![
                ParamValue::Str("a".into()),
                ParamValue::Str("b".into()),
            ]),
        );
        let under = |name: &str, value: &str| {
            let mut d = Dimension::new(
                name,
                Distribution::Uniform {
                    low: 0.0,
                    high: 1.0,
                },
            );
            d.when = vec![crate::space::Condition {
                parent: "branch".into(),
                values: vec![ParamValue::Str(value.into())],
            }];
            d
        };
        let space = Space {
            dimensions: vec![
                branch,
                under("xa", "a"),
                under("xb1", "b"),
                under("xb2", "b"),
            ],
        };
        let f = |p: &Params| {
            let x = |name: &str| p.get(name).and_then(ParamValue::as_f64);
            match (x("xa"), x("xb1"), x("xb2")) {
                (Some(a), None, None) => 1.0 + (a - 0.2).powi(2),
                (None, Some(b1), Some(b2)) => 2.0 * ((b1 - 0.83).powi(2) + (b2 - 0.31).powi(2)),
                other => panic!("a trial with parameters of both branches or neither: {other:?}"),
            }
        };
        (space, f)
    }

    /// The best value `sampler` finds in `trials` trials of the conditional problem.
    fn best_found(sampler: &mut dyn Sampler, trials: u64) -> f64 {
        let (space, f) = conditional_problem();
        let mut state = SweepState::default();
        for n in 0..trials {
            let params = sampler.sample(&space, n, &state.trials).unwrap();
            let value = f(&params);
            complete_trial(&mut state, n, params, "value", value);
        }
        state
            .trials
            .iter()
            .filter_map(|t| t.best_value("value", Direction::Minimize))
            .fold(f64::MAX, f64::min)
    }

    #[test]
    fn on_a_conditional_space_tpe_beats_random_over_ten_seeds() {
        let mut wins = 0;
        for seed in 0..10 {
            for multivariate in [false, true] {
                let mut tpe = TpeSampler::new(
                    seed,
                    &[Goal::new("value", Direction::Minimize)],
                    TpeSettings {
                        startup_trials: 10,
                        gamma: 0.25,
                        candidates: 24,
                        multivariate,
                    },
                );
                let mut random = crate::sampler::RandomSampler::new(seed);
                let (t, r) = (best_found(&mut tpe, 40), best_found(&mut random, 40));
                wins += usize::from(t < r);
            }
        }
        assert!(wins >= 15, "TPE beat random in {wins} of 20 runs");
    }

    #[test]
    fn constrained_tpe_keeps_to_the_feasible_region_that_plain_tpe_leaves() {
        // Minimise x^2 + y^2 subject to value >= 0.25: the best feasible trials lie on a ring
        // that plain TPE, drawn to the centre, leaves.
        let space = Space {
            dimensions: ["x1", "x2"]
                .map(|n| {
                    Dimension::new(
                        n,
                        Distribution::Uniform {
                            low: -1.0,
                            high: 1.0,
                        },
                    )
                })
                .to_vec(),
        };
        let ring = [crate::constraint::Constraint {
            metric: "value".into(),
            min: Some(0.25),
            max: None,
        }];
        let settings = TpeSettings {
            startup_trials: 10,
            gamma: 0.25,
            candidates: 24,
            multivariate: false,
        };
        let feasible_after_startup = |constrained: bool, seed: u64| {
            let mut tpe = TpeSampler::new(
                seed,
                &[Goal::new("value", Direction::Minimize)],
                settings.clone(),
            );
            if constrained {
                tpe = tpe.constrained(&ring);
            }
            let mut state = SweepState::default();
            let mut feasible = 0;
            for n in 0..60u64 {
                let params = tpe.sample(&space, n, &state.trials).unwrap();
                let value: f64 = params.values().map(|v| v.as_f64().unwrap().powi(2)).sum();
                feasible += usize::from(n >= 10 && value >= 0.25);
                complete_trial(&mut state, n, params, "value", value);
            }
            feasible
        };
        let (mut with, mut without) = (0, 0);
        for seed in 0..5 {
            with += feasible_after_startup(true, seed);
            without += feasible_after_startup(false, seed);
        }
        assert!(
            with > without + 50,
            "feasible proposals: {with} constrained, {without} plain"
        );
    }

    #[test]
    fn a_warm_start_proposes_from_the_model_at_once() {
        // sphere(x) on [-5, 5]: an earlier sweep of 40 random trials; the new sweep's first five
        // proposals come from a model of them instead of the random start.
        let space = space();
        let sphere = |p: &Params| p["x"].as_f64().unwrap().powi(2);
        let settings = TpeSettings {
            startup_trials: 10,
            gamma: 0.25,
            candidates: 24,
            multivariate: false,
        };
        let (mut warm_total, mut cold_total) = (0.0, 0.0);
        for seed in 0..10 {
            let mut earlier = SweepState::default();
            let mut random = crate::sampler::RandomSampler::new(seed + 100);
            for n in 0..40 {
                let params = random.sample(&space, n, &earlier.trials).unwrap();
                let value = sphere(&params);
                complete_trial(&mut earlier, n, params, "value", value);
            }
            let first_five = |mut tpe: TpeSampler| -> f64 {
                let mut state = SweepState::default();
                for n in 0..5 {
                    let params = tpe.sample(&space, n, &state.trials).unwrap();
                    let value = sphere(&params);
                    complete_trial(&mut state, n, params, "value", value);
                }
                state
                    .trials
                    .iter()
                    .map(|t| t.best_value("value", Direction::Minimize).unwrap())
                    .sum()
            };
            let tpe = || {
                TpeSampler::new(
                    seed,
                    &[Goal::new("value", Direction::Minimize)],
                    settings.clone(),
                )
            };
            warm_total += first_five(tpe().warm_started(&space, &[earlier]));
            cold_total += first_five(tpe());
        }
        assert!(
            warm_total * 3.0 < cold_total,
            "warm {warm_total}, cold {cold_total}"
        );
    }
}
