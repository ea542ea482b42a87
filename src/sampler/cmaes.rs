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
use crate::rng::{Rng, Stream, stream};
use crate::space::{Distribution, Params, Space};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Goal};
use nalgebra::{DMatrix, DVector};
use rand::Rng as _;

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

/// One run of CMA-ES, between restarts.
#[derive(Clone)]
struct Run {
    lambda: usize,
    mean: DVector<f64>,
    sigma: f64,
    c: DMatrix<f64>,
    pc: DVector<f64>,
    ps: DVector<f64>,
    /// C = B diag(d^2) B^T.
    b: DMatrix<f64>,
    d: DVector<f64>,
    generations: u32,
    /// The best loss of each generation, for the stopping test.
    bests: Vec<f64>,
}

/// The constants of the update, from the dimension and the population.
struct Constants {
    weights: Vec<f64>,
    mu_eff: f64,
    c_sigma: f64,
    d_sigma: f64,
    c_c: f64,
    c_1: f64,
    c_mu: f64,
    chi_n: f64,
}

impl Constants {
    fn new(n: usize, lambda: usize) -> Constants {
        let nf = n as f64;
        let mu = lambda / 2;
        let raw: Vec<f64> = (1..=mu)
            .map(|i| (mu as f64 + 0.5).ln() - (i as f64).ln())
            .collect();
        let total: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|w| w / total).collect();
        let mu_eff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let c_sigma = (mu_eff + 2.0) / (nf + mu_eff + 5.0);
        let c_1 = 2.0 / ((nf + 1.3).powi(2) + mu_eff);
        Constants {
            weights,
            mu_eff,
            c_sigma,
            d_sigma: 1.0 + 2.0 * (((mu_eff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + c_sigma,
            c_c: (4.0 + mu_eff / nf) / (nf + 4.0 + 2.0 * mu_eff / nf),
            c_1,
            c_mu: (1.0 - c_1)
                .min(2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((nf + 2.0).powi(2) + mu_eff)),
            chi_n: nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf)),
        }
    }
}

impl Run {
    fn new(mean: DVector<f64>, sigma: f64, lambda: usize) -> Run {
        let n = mean.len();
        Run {
            lambda,
            mean,
            sigma,
            c: DMatrix::identity(n, n),
            pc: DVector::zeros(n),
            ps: DVector::zeros(n),
            b: DMatrix::identity(n, n),
            d: DVector::from_element(n, 1.0),
            generations: 0,
            bests: Vec::new(),
        }
    }

    /// One generation's update from its points, best first.
    fn tell(&mut self, sorted: &[DVector<f64>], floors: &[f64]) {
        let n = self.mean.len();
        let k = Constants::new(n, self.lambda);
        let ys: Vec<DVector<f64>> = sorted
            .iter()
            .map(|x| (x - &self.mean) / self.sigma)
            .collect();
        let mut y_w = DVector::zeros(n);
        for (w, y) in k.weights.iter().zip(&ys) {
            y_w += y * *w;
        }
        self.mean += &y_w * self.sigma;
        let inv_sqrt =
            &self.b * DMatrix::from_diagonal(&self.d.map(|d| 1.0 / d)) * self.b.transpose();
        self.ps = &self.ps * (1.0 - k.c_sigma)
            + inv_sqrt * &y_w * (k.c_sigma * (2.0 - k.c_sigma) * k.mu_eff).sqrt();
        let g = f64::from(self.generations + 1);
        let ps_norm = self.ps.norm();
        let h_sigma = ps_norm / (1.0 - (1.0 - k.c_sigma).powf(2.0 * g)).sqrt()
            < (1.4 + 2.0 / (n as f64 + 1.0)) * k.chi_n;
        let h = if h_sigma { 1.0 } else { 0.0 };
        self.pc = &self.pc * (1.0 - k.c_c) + &y_w * (h * (k.c_c * (2.0 - k.c_c) * k.mu_eff).sqrt());
        let mut rank_mu = DMatrix::zeros(n, n);
        for (w, y) in k.weights.iter().zip(&ys) {
            rank_mu += y * y.transpose() * *w;
        }
        let lost = (1.0 - h) * k.c_c * (2.0 - k.c_c);
        self.c = &self.c * (1.0 - k.c_1 - k.c_mu + k.c_1 * lost)
            + &self.pc * self.pc.transpose() * k.c_1
            + rank_mu * k.c_mu;
        self.sigma *= ((k.c_sigma / k.d_sigma) * (ps_norm / k.chi_n - 1.0))
            .min(1.0)
            .exp();
        // The margin: an integer axis keeps a spread of at least its floor.
        for (i, &floor) in floors.iter().enumerate() {
            let spread = self.sigma * self.c[(i, i)].sqrt();
            if floor > 0.0 && spread < floor {
                self.c[(i, i)] = (floor / self.sigma).powi(2);
            }
        }
        self.set_covariance(self.c.clone());
        self.generations += 1;
    }

    /// Sets the covariance (symmetrised) and its eigendecomposition.
    fn set_covariance(&mut self, c: DMatrix<f64>) {
        self.c = (&c + c.transpose()) * 0.5;
        let eigen = nalgebra::SymmetricEigen::new(self.c.clone());
        self.b = eigen.eigenvectors;
        self.d = eigen.eigenvalues.map(|e| e.max(1e-20).sqrt());
    }

    /// Whether the run has converged: its steps below 1e-10 of the cube, its last generations
    /// all within 1e-12 of each other, or its covariance too ill-conditioned to go on.
    fn converged(&self) -> bool {
        let n = self.mean.len();
        let tiny_steps = (0..n).all(|i| self.sigma * self.c[(i, i)].sqrt() < 1e-10);
        let window = 10 + (30 * n).div_ceil(self.lambda);
        let flat = self.bests.len() >= window && {
            let recent = &self.bests[self.bests.len() - window..];
            let (low, high) = recent
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            high - low < 1e-12
        };
        let (dmin, dmax) = self
            .d
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        tiny_steps || flat || (dmax / dmin).powi(2) > 1e14
    }

    /// A point of the distribution in `[0, 1)^n` for one trial: redrawn while outside (up to
    /// 100 times), then clipped.
    fn draw(&self, rng: &mut Rng) -> DVector<f64> {
        let n = self.mean.len();
        let mut x = self.mean.clone();
        for _ in 0..100 {
            let z = DVector::from_fn(n, |_, _| super::standard_normal(rng));
            x = &self.mean + &self.b * z.component_mul(&self.d) * self.sigma;
            if x.iter().all(|v| (0.0..1.0).contains(v)) {
                return x;
            }
        }
        x.map(|v| v.clamp(0.0, 1.0 - f64::EPSILON))
    }
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
            let mut run = Run::new(warm.mean.clone(), warm.sigma, self.lambda(searched, 0));
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
        Run::new(mean, self.settings.sigma0, self.lambda(searched, restarts))
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

/// The least probability of a category, as a share of the uniform 1/K: a margin that keeps
/// every category within reach, as CatCMA's does.
const CATEGORY_MARGIN: f64 = 0.1;
/// How far one generation moves the categorical distributions towards its best trials.
const CATEGORY_RATE: f64 = 0.3;

/// The categorical part of the search (Hamano, Saito, Nomura and Shirakawa, "CatCMA", GECCO
/// 2024): one distribution per choice that every trial has, moved each generation towards the
/// categories of its best half, weighted by rank (the natural-gradient step of a categorical
/// distribution), with a margin.
#[derive(Clone)]
struct Choices {
    /// (index in the space, categories, probability of each).
    dims: Vec<(usize, usize, Vec<f64>)>,
}

impl Choices {
    /// Uniform over each choice every trial has.
    fn new(space: &Space) -> Choices {
        let dims = (space.dimensions.iter().enumerate())
            .filter(|(_, d)| d.when.is_empty())
            .filter_map(|(i, d)| match &d.distribution {
                Distribution::Choice(values) if values.len() > 1 => Some((
                    i,
                    values.len(),
                    vec![1.0 / values.len() as f64; values.len()],
                )),
                _ => None,
            })
            .collect();
        Choices { dims }
    }

    /// One generation's update from its trials' unit points, best first.
    fn tell(&mut self, ranked: &[Vec<f64>]) {
        let mu = ranked.len().div_ceil(2);
        let raw: Vec<f64> = (0..mu)
            .map(|i| ((mu as f64 + 0.5).ln() - ((i + 1) as f64).ln()).max(0.0))
            .collect();
        let total: f64 = raw.iter().sum();
        for (i, k, p) in &mut self.dims {
            let mut target = vec![0.0; *k];
            for (unit, w) in ranked.iter().zip(&raw) {
                if let Some(u) = unit.get(*i).filter(|u| !u.is_nan()) {
                    target[crate::space::cell(*u, *k)] += w / total;
                }
            }
            let floor = CATEGORY_MARGIN / *k as f64;
            for (pc, t) in p.iter_mut().zip(&target) {
                *pc = ((1.0 - CATEGORY_RATE) * *pc + CATEGORY_RATE * t).max(floor);
            }
            let sum: f64 = p.iter().sum();
            p.iter_mut().for_each(|pc| *pc /= sum);
        }
    }

    /// A draw of each choice: (index in the space, unit coordinate).
    fn draw(&self, rng: &mut Rng) -> Vec<(usize, f64)> {
        (self.dims.iter())
            .map(|(i, k, p)| (*i, crate::space::cell_centre(super::pick(p, rng), *k)))
            .collect()
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
mod tests {
    use super::*;
    use crate::objective::function::{Function, drive};
    use crate::trial::Direction;

    #[test]
    fn on_rosenbrock_in_ten_dimensions_cmaes_beats_random_over_ten_seeds() {
        let space = Function::Rosenbrock.domain(10);
        let best = |state: crate::state::SweepState| {
            state
                .best("value", Direction::Minimize)
                .map_or(f64::INFINITY, |b| b.1)
        };
        let (mut cma, mut random) = (Vec::new(), Vec::new());
        for seed in 0..10 {
            let settings = CmaSettings {
                sigma0: 1.0 / 6.0,
                popsize: None,
                restart: Restart::Ipop,
            };
            let mut sampler =
                CmaEsSampler::new(seed, Goal::new("value", Direction::Minimize), &[], settings);
            cma.push(best(drive(Function::Rosenbrock, &space, &mut sampler, 300)));
            let mut sampler = crate::sampler::RandomSampler::new(seed);
            random.push(best(drive(Function::Rosenbrock, &space, &mut sampler, 300)));
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[4] + v[5]) / 2.0
        };
        let (cma, random) = (median(cma), median(random));
        eprintln!("median regret after 300 trials: cma-es {cma:.3}, random {random:.3}");
        assert!(cma < random / 5.0, "cma-es {cma}, random {random}");
    }

    #[test]
    fn choices_are_learnt_with_the_numeric_parameters() {
        // (x - 0.3)² + 1 unless `c` is "b": CMA-ES settles on "b" where a random draw of
        // four choices would take it a quarter of the time.
        let space = Space {
            dimensions: vec![
                crate::space::Dimension::new(
                    "x",
                    Distribution::Uniform {
                        low: 0.0,
                        high: 1.0,
                    },
                ),
                crate::space::Dimension::new(
                    "c",
                    Distribution::Choice(
                        ["a", "b", "c", "d"]
                            .map(|v| crate::space::ParamValue::Str(v.into()))
                            .to_vec(),
                    ),
                ),
            ],
        };
        let goal = Goal::new("value", Direction::Minimize);
        let mut hits = 0;
        for seed in 0..5 {
            let settings = CmaSettings {
                sigma0: 1.0 / 6.0,
                popsize: None,
                restart: Restart::None,
            };
            let mut sampler = CmaEsSampler::new(seed, goal.clone(), &[], settings);
            let mut state = crate::state::SweepState::default();
            for n in 0..60 {
                let params = sampler.sample(&space, n, &state.trials).unwrap();
                let x = params["x"].as_f64().unwrap();
                let b = params["c"] == crate::space::ParamValue::Str("b".into());
                hits += usize::from(n >= 40 && b);
                let value = (x - 0.3).powi(2) + if b { 0.0 } else { 1.0 };
                let metrics = crate::trial::Metrics::from([("value".to_string(), value)]);
                crate::state::ended_trial(&mut state, n, params, metrics, EndState::Complete);
            }
        }
        assert!(hits >= 70, "\"b\" in {hits} of the last 100 trials");
    }
}
