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
//! several objectives, each gets a Gaussian process and the acquisition is the expected
//! improvement of the front's hypervolume ([`improvement`]). With constraints, each constraint's slack gets a Gaussian process of its own, and the acquisition
//! is the expected improvement over the best feasible trial times the probability that every
//! constraint holds (Gardner et al., "Bayesian Optimization with Inequality Constraints", ICML
//! 2014, as Optuna's GPSampler). An integer is scored at the value it stands for: every
//! candidate is moved onto its integers before the acquisition sees it, so the model never
//! proposes between two values (Optuna's GPSampler does the same); in a space of integers and
//! choices only, no point is proposed twice while an untried one is left. Choices and parameters with a `when` are modelled only when
//! every trial has them: the others are drawn at random, as Optuna does.

use super::Sampler;
use crate::constraint::Constraint;
use crate::rng::{Rng, Stream, stream};
use crate::space::{Distribution, Params, Space, cell_centre};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Goal};
use nalgebra::DVector;
use rand::Rng as _;
use rayon::prelude::*;

mod bound;
mod improvement;
mod model;

pub use bound::{MIN_TRIALS as REGRET_MIN_TRIALS, RegretBound, regret_bound};

use improvement::Improvement;
use model::{Axis, Data, Model, keep_at_most, prior};

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

/// The GP sampler.
pub struct GpSampler {
    seed: u64,
    /// The objectives: one, or several (expected hypervolume improvement).
    goals: Vec<Goal>,
    constraints: Vec<Constraint>,
    startup_trials: usize,
    /// Complete trials of earlier sweeps (`warm_start`), modelled with this sweep's.
    earlier: Vec<TrialRecord>,
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

/// An ended trial as the models see it: its point, its losses, each constraint's slack.
type Observed = (Vec<f64>, Vec<f64>, Vec<Option<f64>>);

/// What a proposal is made from: each objective's data, each constraint's slack (positive
/// outside its bounds), and the feasible trials' losses in the objectives' standard units.
struct Training {
    objectives: Vec<Standardised>,
    constraints: Vec<Standardised>,
    feasible: Vec<Vec<f64>>,
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
        GpSampler::for_goals(seed, &[goal], constraints, startup_trials)
    }

    /// The same for several objectives: a Gaussian process per objective, and the expected
    /// improvement of the Pareto front's hypervolume as the acquisition.
    pub fn for_goals(
        seed: u64,
        goals: &[Goal],
        constraints: &[Constraint],
        startup_trials: usize,
    ) -> GpSampler {
        GpSampler {
            seed,
            goals: goals.to_vec(),
            constraints: constraints.to_vec(),
            startup_trials,
            earlier: Vec::new(),
        }
    }

    /// The same sampler, modelling the complete trials of `sweeps` with its own (those whose
    /// parameters lie in this space): it starts from the model at once.
    pub fn warm_started(mut self, sweeps: &[crate::state::SweepState]) -> GpSampler {
        self.earlier = (sweeps.iter())
            .flat_map(|s| &s.trials)
            .filter(|t| t.state == TrialState::Ended(EndState::Complete))
            .cloned()
            .collect();
        self
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

    /// The trials as training data, `None` below the startup trials: each objective's (ended
    /// trials with a value, and the running ones as the worst loss seen) and each constraint's.
    fn training(
        &self,
        space: &Space,
        axes: &[(usize, Axis)],
        history: &[TrialRecord],
    ) -> Option<Training> {
        let (objective, direction) = (&self.goals[0].metric, self.goals[0].direction);
        let point = |t: &TrialRecord| -> Option<Vec<f64>> {
            let unit = space.unit_from_params(&t.params)?;
            Some(axes.iter().map(|(i, _)| unit[*i]).collect())
        };
        // (point, losses, each constraint's slack) of each ended trial with every objective.
        let mut observed: Vec<Observed> = Vec::new();
        let mut running: Vec<Vec<f64>> = Vec::new();
        for t in self.earlier.iter().chain(history) {
            match t.state {
                TrialState::Running => running.extend(point(t)),
                TrialState::Ended(EndState::Complete | EndState::Pruned) => {
                    let losses = t.losses(&self.goals);
                    let finite = losses.filter(|l| l.iter().all(|v| v.is_finite()));
                    if let (Some(x), Some(losses)) = (point(t), finite) {
                        let slacks = (self.constraints.iter())
                            .map(|c| c.slack(t, objective, direction))
                            .collect();
                        observed.push((x, losses, slacks));
                    }
                }
                TrialState::Ended(EndState::Failed) => {}
            }
        }
        if observed.len() < self.startup_trials.max(2) {
            return None;
        }
        let feasible = |slacks: &[Option<f64>]| slacks.iter().all(|s| s.is_none_or(|s| s <= 0.0));
        let constraints = (0..self.constraints.len())
            .filter_map(|c| {
                let (x, slack): (Vec<Vec<f64>>, Vec<f64>) = (observed.iter())
                    .filter_map(|o| Some((o.0.clone(), o.2[c]?)))
                    .unzip();
                (x.len() >= 2).then(|| Standardised::new(axes, x, slack, &[]))
            })
            .collect();
        let x: Vec<Vec<f64>> = observed.iter().map(|o| o.0.clone()).collect();
        let objectives: Vec<Standardised> = (0..self.goals.len())
            .map(|j| {
                let losses = observed.iter().map(|o| o.1[j]).collect();
                Standardised::new(axes, x.clone(), losses, &running)
            })
            .collect();
        // The feasible trials' losses in each objective's standard units.
        let feasible_losses: Vec<Vec<f64>> = (observed.iter())
            .filter(|o| feasible(&o.2))
            .map(|o| {
                (o.1.iter().zip(&objectives))
                    .map(|(l, s)| s.scaled(*l))
                    .collect()
            })
            .collect();
        Some(Training {
            objectives,
            constraints,
            feasible: feasible_losses,
        })
    }

    /// The point of the modelled dimensions with the largest acquisition `score`, searched
    /// around random points and the best trials of `data`.
    fn propose(
        &self,
        data: &Data,
        acquisition: &(dyn Fn(&[f64]) -> f64 + Sync),
        snap: &(dyn Fn(Vec<f64>) -> Vec<f64> + Sync),
        rng: &mut Rng,
    ) -> Vec<f64> {
        let draw = |rng: &mut Rng| -> Vec<f64> {
            let x = (data.axes.iter())
                .map(|axis| match axis {
                    Axis::Numeric => rng.random(),
                    Axis::Choice(n) => cell_centre(rng.random_range(0..*n), *n),
                })
                .collect();
            snap(x)
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
                    let trial = snap(trial);
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

/// `x` (a point of the modelled `axes`) with each integer moved to the unit point of the value
/// it stands for, so that the acquisition is scored where the proposal will be, never between
/// two integers (where it could favour a point that rounds onto a trial already run).
fn snapped(space: &Space, axes: &[(usize, Axis)], mut x: Vec<f64>) -> Vec<f64> {
    for ((i, _), v) in axes.iter().zip(x.iter_mut()) {
        let d = &space.dimensions[*i].distribution;
        if matches!(d, Distribution::Int { .. }) {
            *v = d.to_unit(&d.from_unit(*v)).unwrap_or(*v);
        }
    }
    x
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
        let Some(objectives) = training.objectives.iter().map(Standardised::fit).collect() else {
            return Some(space.params_from_unit(&unit));
        };
        let constraints: Vec<(Model<'_>, f64)> = (training.constraints.iter())
            .filter_map(|c| Some((c.fit()?, c.scaled(0.0))))
            .collect();
        let improvement = Improvement::new(objectives, &training.feasible, &mut rng);
        // The improvement over the feasible trials, times the probability that every
        // constraint holds (Gardner et al., ICML 2014); only the latter while none is feasible.
        let data = &training.objectives[0].data;
        // In a space of integers and choices only, a point the model holds (a trial ended or
        // running) is not proposed again while another is left: it would measure the same
        // thing twice.
        let discrete = (axes.iter()).all(|(i, _)| {
            let d = &space.dimensions[*i].distribution;
            matches!(d, Distribution::Int { .. } | Distribution::Choice(_))
        });
        let score = |x: &[f64]| -> f64 {
            if discrete && data.x.iter().any(|tried| tried.as_slice() == x) {
                return f64::NEG_INFINITY;
            }
            let feasible: f64 = (constraints.iter())
                .map(|(model, threshold)| model.log_probability_below(x, *threshold))
                .sum();
            improvement.log_at(x).map_or(feasible, |i| i + feasible)
        };
        let snap = |x: Vec<f64>| snapped(space, &axes, x);
        let x = self.propose(data, &score, &snap, &mut rng);
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
