//! NSGA-II (Deb, Pratap, Agarwal and Meyarivan, "A fast and elitist multiobjective genetic
//! algorithm", IEEE TEC 2002) in the unit cube.
//!
//! Trials come in generations of `population`: trial n is of generation n / population, and
//! generation 0 takes the random sampler's draws. The parents of generation g are the best
//! `population` of the parents of generation g - 1 and its complete trials: by front, then,
//! within the last front that fits, the loneliest first (crowding distance). Constrained
//! domination orders them: every feasible trial before every infeasible one, infeasible ones by
//! how far outside the constraints. Each child has two parents, each the better of two drawn at
//! random (binary tournament); its numeric coordinates come from simulated binary crossover
//! (SBX) of theirs and polynomial mutation (the real-coded operators of the paper, with the
//! customary settings of pymoo), a choice from either parent, drawn anew as a mutation.
//!
//! Everything random comes from the stream of (seed, trial number). A generation's parents are
//! those of the previous generation whose results are in when it is asked (as in Optuna): with
//! one worker a sweep is reproducible, with several it depends on which trials finished first.

use super::Sampler;
use crate::constraint::{Constraint, Judge};
use crate::pareto;
use crate::rng::{Rng, Stream, stream};
use crate::space::{Distribution, Params, Space};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Goal};
use rand::Rng as _;

/// Probability that a child is a crossover of its parents rather than a copy of one.
const CROSSOVER: f64 = 0.9;
/// Probability that SBX crosses a given coordinate.
const CROSS_EACH: f64 = 0.5;
/// SBX's distribution index: larger keeps children nearer their parents.
const SBX_ETA: f64 = 15.0;
/// Polynomial mutation's distribution index.
const MUTATION_ETA: f64 = 20.0;

/// The NSGA-II sampler.
pub struct Nsga2Sampler {
    seed: u64,
    population: usize,
    goals: Vec<Goal>,
    constraints: Vec<Constraint>,
    /// The latest generation g whose parents are final (every trial before generation g has
    /// ended, so they can no longer change), with those parents.
    settled: Option<(usize, Vec<Member>)>,
    /// The length of the ended prefix of the history last read: a trial never un-ends, so it
    /// only grows, and each proposal reads on from it.
    ended: usize,
    /// The parents of generation 0: the best of earlier sweeps' trials (`warm_start`), or none.
    warm: Vec<Member>,
}

/// A trial that can be a parent.
#[derive(Debug, Clone)]
struct Member {
    number: u64,
    point: Vec<f64>,
    losses: Vec<f64>,
    violation: f64,
    /// Its front in the selection that chose it (0: the best).
    front: usize,
    /// Its crowding distance in that front.
    crowding: f64,
}

impl Nsga2Sampler {
    /// NSGA-II for a sweep seeded `seed` that optimises `goals`, in generations of
    /// `population` trials, steered away from trials that break `constraints`.
    pub fn new(
        seed: u64,
        goals: &[Goal],
        population: usize,
        constraints: &[Constraint],
    ) -> Nsga2Sampler {
        Nsga2Sampler {
            seed,
            population: population.max(2),
            goals: goals.to_vec(),
            constraints: constraints.to_vec(),
            settled: None,
            ended: 0,
            warm: Vec::new(),
        }
    }

    /// The same sampler, whose first generation descends from the best `population` of the
    /// complete trials of `sweeps` (those in this space) instead of being drawn at random.
    pub fn warm_started(mut self, space: &Space, sweeps: &[crate::state::SweepState]) -> Self {
        let earlier: Vec<TrialRecord> = (sweeps.iter())
            .flat_map(|s| &s.trials)
            .enumerate()
            .map(|(i, t)| TrialRecord {
                // Numbered past any trial of this sweep, so that ties never depend on it.
                number: u64::MAX / 2 + i as u64,
                ..t.clone()
            })
            .collect();
        let pool = self.members(space, &earlier);
        self.warm = elite(pool, self.population);
        self
    }

    /// The complete trials of generation `g` that have every objective.
    fn children(&self, space: &Space, history: &[TrialRecord], g: usize) -> Vec<Member> {
        let range = g * self.population..((g + 1) * self.population).min(history.len());
        self.members(space, history.get(range).unwrap_or_default())
    }

    /// The complete trials of `trials` that have every objective, as possible parents.
    fn members(&self, space: &Space, trials: &[TrialRecord]) -> Vec<Member> {
        let first = &self.goals[0];
        let judge = Judge {
            constraints: &self.constraints,
            objective: &first.metric,
            direction: first.direction,
        };
        trials
            .iter()
            .filter(|t| t.state == TrialState::Ended(EndState::Complete))
            .filter_map(|t| {
                Some(Member {
                    number: t.number,
                    point: space.unit_from_params(&t.params)?,
                    losses: t.losses(&self.goals)?,
                    violation: judge.violation(t),
                    front: 0,
                    crowding: 0.0,
                })
            })
            .collect()
    }

    /// The parents of generation `g` (g >= 1).
    fn parents(&mut self, space: &Space, history: &[TrialRecord], g: usize) -> Vec<Member> {
        if self.ended > history.len() {
            // Not the history read before: a sampler reused on another sweep.
            (self.ended, self.settled) = (0, None);
        }
        while history
            .get(self.ended)
            .is_some_and(|t| matches!(t.state, TrialState::Ended(_)))
        {
            self.ended += 1;
        }
        // Generation 0's parents are the warm start's (none without).
        let (mut k, mut parents) = match &self.settled {
            Some((k, parents)) if *k <= g => (*k, parents.clone()),
            _ => (0, self.warm.clone()),
        };
        while k < g {
            let mut pool = parents;
            pool.extend(self.children(space, history, k));
            parents = elite(pool, self.population);
            k += 1;
            if k * self.population <= self.ended {
                self.settled = Some((k, parents.clone()));
            }
        }
        parents
    }
}

/// The best `size` of `pool` by constrained domination and crowding distance, each with its
/// front and crowding distance.
fn elite(pool: Vec<Member>, size: usize) -> Vec<Member> {
    let (feasible, mut infeasible): (Vec<Member>, Vec<Member>) =
        pool.into_iter().partition(|m| m.violation == 0.0);
    let ranks = pareto::ranks(&feasible.iter().map(|m| &m.losses[..]).collect::<Vec<_>>());
    let mut fronts: Vec<Vec<Member>> = vec![Vec::new(); ranks.iter().max().map_or(0, |r| r + 1)];
    for (m, r) in feasible.into_iter().zip(ranks) {
        fronts[r].push(m);
    }
    // An infeasible trial dominates another when it is less far outside the constraints.
    infeasible.sort_by(|a, b| {
        a.violation
            .total_cmp(&b.violation)
            .then(a.number.cmp(&b.number))
    });
    for m in infeasible {
        match fronts.last_mut() {
            Some(front) if front[0].violation == m.violation && m.violation > 0.0 => front.push(m),
            _ => fronts.push(vec![m]),
        }
    }
    let mut chosen = Vec::with_capacity(size);
    for (rank, mut front) in fronts.into_iter().enumerate() {
        if chosen.len() >= size {
            break;
        }
        let distance = pareto::crowding(&front.iter().map(|m| &m.losses[..]).collect::<Vec<_>>());
        for (m, d) in front.iter_mut().zip(distance) {
            m.front = rank;
            m.crowding = d;
        }
        front.sort_by(|a, b| {
            b.crowding
                .total_cmp(&a.crowding)
                .then(a.number.cmp(&b.number))
        });
        front.truncate(size - chosen.len());
        chosen.extend(front);
    }
    chosen
}

/// The better of two members drawn at random: the lower front, then the lonelier.
fn tournament<'a>(parents: &'a [Member], rng: &mut Rng) -> &'a Member {
    let a = &parents[rng.random_range(0..parents.len())];
    let b = &parents[rng.random_range(0..parents.len())];
    if (b.front, -b.crowding) < (a.front, -a.crowding) {
        b
    } else {
        a
    }
}

/// Simulated binary crossover of two coordinates in [0, 1] (Deb and Agrawal 1995, bounded form):
/// one child.
fn sbx(x1: f64, x2: f64, rng: &mut Rng) -> f64 {
    if (x1 - x2).abs() < 1e-14 {
        return x1;
    }
    let (low, high) = (x1.min(x2), x1.max(x2));
    let exponent = 1.0 / (SBX_ETA + 1.0);
    let spread = |beta: f64, r: f64| {
        let alpha = 2.0 - beta.powf(-(SBX_ETA + 1.0));
        if r <= 1.0 / alpha {
            (r * alpha).powf(exponent)
        } else {
            (1.0 / (2.0 - r * alpha)).powf(exponent)
        }
    };
    let r: f64 = rng.random();
    let child = if rng.random::<bool>() {
        let beta = 1.0 + 2.0 * low / (high - low);
        0.5 * (low + high - spread(beta, r) * (high - low))
    } else {
        let beta = 1.0 + 2.0 * (1.0 - high) / (high - low);
        0.5 * (low + high + spread(beta, r) * (high - low))
    };
    child.clamp(0.0, 1.0)
}

/// Polynomial mutation of a coordinate in [0, 1] (Deb and Goyal 1996, bounded form).
fn mutate(y: f64, rng: &mut Rng) -> f64 {
    let r: f64 = rng.random();
    let power = 1.0 / (MUTATION_ETA + 1.0);
    let delta = if r < 0.5 {
        let v = 2.0 * r + (1.0 - 2.0 * r) * (1.0 - y).powf(MUTATION_ETA + 1.0);
        v.powf(power) - 1.0
    } else {
        let v = 2.0 * (1.0 - r) + 2.0 * (r - 0.5) * y.powf(MUTATION_ETA + 1.0);
        1.0 - v.powf(power)
    };
    (y + delta).clamp(0.0, 1.0)
}

/// A child of two parents' points: each coordinate crossed or taken from one parent, then
/// perhaps mutated (each with probability 1 / dimensions); a coordinate neither parent had (an
/// inactive parameter) is drawn anew.
fn child(space: &Space, a: &[f64], b: &[f64], rng: &mut Rng) -> Vec<f64> {
    let cross = rng.random::<f64>() < CROSSOVER;
    let mutation = 1.0 / space.dimensions.len().max(1) as f64;
    let below_one = |u: f64| u.min(1.0 - f64::EPSILON);
    space
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            let (x, y) = (a[d], b[d]);
            let choice = matches!(dim.distribution, Distribution::Choice(_));
            let value = match (x.is_nan(), y.is_nan()) {
                (true, true) => return rng.random(),
                (true, false) => y,
                (false, true) => x,
                _ if cross && choice => {
                    if rng.random::<bool>() {
                        x
                    } else {
                        y
                    }
                }
                _ if cross && rng.random::<f64>() < CROSS_EACH => sbx(x, y, rng),
                _ => x,
            };
            match rng.random::<f64>() < mutation {
                true if choice => rng.random(),
                true => below_one(mutate(value, rng)),
                false => below_one(value),
            }
        })
        .collect()
}

impl Sampler for Nsga2Sampler {
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params> {
        let g = number as usize / self.population;
        let parents = if g == 0 {
            self.warm.clone()
        } else {
            self.parents(space, history, g)
        };
        if parents.is_empty() {
            return super::RandomSampler::new(self.seed).sample(space, number, history);
        }
        let mut rng = stream(self.seed, Stream::Sampler, &[number]);
        let a = tournament(&parents, &mut rng);
        let b = tournament(&parents, &mut rng);
        Some(space.params_from_unit(&child(space, &a.point, &b.point, &mut rng)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(number: u64, losses: [f64; 2], violation: f64) -> Member {
        Member {
            number,
            point: vec![],
            losses: losses.to_vec(),
            violation,
            front: 0,
            crowding: 0.0,
        }
    }

    #[test]
    fn elite_keeps_the_front_then_the_lonely_then_the_least_infeasible() {
        let pool = vec![
            member(0, [0.0, 1.0], 0.0),
            member(1, [1.0, 0.0], 0.0),
            member(2, [0.5, 0.5], 0.0),
            member(3, [0.6, 0.6], 0.0),
            member(4, [0.0, 0.0], 2.0),
            member(5, [0.0, 0.0], 1.0),
        ];
        let numbers =
            |size| -> Vec<u64> { elite(pool.clone(), size).iter().map(|m| m.number).collect() };
        assert_eq!(numbers(3), [0, 1, 2]);
        assert_eq!(numbers(5), [0, 1, 2, 3, 5]);
        // The front's extremes are kept over its crowded middle.
        assert_eq!(numbers(2), [0, 1]);
    }

    #[test]
    fn operators_stay_in_the_unit_interval_and_near_their_parents() {
        let mut rng = stream(1, Stream::Sampler, &[0]);
        let mut near = 0;
        for _ in 0..2000 {
            let c = sbx(0.2, 0.3, &mut rng);
            assert!((0.0..=1.0).contains(&c));
            near += usize::from((0.1..0.4).contains(&c));
            let m = mutate(0.99, &mut rng);
            assert!((0.0..=1.0).contains(&m));
        }
        assert!(near > 1600, "{near} of 2000 children near their parents");
    }
}
