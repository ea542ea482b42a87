//! Random search: each coordinate uniform in the unit cube, from a stream of (seed, trial).

use super::Sampler;
use crate::rng::{Stream, stream};
use crate::space::{Params, Space};
use crate::state::TrialRecord;
use rand::Rng as _;

/// Independent uniform draws per trial; trial N's parameters depend only on the seed and N.
pub struct RandomSampler {
    seed: u64,
}

impl RandomSampler {
    /// A random sampler for a sweep seeded `seed`.
    pub fn new(seed: u64) -> RandomSampler {
        RandomSampler { seed }
    }
}

impl Sampler for RandomSampler {
    fn sample(&mut self, space: &Space, number: u64, _history: &[TrialRecord]) -> Option<Params> {
        let mut rng = stream(self.seed, Stream::Sampler, &[number]);
        let point: Vec<f64> = space
            .dimensions
            .iter()
            .map(|_| rng.random::<f64>())
            .collect();
        Some(space.params_from_unit(&point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dimension, Distribution, ParamValue};

    fn space() -> Space {
        Space {
            dimensions: vec![
                Dimension {
                    name: "learning_rate".into(),
                    distribution: Distribution::LogUniform {
                        low: 1e-4,
                        high: 1e-1,
                    },
                    points: None,
                    when: Vec::new(),
                },
                Dimension {
                    name: "batch_size".into(),
                    distribution: Distribution::Choice(vec![
                        ParamValue::Int(16),
                        ParamValue::Int(32),
                    ]),
                    points: None,
                    when: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn same_trial_number_same_params_in_any_order() {
        let s = space();
        let mut a = RandomSampler::new(3);
        let mut b = RandomSampler::new(3);
        let forward: Vec<Params> = (0..5).map(|n| a.sample(&s, n, &[]).unwrap()).collect();
        let backward: Vec<Params> = (0..5)
            .rev()
            .map(|n| b.sample(&s, n, &[]).unwrap())
            .collect();
        assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
        assert_ne!(forward[0], forward[1]);
    }

    #[test]
    fn stays_in_bounds() {
        let s = space();
        let mut sampler = RandomSampler::new(0);
        for n in 0..500 {
            let p = sampler.sample(&s, n, &[]).unwrap();
            let lr = p["learning_rate"].as_f64().unwrap();
            assert!((1e-4..=1e-1).contains(&lr));
            assert!(matches!(p["batch_size"], ParamValue::Int(16 | 32)));
        }
    }
}
