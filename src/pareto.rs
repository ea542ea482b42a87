//! Several objectives: which trials no other beats on every one (the Pareto front), the fronts
//! behind it, how evenly a front is spread (crowding distance), and how much of the objective
//! space a set of trials covers (hypervolume).
//!
//! A point here is a trial's objectives as losses: lower is better in every coordinate (see
//! [`crate::trial::Direction::loss`]), and no coordinate is NaN.

/// Whether `a` is at least as good as `b` in every objective and better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// Each point's front: 0 for the points nothing dominates, 1 for those only front 0 dominates,
/// and so on.
///
/// Efficient non-dominated sort with binary search (Zhang et al., IEEE TEC 2015): points are
/// taken in lexicographic order, so none is dominated by one that comes after it, and each joins
/// the first front with no member that dominates it. If front k+1 has such a member, front k
/// has one too (whatever dominates it dominates the point), so that front is found by binary
/// search. With two objectives, a front's members taken in this order fall in the second
/// objective, and its last member alone decides: the sort costs O(n log n).
pub fn ranks<P: AsRef<[f64]>>(points: &[P]) -> Vec<usize> {
    let point = |i: usize| points[i].as_ref();
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        point(a)
            .iter()
            .zip(point(b))
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut fronts: Vec<Vec<usize>> = Vec::new();
    let mut rank = vec![0; points.len()];
    for i in order {
        let p = point(i);
        let beaten = |front: &Vec<usize>| match p.len() {
            2 => front.last().is_some_and(|&j| dominates(point(j), p)),
            _ => front.iter().rev().any(|&j| dominates(point(j), p)),
        };
        let k = fronts.partition_point(beaten);
        if k == fronts.len() {
            fronts.push(Vec::new());
        }
        fronts[k].push(i);
        rank[i] = k;
    }
    rank
}

/// The crowding distance of each point of one front (Deb et al., NSGA-II): the sum over
/// objectives of the gap between its two neighbours, as a fraction of the front's span; the
/// extremes of each objective are infinitely far. A larger distance is a lonelier point.
pub fn crowding<P: AsRef<[f64]>>(front: &[P]) -> Vec<f64> {
    let n = front.len();
    let mut distance = vec![0.0; n];
    let Some(first) = front.first() else {
        return distance;
    };
    for m in 0..first.as_ref().len() {
        let value = |i: usize| front[i].as_ref()[m];
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| value(a).total_cmp(&value(b)));
        let span = value(order[n - 1]) - value(order[0]);
        distance[order[0]] = f64::INFINITY;
        distance[order[n - 1]] = f64::INFINITY;
        if span <= 0.0 {
            continue;
        }
        for w in order.windows(3) {
            distance[w[1]] += (value(w[2]) - value(w[0])) / span;
        }
    }
    distance
}

/// The volume of the region that the points dominate and that dominates `reference`; points not
/// strictly better than the reference in every objective add nothing.
///
/// Exact: a sweep for two objectives, slices along the last objective above that (fine for the
/// fronts of a sweep, not for thousands of points in many objectives).
pub fn hypervolume<P: AsRef<[f64]>>(points: &[P], reference: &[f64]) -> f64 {
    let inside: Vec<&[f64]> = points
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x < r))
        .collect();
    volume(inside, reference)
}

fn volume(mut points: Vec<&[f64]>, reference: &[f64]) -> f64 {
    let m = reference.len();
    if points.is_empty() {
        return 0.0;
    }
    match m {
        1 => reference[0] - points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min),
        2 => {
            points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
            let mut total = 0.0;
            let mut ceiling = reference[1];
            for p in points {
                if p[1] < ceiling {
                    total += (reference[0] - p[0]) * (ceiling - p[1]);
                    ceiling = p[1];
                }
            }
            total
        }
        _ => {
            points.sort_by(|a, b| a[m - 1].total_cmp(&b[m - 1]));
            let mut total = 0.0;
            for i in 0..points.len() {
                let top = points.get(i + 1).map_or(reference[m - 1], |p| p[m - 1]);
                let height = top - points[i][m - 1];
                if height > 0.0 {
                    let base = points[..=i].iter().map(|p| &p[..m - 1]).collect();
                    total += height * volume(base, &reference[..m - 1]);
                }
            }
            total
        }
    }
}

/// `k` of the points that together cover much hypervolume, chosen greedily (each the one that
/// adds the most to those chosen before it; the first, on ties): the indices, in the order
/// chosen. All of them when there are no more than `k`.
pub fn greedy_subset<P: AsRef<[f64]>>(points: &[P], k: usize, reference: &[f64]) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = (0..points.len()).collect();
    let mut covered = 0.0;
    while chosen.len() < k && !left.is_empty() {
        let with = |i: usize| {
            let set: Vec<&[f64]> = chosen
                .iter()
                .chain([&i])
                .map(|&j| points[j].as_ref())
                .collect();
            hypervolume(&set, reference)
        };
        let gains: Vec<f64> = left.iter().map(|&i| with(i) - covered).collect();
        let best = (0..left.len())
            .reduce(|b, i| if gains[i] > gains[b] { i } else { b })
            .expect("points are left");
        covered += gains[best];
        chosen.push(left.remove(best));
    }
    chosen
}

/// A reference point just beyond the worst of `points` in every objective: 10% of the
/// objective's span past its worst value (1 when they all agree), so every point adds volume.
pub fn reference<P: AsRef<[f64]>>(points: &[P]) -> Vec<f64> {
    let m = points.first().map_or(0, |p| p.as_ref().len());
    (0..m)
        .map(|j| {
            let values = points.iter().map(|p| p.as_ref()[j]);
            let worst = values.clone().fold(f64::NEG_INFINITY, f64::max);
            let best = values.fold(f64::INFINITY, f64::min);
            let span = worst - best;
            worst + if span > 0.0 { 0.1 * span } else { 1.0 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The fronts by the definition: a point's front is one more than the deepest front of a
    /// point that dominates it.
    fn ranks_by_definition(points: &[Vec<f64>]) -> Vec<usize> {
        let n = points.len();
        let mut rank = vec![usize::MAX; n];
        let mut assigned = 0;
        let mut front = 0;
        while assigned < n {
            let current: Vec<usize> = (0..n)
                .filter(|&i| rank[i] == usize::MAX)
                .filter(|&i| {
                    !(0..n).any(|j| (rank[j] == usize::MAX) && dominates(&points[j], &points[i]))
                })
                .collect();
            for &i in &current {
                rank[i] = front;
            }
            assigned += current.len();
            front += 1;
        }
        rank
    }

    #[test]
    fn fronts_match_the_definition_with_ties_and_in_three_objectives() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for m in [2, 3] {
            for _ in 0..20 {
                // Few distinct values: many ties and duplicates.
                let points: Vec<Vec<f64>> = (0..60)
                    .map(|_| (0..m).map(|_| rng.random_range(0..6) as f64).collect())
                    .collect();
                assert_eq!(ranks(&points), ranks_by_definition(&points), "{points:?}");
            }
        }
    }

    #[test]
    fn hypervolume_of_known_sets() {
        let reference = [4.0, 4.0];
        assert_eq!(
            hypervolume(&[[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]], &reference),
            6.0
        );
        // A dominated point and one outside the reference add nothing.
        assert_eq!(
            hypervolume(
                &[[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [5.0, 0.0]],
                &reference
            ),
            6.0
        );
        let cube = [[0.0, 0.0, 0.0]];
        assert_eq!(hypervolume(&cube, &[2.0, 3.0, 4.0]), 24.0);
        // Two boxes of 2x2x1 overlapping in 1x1x1, by inclusion-exclusion: 4 + 4 - 1.
        let two = [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]];
        assert_eq!(hypervolume(&two, &[2.0, 2.0, 2.0]), 3.0);
    }

    #[test]
    fn crowding_favours_the_ends_and_the_lonely() {
        let front = [[0.0, 4.0], [1.0, 3.0], [1.2, 2.8], [4.0, 0.0]];
        let d = crowding(&front);
        assert!(d[0].is_infinite() && d[3].is_infinite());
        assert!(d[2] > d[1], "{d:?}");
    }

    #[test]
    fn the_greedy_subset_takes_the_biggest_box_first_then_the_most_added() {
        let points = [[0.0, 3.0], [1.0, 1.0], [3.0, 0.0], [1.1, 0.9]];
        // [1, 1] is the largest box (9); then [0, 3] and [3, 0] add 1 each, and the first wins.
        assert_eq!(greedy_subset(&points, 2, &[4.0, 4.0]), [1, 0]);
        assert_eq!(greedy_subset(&points, 9, &[4.0, 4.0]).len(), 4);
    }
}
