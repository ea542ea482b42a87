//! Tests of `tpe`.

use super::parzen::normal_cdf;
use super::*;
use crate::journal::Event;
use crate::space::{Dimension, Distribution, ParamValue};
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

#[test]
fn weights_bandwidths_and_categorical_kernels_follow_optunas_rules() {
    use super::parzen::{CategoryKernel, bandwidths, recency_weights};
    // default_weights(30): linspace(1/30, 1, 5), then 25 ones.
    let w = recency_weights(30);
    assert_eq!(w.len(), 30);
    let ramp = [
        1.0 / 30.0,
        0.275,
        0.516_666_666_666_666_7,
        0.758_333_333_333_333_3,
        1.0,
    ];
    for (got, want) in w.iter().zip(ramp) {
        assert!((got - want).abs() < 1e-12, "{w:?}");
    }
    assert!(w[5..].iter().all(|&x| x == 1.0));
    assert_eq!(recency_weights(3), vec![1.0; 3]);
    // The outermost points look inwards only; the floor is 1 / min(100, n + 2).
    let b = bandwidths(&[0.5, 0.1, 0.2, 0.9]);
    let want = [0.4, 1.0 / 6.0, 0.3, 0.4];
    for (got, want) in b.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{b:?}");
    }
    assert_eq!(bandwidths(&[0.3, 0.3]), vec![0.25, 0.25]);
    assert_eq!(bandwidths(&[0.3]), vec![0.7]);
    // 3 trials over 4 categories: own 1 + 1/4, each 1/4, normalised by 2.
    let k = CategoryKernel::new(3, 4);
    let p: Vec<f64> = (0..4).map(|c| k.probability(1, c)).collect();
    assert_eq!(p, vec![0.125, 0.625, 0.125, 0.125]);
}
