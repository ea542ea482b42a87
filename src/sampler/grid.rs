//! Grid search: the Cartesian product of every dimension's grid values, in order (the last
//! dimension varies fastest). Trial N gets grid point N; the sweep ends when the grid does.

use super::Sampler;
use crate::space::{Grid, Params, Space};
use crate::state::TrialRecord;

/// Enumerates the grid; trial N is point N.
pub struct GridSampler {
    grid: Grid,
}

impl GridSampler {
    /// A grid over `space`, with `default_points` for ranges that name no `points`.
    /// The experiment was validated, so every dimension has grid values.
    pub fn new(space: &Space, default_points: Option<usize>) -> GridSampler {
        GridSampler {
            grid: Grid::new(space, default_points).unwrap_or_default(),
        }
    }

    /// Number of grid points.
    pub fn size(&self) -> u64 {
        self.grid.size()
    }
}

impl Sampler for GridSampler {
    fn sample(&mut self, _space: &Space, number: u64, history: &[TrialRecord]) -> Option<Params> {
        // Trials that took queued configurations take no grid point.
        let queued = history.iter().filter(|t| t.queued).count() as u64;
        self.grid.point(number - queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dimension, Distribution, ParamValue};

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
                    when: Vec::new(),
                },
                Dimension {
                    name: "b".into(),
                    distribution: Distribution::Uniform {
                        low: 0.0,
                        high: 1.0,
                    },
                    points: Some(3),
                    when: Vec::new(),
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

    #[test]
    fn a_conditional_grid_holds_only_active_combinations() {
        let choice = crate::space::string_choice;
        let mut momentum = Dimension::new(
            "momentum",
            Distribution::Choice(vec![ParamValue::Float(0.5), ParamValue::Float(0.9)]),
        );
        momentum.when = vec![crate::space::Condition {
            parent: "optimizer".into(),
            values: vec![ParamValue::Str("sgd".into())],
        }];
        let space = Space {
            dimensions: vec![
                Dimension::new("optimizer", choice(&["sgd", "adamw"])),
                momentum,
            ],
        };
        let mut grid = GridSampler::new(&space, None);
        // sgd with each momentum, and adamw once (not once per momentum it ignores).
        assert_eq!(grid.size(), 3);
        let points: Vec<Params> = (0..3)
            .map(|n| grid.sample(&space, n, &[]).unwrap())
            .collect();
        let adamw: Vec<&Params> = points
            .iter()
            .filter(|p| p["optimizer"] == ParamValue::Str("adamw".into()))
            .collect();
        assert_eq!(adamw.len(), 1);
        assert!(!adamw[0].contains_key("momentum"));
        assert!(grid.sample(&space, 3, &[]).is_none());
    }
}
