//! Progress of a sweep, on stderr: a bar on a terminal, with the running trials' epochs and
//! latest objective; plain lines otherwise (CI logs, pipes), one per finished trial and a line
//! of the running trials at most every [`RUNNING_EVERY`].

use crate::report::ReportSpec;
use crate::state::{SweepState, TrialRecord, TrialState};
use crate::trial::EndState;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Draws progress for one `kiln run`/`resume`.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    ended_at_start: usize,
    quiet: bool,
    /// The best complete trial and its value, kept as trials end: a summary per event then
    /// costs the same at trial 100,000 as at trial 10.
    best: std::cell::Cell<Option<(u64, f64)>>,
    /// With several objectives, the objectives (as losses) of the trials on the Pareto front,
    /// kept the same way; `None` with one objective.
    front: std::cell::RefCell<Option<Vec<Vec<f64>>>>,
    /// The running trials, as last shown.
    running: std::cell::RefCell<String>,
    /// When the plain running line was last printed.
    running_shown: std::cell::Cell<Option<Instant>>,
}

/// How often, at most, plain output shows the running trials.
pub const RUNNING_EVERY: Duration = Duration::from_secs(10);

/// The running trials shown at once; more are counted.
const RUNNING_SHOWN: usize = 4;

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise; nothing when `quiet`.
    pub fn new(state: &SweepState, spec: &ReportSpec<'_>, budget: u64, quiet: bool) -> Progress {
        let ended = state.ended();
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(budget);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} trials  {msg}  [{elapsed_precise}, ETA {eta}]",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_position(ended as u64);
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            ended_at_start: ended,
            quiet,
            best: std::cell::Cell::new(
                crate::report::best(state, spec).map(|(t, v)| (t.number, v)),
            ),
            front: std::cell::RefCell::new((!spec.others.is_empty()).then(|| {
                let goals = spec.goals();
                crate::report::pareto_ranks(state, spec)
                    .iter()
                    .zip(&state.trials)
                    .filter(|(rank, _)| **rank == Some(1))
                    .filter_map(|(_, t)| t.losses(&goals))
                    .collect()
            })),
            running: Default::default(),
            running_shown: Default::default(),
        }
    }

    /// Shows the running trials `numbers` after one of them reported an epoch: each one's
    /// epoch and latest objective.
    pub fn epoch(
        &self,
        state: &SweepState,
        spec: &ReportSpec<'_>,
        numbers: impl Iterator<Item = u64>,
    ) {
        // Built only when shown: a bar each epoch, plain lines at most every RUNNING_EVERY.
        let plain_due = self.bar.is_none()
            && !self.quiet
            && self
                .running_shown
                .get()
                .is_none_or(|t| t.elapsed() >= RUNNING_EVERY);
        if self.bar.is_none() && !plain_due {
            return;
        }
        let numbers: Vec<u64> = numbers.collect();
        let shown: Vec<String> = numbers
            .iter()
            .take(RUNNING_SHOWN)
            .filter_map(|&n| state.trials.get(n as usize))
            .map(|t| {
                let latest = t
                    .epochs
                    .last()
                    .and_then(|e| e.metrics.get(spec.metric))
                    .map(|v| format!(" {}", crate::report::for_people(*v)))
                    .unwrap_or_default();
                format!("#{} epoch {}{latest}", t.number, t.epochs.len())
            })
            .collect();
        let more = numbers.len().saturating_sub(RUNNING_SHOWN);
        let more = if more > 0 {
            format!(", {more} more")
        } else {
            String::new()
        };
        *self.running.borrow_mut() = format!("{}{more}", shown.join(", "));
        match &self.bar {
            Some(bar) => bar.set_message(self.summary(state, numbers.len())),
            None => {
                self.running_shown.set(Some(Instant::now()));
                crate::tell!("running: {} ({})", self.running.borrow(), spec.metric);
            }
        }
    }

    /// Redraws the summary after something changed.
    pub fn update(&self, state: &SweepState, running: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(state.budget.unwrap_or(0).max(state.trials.len() as u64));
            bar.set_position((state.ended()) as u64);
            bar.set_message(self.summary(state, running));
        }
    }

    /// Reports a trial that just ended.
    pub fn trial_ended(
        &self,
        trial: &TrialRecord,
        state: &SweepState,
        spec: &ReportSpec<'_>,
        running: usize,
    ) {
        // Only a complete, feasible trial can be the best or join the front.
        let counts = trial.state == TrialState::Ended(EndState::Complete)
            && spec.judge().violation(trial) == 0.0;
        let goals = spec.goals();
        let best = self.best.get().map(|(n, _)| &state.trials[n as usize]);
        if counts
            && let Some(v) = trial.best_value(spec.metric, spec.direction)
            && best.is_none_or(|b| crate::report::ranks_before(trial, b, spec))
        {
            self.best.set(Some((trial.number, v)));
        }
        if let Some(front) = self.front.borrow_mut().as_mut()
            && counts
            && let Some(losses) = trial.losses(&goals)
            && !front.iter().any(|f| crate::pareto::dominates(f, &losses))
        {
            front.retain(|f| !crate::pareto::dominates(&losses, f));
            front.push(losses);
        }
        let value: Vec<String> = match trial.best_epoch(spec.metric, spec.direction) {
            Some(best) => goals
                .iter()
                .filter_map(|g| {
                    let v = trial.value_at(&g.metric, best)?;
                    Some(format!("{} {}", g.metric, crate::report::for_people(v)))
                })
                .collect(),
            None => Vec::new(),
        };
        let value = value.join(", ");
        let note = trial
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let line = format!(
            "trial {} {}{note} {value}",
            trial.number,
            trial.state.name()
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                self.update(state, running);
            }
            None if !self.quiet => {
                let ended = state.ended();
                let budget = state.budget.unwrap_or(0).max(state.trials.len() as u64);
                crate::tell!(
                    "[{ended}/{budget}] {line} | {}{}",
                    self.summary(state, running),
                    self.eta(ended, budget)
                );
            }
            None => {}
        }
    }

    fn eta(&self, ended: usize, budget: u64) -> String {
        let done_now = ended.saturating_sub(self.ended_at_start);
        if done_now == 0 || ended as u64 >= budget {
            return String::new();
        }
        let per_trial = self.started.elapsed().as_secs_f64() / done_now as f64;
        let left = per_trial * (budget - ended as u64) as f64;
        format!(" | ETA {}", format_duration(left))
    }

    /// Prints a line without disturbing the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if !self.quiet => crate::tell!("{line}"),
            None => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress {
    fn summary(&self, state: &SweepState, running: usize) -> String {
        let best = match (self.front.borrow().as_ref(), self.best.get()) {
            (Some(front), _) if !front.is_empty() => {
                format!("Pareto front {} trials", front.len())
            }
            (None, Some((trial, v))) => {
                format!("best {} (trial {trial})", crate::report::for_people(v))
            }
            _ => "no result yet".into(),
        };
        let counts = format!(
            "pruned {}, failed {}",
            state.count(TrialState::Ended(EndState::Pruned)),
            state.count(TrialState::Ended(EndState::Failed))
        );
        match (&self.bar, running) {
            // On a terminal the bar's line says what each running trial is at.
            (Some(_), 1..) => format!("{best}, {counts} | running {}", self.running.borrow()),
            _ => format!("{best}, running {running}, {counts}"),
        }
    }
}

/// "1h02m", "3m05s", "42s".
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
