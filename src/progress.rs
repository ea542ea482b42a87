//! Progress of a sweep: a bar on a terminal, plain log lines otherwise (CI logs, pipes).

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
}

impl Progress {
    /// A bar when stdout is a terminal, plain lines otherwise; nothing when `quiet`.
    pub fn new(state: &SweepState, spec: &ReportSpec<'_>, budget: u64, quiet: bool) -> Progress {
        let ended = state.ended();
        let bar = (!quiet && std::io::stdout().is_terminal()).then(|| {
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
                state
                    .best(spec.metric, spec.direction)
                    .map(|(t, v)| (t.number, v)),
            ),
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
        if trial.state == TrialState::Ended(EndState::Complete)
            && let Some(v) = trial.best_value(spec.metric, spec.direction)
            && self
                .best
                .get()
                .is_none_or(|(_, b)| spec.direction.better(v, b))
        {
            self.best.set(Some((trial.number, v)));
        }
        let value = trial
            .best_value(spec.metric, spec.direction)
            .map(|v| format!("{} {}", spec.metric, crate::report::for_people(v)))
            .unwrap_or_default();
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
                crate::say!(
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
            None if !self.quiet => crate::say!("{line}"),
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
        let best = self
            .best
            .get()
            .map(|(trial, v)| format!("best {} (trial {trial})", crate::report::for_people(v)))
            .unwrap_or_else(|| "no result yet".into());
        format!(
            "{best}, running {running}, pruned {}, failed {}",
            state.count(TrialState::Ended(EndState::Pruned)),
            state.count(TrialState::Ended(EndState::Failed))
        )
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
