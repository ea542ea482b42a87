//! The charts of a sweep, one function each: history, learning curves, each parameter, the
//! Pareto front, parallel coordinates and importance.

use super::{
    Area, BLUE, GREEN, GREY, MAX_NAMES, ORANGE, PALETTE, SIZE, Ticks, axes, clamp_to, dot,
    finish_with_legend, grid, left_out, plot_error, range, short, shown_range, shown_value,
};
use crate::error::Result;
use crate::report::{ReportSpec, Table, ranked};
use crate::space::{Dimension, Distribution, ParamValue};
use crate::state::{SweepState, TrialRecord, TrialState};
use crate::trial::{Direction, EndState};
use plotters::prelude::*;

/// Every trial's objective, and the best so far: `history.svg`.
pub(super) fn history(
    root: &Area<'_>,
    state: &SweepState,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
    let points: Vec<(f64, f64, RGBColor)> = trials
        .iter()
        .filter_map(|t| {
            let value = shown_value(t, spec)?;
            let colour = match t.state {
                TrialState::Ended(EndState::Complete) => BLUE,
                TrialState::Ended(_) => GREY,
                TrialState::Running => GREEN,
            };
            Some((t.number as f64, value, colour))
        })
        .collect();
    let y = shown_range(&points.iter().map(|p| p.1).collect::<Vec<_>>());
    // The best so far steps down (or up) at each improvement, over every trial.
    let mut best: Vec<(f64, f64)> = Vec::new();
    for t in state
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Ended(EndState::Complete))
    {
        let Some(v) = t.best_value(spec.metric, spec.direction) else {
            continue;
        };
        let (n, v) = (t.number as f64, clamp_to(&y, v).0);
        match best.last() {
            None => best.push((n, v)),
            Some(&(_, b)) if spec.direction.better(v, b) => best.extend([(n, b), (n, v)]),
            Some(_) => {}
        }
    }
    if let (Some(&(_, b)), Some(last)) = (best.last(), state.trials.last()) {
        best.push((last.number as f64, b));
    }
    let clipped = points.iter().filter(|p| clamp_to(&y, p.1).1).count();
    let x = range(points.iter().map(|p| p.0));
    let mut chart = axes(
        root,
        &format!("Optimisation history: {}{note}", spec.metric),
        x.clone(),
        y.clone(),
    )?;
    let x_desc = format!("trial{}", left_out(state, clipped));
    grid(
        &mut chart,
        (&Ticks::Integers, &x),
        Some(x_desc),
        spec.metric,
    )?;
    chart
        .draw_series(points.iter().map(|&(n, v, colour)| {
            let (v, off) = clamp_to(&y, v);
            dot((n, v), off, colour)
        }))
        .map_err(plot_error)?
        .label("trial (grey: pruned, green: unfinished)")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    chart
        .draw_series(LineSeries::new(best, ORANGE.stroke_width(2)))
        .map_err(plot_error)?
        .label("best so far")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], ORANGE.stroke_width(2)));
    finish_with_legend(&mut chart)
}

/// One line: trial number, metric, (epoch, value) points.
type Curve<'a> = (u64, &'a str, Vec<(f64, f64)>);

/// The objective per epoch of the top five trials: `curves.svg`, with the training
/// counterpart dashed when there is one (`train_loss` for `val_loss`): overfitting shows as
/// the two parting.
pub(super) fn learning_curves(
    root: &Area<'_>,
    state: &SweepState,
    spec: &ReportSpec<'_>,
) -> Result<()> {
    let top: Vec<_> = ranked(state, spec)
        .into_iter()
        .filter(|t| t.state != TrialState::Ended(EndState::Failed))
        .take(5)
        .collect();
    let train = spec
        .metric
        .strip_prefix("val_")
        .map(|rest| format!("train_{rest}"))
        .filter(|m| {
            top.iter()
                .any(|t| t.epochs.iter().any(|e| e.metrics.contains_key(m)))
        });
    let metrics: Vec<&str> = std::iter::once(spec.metric)
        .chain(train.as_deref())
        .collect();
    let series: Vec<Curve> = top
        .iter()
        .flat_map(|t| {
            metrics.iter().map(move |&metric| {
                let points = t
                    .epochs
                    .iter()
                    .filter_map(|e| Some((e.epoch as f64, *e.metrics.get(metric)?)))
                    .collect();
                (t.number, metric, points)
            })
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.2.iter());
    let y = shown_range(&all().map(|p| p.1).collect::<Vec<_>>());
    let x = range(all().map(|p| p.0));
    let dashed = train
        .as_deref()
        .map(|m| format!(" (dashed: {m})"))
        .unwrap_or_default();
    let mut chart = axes(
        root,
        &format!("Learning curves of the top trials: {}{dashed}", spec.metric),
        x.clone(),
        y.clone(),
    )?;
    grid(
        &mut chart,
        (&Ticks::Integers, &x),
        Some("epoch".into()),
        spec.metric,
    )?;
    for (i, (trial, metric, points)) in series.iter().enumerate() {
        let color = PALETTE[(i / metrics.len()) % PALETTE.len()];
        let points: Vec<(f64, f64)> = points
            .iter()
            .map(|&(e, v)| (e, clamp_to(&y, v).0))
            .collect();
        if *metric == spec.metric {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("trial {trial}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x - 8, y), (x + 8, y)], color.stroke_width(2))
                });
        } else {
            chart
                .draw_series(DashedLineSeries::new(points, 4, 4, color.stroke_width(1)))
                .map_err(plot_error)?;
        }
    }
    finish_with_legend(&mut chart)
}

/// The objective against one parameter: `param_<name>.svg`, on the parameter's own axis (log
/// ticks at powers of ten, integers, or each choice by name).
pub(super) fn parameter(
    root: &Area<'_>,
    dimension: &Dimension,
    state: &SweepState,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
    let ticks = Ticks::of(&dimension.distribution);
    let name = &dimension.name;
    let points: Vec<(f64, f64)> = trials
        .iter()
        .filter_map(|t| {
            let value = shown_value(t, spec)?;
            let x = ticks.position(t.params.get(name)?)?;
            // Trials at one choice spread a little sideways, so that they do not hide each other.
            let jitter = match ticks {
                Ticks::Names(_) => ((t.number as f64 * 0.618).fract() - 0.5) * 0.3,
                _ => 0.0,
            };
            Some((x + jitter, value))
        })
        .collect();
    let x = match (&ticks, &dimension.distribution) {
        (Ticks::Names(names), _) => -0.5..(names.len() as f64 - 0.5),
        (_, Distribution::LogUniform { low, high }) => {
            range([low.log10(), high.log10()].into_iter())
        }
        (
            _,
            Distribution::Int {
                low,
                high,
                log: true,
                ..
            },
        ) => range([(*low as f64).log10(), (*high as f64).log10()].into_iter()),
        _ => range(points.iter().map(|p| p.0)),
    };
    let y = shown_range(&points.iter().map(|p| p.1).collect::<Vec<_>>());
    let clipped = points.iter().filter(|p| clamp_to(&y, p.1).1).count();
    let mut chart = axes(
        root,
        &format!("{} against {name}{note}", spec.metric),
        x.clone(),
        y.clone(),
    )?;
    let x_desc = format!("{name}{}", left_out(state, clipped));
    grid(&mut chart, (&ticks, &x), Some(x_desc), spec.metric)?;
    chart
        .draw_series(points.iter().map(|&(px, v)| {
            let (v, off) = clamp_to(&y, v);
            dot((px, v), off, BLUE)
        }))
        .map_err(plot_error)?;
    Ok(())
}

/// With several objectives, the first two against each other: every complete trial, the
/// Pareto front in orange joined by its staircase (the region it dominates lies beyond).
pub(super) fn pareto_front(
    root: &Area<'_>,
    state: &SweepState,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
    let goals = spec.goals();
    let (gx, gy) = (&goals[0], &goals[1]);
    let points = front_points(state, spec, trials);
    let x = shown_range(&points.iter().map(|p| p.0).collect::<Vec<_>>());
    let y = shown_range(&points.iter().map(|p| p.1).collect::<Vec<_>>());
    let clipped = points
        .iter()
        .filter(|p| clamp_to(&x, p.0).1 || clamp_to(&y, p.1).1)
        .count();
    let steps = staircase(&points, gx.direction);
    let on_front = points.iter().filter(|p| p.2).count();
    let shown = if goals.len() > 2 {
        format!(" (the first 2 of {} objectives)", goals.len())
    } else {
        String::new()
    };
    let mut chart = axes(
        root,
        &format!("Pareto front: {} and {}{shown}{note}", gx.metric, gy.metric),
        x.clone(),
        y.clone(),
    )?;
    let x_desc = format!(
        "{} ({}){}",
        gx.metric,
        gx.direction.name(),
        left_out(state, clipped)
    );
    let y_desc = format!("{} ({})", gy.metric, gy.direction.name());
    grid(&mut chart, (&Ticks::Numbers, &x), Some(x_desc), &y_desc)?;
    let at = |(px, py): (f64, f64)| {
        let ((px, off_x), (py, off_y)) = (clamp_to(&x, px), clamp_to(&y, py));
        ((px, py), off_x || off_y)
    };
    chart
        .draw_series(points.iter().filter(|p| !p.2).map(|&(px, py, _)| {
            let (point, off) = at((px, py));
            dot(point, off, BLUE)
        }))
        .map_err(plot_error)?
        .label("trial")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    chart
        .draw_series(LineSeries::new(
            steps.into_iter().map(|p| at(p).0),
            ORANGE.stroke_width(2),
        ))
        .map_err(plot_error)?;
    chart
        .draw_series(points.iter().filter(|p| p.2).map(|&(px, py, _)| {
            let (point, off) = at((px, py));
            dot(point, off, ORANGE)
        }))
        .map_err(plot_error)?
        .label(format!("on the front ({on_front})"))
        .legend(|(x, y)| Circle::new((x, y), 3, ORANGE.filled()));
    finish_with_legend(&mut chart)
}

/// Each complete trial's values of the first two objectives, and whether it is on the front.
fn front_points(
    state: &SweepState,
    spec: &ReportSpec<'_>,
    trials: &[&TrialRecord],
) -> Vec<(f64, f64, bool)> {
    let goals = spec.goals();
    let fronts = crate::report::pareto_ranks(state, spec);
    trials
        .iter()
        .filter(|t| t.state == TrialState::Ended(EndState::Complete))
        .filter_map(|t| {
            let best = t.best_epoch(spec.metric, spec.direction)?;
            let on_front = fronts[t.number as usize] == Some(1);
            Some((
                t.value_at(&goals[0].metric, best)?,
                t.value_at(&goals[1].metric, best)?,
                on_front,
            ))
        })
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .collect()
}

/// The front's staircase from the best of the first objective on, one step per member.
fn staircase(points: &[(f64, f64, bool)], x_direction: Direction) -> Vec<(f64, f64)> {
    let mut front: Vec<(f64, f64)> = points.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
    front.sort_by(|a, b| x_direction.loss(a.0).total_cmp(&x_direction.loss(b.0)));
    let mut steps = Vec::new();
    for pair in front.windows(2) {
        steps.extend([pair[0], (pair[1].0, pair[0].1)]);
    }
    steps.extend(front.last());
    steps
}

/// Labels along one parallel-coordinates axis: (unit position, text).
pub(super) fn axis_labels(distribution: &Distribution) -> Vec<(f64, String)> {
    let at = |value: ParamValue| distribution.to_unit(&value).map(|u| (u, value));
    let values: Vec<(f64, ParamValue)> = match distribution {
        Distribution::Choice(values) => {
            let every = values.len().div_ceil(MAX_NAMES);
            let last = values.len() - 1;
            values
                .iter()
                .enumerate()
                .filter(|(i, _)| i % every == 0 && last - i >= every / 2 || *i == last)
                .filter_map(|(_, v)| at(v.clone()))
                .collect()
        }
        Distribution::LogUniform { low, high } => {
            let powers: Vec<f64> = (low.log10().ceil() as i32..=high.log10().floor() as i32)
                .map(|e| 10f64.powi(e))
                .collect();
            let ends = if powers.len() >= 2 {
                powers
            } else {
                vec![*low, *high]
            };
            ends.into_iter()
                .map(ParamValue::Float)
                .filter_map(at)
                .collect()
        }
        Distribution::Uniform { low, high } => [*low, (low + high) / 2.0, *high]
            .into_iter()
            .map(ParamValue::Float)
            .filter_map(at)
            .collect(),
        Distribution::Int { low, high, .. } => [*low, *high]
            .into_iter()
            .map(ParamValue::Int)
            .filter_map(at)
            .collect(),
    };
    values
        .into_iter()
        .map(|(u, v)| {
            let text = match v {
                ParamValue::Float(x)
                    if distribution.is_log() && x > 0.0 && x.log10().fract() == 0.0 =>
                {
                    format!("1e{}", x.log10() as i32)
                }
                ParamValue::Float(x) => short(x),
                other => other.to_string(),
            };
            (u, text)
        })
        .collect()
}

/// Colour of the line ranked at `goodness` (0: the worst drawn, 1: the best): pale to dark.
pub(super) fn shade(goodness: f64) -> RGBColor {
    let mix = |a: f64, b: f64| (a + (b - a) * goodness.clamp(0.0, 1.0)) as u8;
    RGBColor(mix(230.0, 8.0), mix(200.0, 48.0), mix(120.0, 107.0))
}

/// Parallel coordinates: one line per complete trial across its parameters (each on its own
/// axis, labelled with real values) and the objective, coloured by rank, with a colour bar.
pub(super) fn parallel(
    root: &Area<'_>,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
    let dims = &spec.space.dimensions;
    let mut lines: Vec<(Vec<f64>, f64)> = trials
        .iter()
        .filter(|t| t.state == TrialState::Ended(EndState::Complete))
        .filter_map(|t| {
            let value = t.best_value(spec.metric, spec.direction)?;
            Some((spec.space.unit_from_params(&t.params)?, value))
        })
        .collect();
    // Worst first: the best are drawn last, on top.
    lines.sort_by(|a, b| {
        spec.direction
            .loss(b.1)
            .total_cmp(&spec.direction.loss(a.1))
    });
    let values = shown_range(&lines.iter().map(|l| l.1).collect::<Vec<_>>());
    let (top, bottom) = root.split_vertically(SIZE.1);
    let columns = dims.len() + 1;
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("Parallel coordinates{note}"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(10)
        .build_cartesian_2d(-0.2..(columns as f64 - 0.5), 0.0..1.0)
        .map_err(plot_error)?;
    let names: Vec<String> = dims
        .iter()
        .map(|d| d.name.clone())
        .chain([spec.metric.to_string()])
        .collect();
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_y_axis()
        .x_labels(columns * 2 + 1)
        .x_label_formatter(&|x: &f64| Ticks::Names(names.clone()).label(*x))
        .draw()
        .map_err(plot_error)?;
    let count = lines.len();
    for (rank, (coords, value)) in lines.iter().enumerate() {
        let scaled = (clamp_to(&values, *value).0 - values.start) / (values.end - values.start);
        let points: Vec<(f64, f64)> = coords
            .iter()
            .chain(std::iter::once(&scaled))
            .enumerate()
            .map(|(i, &y)| (i as f64, y))
            .collect();
        let colour = shade(rank as f64 / (count.max(2) - 1) as f64);
        // A parameter a trial's branch left out (NaN) breaks its line there.
        for piece in points
            .split(|p| p.1.is_nan())
            .filter(|piece| !piece.is_empty())
        {
            chart
                .draw_series(LineSeries::new(piece.to_vec(), colour.stroke_width(1)))
                .map_err(plot_error)?;
        }
    }
    let objective_labels =
        [0.0, 0.5, 1.0].map(|u| (u, short(values.start + u * (values.end - values.start))));
    let labels = dims
        .iter()
        .map(|d| axis_labels(&d.distribution))
        .chain([objective_labels.to_vec()]);
    vertical_axes(&mut chart, labels)?;
    colour_bar(&bottom, &lines, spec)
}

/// One labelled vertical axis at 0, 1, 2, ... for each set of labels.
fn vertical_axes(
    chart: &mut super::Axes<'_, '_>,
    axes: impl Iterator<Item = Vec<(f64, String)>>,
) -> Result<()> {
    for (i, labels) in axes.enumerate() {
        let x = i as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, 1.0)],
                BLACK,
            )))
            .map_err(plot_error)?;
        chart
            .draw_series(labels.into_iter().map(|(u, text)| {
                Text::new(
                    text,
                    (x + 0.03, u),
                    ("sans-serif", 11).into_font().color(&BLACK),
                )
            }))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The legend of lines coloured by rank, under the parallel coordinates; `lines` are sorted
/// worst first.
pub(super) fn colour_bar(
    area: &Area<'_>,
    lines: &[(Vec<f64>, f64)],
    spec: &ReportSpec<'_>,
) -> Result<()> {
    let (Some(worst), Some(best)) = (lines.first(), lines.last()) else {
        return Ok(());
    };
    let style = ("sans-serif", 12).into_font().color(&BLACK);
    let left = format!("colour: rank by {}, worst {}", spec.metric, short(worst.1));
    area.draw(&Text::new(left, (20, 12), style.clone()))
        .map_err(plot_error)?;
    let (x0, width) = (360, 200);
    for step in 0..width {
        let colour = shade(step as f64 / (width - 1) as f64);
        area.draw(&Rectangle::new(
            [(x0 + step, 10), (x0 + step + 1, 26)],
            colour.filled(),
        ))
        .map_err(plot_error)?;
    }
    area.draw(&Text::new(
        format!("best {}", short(best.1)),
        (x0 + width + 8, 12),
        style,
    ))
    .map_err(plot_error)
}

/// Parameter importance as bars: `importance.svg`.
pub(super) fn importance_bars(root: &Area<'_>, table: &Table) -> Result<()> {
    let bars: Vec<(String, f64)> = table
        .rows
        .iter()
        .filter_map(|r| Some((r[0].clone(), r[1].parse().ok()?)))
        .collect();
    let x = -0.5..(bars.len().max(1) as f64 - 0.5);
    let mut chart = axes(
        root,
        "Parameter importance (PED-ANOVA)",
        x.clone(),
        0.0..1.0,
    )?;
    let ticks = Ticks::Names(bars.iter().map(|b| b.0.clone()).collect());
    grid(&mut chart, (&ticks, &x), None, "importance")?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            Rectangle::new(
                [(i as f64 - 0.35, 0.0), (i as f64 + 0.35, *v)],
                BLUE.filled(),
            )
        }))
        .map_err(plot_error)?;
    Ok(())
}
