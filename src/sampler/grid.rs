//! Grid search: the Cartesian product of every dimension's grid values, in order (the last
//! dimension varies fastest). Trial N gets grid point N; the sweep ends when the grid does.

use super::Sampler;
use crate::space::{ParamValue, Params, Space};
use crate::state::TrialRecord;

/// Enumerates the grid; trial N is point N.
pub struct GridSampler {
    axes: Vec<(String, Vec<ParamValue>)>,
}

impl GridSampler {
    /// A grid over `space`, with `default_points` for ranges that name no `points`.
    /// The experiment was validated, so every dimension has grid values.
    pub fn new(space: &Space, default_points: Option<usize>) -> GridSampler {
        let axes = space
            .dimensions
            .iter()
            .map(|d| {
                let values = d
                    .distribution
                    .grid_values(d.points.or(default_points))
                    .unwrap_or_default();
                (d.name.clone(), values)
            })
            .collect();
        GridSampler { axes }
    }

    /// Number of grid points.
    pub fn size(&self) -> u64 {
        self.axes.iter().map(|(_, v)| v.len() as u64).product()
    }
}

impl Sampler for GridSampler {
    fn sample(&mut self, _space: &Space, number: u64, _history: &[TrialRecord]) -> Option<Params> {
        if number >= self.size() {
            return None;
        }
        let mut rest = number;
        let mut params = Params::new();
        for (name, values) in self.axes.iter().rev() {
            let n = values.len() as u64;
            params.insert(name.clone(), values[(rest % n) as usize].clone());
            rest /= n;
        }
        Some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dimension, Distribution};

    #[test]
    fn covers_every_combination_once_then_stops() {
        let space = Space {
            dimensions: vec![
                Dimension {
                    name: "a".into(),
                    distribution: Distribution::Choice(vec![
                        ParamValue::Int(1),
                        ParamValue::Int(2),
                    ]),
                    points: None,
                },
                Dimension {
                    name: "b".into(),
                    distribution: Distribution::Uniform {
                        low: 0.0,
                        high: 1.0,
                    },
                    points: Some(3),
                },
            ],
        };
        let mut grid = GridSampler::new(&space, None);
        assert_eq!(grid.size(), 6);
        let points: Vec<Params> = (0..6)
            .map(|n| grid.sample(&space, n, &[]).unwrap())
            .collect();
        for (i, p) in points.iter().enumerate() {
            assert!(!points[i + 1..].contains(p));
        }
        assert!(grid.sample(&space, 6, &[]).is_none());
    }
}
