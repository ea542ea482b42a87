//! The grid of a space: every combination of the dimensions' grid values, or with conditions
//! the distinct points once inactive parameters are left out.

use super::{ParamValue, Params, Space};

/// The grid of a space: the product of every dimension's grid values, the last dimension
/// fastest; in a space with conditions, its distinct points once inactive parameters are left
/// out (an inactive parameter's values would only repeat its branch's points), in that order.
#[derive(Debug, Default)]
pub struct Grid {
    axes: Vec<(String, Vec<ParamValue>)>,
    distinct: Option<Vec<Params>>,
}

/// The most points of a conditional grid's product: it is enumerated to find the distinct ones.
const MAX_CONDITIONAL_GRID: u64 = 1_000_000;

impl Grid {
    /// The grid of `space`, with `default_points` for ranges that name no `points`; or the
    /// dimension that cannot be gridded and why.
    pub fn new(space: &Space, default_points: Option<usize>) -> Result<Grid, (String, String)> {
        let mut axes = Vec::new();
        let mut product: u64 = 1;
        for d in &space.dimensions {
            let values = d
                .distribution
                .grid_values(d.points.or(default_points))
                .map_err(|e| (d.name.clone(), e))?;
            product = product.checked_mul(values.len() as u64).ok_or_else(|| {
                (
                    d.name.clone(),
                    "the grid has more than 2^64 points: give fewer `points`, or use the random, sobol or tpe sampler".to_string(),
                )
            })?;
            axes.push((d.name.clone(), values));
        }
        let mut grid = Grid {
            axes,
            distinct: None,
        };
        if space.is_conditional() {
            if product > MAX_CONDITIONAL_GRID {
                let last = space.dimensions.last().map(|d| d.name.clone());
                return Err((
                    last.unwrap_or_default(),
                    format!(
                        "a grid with conditions may have at most {MAX_CONDITIONAL_GRID} points before the inactive ones are left out; this one has {product}: give fewer `points`"
                    ),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            let points = (0..product)
                .map(|n| {
                    let mut params = grid.product_point(n);
                    space.drop_inactive(&mut params);
                    params
                })
                .filter(|p| seen.insert(format!("{p:?}")))
                .collect();
            grid.distinct = Some(points);
        }
        Ok(grid)
    }

    /// Number of points.
    pub fn size(&self) -> u64 {
        match &self.distinct {
            Some(points) => points.len() as u64,
            None => self.axes.iter().map(|(_, v)| v.len() as u64).product(),
        }
    }

    /// Point `number`, if the grid has it.
    pub fn point(&self, number: u64) -> Option<Params> {
        match &self.distinct {
            Some(points) => points.get(number as usize).cloned(),
            None => (number < self.size()).then(|| self.product_point(number)),
        }
    }

    /// Point `number` of the whole product.
    fn product_point(&self, number: u64) -> Params {
        let mut rest = number;
        let mut params = Params::new();
        for (name, values) in self.axes.iter().rev() {
            let n = values.len() as u64;
            params.insert(name.clone(), values[(rest % n) as usize].clone());
            rest /= n;
        }
        params
    }
}
