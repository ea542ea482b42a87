//! What the dashboard's JSON API serves, built from a [`View`]: plain data, so the page and
//! any script see the same numbers as `leaderboard.csv`.

use super::follow::View;
use crate::report::{ReportSpec, ranked};
use crate::space::{Distribution, Params};
use crate::state::{TrialRecord, TrialState};
use crate::trial::{EndState, Epoch, Metrics};
use serde::Serialize;

/// A sweep in `/api/sweeps`.
#[derive(Serialize)]
pub struct Summary<'a> {
    /// Its index in the dashboard: the `sweep=` of the other calls.
    pub id: usize,
    /// The experiment's name.
    pub name: &'a str,
    /// Where it is read from.
    pub source: &'a str,
    /// The objective metric.
    pub metric: &'a str,
    /// `maximize` or `minimize`.
    pub direction: &'static str,
    /// Every objective, the first first (one, unless the sweep has several).
    pub objectives: Vec<Objective<'a>>,
    /// Grows with every recorded event.
    pub version: u64,
    /// Changes when the source started over.
    pub generation: u64,
    /// The trial budget.
    pub budget: Option<u64>,
    /// Trials created.
    pub trials: usize,
    /// Trials complete.
    pub complete: usize,
    /// Trials pruned.
    pub pruned: usize,
    /// Trials failed.
    pub failed: usize,
    /// Trials created and not ended.
    pub running: usize,
    /// The best complete trial and its objective.
    pub best: Option<Best>,
    /// Why the last read of its journal failed, if it did.
    pub error: Option<&'a str>,
}

/// One objective of a sweep.
#[derive(Serialize)]
pub struct Objective<'a> {
    /// A metric, or `n_params`.
    pub metric: &'a str,
    /// `maximize` or `minimize`.
    pub direction: &'static str,
}

/// The best trial so far.
#[derive(Serialize)]
pub struct Best {
    /// Its number.
    pub trial: u64,
    /// Its objective.
    pub value: f64,
}

/// `view`'s line in `/api/sweeps`.
pub fn summary(id: usize, view: &View) -> Summary<'_> {
    let objective = &view.experiment.objective;
    let state = &view.state;
    let count = |end| state.count(TrialState::Ended(end));
    Summary {
        id,
        name: &view.experiment.name,
        source: &view.source,
        metric: &objective.metric,
        direction: objective.direction.name(),
        objectives: std::iter::once((&objective.metric, objective.direction))
            .chain(objective.others.iter().map(|g| (&g.metric, g.direction)))
            .map(|(metric, direction)| Objective {
                metric,
                direction: direction.name(),
            })
            .collect(),
        version: view.version(),
        generation: view.generation,
        budget: state.budget,
        trials: state.trials.len(),
        complete: count(EndState::Complete),
        pruned: count(EndState::Pruned),
        failed: count(EndState::Failed),
        running: state.count(TrialState::Running),
        best: crate::report::best(state, &ReportSpec::of(&view.experiment)).map(|(t, value)| {
            Best {
                trial: t.number,
                value,
            }
        }),
        error: view.error.as_deref(),
    }
}

/// A searched parameter, with what the page needs to draw its axis.
#[derive(Serialize)]
pub struct Param<'a> {
    /// The `[space]` key.
    pub name: &'a str,
    /// `float`, `int` or `choice`.
    pub kind: &'static str,
    /// Whether its axis is logarithmic.
    pub log: bool,
    /// The range's ends (numeric kinds).
    pub low: Option<f64>,
    /// The range's ends (numeric kinds).
    pub high: Option<f64>,
    /// The values of a `choice`, as text, in the file's order.
    pub choices: Vec<String>,
}

/// `/api/sweep`: the summary, the space, the metrics reported, and parameter importance.
#[derive(Serialize)]
pub struct Detail<'a> {
    /// As in `/api/sweeps`.
    #[serde(flatten)]
    pub summary: Summary<'a>,
    /// The searched parameters, in file order.
    pub params: Vec<Param<'a>>,
    /// Every metric some trial reported, in the leaderboard's order.
    pub metrics: Vec<String>,
    /// Those reported each epoch, which have learning curves.
    pub curve_metrics: Vec<String>,
    /// PED-ANOVA importance, most important first (empty below 10 complete trials).
    pub importance: Vec<(String, f64)>,
}

/// `view`'s `/api/sweep`.
pub fn detail(id: usize, view: &View) -> Detail<'_> {
    let params = view
        .experiment
        .space
        .dimensions
        .iter()
        .map(|d| {
            let (kind, low, high, choices) = match &d.distribution {
                Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => {
                    ("float", Some(*low), Some(*high), vec![])
                }
                Distribution::Int { low, high, .. } => {
                    ("int", Some(*low as f64), Some(*high as f64), vec![])
                }
                Distribution::Choice(values) => (
                    "choice",
                    None,
                    None,
                    values.iter().map(ToString::to_string).collect(),
                ),
            };
            Param {
                name: &d.name,
                kind,
                log: d.distribution.is_log(),
                low,
                high,
                choices,
            }
        })
        .collect();
    let spec = ReportSpec::of(&view.experiment);
    Detail {
        summary: summary(id, view),
        params,
        metrics: crate::report::metric_columns(view.state.trials.iter(), true),
        curve_metrics: crate::report::metric_columns(view.state.trials.iter(), false),
        importance: crate::importance::importance(
            &view.state,
            spec.space,
            spec.metric,
            spec.direction,
        ),
    }
}

/// A trial in `/api/trials`: the leaderboard's row, as data.
#[derive(Serialize)]
pub struct Row<'a> {
    /// Its number.
    pub trial: u64,
    /// `running`, `complete`, `pruned` or `failed`.
    pub state: &'static str,
    /// Its place in the leaderboard (none for failed and running trials).
    pub rank: Option<usize>,
    /// The objective at its best epoch (none for a failed trial, as in the leaderboard).
    pub objective: Option<f64>,
    /// Its best epoch.
    pub best_epoch: Option<u32>,
    /// Epochs reported.
    pub epochs: usize,
    /// The last epoch's metrics: what a running trial shows now.
    pub latest: Option<&'a Metrics>,
    /// Training time.
    pub duration_s: f64,
    /// Its model's parameter count.
    pub n_params: Option<u64>,
    /// Its parameters.
    pub params: &'a Params,
    /// Every metric at its best epoch, with those measured as it ended.
    pub metrics: Option<Metrics>,
    /// Why it failed or was pruned, and the constraints it breaks.
    pub note: Option<String>,
}

fn row<'a>(t: &'a TrialRecord, rank: Option<usize>, spec: &ReportSpec<'_>) -> Row<'a> {
    let best = t.best_epoch(spec.metric, spec.direction);
    let failed = t.state == TrialState::Ended(EndState::Failed);
    Row {
        trial: t.number,
        state: t.state.name(),
        rank,
        objective: best
            .and_then(|e| e.metrics.get(spec.metric).copied())
            .filter(|_| !failed),
        best_epoch: best.map(|e| e.epoch).filter(|_| !failed),
        epochs: t.epochs.len(),
        latest: t.epochs.last().map(|e| &e.metrics),
        duration_s: t.elapsed_s(),
        n_params: t.n_params,
        params: &t.params,
        metrics: best.map(|e| {
            let mut metrics = e.metrics.clone();
            metrics.extend(t.final_metrics.iter().map(|(k, v)| (k.clone(), *v)));
            metrics
        }),
        note: Some(crate::report::note(t, spec)).filter(|n| !n.is_empty()),
    }
}

/// `/api/trials`: trials in the leaderboard's order, then the running ones.
#[derive(Serialize)]
pub struct Trials<'a> {
    /// The version this answer reflects: pass it as `since` next time.
    pub version: u64,
    /// As in `/api/sweeps`.
    pub generation: u64,
    /// Every trial number, in the leaderboard's order then the running ones.
    pub order: Vec<u64>,
    /// With several objectives, each trial's Pareto front (1: on it), in the order of
    /// `order` (none for a trial off every front): whole each time, as a new trial moves
    /// older ones back. Empty with one objective.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pareto_rank: Vec<Option<usize>>,
    /// The trials changed after `since` (all of them without it), in that order.
    pub trials: Vec<Row<'a>>,
}

/// `view`'s `/api/trials`, only the trials changed after version `since` when given.
pub fn trials(view: &View, since: Option<u64>) -> Trials<'_> {
    let spec = ReportSpec::of(&view.experiment);
    let state = &view.state;
    let (ended, fronts) = crate::report::ranked_with_fronts(state, &spec);
    let order: Vec<u64> = ended
        .iter()
        .map(|t| t.number)
        .chain(state.unfinished().map(|t| t.number))
        .collect();
    let pareto_rank = match spec.others.is_empty() {
        true => Vec::new(),
        false => order.iter().map(|&n| fronts[n as usize]).collect(),
    };
    let changed = |t: &TrialRecord| {
        since.is_none_or(|v| view.changed.get(t.number as usize).is_some_and(|&c| c > v))
    };
    let ranked_rows = ended.iter().enumerate().map(|(i, t)| {
        let rank = (t.state != TrialState::Ended(EndState::Failed)).then_some(i + 1);
        (*t, rank)
    });
    let rows = ranked_rows
        .chain(state.unfinished().map(|t| (t, None)))
        .filter(|(t, _)| changed(t))
        .map(|(t, rank)| row(t, rank, &spec))
        .collect();
    Trials {
        version: view.version(),
        generation: view.generation,
        order,
        pareto_rank,
        trials: rows,
    }
}

/// A trial's epochs, for learning curves.
#[derive(Serialize)]
pub struct Curve<'a> {
    /// Its number.
    pub trial: u64,
    /// Its state.
    pub state: &'static str,
    /// Its epochs, in order.
    pub epochs: &'a [Epoch],
}

/// The curves of `numbers` (unknown ones left out).
pub fn curves<'a>(view: &'a View, numbers: &[u64]) -> Vec<Curve<'a>> {
    numbers
        .iter()
        .filter_map(|&n| view.state.trials.get(n as usize))
        .map(|t| Curve {
            trial: t.number,
            state: t.state.name(),
            epochs: &t.epochs,
        })
        .collect()
}

/// `/api/trial`: one trial whole.
#[derive(Serialize)]
pub struct TrialPage<'a> {
    /// Its leaderboard row.
    #[serde(flatten)]
    pub row: Row<'a>,
    /// Its seed, as text: a JSON number past 2^53 reaches JavaScript rounded.
    pub seed: String,
    /// Its epochs.
    pub curve: &'a [Epoch],
    /// The end of its log: its own `log.txt` (command objectives), else the sweep log's lines
    /// that name it.
    pub log: String,
}

/// The most of a log a trial page shows: its end.
const LOG_TAIL: usize = 64 * 1024;

/// Trial `number`'s page, if it exists.
pub fn trial(view: &View, number: u64) -> Option<TrialPage<'_>> {
    let t = view.state.trials.get(number as usize)?;
    let spec = ReportSpec::of(&view.experiment);
    let ranks = matches!(
        t.state,
        TrialState::Ended(EndState::Complete | EndState::Pruned)
    );
    let rank = ranks
        .then(|| {
            ranked(&view.state, &spec)
                .iter()
                .position(|r| r.number == number)
        })
        .flatten()
        .map(|i| i + 1);
    Some(TrialPage {
        row: row(t, rank, &spec),
        seed: t.seed.to_string(),
        curve: &t.epochs,
        log: view
            .dir
            .as_deref()
            .map(|dir| trial_log(dir, number))
            .unwrap_or_default(),
    })
}

/// The end of trial `number`'s log in results folder `dir`.
fn trial_log(dir: &std::path::Path, number: u64) -> String {
    let own = crate::layout::trial(dir, number).join("log.txt");
    let text = match std::fs::read_to_string(own) {
        Ok(text) => text,
        Err(_) => {
            let sweep_log = std::fs::read_to_string(crate::layout::log(dir)).unwrap_or_default();
            let name = format!("trial {number}");
            sweep_log
                .lines()
                .filter(|line| names_trial(line, &name))
                .flat_map(|line| [line, "\n"])
                .collect()
        }
    };
    let start = text.len().saturating_sub(LOG_TAIL);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Whether `line` says `trial N` for exactly this N (not `trial 12` for `trial 1`).
fn names_trial(line: &str, name: &str) -> bool {
    line.match_indices(name).any(|(i, _)| {
        !line[i + name.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_line_names_a_trial_only_with_its_whole_number() {
        assert!(super::names_trial("trial 1 failed", "trial 1"));
        assert!(super::names_trial("end of trial 1", "trial 1"));
        assert!(!super::names_trial("trial 12 failed", "trial 1"));
    }
}
