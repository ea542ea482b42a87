//! Samplers: where each trial's parameters come from.
//!
//! A sampler maps (space, trial number, history) to parameters, or to `None` when it has nothing
//! left to propose (an exhausted grid). The random and grid samplers ignore the history and depend
//! only on the sweep seed and the trial number, and so does sobol, so a trial's parameters do not
//! depend on how many workers ran or when the sweep was interrupted. TPE and NSGA-II learn from
//! the history (and so, with several workers, from what has finished when they are asked).

pub mod auto;
mod cmaes;
mod gp;
mod grid;
mod nsga2;
mod random;
mod sobol;
pub mod spec;
mod tpe;

pub use cmaes::{CmaEsSampler, CmaSettings, Restart};
pub use gp::{GpSampler, REGRET_MIN_TRIALS, RegretBound, regret_bound};
pub use grid::GridSampler;
pub use nsga2::Nsga2Sampler;
pub use random::RandomSampler;
pub use sobol::{
    MAX_DIMENSIONS as SOBOL_MAX_DIMENSIONS, MAX_POINTS as SOBOL_MAX_POINTS, SobolSampler,
};
pub use tpe::{TpeSampler, TpeSettings};

use crate::experiment::{Experiment, SamplerKind};
use crate::space::{Params, Space};
use crate::state::{SweepState, TrialRecord};

/// Proposes parameters for new trials.
pub trait Sampler: Send {
    /// Parameters for trial `number`, given the trials so far; `None` when exhausted.
    fn sample(&mut self, space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params>;
}

/// The index whose share of `weights` (summing to 1) covers one uniform draw: a draw of a
/// categorical distribution.
fn pick(weights: &[f64], rng: &mut crate::rng::Rng) -> usize {
    use rand::Rng as _;
    let mut r: f64 = rng.random();
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w;
    }
    weights.len() - 1
}

/// A draw of the standard normal distribution (Box-Muller).
fn standard_normal(rng: &mut crate::rng::Rng) -> f64 {
    use rand::Rng as _;
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The sampler kind of a sweep of `experiment` whose journal says `default_sampler`
/// ([`SweepState::default_sampler`]): the file's, or when it names none, the default of the
/// kiln that started the sweep, so that upgrading kiln never changes a running sweep's sampler.
/// A default this kiln does not know (the sweep was started by a newer one) is refused rather
/// than replaced: the sweep would go on with another sampler than it started with.
pub fn kind_in_sweep(
    experiment: &Experiment,
    default_sampler: Option<&str>,
) -> crate::error::Result<SamplerKind> {
    let spec = &experiment.sampler;
    match (spec.by_default, default_sampler) {
        (false, _) => Ok(spec.kind),
        (true, None) => Ok(SamplerKind::Random),
        (true, Some(name)) => SamplerKind::from_name(name).ok_or_else(|| {
            crate::error::Error::input(format!(
                "this sweep was started by a kiln whose default sampler is `{name}`, which this kiln does not know: continue it with that kiln, or name a sampler in [sampler] kind = ... and start a new sweep"
            ))
        }),
    }
}

/// The sampler an experiment asks for; `earlier` holds the sweeps of its `warm_start`, whose
/// trials the samplers that learn from history (tpe, gp, cmaes, nsga2) learn from before their own.
pub fn build(experiment: &Experiment, earlier: &[SweepState]) -> Box<dyn Sampler> {
    of_kind(experiment, experiment.sampler.kind, earlier)
}

/// The sampler of `kind` for `experiment`, with the experiment's settings.
pub fn of_kind(
    experiment: &Experiment,
    kind: SamplerKind,
    earlier: &[SweepState],
) -> Box<dyn Sampler> {
    let (spec, space, seed) = (&experiment.sampler, &experiment.space, experiment.seed);
    let objective = &experiment.objective;
    match kind {
        SamplerKind::Auto => Box::new(auto::AutoSampler::new(
            auto::plan(experiment)
                .into_iter()
                .map(|phase| (phase.from, of_kind(experiment, phase.kind, earlier)))
                .collect(),
        )),
        SamplerKind::Random => Box::new(RandomSampler::new(seed)),
        SamplerKind::Grid => Box::new(GridSampler::new(space, spec.points)),
        SamplerKind::Sobol => Box::new(SobolSampler::new(seed)),
        SamplerKind::Tpe => Box::new(
            TpeSampler::new(
                seed,
                &objective.goals(),
                TpeSettings {
                    startup_trials: spec.startup_trials,
                    gamma: spec.gamma,
                    candidates: spec.candidates,
                    multivariate: spec.multivariate.unwrap_or(objective.goals().len() == 1),
                },
            )
            .constrained(&experiment.constraints)
            .warm_started(space, earlier),
        ),
        SamplerKind::Cmaes => Box::new(
            CmaEsSampler::new(
                seed,
                objective.goals().remove(0),
                &experiment.constraints,
                spec.cmaes.clone(),
            )
            .warm_started(space, earlier),
        ),
        SamplerKind::Gp => Box::new(
            GpSampler::for_goals(
                seed,
                &objective.goals(),
                &experiment.constraints,
                spec.startup_trials,
            )
            .warm_started(earlier),
        ),
        SamplerKind::Nsga2 => Box::new(
            Nsga2Sampler::new(
                seed,
                &objective.goals(),
                spec.population,
                &experiment.constraints,
            )
            .warm_started(space, earlier),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::function::{Function, drive};
    use crate::space::{Dimension, Distribution};
    use crate::trial::{Direction, Goal};

    /// The hypervolume of a sweep's (f1, f2), against (1.1, 11): past the worst any input gives.
    pub(super) fn hypervolume(state: &crate::state::SweepState) -> f64 {
        let goals = [
            Goal::new("f1", Direction::Minimize),
            Goal::new("f2", Direction::Minimize),
        ];
        let points: Vec<Vec<f64>> = state
            .trials
            .iter()
            .filter_map(|t| t.losses(&goals))
            .collect();
        crate::pareto::hypervolume(&points, &[1.1, 11.0])
    }

    /// Every kind of dimension, and two conditional on a choice (one through the other).
    fn mixed_space() -> Space {
        let mut dims = vec![
            Dimension::new(
                "lr",
                Distribution::LogUniform {
                    low: 1e-4,
                    high: 1e-1,
                },
            ),
            Dimension::new(
                "dropout",
                Distribution::Uniform {
                    low: 0.0,
                    high: 0.5,
                },
            ),
            Dimension::new(
                "layers",
                Distribution::Int {
                    low: 1,
                    high: 4,
                    step: 1,
                    log: false,
                },
            ),
            Dimension::new(
                "batch",
                Distribution::Int {
                    low: 16,
                    high: 256,
                    step: 16,
                    log: false,
                },
            ),
            Dimension::new(
                "hidden",
                Distribution::Int {
                    low: 8,
                    high: 512,
                    step: 1,
                    log: true,
                },
            ),
            Dimension::new("optimizer", crate::space::string_choice(&["sgd", "adamw"])),
            Dimension::new("nesterov", crate::space::string_choice(&["yes", "no"])),
            Dimension::new(
                "momentum",
                Distribution::Uniform {
                    low: 0.8,
                    high: 0.99,
                },
            ),
        ];
        let under = |parent: &str, value: &str| {
            vec![crate::space::Condition {
                parent: parent.into(),
                values: vec![crate::space::ParamValue::Str(value.into())],
            }]
        };
        dims[6].when = under("optimizer", "sgd");
        dims[7].when = under("nesterov", "yes");
        Space { dimensions: dims }
    }

    #[test]
    fn every_sampler_proposes_inside_the_space_and_again_the_same_from_the_same_history() {
        let space = mixed_space();
        let goal = Goal::new("value", Direction::Minimize);
        let experiment = |kind: &str| -> Box<dyn Sampler> {
            match kind {
                "random" => Box::new(RandomSampler::new(3)),
                "sobol" => Box::new(SobolSampler::new(3)),
                "tpe" => Box::new(TpeSampler::new(
                    3,
                    std::slice::from_ref(&goal),
                    TpeSettings {
                        startup_trials: 5,
                        gamma: 0.25,
                        candidates: 24,
                        multivariate: false,
                    },
                )),
                "nsga2" => Box::new(Nsga2Sampler::new(3, std::slice::from_ref(&goal), 8, &[])),
                "gp" => Box::new(GpSampler::new(3, goal.clone(), &[], 5)),
                // auto's phases, switching mid-sweep: the sampler of each phase sees the
                // whole history.
                "auto" => Box::new(auto::AutoSampler::new(vec![
                    (0, Box::new(GpSampler::new(3, goal.clone(), &[], 5))),
                    (
                        20,
                        Box::new(TpeSampler::new(
                            3,
                            std::slice::from_ref(&goal),
                            TpeSettings {
                                startup_trials: 5,
                                gamma: 0.1,
                                candidates: 24,
                                multivariate: true,
                            },
                        )),
                    ),
                ])),
                _ => Box::new(CmaEsSampler::new(
                    3,
                    goal.clone(),
                    &[],
                    CmaSettings {
                        sigma0: 0.2,
                        popsize: Some(6),
                        restart: Restart::Ipop,
                        separable: kind == "cmaes-sep",
                    },
                )),
            }
        };
        let kinds = [
            "random",
            "sobol",
            "tpe",
            "nsga2",
            "cmaes",
            "cmaes-sep",
            "gp",
            "auto",
        ];
        for kind in kinds {
            let mut sampler = experiment(kind);
            let mut state = crate::state::SweepState::default();
            for n in 0..40u64 {
                let params = sampler.sample(&space, n, &state.trials).unwrap();
                assert_eq!(
                    space.admit(&params).as_ref(),
                    Ok(&params),
                    "{kind}: {params:?}"
                );
                let mut active = params.clone();
                space
                    .fill(&params, &vec![0.5; space.dimensions.len()])
                    .iter()
                    .for_each(|(k, v)| {
                        active.entry(k.clone()).or_insert(v.clone());
                    });
                assert_eq!(active, params, "{kind}: an active parameter is missing");
                // A fresh sampler given the same history (a resumed sweep) proposes the same.
                let again = experiment(kind).sample(&space, n, &state.trials).unwrap();
                assert_eq!(
                    again, params,
                    "{kind}: trial {n} differs from the history alone"
                );
                let unit = space.unit_from_params(&params).unwrap();
                let value: f64 = unit
                    .iter()
                    .filter(|u| !u.is_nan())
                    .map(|u| (u - 0.3).powi(2))
                    .sum();
                let metrics = crate::trial::Metrics::from([("value".to_string(), value)]);
                crate::state::ended_trial(
                    &mut state,
                    n,
                    params,
                    metrics,
                    crate::trial::EndState::Complete,
                );
            }
        }
    }

    #[test]
    fn on_zdt1_nsga2_and_motpe_each_beat_random_in_hypervolume() {
        let space = Function::Zdt1.domain(30);
        let goals = [
            Goal::new("f1", Direction::Minimize),
            Goal::new("f2", Direction::Minimize),
        ];
        let settings = TpeSettings {
            startup_trials: 10,
            gamma: 0.25,
            candidates: 24,
            multivariate: false,
        };
        let mut totals = [0.0; 3];
        let mut wins = [0; 2];
        for seed in 0..10 {
            let samplers: [Box<dyn Sampler>; 3] = [
                Box::new(RandomSampler::new(seed)),
                Box::new(Nsga2Sampler::new(seed, &goals, 50, &[])),
                Box::new(TpeSampler::new(seed, &goals, settings.clone())),
            ];
            let hv: Vec<f64> = samplers
                .into_iter()
                .map(|mut s| hypervolume(&drive(Function::Zdt1, &space, s.as_mut(), 200)))
                .collect();
            eprintln!(
                "seed {seed}: random {:.3}, nsga2 {:.3}, motpe {:.3}",
                hv[0], hv[1], hv[2]
            );
            for i in 0..3 {
                totals[i] += hv[i];
            }
            for i in 0..2 {
                wins[i] += usize::from(hv[i + 1] > hv[0]);
            }
        }
        eprintln!("totals {totals:?}, wins {wins:?}");
        assert!(
            totals[1] > totals[0] && wins[0] >= 8,
            "nsga2: {totals:?} {wins:?}"
        );
        assert!(
            totals[2] > totals[0] && wins[1] >= 8,
            "motpe: {totals:?} {wins:?}"
        );
    }

    #[test]
    fn every_sampler_that_learns_from_history_starts_better_with_a_warm_start() {
        // (x1 - 3)² + (x2 - 3)² on [-5, 5]²: an earlier sweep of 40 random trials; the first
        // six proposals of a warm-started sweep against a cold one, over 10 seeds.
        let space = Space {
            dimensions: ["x1", "x2"]
                .map(|n| {
                    Dimension::new(
                        n,
                        Distribution::Uniform {
                            low: -5.0,
                            high: 5.0,
                        },
                    )
                })
                .to_vec(),
        };
        let f = |p: &Params| {
            (p["x1"].as_f64().unwrap() - 3.0).powi(2) + (p["x2"].as_f64().unwrap() - 3.0).powi(2)
        };
        let goal = Goal::new("value", Direction::Minimize);
        let run = |sampler: &mut dyn Sampler, trials: u64| {
            let mut state = SweepState::default();
            let mut total = 0.0;
            for n in 0..trials {
                let params = sampler.sample(&space, n, &state.trials).unwrap();
                let value = f(&params);
                total += value;
                let metrics = crate::trial::Metrics::from([("value".to_string(), value)]);
                let end = crate::trial::EndState::Complete;
                crate::state::ended_trial(&mut state, n, params, metrics, end);
            }
            (state, total)
        };
        for kind in ["tpe", "gp", "cmaes", "nsga2"] {
            let (mut warm, mut cold) = (0.0, 0.0);
            for seed in 0..10 {
                let earlier = run(&mut RandomSampler::new(seed + 100), 40).0;
                let build = |warm_start: &[SweepState]| -> Box<dyn Sampler> {
                    match kind {
                        "tpe" => Box::new(
                            TpeSampler::new(
                                seed,
                                std::slice::from_ref(&goal),
                                TpeSettings {
                                    startup_trials: 10,
                                    gamma: 0.1,
                                    candidates: 24,
                                    multivariate: true,
                                },
                            )
                            .warm_started(&space, warm_start),
                        ),
                        "gp" => Box::new(
                            GpSampler::new(seed, goal.clone(), &[], 10).warm_started(warm_start),
                        ),
                        "nsga2" => Box::new(
                            Nsga2Sampler::new(seed, std::slice::from_ref(&goal), 6, &[])
                                .warm_started(&space, warm_start),
                        ),
                        _ => Box::new(
                            CmaEsSampler::new(
                                seed,
                                goal.clone(),
                                &[],
                                CmaSettings {
                                    sigma0: 1.0 / 6.0,
                                    popsize: None,
                                    restart: Restart::Ipop,
                                    separable: false,
                                },
                            )
                            .warm_started(&space, warm_start),
                        ),
                    }
                };
                warm += run(build(std::slice::from_ref(&earlier)).as_mut(), 6).1;
                cold += run(build(&[]).as_mut(), 6).1;
            }
            assert!(warm * 3.0 < cold, "{kind}: warm {warm}, cold {cold}");
        }
    }
}
