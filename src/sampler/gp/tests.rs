//! Tests of `gp`.

use super::model::{erfc, log_h};
use super::*;

#[test]
fn log_h_is_smooth_across_its_two_forms_and_erfc_is_accurate() {
    let exact = |z: f64| {
        (z * 0.5 * erfc(-z / std::f64::consts::SQRT_2)
            + (-0.5 * z * z).exp() / std::f64::consts::TAU.sqrt())
        .ln()
    };
    assert!((log_h(-5.0) - exact(-5.0)).abs() < 1e-12);
    assert!(
        (log_h(-19.99) - log_h(-20.01)).abs() < 0.41,
        "{}",
        log_h(-19.99) - log_h(-20.01)
    );
    // The series against the direct form where both hold.
    let series = |z: f64| {
        let q = 1.0 / (z * z);
        -0.5 * z * z - 0.5 * std::f64::consts::TAU.ln()
            + q.ln()
            + (1.0 - 3.0 * q + 15.0 * q * q - 105.0 * q * q * q).ln()
    };
    assert!((series(-15.0) - exact(-15.0)).abs() < 1e-4);
    assert!(log_h(-40.0).is_finite() && log_h(-40.0) < log_h(-39.0));
    assert!((erfc(0.5) - 0.479_500_122_186_953_5).abs() < 1e-7);
    assert!((erfc(3.0) / 2.209_049_699_858_544e-5 - 1.0).abs() < 1e-6);
}

/// The unit-cube point of a proposal in a numeric space.
fn unit(space: &Space, params: &Params) -> Vec<f64> {
    space.unit_from_params(params).unwrap()
}

#[test]
fn with_four_workers_no_two_running_trials_are_proposed_near_each_other() {
    use crate::objective::function::{Function, drive};
    use crate::trial::Direction;
    let space = Function::Branin.domain(2);
    let goal = Goal::new("value", Direction::Minimize);
    let mut state = drive(
        Function::Branin,
        &space,
        &mut GpSampler::new(2, goal.clone(), &[], 10),
        25,
    );
    let mut running: Vec<Vec<f64>> = Vec::new();
    for number in 25..29u64 {
        // A fresh sampler each time: the proposal comes from the history alone.
        let params = GpSampler::new(2, goal.clone(), &[], 10)
            .sample(&space, number, &state.trials)
            .unwrap();
        let point = unit(&space, &params);
        for other in &running {
            let distance = point
                .iter()
                .zip(other)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                distance > 1e-3,
                "trial {number} at {point:?} next to {other:?}"
            );
        }
        running.push(point);
        state.apply(&crate::journal::Event::TrialCreated {
            trial: number,
            seed: 0,
            params,
            queued: false,
            time: 0.0,
        });
    }
}

/// The best feasible value after `trials` of minimising (x1 - 0.8)² + (x2 - 0.8)² in the unit
/// square with x1 + x2 <= 1 (reported as `sum`): the feasible optimum is 0.18, at (0.5, 0.5).
fn constrained_best(sampler: &mut dyn Sampler, trials: u64) -> f64 {
    let space = Space {
        dimensions: ["x1", "x2"]
            .map(|n| {
                crate::space::Dimension::new(
                    n,
                    Distribution::Uniform {
                        low: 0.0,
                        high: 1.0,
                    },
                )
            })
            .to_vec(),
    };
    let mut state = crate::state::SweepState::default();
    let mut best = f64::INFINITY;
    for number in 0..trials {
        let params = sampler.sample(&space, number, &state.trials).unwrap();
        let x = unit(&space, &params);
        let value = (x[0] - 0.8).powi(2) + (x[1] - 0.8).powi(2);
        if x[0] + x[1] <= 1.0 {
            best = best.min(value);
        }
        let metrics =
            crate::trial::Metrics::from([("value".into(), value), ("sum".into(), x[0] + x[1])]);
        crate::state::ended_trial(&mut state, number, params, metrics, EndState::Complete);
    }
    best
}

#[test]
fn constrained_gp_finds_a_feasible_point_within_5_percent_of_the_optimum_where_random_does_not() {
    use crate::trial::Direction;
    let goal = Goal::new("value", Direction::Minimize);
    let sum = Constraint {
        metric: "sum".into(),
        min: None,
        max: Some(1.0),
    };
    let gp = constrained_best(&mut GpSampler::new(7, goal, &[sum], 10), 40);
    let random = constrained_best(&mut crate::sampler::RandomSampler::new(7), 40);
    assert!(
        gp <= 0.18 * 1.05,
        "gp's best feasible value {gp} (optimum 0.18)"
    );
    assert!(random > 0.18 * 1.05, "random's {random}");
}

#[test]
fn with_two_objectives_gp_covers_more_of_the_zdt1_front_than_random() {
    use crate::objective::function::{Function, drive};
    use crate::trial::Direction;
    let space = Function::Zdt1.domain(6);
    let goals = [
        Goal::new("f1", Direction::Minimize),
        Goal::new("f2", Direction::Minimize),
    ];
    let hypervolume = crate::sampler::tests::hypervolume;
    for seed in 0..3 {
        let gp = drive(
            Function::Zdt1,
            &space,
            &mut GpSampler::for_goals(seed, &goals, &[], 10),
            40,
        );
        let random = drive(
            Function::Zdt1,
            &space,
            &mut crate::sampler::RandomSampler::new(seed),
            40,
        );
        let (gp, random) = (hypervolume(&gp), hypervolume(&random));
        eprintln!("seed {seed}: gp {gp:.3}, random {random:.3}");
        assert!(gp > random + 0.5, "seed {seed}: gp {gp}, random {random}");
    }
}

#[test]
fn on_an_integer_grid_the_model_never_proposes_a_point_already_tried() {
    use crate::objective::function::{Function, drive};
    use crate::space::{Dimension, Distribution};
    use crate::trial::Direction;
    let int = |name: &str| {
        let range = Distribution::Int {
            low: -3,
            high: 3,
            step: 1,
            log: false,
        };
        Dimension::new(name, range)
    };
    let space = Space {
        dimensions: vec![int("x1"), int("x2")],
    };
    let goal = Goal::new("value", Direction::Minimize);
    for seed in 0..4 {
        let mut gp = GpSampler::new(seed, goal.clone(), &[], 10);
        let state = drive(Function::Sphere, &space, &mut gp, 30);
        let points: Vec<String> = (state.trials.iter())
            .map(|t| crate::space::shown(&t.params))
            .collect();
        for (i, point) in points.iter().enumerate().skip(10) {
            assert!(
                !points[..i].contains(point),
                "seed {seed}: trial {i} repeats {point} (49 points, {i} tried)"
            );
        }
    }
}
