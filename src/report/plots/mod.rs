//! Pictures of a sweep, as SVG files drawn with `plotters` (pure Rust, no system libraries),
//! and `report.html`, one page that shows them with the top of the leaderboard and opens from
//! disk in any browser.

mod charts;
mod html;

use charts::{history, importance_bars, learning_curves, parallel, parameter, pareto_front};
use html::report_html;

use super::{ReportSpec, importance, ranked};
use crate::error::{Context, Result};
use crate::files::write_atomic;
use crate::space::{Distribution, ParamValue};
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

/// Draws the grid and its labels: `ticks` along x (over `x`), numbers along y.
fn grid(
    chart: &mut Axes<'_, '_>,
    (ticks, x): (&Ticks, &std::ops::Range<f64>),
    x_desc: Option<String>,
    y_desc: &str,
) -> Result<()> {
    let (x_label, y_label) = (|v: &f64| ticks.label(*v), |v: &f64| short(*v));
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(ticks.count(x))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .y_desc(y_desc);
    if let Some(x_desc) = x_desc {
        mesh.x_desc(x_desc);
    }
    mesh.draw().map_err(plot_error)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dimension, Space};
    use crate::state::complete_trial;
    use crate::trial::Direction;

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
