//! The sweep's state: a fold over the journal's events, and nothing more.
//!
//! [`SweepState::apply`] is the one place that turns events into state, and the one place that
//! enforces that a finished trial never changes.

use crate::journal::Event;
use crate::space::Params;
use crate::trial::{Direction, EndState, Epoch, Goal, Metrics};
use std::path::PathBuf;

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    /// Created and not ended: training, or waiting to be resumed.
    Running,
    /// Ended.
    Ended(EndState),
}

impl TrialState {
    /// The name used in CSV files and on the terminal.
    pub fn name(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Ended(EndState::Complete) => "complete",
            TrialState::Ended(EndState::Pruned) => "pruned",
            TrialState::Ended(EndState::Failed) => "failed",
        }
    }
}

/// Everything known about one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    /// Trial number.
    pub number: u64,
    /// Its seed.
    pub seed: u64,
    /// Its parameters.
    pub params: Params,
    /// Where it stands.
    pub state: TrialState,
    /// Its epochs, in order.
    pub epochs: Vec<Epoch>,
    /// Why it failed or was pruned.
    pub note: Option<String>,
    /// Parameter count of its model.
    pub n_params: Option<u64>,
    /// Metrics measured once as it ended (the built-in trainer's test metrics).
    pub final_metrics: Metrics,
    /// Last time anything happened to it.
    pub last_activity: f64,
    /// Whether it took a queued configuration instead of the sampler's.
    pub queued: bool,
    /// Why each earlier attempt failed, in order: a failed trial runs again ([budget] retries,
    /// `kiln retry`) with the epochs its earlier attempts reported.
    pub failed_attempts: Vec<String>,
}

impl TrialRecord {
    /// The epoch with the best value of `metric` (the first one, on ties).
    pub fn best_epoch(&self, metric: &str, direction: Direction) -> Option<&Epoch> {
        let mut best: Option<(&Epoch, f64)> = None;
        for e in &self.epochs {
            let Some(&v) = e.metrics.get(metric) else {
                continue;
            };
            if best.is_none_or(|(_, b)| direction.better(v, b)) {
                best = Some((e, v));
            }
        }
        best.map(|(e, _)| e)
    }

    /// The best value of `metric` over its epochs.
    pub fn best_value(&self, metric: &str, direction: Direction) -> Option<f64> {
        self.best_epoch(metric, direction)
            .and_then(|e| e.metrics.get(metric).copied())
    }

    /// The trial's value of `metric` at `epoch`: one of the epoch's metrics, one measured as
    /// the trial ended, or its parameter count for `n_params`.
    pub fn value_at(&self, metric: &str, epoch: &Epoch) -> Option<f64> {
        if metric == crate::trial::N_PARAMS {
            return self.n_params.map(|n| n as f64);
        }
        epoch
            .metrics
            .get(metric)
            .or_else(|| self.final_metrics.get(metric))
            .copied()
    }

    /// The trial's objectives as losses (lower is better in each), read at its best epoch by
    /// the first: `None` while it lacks one (`n_params` comes when it ends), or one is NaN.
    pub fn losses(&self, goals: &[Goal]) -> Option<Vec<f64>> {
        let first = goals.first()?;
        let best = self.best_epoch(&first.metric, first.direction)?;
        goals
            .iter()
            .map(|g| {
                let value = self.value_at(&g.metric, best)?;
                (!value.is_nan()).then(|| g.direction.loss(value))
            })
            .collect()
    }

    /// The last epoch with a checkpoint.
    pub fn checkpointed_epochs(&self) -> u32 {
        self.epochs
            .iter()
            .rev()
            .find(|e| e.checkpointed)
            .map_or(0, |e| e.epoch)
    }

    /// Training time so far.
    pub fn elapsed_s(&self) -> f64 {
        self.epochs.last().map_or(0.0, |e| e.elapsed_s)
    }
}

/// A sweep's whole state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepState {
    /// The experiment's name.
    pub name: String,
    /// Fingerprint of the experiment that started the sweep.
    pub fingerprint: Option<String>,
    /// The sweep seed.
    pub seed: u64,
    /// Folder relative paths resolve against.
    pub base_dir: PathBuf,
    /// The results folder relative to `base_dir`, when inside it.
    pub results: Option<PathBuf>,
    /// The fingerprint of the objective's data when the sweep started.
    pub data: Option<String>,
    /// The sampler a file without `[sampler] kind` gets in this sweep (`None`: a journal of
    /// a kiln whose default was `random`).
    pub default_sampler: Option<String>,
    /// The trial budget.
    pub budget: Option<u64>,
    /// Trials by number.
    pub trials: Vec<TrialRecord>,
    /// When anything last happened.
    pub last_activity: f64,
    /// Events applied.
    pub events: u64,
    /// Configurations queued by `kiln enqueue`, in order.
    pub enqueued: Vec<Params>,
    /// Trials created from the queue (the experiment's `[[enqueue]]`, then `enqueued`).
    pub queued: usize,
    /// The queue files whose configurations are in `enqueued`.
    pub taken: std::collections::HashSet<String>,
    /// The numbers of the trials not ended, in order: what `unfinished` walks, so that a
    /// claim costs the same at trial 100,000 as at trial 10.
    open: std::collections::BTreeSet<u64>,
    /// Ended trials by end: complete, pruned, failed.
    ended: [usize; 3],
}

/// A trial's note, followed by its attempt and why the one before failed, when it ran again.
fn attempt_note(note: Option<String>, failed: &[String]) -> Option<String> {
    let Some(last) = failed.last() else {
        return note;
    };
    let n = failed.len();
    let attempts = format!("attempt {}; attempt {n} failed: {last}", n + 1);
    Some(match note {
        Some(note) => format!("{note} ({attempts})"),
        None => attempts,
    })
}

impl SweepState {
    /// The state after all `events`.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> SweepState {
        let mut state = SweepState::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    /// Applies one event. Events about a finished trial are ignored: finished is final, but
    /// for a failed trial reopened by `kiln retry`.
    pub fn apply(&mut self, event: &Event) {
        self.events += 1;
        self.last_activity = event.time();
        match event {
            Event::SweepStarted {
                name,
                fingerprint,
                seed,
                base_dir,
                results,
                data,
                default_sampler,
                ..
            } => {
                self.default_sampler = default_sampler.clone();
                self.results = results.clone();
                self.name = name.clone();
                self.data = data.clone();
                self.fingerprint = Some(fingerprint.clone());
                self.seed = *seed;
                self.base_dir = base_dir.clone();
            }
            Event::BudgetSet { trials, .. } => self.budget = Some(*trials),
            Event::TrialEnqueued { params, file, .. } => {
                self.enqueued.push(params.clone());
                self.taken.extend(file.clone());
            }
            Event::TrialCreated {
                trial,
                seed,
                params,
                queued,
                time,
            } => self.create(*trial, *seed, params, *queued, *time),
            Event::TrialStarted { trial, time, .. } => {
                if let Some(t) = self.open_trial(*trial) {
                    t.last_activity = *time;
                }
            }
            Event::EpochReported {
                trial,
                epoch,
                elapsed_s,
                lr,
                metrics,
                checkpointed,
                time,
            } => {
                let record = Epoch {
                    epoch: *epoch,
                    elapsed_s: *elapsed_s,
                    lr: *lr,
                    metrics: metrics.clone(),
                    checkpointed: *checkpointed,
                };
                self.record_epoch(*trial, record, *time);
            }
            Event::TrialReopened { trial, time, .. } => self.reopen(*trial, *time),
            Event::TrialFinished {
                trial,
                state,
                note,
                n_params,
                metrics,
                time,
            } => {
                if self.open.remove(trial) {
                    self.ended[end_index(*state)] += 1;
                }
                if let Some(t) = self.open_trial(*trial) {
                    t.state = TrialState::Ended(*state);
                    t.note = attempt_note(note.clone(), &t.failed_attempts);
                    t.n_params = *n_params;
                    t.final_metrics = metrics.clone();
                    t.last_activity = *time;
                }
            }
        }
    }

    fn create(&mut self, number: u64, seed: u64, params: &Params, queued: bool, time: f64) {
        self.queued += usize::from(queued);
        debug_assert_eq!(
            number as usize,
            self.trials.len(),
            "trials are numbered in order"
        );
        self.open.insert(number);
        self.trials.push(TrialRecord {
            queued,
            number,
            seed,
            params: params.clone(),
            state: TrialState::Running,
            epochs: Vec::new(),
            note: None,
            n_params: None,
            final_metrics: Metrics::new(),
            last_activity: time,
            failed_attempts: Vec::new(),
        });
    }

    /// A failed trial made unfinished again; any other is left as it is.
    fn reopen(&mut self, number: u64, time: f64) {
        let Some(t) = self.trials.get_mut(number as usize) else {
            return;
        };
        if t.state == TrialState::Ended(EndState::Failed) {
            self.ended[end_index(EndState::Failed)] -= 1;
            self.open.insert(number);
            t.state = TrialState::Running;
            t.failed_attempts.push(t.note.take().unwrap_or_default());
            t.last_activity = time;
        }
    }

    fn record_epoch(&mut self, number: u64, record: Epoch, time: f64) {
        if let Some(t) = self.open_trial(number) {
            // A trial restarted without a checkpoint reports its epochs again: the later
            // report replaces the earlier one and everything after it.
            t.epochs.retain(|e| e.epoch < record.epoch);
            t.epochs.push(record);
            t.last_activity = time;
        }
    }

    fn open_trial(&mut self, number: u64) -> Option<&mut TrialRecord> {
        self.trials
            .get_mut(number as usize)
            .filter(|t| t.state == TrialState::Running)
    }

    /// Trials that are not ended (to resume).
    pub fn unfinished(&self) -> impl Iterator<Item = &TrialRecord> {
        self.open.iter().map(|&n| &self.trials[n as usize])
    }

    /// Number of trials in a state.
    pub fn count(&self, state: TrialState) -> usize {
        match state {
            TrialState::Running => self.open.len(),
            TrialState::Ended(end) => self.ended[end_index(end)],
        }
    }

    /// Number of ended trials.
    pub fn ended(&self) -> usize {
        self.ended.iter().sum()
    }

    /// The best complete trial and its best value.
    pub fn best(&self, metric: &str, direction: Direction) -> Option<(&TrialRecord, f64)> {
        self.best_where(metric, direction, |_| true)
    }

    /// [`SweepState::best`] among the complete trials that `keep` keeps.
    pub fn best_where(
        &self,
        metric: &str,
        direction: Direction,
        keep: impl Fn(&TrialRecord) -> bool,
    ) -> Option<(&TrialRecord, f64)> {
        let mut best: Option<(&TrialRecord, f64)> = None;
        for t in &self.trials {
            if t.state != TrialState::Ended(EndState::Complete) || !keep(t) {
                continue;
            }
            if let Some(v) = t.best_value(metric, direction)
                && best.is_none_or(|(_, b)| direction.better(v, b))
            {
                best = Some((t, v));
            }
        }
        best
    }
}

fn end_index(end: EndState) -> usize {
    match end {
        EndState::Complete => 0,
        EndState::Pruned => 1,
        EndState::Failed => 2,
    }
}

/// The order events must come in, checked as a journal is read: trials are created in number
/// order; every other event names a created trial; a trial's epochs follow one another from 1,
/// and an epoch is reported again (replacing it and the later ones) only as the first report
/// after the trial was started again, never skipped. A journal that breaks these was changed by
/// something other than kiln.
#[derive(Debug, Default)]
pub struct Sequence {
    /// Where each created trial stands.
    trials: Vec<TrialSequence>,
}

/// What the next epoch report of one trial may be.
#[derive(Debug, Default, Clone, Copy)]
struct TrialSequence {
    /// Its last reported epoch (0 before any).
    last_epoch: u32,
    /// Whether it was started since that report: only then may an epoch come again.
    started_since: bool,
}

impl Sequence {
    /// Checks `event` against the ones before it, and takes it in.
    pub fn check(&mut self, event: &Event) -> Result<(), String> {
        let created = self.trials.len();
        let known = |trial: u64| {
            if (trial as usize) < created {
                Ok(trial as usize)
            } else {
                Err(format!(
                    "an event names trial {trial}, but only {created} were created"
                ))
            }
        };
        match event {
            Event::TrialCreated { trial, .. } => {
                if *trial as usize != created {
                    return Err(format!(
                        "trial {trial} is created where trial {created} should be"
                    ));
                }
                self.trials.push(TrialSequence::default());
            }
            Event::TrialStarted { trial, .. } => {
                self.trials[known(*trial)?].started_since = true;
            }
            Event::TrialFinished { trial, .. } | Event::TrialReopened { trial, .. } => {
                known(*trial)?;
            }
            Event::EpochReported { trial, epoch, .. } => {
                let t = &mut self.trials[known(*trial)?];
                let last = t.last_epoch;
                if *epoch == 0 || *epoch > last + 1 {
                    return Err(format!(
                        "epoch {epoch} of trial {trial} follows epoch {last}; epochs follow one another from 1"
                    ));
                }
                if *epoch <= last && !t.started_since {
                    return Err(format!(
                        "epoch {epoch} of trial {trial} is reported again after epoch {last} without the trial being started again"
                    ));
                }
                *t = TrialSequence {
                    last_epoch: *epoch,
                    started_since: false,
                };
            }
            Event::SweepStarted { .. } | Event::BudgetSet { .. } | Event::TrialEnqueued { .. } => {}
        }
        Ok(())
    }
}

/// Test helper: a trial created with `params`, reporting `value` of `metric` at epoch 1, complete.
#[cfg(test)]
pub(crate) fn complete_trial(
    state: &mut SweepState,
    trial: u64,
    params: Params,
    metric: &str,
    value: f64,
) {
    ended_trial(
        state,
        trial,
        params,
        [(metric.to_string(), value)].into(),
        EndState::Complete,
    );
}

/// Records a trial created with `params`, reporting `metrics` at epoch 1, ended `end`, all at
/// time 0: the history of sampler tests and benchmarks (see [`crate::objective::function::drive`]).
pub(crate) fn ended_trial(
    state: &mut SweepState,
    trial: u64,
    params: Params,
    metrics: crate::trial::Metrics,
    end: EndState,
) {
    for event in [
        Event::TrialCreated {
            trial,
            seed: 0,
            params,
            queued: false,
            time: 0.0,
        },
        Event::EpochReported {
            trial,
            epoch: 1,
            elapsed_s: 0.0,
            lr: None,
            metrics,
            checkpointed: false,
            time: 0.0,
        },
        Event::TrialFinished {
            trial,
            state: end,
            note: None,
            n_params: None,
            metrics: Metrics::new(),
            time: 0.0,
        },
    ] {
        state.apply(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(trial: u64, epoch: u32, acc: f64) -> Event {
        Event::EpochReported {
            trial,
            epoch,
            elapsed_s: epoch as f64,
            lr: Some(0.1),
            metrics: [("val_accuracy".to_string(), acc)].into(),
            checkpointed: true,
            time: 0.0,
        }
    }

    #[test]
    fn finished_trials_never_change_and_reports_replace() {
        let events = vec![
            Event::TrialCreated {
                trial: 0,
                seed: 1,
                params: Params::new(),
                queued: false,
                time: 0.0,
            },
            report(0, 1, 0.5),
            report(0, 2, 0.7),
            report(0, 2, 0.6),
            Event::TrialFinished {
                trial: 0,
                state: EndState::Complete,
                note: None,
                n_params: Some(3),
                metrics: Metrics::new(),
                time: 0.0,
            },
            report(0, 3, 0.9),
        ];
        let state = SweepState::replay(&events);
        let t = &state.trials[0];
        assert_eq!(t.epochs.len(), 2);
        assert_eq!(t.best_value("val_accuracy", Direction::Maximize), Some(0.6));
        assert_eq!(
            t.best_epoch("val_accuracy", Direction::Minimize)
                .unwrap()
                .epoch,
            1
        );
        assert_eq!(
            state.best("val_accuracy", Direction::Maximize).unwrap().1,
            0.6
        );
    }
}
