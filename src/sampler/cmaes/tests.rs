//! Tests of `cmaes`.

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
            separable: false,
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
            separable: false,
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

#[test]
fn in_twenty_dimensions_sep_cma_beats_the_full_covariance_on_a_separable_ellipsoid() {
    let space = Function::Ellipsoid.domain(20);
    let median_best = |separable: bool| {
        let mut bests: Vec<f64> = (0..6)
            .map(|seed| {
                let settings = CmaSettings {
                    sigma0: 1.0 / 6.0,
                    popsize: None,
                    restart: Restart::Ipop,
                    separable,
                };
                let goal = Goal::new("value", Direction::Minimize);
                let mut sampler = CmaEsSampler::new(seed, goal, &[], settings);
                let state = drive(Function::Ellipsoid, &space, &mut sampler, 600);
                state.best("value", Direction::Minimize).unwrap().1
            })
            .collect();
        bests.sort_by(f64::total_cmp);
        (bests[2] + bests[3]) / 2.0
    };
    let (sep, full) = (median_best(true), median_best(false));
    eprintln!("ellipsoid 20-d after 600 trials: sep-CMA {sep:.1}, CMA {full:.1}");
    assert!(sep * 2.0 < full, "sep-CMA {sep}, CMA {full}");
}
