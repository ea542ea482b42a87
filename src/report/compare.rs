//! `kiln compare`: the trials of one or several sweeps side by side, as one CSV.
//!
//! Rows are leaderboard rows with a `sweep` column in front; the columns are the union of the
//! sweeps' columns (a parameter one sweep does not search is left empty there), `note` last.
//! With `--curves`, the chosen trials' per-epoch metrics instead, one column per trial and
//! metric, one row per epoch, for plotting in a spreadsheet.

use super::{ReportSpec, Table, leaderboard};
use crate::state::SweepState;
use crate::trial::Direction;

/// One sweep to compare: a name for the `sweep` column, its state and report spec.
pub struct Sweep<'a> {
    /// Shown in the `sweep` column.
    pub name: String,
    /// Its state.
    pub state: SweepState,
    /// Its objective and parameters.
    pub spec: ReportSpec<'a>,
}

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep only trials in this state (`complete`, `pruned`, `failed`).
    pub state: Option<String>,
    /// Keep only these trial numbers.
    pub trials: Option<Vec<u64>>,
    /// Sort all rows by this column (best first, by the metric's natural direction).
    pub sort: Option<String>,
    /// Keep the best K: of each sweep, or overall when sorting.
    pub top: Option<usize>,
}

/// The compared trials, one row each.
pub fn compare(sweeps: &[Sweep<'_>], filter: &Filter) -> Table {
    let boards: Vec<Table> = sweeps
        .iter()
        .map(|s| leaderboard(&s.state, &s.spec))
        .collect();
    let mut columns: Vec<String> = vec!["sweep".into()];
    for board in &boards {
        for c in &board.columns {
            if c != "note" && !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    columns.push("note".into());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (sweep, board) in sweeps.iter().zip(&boards) {
        let mut kept = 0;
        for row in &board.rows {
            let cell = |name: &str| {
                board
                    .columns
                    .iter()
                    .position(|c| c == name)
                    .map(|i| row[i].clone())
            };
            if filter
                .state
                .as_ref()
                .is_some_and(|s| cell("state").as_ref() != Some(s))
            {
                continue;
            }
            if let Some(trials) = &filter.trials
                && !cell("trial")
                    .and_then(|t| t.parse().ok())
                    .is_some_and(|t: u64| trials.contains(&t))
            {
                continue;
            }
            if filter.sort.is_none() && filter.top.is_some_and(|k| kept >= k) {
                continue;
            }
            kept += 1;
            let mut out = vec![sweep.name.clone()];
            out.extend(columns[1..].iter().map(|c| cell(c).unwrap_or_default()));
            rows.push(out);
        }
    }
    if let Some(metric) = &filter.sort
        && let Some(index) = columns.iter().position(|c| c == metric)
    {
        // `objective` is each sweep's own metric: best first by the sweeps' direction (the
        // command refuses sweeps whose directions differ).
        let direction = match (metric.as_str(), sweeps.first()) {
            ("objective", Some(first)) => first.spec.direction,
            _ => Direction::natural_for(metric),
        };
        let value = |row: &Vec<String>| row[index].parse::<f64>().ok();
        rows.sort_by(|a, b| match (value(a), value(b)) {
            (Some(x), Some(y)) if direction.better(x, y) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) if direction.better(y, x) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        });
        rows.truncate(filter.top.unwrap_or(usize::MAX));
    }
    Table { columns, rows }
}

/// The per-epoch metrics of the compared trials, side by side: `epoch`, then one column per
/// trial and metric, named `sweep/trial/metric`.
pub fn curves(sweeps: &[Sweep<'_>], filter: &Filter) -> Table {
    let chosen = compare(sweeps, filter);
    let mut columns = vec!["epoch".to_string()];
    let mut series: Vec<Vec<(u32, f64)>> = Vec::new();
    for row in &chosen.rows {
        let Some(sweep) = sweeps.iter().find(|s| s.name == row[0]) else {
            continue;
        };
        let Some(trial) = row[2]
            .parse::<usize>()
            .ok()
            .and_then(|n| sweep.state.trials.get(n))
        else {
            continue;
        };
        let mut metrics: Vec<&String> =
            trial.epochs.iter().flat_map(|e| e.metrics.keys()).collect();
        metrics.sort();
        metrics.dedup();
        for metric in metrics {
            columns.push(format!("{}/{}/{metric}", sweep.name, trial.number));
            series.push(
                trial
                    .epochs
                    .iter()
                    .filter_map(|e| Some((e.epoch, *e.metrics.get(metric)?)))
                    .collect(),
            );
        }
    }
    let last = series
        .iter()
        .flat_map(|s| s.iter().map(|(e, _)| *e))
        .max()
        .unwrap_or(0);
    let rows = (1..=last)
        .map(|epoch| {
            let mut row = vec![epoch.to_string()];
            row.extend(series.iter().map(|s| {
                s.iter()
                    .find(|(e, _)| *e == epoch)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            }));
            row
        })
        .collect();
    Table { columns, rows }
}
