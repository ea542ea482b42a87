//! Pictures of a sweep, as SVG files drawn with `plotters` (pure Rust, no system libraries),
//! and `report.html`, one page that shows them with the top of the leaderboard and opens from
//! disk in any browser.

use super::{ReportSpec, Table, importance, leaderboard_top, ranked};
use crate::error::{Context, Result};
use crate::files::write_atomic;
use crate::state::{SweepState, TrialRecord, TrialState};
use crate::trial::EndState;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const SIZE: (u32, u32) = (720, 420);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREY: RGBColor = RGBColor(150, 150, 150);
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

/// A white canvas drawing into `path`.
fn canvas(path: &Path) -> Result<Area<'_>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    Ok(root)
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

/// Draws the series' legend, then writes the file.
fn finish_with_legend<'a, 'b: 'a>(chart: &mut Axes<'a, 'b>, root: &Area<'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
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

/// The most trials a plot draws one mark for. Past it a plot draws the best [`BEST_DRAWN`] and an
/// even sample of the rest, in trial order, and says so in its caption: more marks than the
/// picture has room for show nothing more, and cost time and megabytes in proportion to the
/// sweep.
const MAX_DRAWN: usize = 2_000;
/// The best trials a thinned plot always draws.
const BEST_DRAWN: usize = 500;

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

/// Every trial's objective, and the best so far: `history.svg`.
fn history(
    path: &Path,
    state: &SweepState,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
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
        let n = t.number as f64;
        match best.last() {
            None => best.push((n, v)),
            Some(&(_, b)) if spec.direction.better(v, b) => best.extend([(n, b), (n, v)]),
            Some(_) => {}
        }
    }
    if let (Some(&(_, b)), Some(last)) = (best.last(), state.trials.last()) {
        best.push((last.number as f64, b));
    }
    let points: Vec<(f64, f64, bool)> = trials
        .iter()
        .filter_map(|t| {
            let value = t.best_value(spec.metric, spec.direction)?;
            Some((
                t.number as f64,
                value,
                t.state == TrialState::Ended(EndState::Complete),
            ))
        })
        .collect();
    let root = canvas(path)?;
    let mut chart = axes(
        &root,
        &format!("Optimisation history: {}{note}", spec.metric),
        range(points.iter().map(|p| p.0)),
        range(points.iter().map(|p| p.1)),
    )?;
    chart
        .configure_mesh()
        .x_desc("trial")
        .y_desc(spec.metric)
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(points.iter().map(|&(n, v, complete)| {
            Circle::new(
                (n, v),
                3,
                if complete {
                    BLUE.filled()
                } else {
                    GREY.filled()
                },
            )
        }))
        .map_err(plot_error)?
        .label("trial (grey: pruned or failed)")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    chart
        .draw_series(LineSeries::new(best, ORANGE.stroke_width(2)))
        .map_err(plot_error)?
        .label("best so far")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], ORANGE.stroke_width(2)));
    finish_with_legend(&mut chart, &root)
}

/// One line: trial number, metric, (epoch, value) points.
type Curve<'a> = (u64, &'a str, Vec<(f64, f64)>);

/// Training and validation loss of the top five trials: `curves.svg` (overfitting shows as
/// train going down while val goes up).
fn learning_curves(path: &Path, state: &SweepState, spec: &ReportSpec<'_>) -> Result<()> {
    let top: Vec<_> = ranked(state, spec).into_iter().take(5).collect();
    let series: Vec<Curve> = top
        .iter()
        .flat_map(|t| {
            ["train_loss", "val_loss"].into_iter().map(move |metric| {
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
    let root = canvas(path)?;
    let mut chart = axes(
        &root,
        "Learning curves of the top trials (solid: val_loss, dashed: train_loss)",
        range(all().map(|p| p.0)),
        range(all().map(|p| p.1)),
    )?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .draw()
        .map_err(plot_error)?;
    for (i, (trial, metric, points)) in series.iter().enumerate() {
        let color = PALETTE[(i / 2) % PALETTE.len()];
        if *metric == "val_loss" {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("trial {trial}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x - 8, y), (x + 8, y)], color.stroke_width(2))
                });
        } else {
            chart
                .draw_series(DashedLineSeries::new(
                    points.clone(),
                    4,
                    4,
                    color.stroke_width(1),
                ))
                .map_err(plot_error)?;
        }
    }
    finish_with_legend(&mut chart, &root)
}

/// The objective against one parameter: `param_<name>.svg`, with a log axis for log ranges
/// (drawn as log10 of the value).
fn parameter(
    path: &Path,
    name: &str,
    log: bool,
    state: &SweepState,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
    let categories: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for t in &state.trials {
            if let Some(v) = t.params.get(name).filter(|v| v.as_f64().is_none()) {
                let text = v.to_string();
                if !seen.contains(&text) {
                    seen.push(text);
                }
            }
        }
        seen
    };
    let points: Vec<(f64, f64)> = trials
        .iter()
        .filter_map(|t| {
            let value = t.best_value(spec.metric, spec.direction)?;
            let p = t.params.get(name)?;
            let x = match p.as_f64() {
                Some(x) if log => x.log10(),
                Some(x) => x,
                None => categories.iter().position(|c| *c == p.to_string())? as f64,
            };
            Some((x, value))
        })
        .collect();
    let root = canvas(path)?;
    let x_desc = if log {
        format!("log10({name})")
    } else {
        name.to_string()
    };
    let mut chart = axes(
        &root,
        &format!("{} against {name}{note}", spec.metric),
        range(points.iter().map(|p| p.0)),
        range(points.iter().map(|p| p.1)),
    )?;
    let labels = categories.clone();
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(spec.metric)
        .x_label_formatter(&|x: &f64| {
            if labels.is_empty() {
                format!("{x:.3}")
            } else {
                labels.get(x.round() as usize).cloned().unwrap_or_default()
            }
        })
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// Parallel coordinates: one line per complete trial across its parameters (each scaled to
/// [0, 1] in the space's own coordinates) and the objective, darker for better trials.
fn parallel(
    path: &Path,
    spec: &ReportSpec<'_>,
    (trials, note): &(Vec<&TrialRecord>, String),
) -> Result<()> {
    let dims = &spec.space.dimensions;
    let lines: Vec<(Vec<f64>, f64)> = trials
        .iter()
        .filter(|t| t.state == TrialState::Ended(EndState::Complete))
        .filter_map(|t| {
            let value = t.best_value(spec.metric, spec.direction)?;
            Some((spec.space.unit_from_params(&t.params)?, value))
        })
        .collect();
    let values = range(lines.iter().map(|l| l.1));
    let root = canvas(path)?;
    let columns = dims.len() + 1;
    let mut chart = axes(
        &root,
        &format!("Parallel coordinates (darker: better){note}"),
        -0.2..(columns as f64 - 0.8),
        0.0..1.0,
    )?;
    let names: Vec<String> = dims
        .iter()
        .map(|d| d.name.clone())
        .chain([spec.metric.to_string()])
        .collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(columns)
        .x_label_formatter(&|x: &f64| names.get(x.round() as usize).cloned().unwrap_or_default())
        .y_desc("scaled value")
        .draw()
        .map_err(plot_error)?;
    for (coords, value) in &lines {
        let scaled = (value - values.start) / (values.end - values.start);
        let goodness = if spec.direction == crate::trial::Direction::Maximize {
            scaled
        } else {
            1.0 - scaled
        };
        let shade = (200.0 * (1.0 - goodness)) as u8;
        let color = RGBColor(shade, shade, 255);
        let points: Vec<(f64, f64)> = coords
            .iter()
            .chain(std::iter::once(&scaled))
            .enumerate()
            .map(|(i, &y)| (i as f64, y))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(1)))
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)
}

/// Parameter importance as bars: `importance.svg`.
fn importance_bars(path: &Path, table: &Table) -> Result<()> {
    let bars: Vec<(String, f64)> = table
        .rows
        .iter()
        .filter_map(|r| Some((r[0].clone(), r[1].parse().ok()?)))
        .collect();
    let root = canvas(path)?;
    let mut chart = axes(
        &root,
        "Parameter importance (PED-ANOVA)",
        -0.5..(bars.len().max(1) as f64 - 0.5),
        0.0..1.0,
    )?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .x_labels(bars.len().max(1))
        .x_label_formatter(&|x: &f64| names.get(x.round() as usize).cloned().unwrap_or_default())
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
    root.present().map_err(plot_error)
}

/// Draws every plot into `dir/plots/` and writes `dir/report.html`; returns the SVG files.
pub fn write(dir: &Path, state: &SweepState, spec: &ReportSpec<'_>) -> Result<Vec<PathBuf>> {
    let plots = crate::layout::plots(dir);
    std::fs::create_dir_all(&plots).context(|| format!("cannot create {}", plots.display()))?;
    let mut files = vec![plots.join("history.svg")];
    let drawn = drawn(state, spec);
    history(&files[0], state, spec, &drawn)?;
    if state
        .trials
        .iter()
        .any(|t| t.epochs.iter().any(|e| e.metrics.contains_key("val_loss")))
    {
        let path = plots.join("curves.svg");
        learning_curves(&path, state, spec)?;
        files.push(path);
    }
    for d in &spec.space.dimensions {
        let path = plots.join(format!("param_{}.svg", d.name));
        parameter(&path, &d.name, d.distribution.is_log(), state, spec, &drawn)?;
        files.push(path);
    }
    if !spec.space.dimensions.is_empty() {
        let path = plots.join("parallel.svg");
        parallel(&path, spec, &drawn)?;
        files.push(path);
    }
    let ranking = importance(state, spec);
    if !ranking.rows.is_empty() {
        let path = plots.join("importance.svg");
        importance_bars(&path, &ranking)?;
        files.push(path);
    }
    let html = report_html(state, spec, &files);
    let report = crate::layout::report(dir);
    write_atomic(&report, html.as_bytes(), false)
        .context(|| format!("cannot write {}", report.display()))?;
    Ok(files)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn report_html(state: &SweepState, spec: &ReportSpec<'_>, files: &[PathBuf]) -> String {
    let table = leaderboard_top(state, spec, Some(10));
    let keep: Vec<usize> = (0..table.columns.len())
        .filter(|&i| table.columns[i] != "note")
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
                .map(|&i| format!("<td>{}</td>", escape(&row[i])))
                .collect();
            format!("<tr>{cells}</tr>\n")
        })
        .collect();
    let images: String = files
        .iter()
        .filter_map(|f| f.file_name())
        .map(|name| {
            format!(
                "<img src=\"plots/{}\" alt=\"{}\">\n",
                name.to_string_lossy(),
                name.to_string_lossy()
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kiln: {name}</title>\n<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#eef}}img{{display:block;margin:1.5em 0;max-width:100%}}</style></head>\n<body>\n<h1>{name}</h1>\n<p>{trials} trials; objective: {direction} {metric}. The top 10:</p>\n<div style=\"overflow-x:auto\"><table>\n<tr>{header}</tr>\n{rows}</table></div>\n{images}</body></html>\n",
        name = escape(&state.name),
        trials = state.trials.len(),
        direction = spec.direction.name(),
        metric = escape(spec.metric),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Space;
    use crate::state::complete_trial;
    use crate::trial::Direction;

    #[test]
    fn past_max_drawn_a_plot_draws_the_best_and_an_even_sample_and_says_so() {
        let space = Space { dimensions: vec![] };
        let spec = ReportSpec {
            metric: "value",
            direction: Direction::Minimize,
            params: vec![],
            space: &space,
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
