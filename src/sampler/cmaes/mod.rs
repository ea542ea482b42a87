//! CMA-ES, the covariance matrix adaptation evolution strategy (Hansen, "The CMA evolution
//! strategy: a tutorial", 2016), in the unit cube, with IPOP restarts (Auger and Hansen, CEC
//! 2005: each restart doubles the population).
//!
//! It searches the numeric parameters every trial has (those without a `when`) with a Gaussian,
//! and the choices every trial has with a categorical distribution each, learnt from the same
//! generations ([`Choices`]); conditional parameters are drawn at random each trial.
//! Trials come in generations of `popsize`, by trial number; the distribution of a trial is the
//! one after the last generation whose trials had all ended when it was asked, so the state is
//! a fold over the history in trial order (kept between proposals, as ended trials never
//! change): with one worker, or `deterministic = true`, a sweep is reproducible. Failed trials
//! and trials without a value rank last in their generation, infeasible ones after the
//! feasible, by how far outside the constraints.
//!
//! Integer and step parameters keep a spread of at least a quarter of one step along their
//! axis (a simplified form of the margin of Hamano et al., GECCO 2022), so the search never
//! freezes on one value while it refines the others.

use super::Sampler;
use crate::constraint::{Constraint, Judge};
pub use crate::experiment::{CmaSettings, Restart};
use crate::rng::{Stream, stream};
use crate::space::{Distribution, Params, Space};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Goal};
use nalgebra::{DMatrix, DVector};
use rand::Rng as _;

mod choices;
mod run;

use choices::Choices;
use run::Run;

/// The CMA-ES sampler.
pub struct CmaEsSampler {
    seed: u64,
    goal: Goal,
    constraints: Vec<Constraint>,
    settings: CmaSettings,
    /// The first run's distribution learnt from earlier sweeps (`warm_start`), if any.
    warm: Option<Warm>,
    /// The fold of the history so far: the state and the first trial it has not read.
    fold: Option<Fold>,
}

/// A starting distribution: mean, step size and covariance.
#[derive(Clone)]
struct Warm {
    mean: DVector<f64>,
    sigma: f64,
    c: DMatrix<f64>,
}

/// The state after the generations read so far.
#[derive(Clone)]
struct Fold {
    /// Indices in the space of the dimensions CMA-ES searches.
    searched: Vec<usize>,
    run: Run,
    /// The distributions of the choices every trial has, learnt beside the run's Gaussian.
    choices: Choices,
    /// The first trial of the current generation.
    generation_start: u64,
    /// The restarts so far.
    restarts: u32,
}

impl CmaEsSampler {
    /// CMA-ES for a sweep seeded `seed` that optimises `goal`, steered away from trials that
    /// break `constraints`.
    pub fn new(
        seed: u64,
        goal: Goal,
        constraints: &[Constraint],
        settings: CmaSettings,
    ) -> CmaEsSampler {
        CmaEsSampler {
            seed,
            goal,
            constraints: constraints.to_vec(),
            settings,
            warm: None,
            fold: None,
        }
    }

    /// The same sampler, its first run starting from the distribution of the best complete
    /// trials of `sweeps` (WS-CMA-ES, Nomura et al., AAAI 2021, as Optuna's `source_trials`):
    /// the best tenth of them, each widened by 0.1 of the cube, as one Gaussian.
    pub fn warm_started(mut self, space: &Space, sweeps: &[crate::state::SweepState]) -> Self {
        let searched = searched(space);
        let mut ranked: Vec<((f64, f64), DVector<f64>)> = (sweeps.iter())
            .flat_map(|s| &s.trials)
            .filter(|t| t.state == TrialState::Ended(EndState::Complete))
            .filter(|t| space.unit_from_params(&t.params).is_some())
            .map(|t| (self.key(t), point(space, &searched, t)))
            .filter(|(key, _)| key.0 == 0.0 && key.1.is_finite())
            .collect();
        if ranked.is_empty() || searched.is_empty() {
            return self;
        }
        ranked.sort_by(|a, b| a.0.1.total_cmp(&b.0.1));
        let best = ranked.len().div_ceil(10);
        let n = searched.len();
        let top: Vec<&DVector<f64>> = ranked.iter().take(best).map(|(_, x)| x).collect();
        let mean = top.iter().fold(DVector::zeros(n), |m, x| m + *x) / best as f64;
        let mut sigma2 = DMatrix::identity(n, n) * 0.01;
        for x in &top {
            let d = *x - &mean;
            sigma2 += &d * d.transpose() / best as f64;
        }
        let sigma = sigma2.determinant().powf(0.5 / n as f64);
        self.warm = Some(Warm {
            mean,
            sigma,
            c: sigma2 / (sigma * sigma),
        });
        self
    }

    /// The population of a run after `restarts` restarts.
    fn lambda(&self, n: usize, restarts: u32) -> usize {
        let first = self
            .settings
            .popsize
            .unwrap_or(4 + (3.0 * (n as f64).ln()).floor() as usize)
            .max(2);
        first << restarts.min(16)
    }

    /// A run's starting distribution: the warm start's or the middle of the cube first, then
    /// a random mean per restart.
    fn start(&self, searched: usize, restarts: u32) -> Run {
        if let (0, Some(warm)) = (restarts, &self.warm) {
            let mut run = Run::new(
                warm.mean.clone(),
                warm.sigma,
                self.lambda(searched, 0),
                self.settings.separable,
            );
            run.set_covariance(warm.c.clone());
            return run;
        }
        let mean = match restarts {
            0 => DVector::from_element(searched, 0.5),
            r => {
                let mut rng = stream(self.seed, Stream::Sampler, &[u64::MAX, u64::from(r)]);
                DVector::from_fn(searched, |_, _| rng.random())
            }
        };
        Run::new(
            mean,
            self.settings.sigma0,
            self.lambda(searched, restarts),
            self.settings.separable,
        )
    }

    /// A trial's rank key in its generation, lower is better: feasible first, by loss;
    /// without a value (failed), last.
    fn key(&self, t: &TrialRecord) -> (f64, f64) {
        let judge = Judge {
            constraints: &self.constraints,
            objective: &self.goal.metric,
            direction: self.goal.direction,
        };
        let value = match t.state {
            TrialState::Ended(EndState::Complete | EndState::Pruned) => {
                t.best_value(&self.goal.metric, self.goal.direction)
            }
            _ => None,
        };
        match value.filter(|v| !v.is_nan()) {
            Some(v) => (judge.violation(t), self.goal.direction.loss(v)),
            None => (f64::INFINITY, f64::INFINITY),
        }
    }

    /// Reads the generations of `history` that have ended since the last call.
    fn advance(&mut self, space: &Space, history: &[TrialRecord]) {
        let searched = searched(space);
        let stale = self
            .fold
            .as_ref()
            .is_some_and(|f| f.searched != searched || f.generation_start as usize > history.len());
        if stale || self.fold.is_none() {
            self.fold = Some(Fold {
                run: self.start(searched.len(), 0),
                choices: Choices::new(space),
                searched,
                generation_start: 0,
                restarts: 0,
            });
        }
        let mut fold = self.fold.take().expect("set above");
        loop {
            let start = fold.generation_start as usize;
            let Some(generation) = history.get(start..start + fold.run.lambda) else {
                break;
            };
            if !generation
                .iter()
                .all(|t| matches!(t.state, TrialState::Ended(_)))
            {
                break;
            }
            let mut ranked: Vec<(&TrialRecord, (f64, f64))> =
                generation.iter().map(|t| (t, self.key(t))).collect();
            ranked.sort_by(|a, b| a.1.0.total_cmp(&b.1.0).then(a.1.1.total_cmp(&b.1.1)));
            let points: Vec<DVector<f64>> = ranked
                .iter()
                .map(|(t, _)| point(space, &fold.searched, t))
                .collect();
            fold.run.tell(&points, &floors(space, &fold.searched));
            let units: Vec<Vec<f64>> = (ranked.iter())
                .map(|(t, _)| space.unit_from_params(&t.params).unwrap_or_default())
                .collect();
            fold.choices.tell(&units);
            fold.run.bests.push(ranked[0].1.1);
            fold.generation_start += fold.run.lambda as u64;
            if self.settings.restart == Restart::Ipop && fold.run.converged() {
                fold.restarts += 1;
                fold.run = self.start(fold.searched.len(), fold.restarts);
                fold.choices = Choices::new(space);
            }
        }
        self.fold = Some(fold);
    }
}

/// The dimensions CMA-ES searches: numeric ones every trial has.
fn searched(space: &Space) -> Vec<usize> {
    space
        .dimensions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.when.is_empty() && !matches!(d.distribution, Distribution::Choice(_)))
        .map(|(i, _)| i)
        .collect()
}

/// The least spread of each searched dimension: a quarter of a step for integers, 0 otherwise.
fn floors(space: &Space, searched: &[usize]) -> Vec<f64> {
    searched
        .iter()
        .map(|&i| {
            let width = space.dimensions[i].distribution.narrowest_cell();
            width.map_or(0.0, |w| 0.25 * w)
        })
        .collect()
}

/// A trial's coordinates along the searched dimensions (the middle where it has none).
fn point(space: &Space, searched: &[usize], t: &TrialRecord) -> DVector<f64> {
    let unit = space.unit_from_params(&t.params).unwrap_or_default();
    DVector::from_iterator(
        searched.len(),
        searched
            .iter()
            .map(|&i| unit.get(i).copied().filter(|u| !u.is_nan()).unwrap_or(0.5)),
    )
}

impl Sampler for CmaEsSampler {
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params> {
        self.advance(space, history);
        let fold = self.fold.as_ref().expect("advance sets it");
        let mut rng = stream(self.seed, Stream::Sampler, &[number]);
        // Every coordinate drawn at random first, the same draws as the random sampler's; the
        // searched ones then come from the distribution.
        let mut unit: Vec<f64> = (0..space.dimensions.len()).map(|_| rng.random()).collect();
        let x = fold.run.draw(&mut rng);
        for (i, u) in fold.choices.draw(&mut rng) {
            unit[i] = u;
        }
        for (k, &i) in fold.searched.iter().enumerate() {
            unit[i] = x[k];
        }
        Some(space.params_from_unit(&unit))
    }
}

#[cfg(test)]
mod tests;
