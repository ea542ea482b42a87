//! The choices CMA-ES learns beside its Gaussian: a categorical distribution each.

use crate::rng::Rng;
use crate::space::{Distribution, Space};

/// The least probability of a category, as a share of the uniform 1/K: a margin that keeps
/// every category within reach, as CatCMA's does.
const CATEGORY_MARGIN: f64 = 0.1;
/// How far one generation moves the categorical distributions towards its best trials.
const CATEGORY_RATE: f64 = 0.3;

/// The categorical part of the search (Hamano, Saito, Nomura and Shirakawa, "CatCMA", GECCO
/// 2024): one distribution per choice that every trial has, moved each generation towards the
/// categories of its best half, weighted by rank (the natural-gradient step of a categorical
/// distribution), with a margin.
#[derive(Clone)]
pub(super) struct Choices {
    /// (index in the space, categories, probability of each).
    dims: Vec<(usize, usize, Vec<f64>)>,
}

impl Choices {
    /// Uniform over each choice every trial has.
    pub(super) fn new(space: &Space) -> Choices {
        let dims = (space.dimensions.iter().enumerate())
            .filter(|(_, d)| d.when.is_empty())
            .filter_map(|(i, d)| match &d.distribution {
                Distribution::Choice(values) if values.len() > 1 => Some((
                    i,
                    values.len(),
                    vec![1.0 / values.len() as f64; values.len()],
                )),
                _ => None,
            })
            .collect();
        Choices { dims }
    }

    /// One generation's update from its trials' unit points, best first.
    pub(super) fn tell(&mut self, ranked: &[Vec<f64>]) {
        let mu = ranked.len().div_ceil(2);
        let raw: Vec<f64> = (0..mu)
            .map(|i| ((mu as f64 + 0.5).ln() - ((i + 1) as f64).ln()).max(0.0))
            .collect();
        let total: f64 = raw.iter().sum();
        for (i, k, p) in &mut self.dims {
            let mut target = vec![0.0; *k];
            for (unit, w) in ranked.iter().zip(&raw) {
                if let Some(u) = unit.get(*i).filter(|u| !u.is_nan()) {
                    target[crate::space::cell(*u, *k)] += w / total;
                }
            }
            let floor = CATEGORY_MARGIN / *k as f64;
            for (pc, t) in p.iter_mut().zip(&target) {
                *pc = ((1.0 - CATEGORY_RATE) * *pc + CATEGORY_RATE * t).max(floor);
            }
            let sum: f64 = p.iter().sum();
            p.iter_mut().for_each(|pc| *pc /= sum);
        }
    }

    /// A draw of each choice: (index in the space, unit coordinate).
    pub(super) fn draw(&self, rng: &mut Rng) -> Vec<(usize, f64)> {
        (self.dims.iter())
            .map(|(i, k, p)| {
                (
                    *i,
                    crate::space::cell_centre(crate::sampler::pick(p, rng), *k),
                )
            })
            .collect()
    }
}
