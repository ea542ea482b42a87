//! What happens to one trial in the orchestrator: claimed (resumed, or created from the queue
//! or the sampler), started on a worker, its reports recorded and decided, and its end.

use super::{
    Orchestrator, QUEUE_EVERY, StopReason, check_report, continue_command, ended, ended_early,
    history, lost, queued_params, running, running_trials,
};
use crate::error::{Context, Error, Result};
use crate::journal::{Event, now};
use crate::objective::{Decision, TrialError, TrialSummary, TrialTask};
use crate::rng;
use crate::signals;
use crate::state::{SweepState, TrialState};
use crate::store::{Claim, NoTrial};
use crate::trial::{EndState, Epoch};
use crate::worker::ToWorker;
use std::time::{Duration, Instant};

impl Orchestrator<'_> {
    /// Hands trials to free workers: unfinished trials first, then new ones.
    pub(super) fn dispatch(&mut self) -> Result<()> {
        let experiment = self.experiment;
        let time_left = experiment
            .budget
            .max_time
            .is_none_or(|limit| self.started.elapsed() < limit);
        if Instant::now() >= self.next_queue_check {
            self.store.take_queued(&mut self.state, &experiment.space)?;
            self.next_queue_check = Instant::now() + QUEUE_EVERY;
        }
        while !self.stopping && !self.done && Instant::now() >= self.next_claim {
            let Some(id) = (self.slots.iter()).position(|s| s.trial.is_none() && !s.retiring)
            else {
                break;
            };
            let (sampler, exhausted) = (&mut self.sampler, &mut self.exhausted);
            let ruled = self.stopped_by.is_some();
            let mut create = |state: &SweepState| {
                let budget = state.budget.unwrap_or(experiment.budget.trials);
                if *exhausted || ruled || !time_left || state.trials.len() as u64 >= budget {
                    return Err(NoTrial::Finished);
                }
                let number = state.trials.len() as u64;
                let mut queue = experiment.enqueue.iter().chain(&state.enqueued);
                let (params, queued) = match queue.nth(state.queued) {
                    Some(given) => (queued_params(experiment, number, given), true),
                    None => {
                        let history = history(experiment, state).ok_or(NoTrial::NotYet)?;
                        match sampler.sample(&experiment.space, number, history) {
                            Some(params) => (params, false),
                            None => {
                                *exhausted = true;
                                return Err(NoTrial::Finished);
                            }
                        }
                    }
                };
                // tracing formats its arguments only when debug logging is on.
                tracing::debug!(
                    "trial {number}: {} proposed {}",
                    if queued {
                        "the queue"
                    } else {
                        experiment.sampler.kind.name()
                    },
                    crate::space::shown(&params)
                );
                Ok(Event::TrialCreated {
                    trial: number,
                    seed: rng::trial_seed(experiment.seed, number),
                    params,
                    queued,
                    time: now(),
                })
            };
            let running = running_trials(&self.slots);
            match self
                .store
                .claim(&mut self.state, id, &running, &mut create)?
            {
                Claim::Run(number) if self.pruned_before_resuming(number)? => {}
                Claim::Run(number) => self.start(id, number)?,
                Claim::Wait => {
                    // A trial that ends here calls for the next claim at once (see `end`).
                    self.next_claim = Instant::now() + Duration::from_secs(1);
                    break;
                }
                Claim::Done => {
                    self.done = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Judges an unfinished trial's last journaled epoch before it runs again, and records it
    /// pruned if the pruner says so. The sweep may have stopped after recording the epoch and
    /// before recording the decision on it; an objective that continues after its last
    /// journaled epoch (a function, or a checkpoint of that epoch) never reports it again. A
    /// decision to go on leaves no trace, so asking again is the same question.
    fn pruned_before_resuming(&mut self, number: u64) -> Result<bool> {
        let trial = &self.state.trials[number as usize];
        let reason = match &self.pruner {
            Some(pruner) if !trial.epochs.is_empty() => pruner.decide(trial, &self.state),
            _ => None,
        };
        let Some(reason) = reason else {
            return Ok(false);
        };
        self.end(ended_early(number, EndState::Pruned, reason))?;
        self.let_go(number)?;
        Ok(true)
    }

    /// Starts trial `number` on worker `id`.
    fn start(&mut self, id: usize, number: u64) -> Result<()> {
        self.store.before_run(number)?;
        let t = &self.state.trials[number as usize];
        let task = TrialTask {
            number,
            seed: t.seed,
            params: t.params.clone(),
            journaled_epochs: t.epochs.last().map_or(0, |e| e.epoch),
            journaled_elapsed_s: t.epochs.last().map_or(0.0, |e| e.elapsed_s),
            owner: crate::objective::owner(&self.fingerprint, t.seed, &t.params),
            dir: self.store.trial_dir(number),
            await_decisions: self.await_decisions,
        };
        let slot = &mut self.slots[id];
        if !slot.started {
            self.pool
                .start(Some(id))
                .context(|| "cannot start a worker".to_string())?;
            slot.started = true;
        }
        slot.trial = Some(number);
        slot.stopped = None;
        slot.reported = None;
        self.pool.send(id, &ToWorker::Run { task });
        self.ran += 1;
        self.progress.update(&self.state, running(&self.slots));
        Ok(())
    }

    /// Records a trial's end (a failure with attempts left runs again), tells the log and the
    /// user, and marks the reports out of date.
    fn end(&mut self, event: Event) -> Result<()> {
        let events = self.with_retry(event);
        self.record_end(events)
    }

    /// Records a trial's end, which no retry undoes: its reports broke the protocol, or it
    /// failed in a way that repeats (diverged), and another attempt would do the same.
    fn end_for_good(&mut self, event: Event) -> Result<()> {
        self.record_end(vec![event])
    }

    fn record_end(&mut self, events: Vec<Event>) -> Result<()> {
        let Some(Event::TrialFinished { trial, .. }) = events.first() else {
            return Ok(());
        };
        let trial = *trial;
        if !self.store.record(&mut self.state, trial, events)? {
            lost(trial);
            return Ok(());
        }
        self.reports.dirty = true;
        // A deterministic sweep may have been waiting for this trial to propose the next.
        self.next_claim = Instant::now();
        let t = &self.state.trials[trial as usize];
        if t.state == TrialState::Running {
            // Reopened: there is a trial to claim again, even if the budget's last trial was
            // handed out already.
            self.done = false;
            let attempt = t.failed_attempts.len() + 1;
            let why = t.failed_attempts.last().map_or("", String::as_str);
            self.progress.println(&format!(
                "trial {trial} failed ({why}); attempt {attempt} of {} starts from its last checkpoint ([budget] retries)",
                self.experiment.budget.retries + 1
            ));
            return Ok(());
        }
        tracing::info!(
            "trial {} {} {}",
            t.number,
            t.state.name(),
            t.note.as_deref().unwrap_or("")
        );
        // The trial's worker may still hold it (its slot is freed after): it runs no more.
        let others = self
            .slots
            .iter()
            .filter(|s| s.trial.is_some_and(|n| n != trial))
            .count();
        self.progress
            .trial_ended(t, &self.state, &self.spec, others);
        self.count_failure(trial);
        self.check_stop_rules();
        Ok(())
    }

    /// Whether a stopping rule holds now (unless this run lifts them): then no new trial
    /// starts, and the ones running finish.
    pub(super) fn check_stop_rules(&mut self) {
        if self.stopped_by.is_some() || self.options.lift_stop_rules {
            return;
        }
        let rules = &self.experiment.budget.stop;
        let Some(stop) = crate::stopping::fired(rules, &self.state, &self.spec) else {
            return;
        };
        let others = running(&self.slots);
        let then = match others {
            0 => String::new(),
            n => format!("; {n} running trials finish"),
        };
        self.progress.println(&format!(
            "Stopping: {}{then}; no new trial starts.",
            stop.describe(self.spec.metric)
        ));
        self.stopped_by = Some(stop);
    }

    /// `event` and, for a failure with attempts left under `[budget] retries`, the reopening
    /// that runs the trial again from its last checkpoint (a stop is no failure, and a stopping
    /// sweep starts nothing).
    fn with_retry(&self, event: Event) -> Vec<Event> {
        let Event::TrialFinished {
            trial,
            state: EndState::Failed,
            note,
            ..
        } = &event
        else {
            return vec![event];
        };
        let attempts = self.state.trials[*trial as usize].failed_attempts.len();
        if self.stopping || attempts >= self.experiment.budget.retries as usize {
            return vec![event];
        }
        let reopen = Event::TrialReopened {
            trial: *trial,
            was: note.clone(),
            time: now(),
        };
        vec![event, reopen]
    }

    /// Counts failures in a row as trials end, and stops the sweep (running trials
    /// checkpointed) once [`crate::budget::Budget::fails_fast`] says so.
    fn count_failure(&mut self, trial: u64) {
        let t = &self.state.trials[trial as usize];
        let failures = &mut self.failures;
        match t.state {
            TrialState::Ended(EndState::Failed) => {
                failures.in_row += 1;
                if failures.first.is_none() {
                    failures.first = Some((trial, t.note.clone().unwrap_or_default()));
                }
            }
            _ => {
                failures.in_row = 0;
                failures.succeeded = true;
            }
        }
        let budget = &self.experiment.budget;
        if self.stopping || !budget.fails_fast(failures.in_row, failures.succeeded) {
            return;
        }
        let (first, note) = failures.first.clone().unwrap_or_default();
        let why = match failures.succeeded {
            true => format!("{} trials failed in a row", failures.in_row),
            false => format!("the first {} trials to end all failed", failures.in_row),
        };
        self.failing = Some(format!(
            "stopped: {why} ([budget] max_failures = {} stops a sweep there; 0 never does). The first error, trial {first}: {note}",
            budget.max_failures
        ));
        self.progress.println(&format!(
            "Stopping: {why}; running trials stop after their current epoch, checkpointed."
        ));
        self.stop_running();
    }

    /// An epoch's report: recorded, then judged by the pruner; the answer goes back.
    pub(super) fn on_report(&mut self, id: usize, trial: u64, report: Epoch) -> Result<()> {
        // A trial asked to stop by Ctrl-C still reports its last epoch, checkpointed.
        let slot = &self.slots[id];
        if slot.trial != Some(trial) || slot.stopped.is_some_and(|s| s != StopReason::Interrupt) {
            return Ok(());
        }
        // Epochs the journal holds come from retraining after an older checkpoint: the same
        // values (training is a pure function of the seed), already recorded and decided.
        let checked = check_report(
            &self.state.trials[trial as usize],
            &report,
            slot.reported,
            self.prepared,
        );
        self.slots[id].reported = Some(report.epoch);
        let report_epoch = report.epoch;
        let fresh = match checked {
            Ok(fresh) => fresh,
            Err(note) => {
                self.end_for_good(ended_early(trial, EndState::Failed, note))?;
                self.slots[id].stopped = Some(StopReason::Rejected);
                self.send_decision(id, Decision::Stop);
                return Ok(());
            }
        };
        if report.checkpointed {
            self.store.after_checkpoint(trial, report.epoch)?;
        }
        let recorded = !fresh || {
            let event = Event::EpochReported {
                trial,
                epoch: report.epoch,
                elapsed_s: report.elapsed_s,
                lr: report.lr,
                metrics: report.metrics,
                checkpointed: report.checkpointed,
                time: now(),
            };
            self.store.record(&mut self.state, trial, vec![event])?
        };
        if recorded {
            let running = self.slots.iter().filter_map(|s| s.trial);
            self.progress.epoch(&self.state, &self.spec, running);
        }
        let decision = if !recorded {
            lost(trial);
            self.slots[id].stopped = Some(StopReason::Lost);
            Decision::Stop
        } else if let Some(reason) = self
            .pruner
            .as_ref()
            .filter(|_| fresh && !self.stopping)
            .and_then(|p| p.decide(&self.state.trials[trial as usize], &self.state))
        {
            tracing::debug!("trial {trial} epoch {}: pruned ({reason})", report_epoch);
            // Recorded now, before the trial hears of it: a resumed sweep keeps it.
            self.end(ended_early(trial, EndState::Pruned, reason))?;
            self.slots[id].stopped = Some(StopReason::Pruned);
            Decision::Stop
        } else if self.stopping || signals::interrupted() {
            self.slots[id].stopped = Some(StopReason::Interrupt);
            Decision::Stop
        } else {
            if self.pruner.is_some() && fresh {
                tracing::debug!("trial {trial} epoch {report_epoch}: the pruner lets it go on");
            }
            Decision::Continue
        };
        self.send_decision(id, decision);
        Ok(())
    }

    fn send_decision(&mut self, id: usize, decision: Decision) {
        self.pool.send(id, &ToWorker::Decision { decision });
    }

    /// A trial's end as its worker reports it.
    pub(super) fn on_finished(
        &mut self,
        id: usize,
        trial: u64,
        result: std::result::Result<TrialSummary, TrialError>,
    ) -> Result<()> {
        if self.slots[id].trial != Some(trial) {
            return Ok(());
        }
        let stopped = self.slots[id].stopped.take();
        if let Err(TrialError::Storage(why)) = &result {
            self.pool.kill_all();
            self.store.close(&mut self.state)?;
            return Err(Error::runtime(format!(
                "trial {trial} could not write its files: {why}. The sweep stopped; nothing was recorded as failed. Make room (or mend the disk), then continue with: {}",
                continue_command(self.options, &self.experiment.name)
            )));
        }
        // A stop is never a trial's failure: when the sweep is stopping (a scheduler signals
        // every process of the job), a trial that ended badly resumes.
        let stopping_now = self.stopping || signals::interrupted();
        let event = match (stopped, result) {
            // Recorded already (pruned, rejected), not this worker's (lost), or to resume
            // (interrupted).
            (Some(_), _) => None,
            (None, Ok(summary)) => Some((ended(trial, EndState::Complete, None, summary), true)),
            (None, Err(_)) if stopping_now => None,
            (None, Err(reason)) => {
                let again = !matches!(reason, TrialError::Repeats(_));
                Some((
                    ended_early(trial, EndState::Failed, reason.to_string()),
                    again,
                ))
            }
        };
        if let Some((event, retryable)) = event {
            self.store.before_end(trial)?;
            match retryable {
                true => self.end(event)?,
                false => self.end_for_good(event)?,
            }
        }
        self.slots[id].trial = None;
        self.let_go(trial)
    }

    /// No worker holds trial `trial` any more: if it ended complete or pruned it runs no more,
    /// and its checkpoints go unless `[budget] keep_checkpoints` (a failed trial keeps them for
    /// a retry).
    fn let_go(&mut self, trial: u64) -> Result<()> {
        let ended = matches!(
            self.state.trials[trial as usize].state,
            TrialState::Ended(EndState::Complete | EndState::Pruned)
        );
        if ended && !self.experiment.budget.keep_checkpoints {
            self.store.drop_checkpoints(trial)?;
        }
        Ok(())
    }

    /// A worker process died: its trial fails, unless it was stopped or the sweep is stopping.
    pub(super) fn on_exited(&mut self, id: usize, why: String) -> Result<()> {
        let status = self.pool.exit_status(id).unwrap_or(why);
        self.slots[id].started = false;
        self.slots[id].retiring = false;
        let stopped = self.slots[id].stopped.take();
        if let Some(trial) = self.slots[id].trial
            && !matches!(
                stopped,
                Some(StopReason::Pruned | StopReason::Lost | StopReason::Rejected)
            )
            && !(self.stopping || signals::interrupted())
        {
            let note = format!("its worker process died ({status})");
            tracing::warn!("trial {trial}: {note}");
            self.end(ended_early(trial, EndState::Failed, note))?;
        }
        self.slots[id].trial = None;
        Ok(())
    }
}
