//! Quasi-random search: scrambled Sobol points (Burley 2020, Owen scrambling, via the
//! `sobol_burley` crate). Trial N gets point N of a sequence seeded by the sweep seed, so the
//! points spread over the cube more evenly than independent draws and depend only on (seed, N).

use super::Sampler;
use crate::space::{Params, Space};
use crate::state::TrialRecord;

/// The most dimensions and points `sobol_burley` provides.
pub const MAX_DIMENSIONS: usize = sobol_burley::NUM_DIMENSIONS as usize;
/// Points per sequence.
pub const MAX_POINTS: u64 = 1 << 16;

/// Point N of a scrambled Sobol sequence for trial N.
pub struct SobolSampler {
    seed: u32,
}

impl SobolSampler {
    /// A Sobol sampler for a sweep seeded `seed`.
    pub fn new(seed: u64) -> SobolSampler {
        SobolSampler {
            seed: (seed ^ (seed >> 32)) as u32,
        }
    }
}

impl Sampler for SobolSampler {
    fn sample(&mut self, space: &Space, number: u64, _history: &[TrialRecord]) -> Option<Params> {
        if number >= MAX_POINTS || space.dimensions.len() > MAX_DIMENSIONS {
            return None;
        }
        let point: Vec<f64> = (0..space.dimensions.len())
            .map(|d| sobol_burley::sample(number as u32, d as u32, self.seed) as f64)
            .collect();
        Some(space.params_from_unit(&point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dimension, Distribution};

    #[test]
    fn each_half_of_each_dimension_gets_half_the_points_at_powers_of_two() {
        let space = Space {
            dimensions: (0..5)
                .map(|i| Dimension {
                    name: format!("x{i}"),
                    distribution: Distribution::Uniform {
                        low: 0.0,
                        high: 1.0,
                    },
                    points: None,
                    when: Vec::new(),
                })
                .collect(),
        };
        let mut sampler = SobolSampler::new(7);
        for n in [16u64, 64, 256] {
            let points: Vec<Params> = (0..n)
                .map(|i| sampler.sample(&space, i, &[]).unwrap())
                .collect();
            for d in &space.dimensions {
                let low = points
                    .iter()
                    .filter(|p| p[&d.name].as_f64().unwrap() < 0.5)
                    .count() as u64;
                assert_eq!(low, n / 2, "{} at {n} points", d.name);
            }
        }
        // Deterministic, and another seed scrambles differently.
        assert_eq!(
            sampler.sample(&space, 3, &[]),
            SobolSampler::new(7).sample(&space, 3, &[])
        );
        assert_ne!(
            sampler.sample(&space, 3, &[]),
            SobolSampler::new(8).sample(&space, 3, &[])
        );
    }
}
