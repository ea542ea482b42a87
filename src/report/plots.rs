//! Pictures of a sweep, as SVG files drawn with `plotters` (pure Rust, no system libraries),
//! and `report.html`, one page that shows them with the top of the leaderboard and opens from
//! disk in any browser.

use super::{ReportSpec, Table, importance, leaderboard_top, ranked};
use crate::error::{Context, Result};
use crate::files::write_atomic;
use crate::space::{Dimension, Distribution, ParamValue};
use crate::state::{SweepState, TrialRecord, TrialState};
use crate::trial::EndState;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const SIZE: (u32, u32) = (720, 420);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREY: RGBColor = RGBColor(150, 150, 150);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// An SVG drawing area.
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
/// Axes of two float ranges on an SVG drawing area.
type Axes<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws a white canvas of `size` with `draw`, then writes it to `path` atomically: a reader
/// never sees half a picture, and a link planted at `path` is replaced, never written through.
fn svg_file(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    write_atomic(path, svg.as_bytes(), false).context(|| format!("cannot write {}", path.display()))
}

/// Captioned axes over `x` and `y`.
fn axes<'a, 'b>(
    root: &'a Area<'b>,
    caption: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Axes<'a, 'b>> {
    ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(plot_error)
}

/// Draws the series' legend.
fn finish_with_legend<'a, 'b: 'a>(chart: &mut Axes<'a, 'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_error)
}

fn plot_error(e: impl std::fmt::Display) -> crate::Error {
    crate::Error::runtime(format!("cannot draw a plot: {e}"))
}

/// The range of `values`, widened a little (and made non-empty).
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if low > high {
        return 0.0..1.0;
    }
    let pad = ((high - low) * 0.05).max(1e-9);
    (low - pad)..(high + pad)
}

/// The range a value axis shows: all of `values` but far outliers (a diverged trial's 1e29
/// would flatten every other point to one line), widened a little. Outliers are drawn on its
/// edge, hollow.
fn shown_range(values: &[f64]) -> std::ops::Range<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.len() < 8 {
        return range(sorted.into_iter());
    }
    let q = |p: f64| sorted[(p * (sorted.len() - 1) as f64) as usize];
    let spread = match q(0.75) - q(0.25) {
        s if s > 0.0 => s,
        _ => (q(0.5).abs() * 0.1).max(1e-9),
    };
    let low = sorted[0].max(q(0.25) - 4.0 * spread);
    let high = sorted[sorted.len() - 1].min(q(0.75) + 4.0 * spread);
    range([low, high].into_iter())
}

/// `value` on the edge of `range` when outside it, and whether it was.
fn clamp_to(range: &std::ops::Range<f64>, value: f64) -> (f64, bool) {
    let inside = value.clamp(range.start, range.end);
    (inside, inside != value)
}

/// A number for a tick: 4 significant digits, without trailing zeros (`0.1`, `1e-4`).
fn short(x: f64) -> String {
    let text = super::for_people(x);
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m.to_string(), format!("e{e}")),
        None => (text, String::new()),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        mantissa
    };
    format!("{mantissa}{exponent}")
}

/// How an axis labels its ticks.
#[derive(Debug, Clone, PartialEq)]
enum Ticks {
    /// Numbers, to 4 significant digits.
    Numbers,
    /// Whole numbers (trials, epochs, integer parameters): no label between them.
    Integers,
    /// The axis holds log10 of the value: powers of ten labelled `1e-4`, `1e-3`, ... (when the
    /// range holds two or more; else every tick, as the value).
    Log {
        /// Whether the range holds two powers of ten or more.
        decades: bool,
        /// Whether the values are integers (labelled whole between powers of ten).
        integers: bool,
    },
    /// Names at 0, 1, 2, ...: each once.
    Names(Vec<String>),
}

/// The most choices an axis names: past it, an evenly spaced sample of them (a choice of
/// 100,000 values would otherwise write 100,000 labels, hundreds of megabytes of SVG).
const MAX_NAMES: usize = 24;

impl Ticks {
    /// How a parameter's axis is ticked; its values sit at [`Ticks::position`].
    fn of(distribution: &Distribution) -> Ticks {
        match distribution {
            Distribution::Choice(values) => {
                Ticks::Names(values.iter().map(ToString::to_string).collect())
            }
            Distribution::LogUniform { low, high } => Ticks::log(*low, *high, false),
            Distribution::Int {
                low,
                high,
                log: true,
                ..
            } => Ticks::log(*low as f64, *high as f64, true),
            Distribution::Int { .. } => Ticks::Integers,
            Distribution::Uniform { .. } => Ticks::Numbers,
        }
    }

    fn log(low: f64, high: f64, integers: bool) -> Ticks {
        Ticks::Log {
            decades: high.log10().floor() > low.log10().ceil(),
            integers,
        }
    }

    /// Where `value` sits on this axis.
    fn position(&self, value: &ParamValue) -> Option<f64> {
        match self {
            Ticks::Names(names) => names
                .iter()
                .position(|n| *n == value.to_string())
                .map(|i| i as f64),
            Ticks::Log { .. } => value.as_f64().filter(|x| *x > 0.0).map(f64::log10),
            Ticks::Numbers | Ticks::Integers => value.as_f64(),
        }
    }

    /// The label of the tick at `x`; empty between whole numbers, names and powers of ten.
    fn label(&self, x: f64) -> String {
        let whole = (x - x.round()).abs() < 1e-6;
        match self {
            Ticks::Numbers => short(x),
            Ticks::Integers if whole => format!("{}", x.round() as i64),
            Ticks::Log { decades: true, .. } if whole => format!("1e{}", x.round() as i64),
            Ticks::Log {
                decades: false,
                integers: true,
            } => format!("{}", 10f64.powf(x).round() as i64),
            Ticks::Log { decades: false, .. } => short(10f64.powf(x)),
            Ticks::Names(names) if whole => {
                names.get(x.round() as usize).cloned().unwrap_or_default()
            }
            Ticks::Integers | Ticks::Log { .. } | Ticks::Names(_) => String::new(),
        }
    }

    /// How many ticks to ask for over `range`: enough that whole numbers get one.
    fn count(&self, range: &std::ops::Range<f64>) -> usize {
        match self {
            Ticks::Names(names) => names.len().min(MAX_NAMES) * 2 + 1,
            Ticks::Numbers => 8,
            Ticks::Integers | Ticks::Log { .. } => {
                ((range.end - range.start).ceil() as usize * 2 + 1).clamp(3, 12)
            }
        }
    }
}

/// The trials the plots draw, in trial order, and a caption suffix when they are not all:
/// chosen once for every plot of a sweep.
fn drawn<'s>(state: &'s SweepState, spec: &ReportSpec<'_>) -> (Vec<&'s TrialRecord>, String) {
    let all = state.trials.len();
    if all <= MAX_DRAWN {
        return (state.trials.iter().collect(), String::new());
    }
    let mut keep = vec![false; all];
    for t in ranked(state, spec).into_iter().take(BEST_DRAWN) {
        keep[t.number as usize] = true;
    }
    let stride = all.div_ceil(MAX_DRAWN - BEST_DRAWN);
    for i in (0..all).step_by(stride) {
        keep[i] = true;
    }
    let trials: Vec<&TrialRecord> = state
        .trials
        .iter()
        .filter(|t| keep[t.number as usize])
        .collect();
    let note = format!(
        " ({} of {all} trials: the best {BEST_DRAWN} and every {stride}th)",
        trials.len()
    );
    (trials, note)
}

/// The most trials a plot draws one mark for. Past it a plot draws the best [`BEST_DRAWN`] and an
/// even sample of the rest, in trial order, and says so in its caption: more marks than the
/// picture has room for show nothing more, and cost time and megabytes in proportion to the
/// sweep.
const MAX_DRAWN: usize = 2_000;
/// The best trials a thinned plot always draws.
const BEST_DRAWN: usize = 500;

/// A trial's objective, when it has one to show: failed trials are left out of every scale.
fn shown_value(t: &TrialRecord, spec: &ReportSpec<'_>) -> Option<f64> {
    if t.state == TrialState::Ended(EndState::Failed) {
        return None;
    }
    t.best_value(spec.metric, spec.direction)
}

/// A dot: filled inside the axis, hollow on its edge for a value beyond it.
fn dot(at: (f64, f64), clipped: bool, colour: RGBColor) -> Circle<(f64, f64), u32> {
    if clipped {
        Circle::new(at, 3, colour.stroke_width(1))
    } else {
        Circle::new(at, 3, colour.filled())
    }
}

/// What a caption adds about the trials a plot leaves out or puts on its edge.
fn left_out(state: &SweepState, clipped: usize) -> String {
    let failed = state.count(TrialState::Ended(EndState::Failed));
    let mut parts = Vec::new();
    if clipped > 0 {
        parts.push(format!("{clipped} far off, on the edge"));
    }
    if failed > 0 {
        parts.push(format!("{failed} failed, not drawn"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// Every trial's objective, and the best so far: `history.svg`.
fn history(
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
    chart
        .configure_mesh()
        .x_labels(Ticks::Integers.count(&x))
        .x_label_formatter(&|v| Ticks::Integers.label(*v))
        .y_label_formatter(&|v| short(*v))
        .x_desc(format!("trial{}", left_out(state, clipped)))
        .y_desc(spec.metric)
        .draw()
        .map_err(plot_error)?;
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
fn learning_curves(root: &Area<'_>, state: &SweepState, spec: &ReportSpec<'_>) -> Result<()> {
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
    chart
        .configure_mesh()
        .x_labels(Ticks::Integers.count(&x))
        .x_label_formatter(&|v| Ticks::Integers.label(*v))
        .y_label_formatter(&|v| short(*v))
        .x_desc("epoch")
        .y_desc(spec.metric)
        .draw()
        .map_err(plot_error)?;
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
fn parameter(
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
    chart
        .configure_mesh()
        .x_labels(ticks.count(&x))
        .x_label_formatter(&|v| ticks.label(*v))
        .y_label_formatter(&|v| short(*v))
        .x_desc(format!("{name}{}", left_out(state, clipped)))
        .y_desc(spec.metric)
        .draw()
        .map_err(plot_error)?;
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
fn pareto_front(
    root: &Area<'_>,
    state: &SweepState,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
    let goals = spec.goals();
    let (gx, gy) = (&goals[0], &goals[1]);
    let fronts = super::pareto_ranks(state, spec);
    let points: Vec<(f64, f64, bool)> = trials
        .iter()
        .filter(|t| t.state == TrialState::Ended(EndState::Complete))
        .filter_map(|t| {
            let best = t.best_epoch(spec.metric, spec.direction)?;
            let on_front = fronts[t.number as usize] == Some(1);
            Some((
                t.value_at(&gx.metric, best)?,
                t.value_at(&gy.metric, best)?,
                on_front,
            ))
        })
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .collect();
    let x = shown_range(&points.iter().map(|p| p.0).collect::<Vec<_>>());
    let y = shown_range(&points.iter().map(|p| p.1).collect::<Vec<_>>());
    let clipped = points
        .iter()
        .filter(|p| clamp_to(&x, p.0).1 || clamp_to(&y, p.1).1)
        .count();
    // The front from the best of the first objective on, one step per member.
    let mut front: Vec<(f64, f64)> = points.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
    front.sort_by(|a, b| gx.direction.loss(a.0).total_cmp(&gx.direction.loss(b.0)));
    let mut steps = Vec::new();
    for pair in front.windows(2) {
        steps.extend([pair[0], (pair[1].0, pair[0].1)]);
    }
    steps.extend(front.last());
    let on_front = front.len();
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
    chart
        .configure_mesh()
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .x_desc(format!(
            "{} ({}){}",
            gx.metric,
            gx.direction.name(),
            left_out(state, clipped)
        ))
        .y_desc(format!("{} ({})", gy.metric, gy.direction.name()))
        .draw()
        .map_err(plot_error)?;
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

/// Labels along one parallel-coordinates axis: (unit position, text).
fn axis_labels(distribution: &Distribution) -> Vec<(f64, String)> {
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
fn shade(goodness: f64) -> RGBColor {
    let mix = |a: f64, b: f64| (a + (b - a) * goodness.clamp(0.0, 1.0)) as u8;
    RGBColor(mix(230.0, 8.0), mix(200.0, 48.0), mix(120.0, 107.0))
}

/// Parallel coordinates: one line per complete trial across its parameters (each on its own
/// axis, labelled with real values) and the objective, coloured by rank, with a colour bar.
fn parallel(
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
    for (i, labels) in dims
        .iter()
        .map(|d| axis_labels(&d.distribution))
        .chain([objective_labels.to_vec()])
        .enumerate()
    {
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
    colour_bar(&bottom, &lines, spec)?;
    Ok(())
}

/// The legend of lines coloured by rank, under the parallel coordinates; `lines` are sorted
/// worst first.
fn colour_bar(area: &Area<'_>, lines: &[(Vec<f64>, f64)], spec: &ReportSpec<'_>) -> Result<()> {
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
fn importance_bars(root: &Area<'_>, table: &Table) -> Result<()> {
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
    chart
        .configure_mesh()
        .x_labels(ticks.count(&x))
        .x_label_formatter(&|v| ticks.label(*v))
        .y_label_formatter(&|v| short(*v))
        .y_desc("importance")
        .draw()
        .map_err(plot_error)?;
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

/// Draws every plot into `dir/plots/` and writes `dir/report.html`; returns the SVG files.
pub fn write(dir: &Path, state: &SweepState, spec: &ReportSpec<'_>) -> Result<Vec<PathBuf>> {
    let plots = crate::layout::plots(dir);
    std::fs::create_dir_all(&plots).context(|| format!("cannot create {}", plots.display()))?;
    let mut files = vec![plots.join("history.svg")];
    let drawn = drawn(state, spec);
    svg_file(&files[0], SIZE, |root| history(root, state, spec, &drawn))?;
    if !spec.others.is_empty() {
        let path = plots.join("pareto.svg");
        svg_file(&path, SIZE, |root| pareto_front(root, state, spec, &drawn))?;
        files.insert(0, path);
    }
    // Curves of one point each say nothing: only for trials of several epochs.
    if state
        .trials
        .iter()
        .any(|t| t.epochs.len() > 1 && t.epochs.iter().any(|e| e.metrics.contains_key(spec.metric)))
    {
        let path = plots.join("curves.svg");
        svg_file(&path, SIZE, |root| learning_curves(root, state, spec))?;
        files.push(path);
    }
    for d in &spec.space.dimensions {
        let path = plots.join(parameter_file(&d.name));
        svg_file(&path, SIZE, |root| parameter(root, d, state, spec, &drawn))?;
        files.push(path);
    }
    if !spec.space.dimensions.is_empty() {
        let path = plots.join("parallel.svg");
        let size = (SIZE.0, SIZE.1 + 40);
        svg_file(&path, size, |root| parallel(root, spec, &drawn))?;
        files.push(path);
    }
    let ranking = importance(state, spec);
    if !ranking.rows.is_empty() {
        let path = plots.join("importance.svg");
        svg_file(&path, SIZE, |root| importance_bars(root, &ranking))?;
        files.push(path);
    }
    let html = report_html(state, spec, &files)?;
    let report = crate::layout::report(dir);
    write_atomic(&report, html.as_bytes(), false)
        .context(|| format!("cannot write {}", report.display()))?;
    Ok(files)
}

/// `param_<name>.svg` for a parameter whose name is safe in a file name (letters, digits, `_`,
/// `-`, `.`); any other name has those characters replaced and a hash of the whole name added,
/// so that `optimizer/lr` writes inside `plots/` and no two names share a file.
fn parameter_file(name: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.chars().all(safe) {
        return format!("param_{name}.svg");
    }
    let cleaned: String = name
        .chars()
        .map(|c| if safe(c) { c } else { '_' })
        .collect();
    // FNV-1a: stable across runs and builds, as a file name must be.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("param_{cleaned}-{:08x}.svg", hash as u32)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A leaderboard cell for people: integers whole, other numbers to 4 significant digits.
fn cell(text: &str) -> String {
    match (text.parse::<i64>(), text.parse::<f64>()) {
        (Ok(_), _) | (_, Err(_)) => text.to_string(),
        (_, Ok(x)) => short(x),
    }
}

/// What the sweep optimises, in words.
fn objectives(spec: &ReportSpec<'_>) -> String {
    let goals: Vec<String> = spec
        .goals()
        .iter()
        .map(|g| format!("{} {}", g.direction.name(), g.metric))
        .collect();
    match goals.len() {
        1 => format!("objective: {}", goals[0]),
        _ => format!(
            "objectives: {} (ranked by Pareto front, pareto_rank 1 first)",
            goals.join(", ")
        ),
    }
}

/// The page of a sweep's report: the top 10 (what was searched, then how it did) and every
/// plot inline, so that the one file can be sent to someone and opened anywhere.
fn report_html(state: &SweepState, spec: &ReportSpec<'_>, files: &[PathBuf]) -> Result<String> {
    let table = leaderboard_top(state, spec, Some(10));
    let column = |name: &str| table.columns.iter().position(|c| c == name);
    let first = ["rank", "trial", "state", super::PARETO_RANK, "objective"];
    let last = ["best_epoch", "epochs", "duration_s", "n_params"];
    let keep: Vec<usize> = first
        .iter()
        .filter_map(|c| column(c))
        .chain(spec.params.iter().filter_map(|p| column(p)))
        .chain((0..table.columns.len()).filter(|&i| {
            let name = table.columns[i].as_str();
            !first.contains(&name)
                && !last.contains(&name)
                && name != "note"
                && !spec.params.iter().any(|p| p == name)
        }))
        .chain(last.iter().filter_map(|c| column(c)))
        .collect();
    let header: String = keep
        .iter()
        .map(|&i| format!("<th>{}</th>", escape(&table.columns[i])))
        .collect();
    let rows: String = table
        .rows
        .iter()
        .map(|row| {
            let cells: String = keep
                .iter()
                .map(|&i| format!("<td>{}</td>", escape(&cell(&row[i]))))
                .collect();
            format!("<tr>{cells}</tr>\n")
        })
        .collect();
    let mut figures = String::new();
    for file in files {
        let svg =
            std::fs::read_to_string(file).context(|| format!("cannot read {}", file.display()))?;
        let svg = match svg.find("<svg") {
            Some(at) => &svg[at..],
            None => svg.as_str(),
        };
        figures.push_str(&format!("<figure>{svg}</figure>\n"));
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"/><title>kiln: {name}</title>\n<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}}th{{background:#eef}}figure{{margin:1.5em 0}}figure svg{{max-width:100%;height:auto}}</style></head>\n<body>\n<h1>{name}</h1>\n<p>{trials} trials; {objectives}. The top 10, with what was searched first:</p>\n<div style=\"overflow-x:auto\"><table>\n<tr>{header}</tr>\n{rows}</table></div>\n{figures}</body></html>\n",
        name = escape(&state.name),
        trials = state.trials.len(),
        objectives = escape(&objectives(spec)),
    ))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_parameter_file_never_leaves_the_plots_folder_and_two_names_never_share_one() {
        assert_eq!(parameter_file("learning_rate"), "param_learning_rate.svg");
        let slash = parameter_file("optimizer/lr");
        assert!(
            slash.starts_with("param_optimizer_lr-") && !slash.contains('/'),
            "{slash}"
        );
        assert_ne!(slash, parameter_file("optimizer_lr"));
        assert_ne!(slash, parameter_file("optimizer:lr"));
        assert!(!parameter_file("../../x").contains('/'));
    }
    use super::*;
    use crate::space::Space;
    use crate::state::complete_trial;
    use crate::trial::Direction;

    #[test]
    fn a_choice_of_100000_values_names_a_sample_of_them_in_small_files() {
        let values: Vec<ParamValue> = (0..100_000).map(ParamValue::Int).collect();
        let space = Space {
            dimensions: vec![Dimension::new("n", Distribution::Choice(values))],
        };
        let spec = ReportSpec {
            metric: "value",
            direction: Direction::Minimize,
            params: vec!["n".into()],
            space: &space,
            constraints: &[],
            others: &[],
        };
        let mut state = SweepState::default();
        for t in 0..30u64 {
            let params = [("n".to_string(), ParamValue::Int(t as i64 * 3_331))].into();
            complete_trial(&mut state, t, params, "value", t as f64);
        }
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &state, &spec).unwrap();
        let report = crate::layout::report(dir.path());
        for file in files.iter().chain([&report]) {
            let size = std::fs::metadata(file).unwrap().len();
            assert!(size < 1_000_000, "{}: {size} bytes", file.display());
        }
        let parallel = files.iter().find(|f| f.ends_with("parallel.svg")).unwrap();
        let parallel = std::fs::read_to_string(parallel).unwrap();
        assert!(parallel.contains("\n99999\n"), "the last choice is named");
        assert!(
            parallel.contains("\n4167\n"),
            "and an even sample of the others"
        );
    }

    #[test]
    fn past_max_drawn_a_plot_draws_the_best_and_an_even_sample_and_says_so() {
        let space = Space { dimensions: vec![] };
        let spec = ReportSpec {
            metric: "value",
            direction: Direction::Minimize,
            params: vec![],
            space: &space,
            constraints: &[],
            others: &[],
        };
        let mut state = SweepState::default();
        for n in 0..5_000u64 {
            // The best trials are the last ones, which the even sample mostly misses.
            complete_trial(
                &mut state,
                n,
                Default::default(),
                "value",
                5_000.0 - n as f64,
            );
        }
        let (trials, note) = drawn(&state, &spec);
        assert!(trials.len() <= MAX_DRAWN, "{} drawn", trials.len());
        assert!(
            trials.windows(2).all(|w| w[0].number < w[1].number),
            "in trial order"
        );
        let best: Vec<u64> = (5_000 - BEST_DRAWN as u64..5_000).collect();
        assert!(best.iter().all(|b| trials.iter().any(|t| t.number == *b)));
        assert!(
            trials.iter().any(|t| t.number == 0),
            "the sample starts at the first"
        );
        assert!(
            note.contains(&format!("{} of 5000 trials", trials.len())),
            "{note}"
        );
        let mut few = SweepState::default();
        for n in 0..100u64 {
            complete_trial(&mut few, n, Default::default(), "value", n as f64);
        }
        assert_eq!(
            drawn(&few, &spec),
            (few.trials.iter().collect(), String::new())
        );
    }
}
