//! GP against TPE on standard functions: the median regret each reaches (a statistical test).

use super::*;
use crate::objective::function::{Function, drive};
use crate::sampler::{TpeSampler, TpeSettings};
use crate::trial::Direction;

fn median_regret(function: Function, sampler: &dyn Fn(u64) -> Box<dyn Sampler>) -> f64 {
    let space = function.domain(6);
    let mut regrets: Vec<f64> = (0..10)
        .map(|seed| {
            let state = drive(function, &space, sampler(seed).as_mut(), 60);
            let best = state.best("value", Direction::Minimize).unwrap().1;
            best - function.minimum(space.dimensions.len())
        })
        .collect();
    regrets.sort_by(f64::total_cmp);
    (regrets[4] + regrets[5]) / 2.0
}

#[test]
fn gp_beats_tpe_on_branin_and_hartmann6_in_median_regret_after_60_trials() {
    let goal = Goal::new("value", Direction::Minimize);
    for function in [Function::Branin, Function::Hartmann6] {
        let gp = median_regret(function, &|seed| {
            Box::new(GpSampler::new(seed, goal.clone(), &[], 10))
        });
        let tpe = median_regret(function, &|seed| {
            let settings = TpeSettings {
                startup_trials: 10,
                gamma: 0.25,
                candidates: 24,
                multivariate: false,
            };
            Box::new(TpeSampler::new(seed, std::slice::from_ref(&goal), settings))
        });
        eprintln!("{function:?}: median regret gp {gp:.5}, tpe {tpe:.5}");
        assert!(gp < tpe, "{function:?}: gp {gp}, tpe {tpe}");
    }
}
