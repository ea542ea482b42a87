//! `report.html`: the plots inline with the top of the leaderboard, one page that opens from
//! disk in any browser.

use super::short;
use crate::error::{Context, Result};
use crate::report::{ReportSpec, leaderboard_top};
use crate::state::SweepState;
use std::path::PathBuf;

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A leaderboard cell for people: integers whole, other numbers to 4 significant digits.
pub(super) fn cell(text: &str) -> String {
    match (text.parse::<i64>(), text.parse::<f64>()) {
        (Ok(_), _) | (_, Err(_)) => text.to_string(),
        (_, Ok(x)) => short(x),
    }
}

/// What the sweep optimises, in words.
pub(super) fn objectives(spec: &ReportSpec<'_>) -> String {
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
pub(super) fn report_html(
    state: &SweepState,
    spec: &ReportSpec<'_>,
    files: &[PathBuf],
) -> Result<String> {
    let table = leaderboard_top(state, spec, Some(10));
    let column = |name: &str| table.columns.iter().position(|c| c == name);
    let first = [
        "rank",
        "trial",
        "state",
        crate::report::PARETO_RANK,
        "objective",
    ];
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
