//! Reports drawn from a sweep's state: `leaderboard.csv`, `curves.csv`, and the terminal table.
//!
//! Reports are always rebuilt from [`SweepState`], never edited in place, and written
//! atomically (temporary file, then rename), so a reader never sees half a file.

pub mod compare;
pub mod plots;
mod table;

pub use table::{fitting, for_people, render, render_columns, terminal_width};

use crate::constraint::Judge;
use crate::error::{Context, Result};
use crate::experiment::Experiment;
use crate::files::write_atomic;
use crate::state::{SweepState, TrialRecord, TrialState};
use crate::trial::{Direction, EndState, Goal};
use std::path::Path;

/// A table of strings with named columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table as RFC 4180 CSV.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(&self.columns)
            .context(|| "cannot write CSV".into())?;
        for row in &self.rows {
            writer
                .write_record(row)
                .context(|| "cannot write CSV".into())?;
        }
        writer.into_inner().context(|| "cannot write CSV".into())
    }
}

/// What the reports need to know about the sweep besides its state.
pub struct ReportSpec<'a> {
    /// The objective metric.
    pub metric: &'a str,
    /// Its direction.
    pub direction: Direction,
    /// The `[space]` keys, in file order (one column each).
    pub params: Vec<String>,
    /// The space itself (for parameter importance).
    pub space: &'a crate::space::Space,
    /// `[[constraint]]`: an infeasible trial ranks after the feasible ones.
    pub constraints: &'a [crate::constraint::Constraint],
    /// The objectives after the first: with any, trials rank by Pareto front.
    pub others: &'a [Goal],
}

impl<'a> ReportSpec<'a> {
    /// The report spec of an experiment.
    pub fn of(experiment: &'a Experiment) -> ReportSpec<'a> {
        ReportSpec {
            metric: &experiment.objective.metric,
            direction: experiment.objective.direction,
            params: experiment.param_names(),
            space: &experiment.space,
            constraints: &experiment.constraints,
            others: &experiment.objective.others,
        }
    }

    /// Every objective, the first first.
    pub fn goals(&self) -> Vec<Goal> {
        std::iter::once(Goal::new(self.metric, self.direction))
            .chain(self.others.iter().cloned())
            .collect()
    }

    /// The constraints, judged at each trial's best epoch by the objective.
    pub fn judge(&self) -> crate::constraint::Judge<'a> {
        crate::constraint::Judge {
            constraints: self.constraints,
            objective: self.metric,
            direction: self.direction,
        }
    }
}

/// Metric columns in a stable, readable order: train, then val, then test; losses first.
/// With the metrics measured as trials ended when `finals`.
pub fn metric_columns<'t>(
    trials: impl Iterator<Item = &'t TrialRecord>,
    finals: bool,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for t in trials {
        let last = finals.then_some(&t.final_metrics);
        for keys in t.epochs.iter().map(|e| &e.metrics).chain(last) {
            for name in keys.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    let split_rank = |n: &str| {
        ["train_", "val_", "test_"]
            .iter()
            .position(|p| n.starts_with(p))
            .unwrap_or(3)
    };
    let kind_rank = |n: &str| {
        ["loss", "accuracy", "f1", "rmse", "mae", "r2"]
            .iter()
            .position(|k| n.rsplit('_').next() == Some(*k))
            .unwrap_or(6)
    };
    names.sort_by(|a, b| (split_rank(a), kind_rank(a), a).cmp(&(split_rank(b), kind_rank(b), b)));
    names
}

/// A number for CSV: the shortest text that reads back as the same f64, in exponent form below
/// 1e-4 (`1.78e-12`, not twelve zeros), which every CSV reader parses.
pub fn number(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-4 {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

fn state_rank(t: &TrialRecord) -> u8 {
    match t.state {
        TrialState::Ended(EndState::Complete) => 0,
        TrialState::Ended(EndState::Pruned) => 1,
        TrialState::Running => 2,
        TrialState::Ended(EndState::Failed) => 3,
    }
}

/// With several objectives, each trial's Pareto front (1: on the front), by trial number:
/// among the complete feasible trials that have every objective; `None` for the others, and
/// for every trial of a sweep of one objective.
pub fn pareto_ranks(state: &SweepState, spec: &ReportSpec<'_>) -> Vec<Option<usize>> {
    let mut ranks = vec![None; state.trials.len()];
    if spec.others.is_empty() {
        return ranks;
    }
    let (goals, judge) = (spec.goals(), spec.judge());
    let (numbers, points): (Vec<usize>, Vec<Vec<f64>>) = state
        .trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.state == TrialState::Ended(EndState::Complete))
        .filter(|(_, t)| spec.constraints.is_empty() || judge.violation(t) == 0.0)
        .filter_map(|(i, t)| Some((i, t.losses(&goals)?)))
        .unzip();
    for (i, rank) in numbers.into_iter().zip(crate::pareto::ranks(&points)) {
        ranks[i] = Some(rank + 1);
    }
    ranks
}

/// The ended trials, best first: feasible before infeasible (by how far outside the
/// constraints), complete before pruned, by Pareto front when there are several objectives,
/// by (the first) objective (ties by val_loss at the best epoch, then by trial number); failed
/// last.
pub fn ranked<'s>(state: &'s SweepState, spec: &ReportSpec<'_>) -> Vec<&'s TrialRecord> {
    ranked_with_fronts(state, spec).0
}

/// [`ranked`], with the [`pareto_ranks`] it ranked by.
pub fn ranked_with_fronts<'s>(
    state: &'s SweepState,
    spec: &ReportSpec<'_>,
) -> (Vec<&'s TrialRecord>, Vec<Option<usize>>) {
    let judge = spec.judge();
    let fronts = pareto_ranks(state, spec);
    // Each trial's key is computed once: finding a best epoch walks the trial's epochs.
    let mut keyed: Vec<RankKey<'s>> = (state.trials.iter())
        .filter(|t| t.state != TrialState::Running)
        .map(|t| RankKey::of(t, spec, &judge))
        .collect();
    let front = |t: &TrialRecord| fronts[t.number as usize].unwrap_or(usize::MAX);
    keyed.sort_by(|a, b| {
        (a.group.cmp(&b.group))
            .then_with(|| front(a.trial).cmp(&front(b.trial)))
            .then_with(|| a.within_group(b, spec.direction))
    });
    let ranked = keyed.into_iter().map(|k| k.trial).collect();
    (ranked, fronts)
}

/// Where a trial stands in the leaderboard: its group (complete, pruned, then the infeasible of
/// each, then failed), its value in the group (the objective, or how far outside the
/// constraints), and its val_loss at the best epoch, which breaks ties.
struct RankKey<'s> {
    group: u8,
    value: Option<f64>,
    val_loss: Option<f64>,
    trial: &'s TrialRecord,
}

impl<'s> RankKey<'s> {
    fn of(t: &'s TrialRecord, spec: &ReportSpec<'_>, judge: &Judge<'_>) -> RankKey<'s> {
        let best = t.best_epoch(spec.metric, spec.direction);
        let value = best.and_then(|e| e.metrics.get(spec.metric).copied());
        let val_loss = best.and_then(|e| e.metrics.get("val_loss").copied());
        let failed = t.state == TrialState::Ended(EndState::Failed);
        let violation = if failed || spec.constraints.is_empty() {
            0.0
        } else {
            judge.violation(t)
        };
        // Infeasible trials come after every feasible one, the nearest to feasible first;
        // failed ones last of all.
        let (group, value) = match state_rank(t) {
            _ if failed => (4, value),
            rank if violation > 0.0 => (rank + 2, Some(spec.direction.loss(violation))),
            rank => (rank, value),
        };
        RankKey {
            group,
            value,
            val_loss,
            trial: t,
        }
    }

    /// The order inside one group (and front): by value, then val_loss, then trial number.
    fn within_group(&self, other: &RankKey<'_>, direction: Direction) -> std::cmp::Ordering {
        let better_first = |a: Option<f64>, b: Option<f64>, direction: Direction| match (a, b) {
            (Some(x), Some(y)) if direction.better(x, y) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) if direction.better(y, x) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        };
        better_first(self.value, other.value, direction)
            .then_with(|| better_first(self.val_loss, other.val_loss, Direction::Minimize))
            .then_with(|| self.trial.number.cmp(&other.trial.number))
    }
}

/// A trial's note: why it failed or was pruned, and which constraints it breaks.
pub fn note(t: &TrialRecord, spec: &ReportSpec<'_>) -> String {
    let judge = spec.judge();
    let broken = match t.state {
        TrialState::Ended(EndState::Failed) => Vec::new(),
        _ => judge.broken(t),
    };
    let reasons: Vec<String> = broken
        .iter()
        .map(|b| {
            let (side, bound) = match b.bound {
                crate::constraint::Bound::Max(max) => (">", max),
                crate::constraint::Bound::Min(min) => ("<", min),
            };
            let which = if side == ">" { "max" } else { "min" };
            format!(
                "{} {} {side} {which} {bound}",
                b.metric,
                for_people(b.value)
            )
        })
        .collect();
    let infeasible = (!reasons.is_empty()).then(|| format!("infeasible: {}", reasons.join(", ")));
    [t.note.clone(), infeasible]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

/// The best trial and its objective: the leaderboard's rank 1 when that is a feasible complete
/// trial with a value, so that every command that names "the best" (the progress line,
/// `status`, the dashboard, the report, `predict --trial best`, exports) names the same one,
/// ties broken as the leaderboard breaks them. One pass over the trials for one objective; with
/// several, the leaderboard's own order (by Pareto front first).
pub fn best<'s>(state: &'s SweepState, spec: &ReportSpec<'_>) -> Option<(&'s TrialRecord, f64)> {
    let first = match spec.others.is_empty() {
        true => {
            let judge = spec.judge();
            (state.trials.iter())
                .filter(|t| t.state == TrialState::Ended(EndState::Complete))
                .map(|t| RankKey::of(t, spec, &judge))
                .filter(|k| k.group == 0 && k.value.is_some())
                .min_by(|a, b| a.within_group(b, spec.direction))?
                .trial
        }
        false => *ranked(state, spec).first()?,
    };
    let key = RankKey::of(first, spec, &spec.judge());
    let complete = first.state == TrialState::Ended(EndState::Complete);
    key.value
        .filter(|_| complete && key.group == 0)
        .map(|v| (first, v))
}

/// Whether feasible complete trial `a` ranks before `b` in the leaderboard of one objective
/// (by value, then val_loss, then number): how [`best`] is kept up to date as trials end.
pub fn ranks_before(a: &TrialRecord, b: &TrialRecord, spec: &ReportSpec<'_>) -> bool {
    let judge = spec.judge();
    let (a, b) = (RankKey::of(a, spec, &judge), RankKey::of(b, spec, &judge));
    a.within_group(&b, spec.direction).is_lt()
}

/// The leaderboard's first columns: what a trial is and how it did.
pub const SUMMARY_COLUMNS: [&str; 7] = [
    "rank",
    "trial",
    "state",
    "objective",
    "best_epoch",
    "epochs",
    "duration_s",
];

/// The leaderboard column of each trial's Pareto front, in sweeps of several objectives.
pub const PARETO_RANK: &str = "pareto_rank";

/// `leaderboard.csv`: one row per ended trial, best first, failed last.
pub fn leaderboard(state: &SweepState, spec: &ReportSpec<'_>) -> Table {
    leaderboard_top(state, spec, None)
}

/// The leaderboard's first `top` rows (all when `None`), with the whole leaderboard's columns.
pub fn leaderboard_top(state: &SweepState, spec: &ReportSpec<'_>, top: Option<usize>) -> Table {
    let (mut trials, fronts) = ranked_with_fronts(state, spec);
    let multi = !spec.others.is_empty();
    let metrics = metric_columns(trials.iter().copied(), true);
    let mut columns: Vec<String> = SUMMARY_COLUMNS
        .iter()
        .chain(&["n_params"])
        .map(|c| c.to_string())
        .collect();
    if multi {
        columns.insert(3, PARETO_RANK.into());
    }
    columns.extend(metrics.iter().cloned());
    columns.push("gap".into());
    columns.extend(spec.params.iter().cloned());
    columns.push("note".into());
    trials.truncate(top.unwrap_or(usize::MAX));
    let mut rows = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        let best = t.best_epoch(spec.metric, spec.direction);
        let at_best = |m: &str| {
            best.and_then(|e| t.value_at(m, e))
                .map(number)
                .unwrap_or_default()
        };
        let failed = t.state == TrialState::Ended(EndState::Failed);
        let mut row = vec![
            if failed {
                String::new()
            } else {
                (i + 1).to_string()
            },
            t.number.to_string(),
            t.state.name().to_string(),
            // A failed trial has no result to rank by, whatever it reported before failing.
            if failed {
                String::new()
            } else {
                at_best(spec.metric)
            },
            match best {
                Some(e) if !failed => e.epoch.to_string(),
                _ => String::new(),
            },
            t.epochs.len().to_string(),
            number(t.elapsed_s()),
            t.n_params.map(|n| n.to_string()).unwrap_or_default(),
        ];
        if multi {
            let front = fronts[t.number as usize].map(|r| r.to_string());
            row.insert(3, front.unwrap_or_default());
        }
        row.extend(metrics.iter().map(|m| at_best(m)));
        // The generalisation gap: how much worse validation is than training (positive when
        // the model overfits).
        let gap =
            best.and_then(|e| Some(e.metrics.get("val_loss")? - e.metrics.get("train_loss")?));
        row.push(
            gap.map(|g| number((g * 1e9).round() / 1e9))
                .unwrap_or_default(),
        );
        row.extend(
            spec.params
                .iter()
                .map(|p| t.params.get(p).map(|v| v.to_string()).unwrap_or_default()),
        );
        row.push(note(t, spec));
        rows.push(row);
    }
    Table { columns, rows }
}

/// `curves.csv`: one row per trial and epoch.
pub fn curves(state: &SweepState) -> Table {
    let metrics = metric_columns(state.trials.iter(), false);
    let mut columns: Vec<String> = ["trial", "epoch", "elapsed_s", "lr"]
        .map(String::from)
        .to_vec();
    columns.extend(metrics.iter().cloned());
    let mut rows = Vec::new();
    for t in &state.trials {
        for e in &t.epochs {
            let mut row = vec![
                t.number.to_string(),
                e.epoch.to_string(),
                number(e.elapsed_s),
                e.lr.map(number).unwrap_or_default(),
            ];
            row.extend(
                metrics
                    .iter()
                    .map(|m| e.metrics.get(m).map(|&v| number(v)).unwrap_or_default()),
            );
            rows.push(row);
        }
    }
    Table { columns, rows }
}

/// `importance.csv`: `parameter,importance`, most important first (empty below 10 complete
/// trials): PED-ANOVA, which compares where the best trials put each parameter with where all
/// trials put it.
pub fn importance(state: &SweepState, spec: &ReportSpec<'_>) -> Table {
    let ranked = crate::importance::importance(state, spec.space, spec.metric, spec.direction);
    Table {
        columns: vec!["parameter".into(), "importance".into()],
        rows: ranked
            .into_iter()
            .map(|(name, value)| vec![name, number((value * 1e6).round() / 1e6)])
            .collect(),
    }
}

/// Rewrites `leaderboard.csv`, `curves.csv` and `importance.csv` in `dir`, atomically.
pub fn write(dir: &Path, state: &SweepState, spec: &ReportSpec<'_>) -> Result<()> {
    for (name, table) in [
        (crate::layout::LEADERBOARD, leaderboard(state, spec)),
        (crate::layout::CURVES, curves(state)),
        (crate::layout::IMPORTANCE, importance(state, spec)),
    ] {
        let path = dir.join(name);
        write_atomic(&path, &table.to_csv()?, false)
            .context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Space;
    use crate::state::ended_trial;
    use crate::trial::{Direction, Metrics};

    #[test]
    fn the_gap_is_val_minus_train_and_a_failed_trial_has_no_objective() {
        let mut state = SweepState::default();
        let losses = || Metrics::from([("train_loss".into(), 0.25), ("val_loss".into(), 0.75)]);
        ended_trial(
            &mut state,
            0,
            Default::default(),
            losses(),
            EndState::Complete,
        );
        ended_trial(
            &mut state,
            1,
            Default::default(),
            losses(),
            EndState::Failed,
        );
        let space = Space { dimensions: vec![] };
        let spec = ReportSpec {
            metric: "val_loss",
            direction: Direction::Minimize,
            params: vec![],
            space: &space,
            constraints: &[],
            others: &[],
        };
        let table = leaderboard(&state, &spec);
        let column = |name: &str| table.columns.iter().position(|c| c == name).unwrap();
        let (complete, failed) = (&table.rows[0], &table.rows[1]);
        assert_eq!(complete[column("gap")], "0.5");
        assert_eq!(complete[column("objective")], "0.75");
        assert_eq!(
            (
                failed[column("rank")].as_str(),
                failed[column("state")].as_str()
            ),
            ("", "failed")
        );
        assert_eq!(failed[column("objective")], "");
        assert_eq!(failed[column("best_epoch")], "");
    }

    #[test]
    fn ties_on_the_objective_are_broken_by_val_loss_then_by_trial_number() {
        let mut state = SweepState::default();
        for (trial, val_loss) in [(0, 0.5), (1, 0.3), (2, 0.3)] {
            let metrics =
                Metrics::from([("val_accuracy".into(), 0.9), ("val_loss".into(), val_loss)]);
            ended_trial(
                &mut state,
                trial,
                Default::default(),
                metrics,
                EndState::Complete,
            );
        }
        let space = Space { dimensions: vec![] };
        let spec = ReportSpec {
            metric: "val_accuracy",
            direction: Direction::Maximize,
            params: vec![],
            space: &space,
            constraints: &[],
            others: &[],
        };
        let order: Vec<u64> = ranked(&state, &spec).iter().map(|t| t.number).collect();
        assert_eq!(order, [1, 2, 0]);
    }
}
