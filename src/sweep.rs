//! The orchestrator: ask the sampler, record the trial, dispatch it to a worker, record its
//! reports and its end, keep the reports fresh, and stop cleanly.
//!
//! The orchestrator is the journal's only writer. Everything it knows is the fold of the
//! journal ([`SweepState`]); it appends an event before acting on it (a trial is created in the
//! journal before any worker sees it), so a sweep killed at any moment resumes from the journal
//! alone: ended trials stay ended, unfinished ones continue from their last checkpoint, and the
//! sampler continues at the next trial number.

use crate::error::{Context, Error, Result};
use crate::experiment::Experiment;
use crate::journal::{Event, now};
use crate::layout;
use crate::objective::registry::Prepared;
use crate::objective::{Decision, Objective, TrialError, TrialSummary, TrialTask};
use crate::progress::Progress;
use crate::pruner::Pruner;
use crate::report::ReportSpec;
use crate::rng;
use crate::sampler;
use crate::sampler::Sampler;
use crate::signals;
use crate::space::Params;
use crate::state::{SweepState, TrialRecord};
use crate::store::{Claim, FolderStore, NoTrial, Storage, Store};
use crate::trial::{EndState, Epoch};
use crate::worker::{FromWorker, Launcher, Pool, PoolEvent, ToWorker};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How trials are run.
#[derive(Clone)]
pub enum Execution {
    /// In worker processes of `exe` (`EXE __worker`: kiln, or a program built on
    /// [`crate::cli::main`]), which build the objective from the frozen experiment themselves.
    Processes {
        /// The executable.
        exe: PathBuf,
        /// This process's copy of the objective, built and checked for the experiment
        /// ([`crate::Objectives::build`]): what it reports, its data's fingerprint.
        prepared: Prepared,
    },
    /// On threads of this process (library use, for objectives that take microseconds; no
    /// crash isolation, and burn's backend RNG is shared by the threads).
    Threads(Arc<dyn Objective>),
}

/// Options of one `run` or `resume`.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// The results folder.
    pub results_dir: PathBuf,
    /// Trials at once (default: the experiment's `[budget] workers`).
    pub workers: Option<usize>,
    /// Total trials (default: the experiment's, or the journal's when resuming).
    pub trials: Option<u64>,
    /// Continue an existing sweep only (`kiln resume`): the experiment's budget does not apply.
    pub resume: bool,
    /// No progress output.
    pub quiet: bool,
    /// Keep the sweep in this database instead of `results_dir` (shared with other workers).
    pub storage: Option<Storage>,
}

/// How a sweep run ended.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The final state.
    pub state: SweepState,
    /// Whether Ctrl-C stopped it (trials are left to resume).
    pub interrupted: bool,
}

/// Why the orchestrator told a trial to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    /// Ctrl-C: the trial stays unfinished, to resume.
    Interrupt,
    /// The pruner stopped it (already recorded as pruned).
    Pruned,
    /// Another worker took it over (a shared sweep): this one's reports are not recorded.
    Lost,
    /// Its report could not be recorded, and its failure is (the note says why).
    Rejected,
}

#[derive(Default)]
struct Slot {
    started: bool,
    /// The worker said it ends (its trial panicked) and has not exited yet.
    retiring: bool,
    trial: Option<u64>,
    stopped: Option<StopReason>,
    /// The last epoch this run of the trial reported.
    reported: Option<u32>,
}

/// Whether a report is new (to record) or repeats an epoch the journal holds (to skip), or
/// why it can be neither: a metric the objective does not declare, an epoch past the
/// objective's last, an epoch out of sequence, or a repeated epoch whose metrics differ from the
/// journal's (a splice of two different runs, which must never reach the leaderboard). Within
/// one run an epoch follows the one before or repeats it; a run's first report continues the
/// journal or repeats one of its epochs (retraining after an older checkpoint).
fn check_report(
    trial: &TrialRecord,
    report: &Epoch,
    previous: Option<u32>,
    prepared: &Prepared,
) -> std::result::Result<bool, String> {
    let metrics = &prepared.metrics;
    if let Some(name) = report.metrics.keys().find(|m| !metrics.contains(m)) {
        return Err(format!(
            "reported the metric `{name}`, which the objective does not declare (it reports {})",
            metrics.join(", ")
        ));
    }
    if let Some(last) = prepared.max_epochs.filter(|&m| report.epoch > m) {
        return Err(format!(
            "reported epoch {}, past the last epoch of the objective ({last}: `epochs` in [objective])",
            report.epoch
        ));
    }
    let journaled = trial.epochs.last().map_or(0, |e| e.epoch);
    let in_order = match previous {
        Some(p) => report.epoch == p || report.epoch == p + 1,
        None => report.epoch <= journaled + 1,
    };
    if !in_order {
        let after = previous.unwrap_or(journaled);
        return Err(format!(
            "reported epoch {} after epoch {after}: epochs must follow one another (resume from a checkpoint no newer than the last epoch the journal holds, KILN_RESUME_EPOCH)",
            report.epoch
        ));
    }
    let Some(recorded) = trial.epochs.iter().find(|e| e.epoch == report.epoch) else {
        return Ok(true);
    };
    let tolerance = prepared.repeat_tolerance;
    let same = |a: f64, b: f64| (a - b).abs() <= tolerance * a.abs().max(b.abs());
    let differs = recorded
        .metrics
        .keys()
        .chain(report.metrics.keys())
        .find(
            |m| match (recorded.metrics.get(*m), report.metrics.get(*m)) {
                (Some(&a), Some(&b)) => !same(a, b),
                _ => true,
            },
        );
    match differs {
        None => Ok(false),
        Some(metric) => {
            let show = |v: Option<&f64>| v.map_or("nothing".to_string(), |v| v.to_string());
            Err(format!(
                "reported epoch {} again with {metric} {} where the journal holds {}: an epoch reported again must repeat its values exactly (seed the script's randomness from the trial's seed, and resume from its own checkpoint)",
                report.epoch,
                show(report.metrics.get(metric)),
                show(recorded.metrics.get(metric))
            ))
        }
    }
}

/// Runs (or continues) the sweep of `experiment`: in `options.results_dir`, or in the
/// database of `options.storage`.
pub fn run(
    experiment: &Experiment,
    options: &SweepOptions,
    execution: Execution,
) -> Result<SweepOutcome> {
    let prepared = match &execution {
        // Built and checked by the caller for this experiment: not again.
        Execution::Processes { prepared, .. } => prepared.clone(),
        Execution::Threads(objective) => {
            crate::objective::registry::prepare(experiment, Arc::clone(objective))?
        }
    };
    let capacity = experiment.budget.devices.len();
    if let Some(workers) = options.workers.filter(|&w| capacity > 0 && w > capacity) {
        return Err(Error::input(format!(
            "--workers {workers} is more than the experiment's devices take at once ({capacity}: devices x trials_per_device)"
        )));
    }
    let data = prepared.data.as_deref();
    let trials = options
        .trials
        .or((!options.resume).then_some(experiment.budget.trials));
    let (mut store, state): (Box<dyn Store>, SweepState) = match &options.storage {
        None => {
            let (store, state) = FolderStore::open(
                &options.results_dir,
                experiment,
                data,
                trials,
                options.resume,
            )?;
            (Box::new(store), state)
        }
        Some(storage) => crate::store::open_shared(storage, experiment, data, trials)?,
    };
    Orchestrator::new(
        experiment,
        options,
        execution,
        &prepared,
        store.as_mut(),
        state,
    )
    .run()
}

/// One run of a sweep: its state, its workers, and what the loop remembers between events.
/// [`Orchestrator::run`] is the loop; each kind of event has a method of its own.
struct Orchestrator<'a> {
    experiment: &'a Experiment,
    options: &'a SweepOptions,
    prepared: &'a Prepared,
    store: &'a mut dyn Store,
    state: SweepState,
    spec: ReportSpec<'a>,
    fingerprint: String,
    sampler: Box<dyn Sampler>,
    pool: Pool,
    pruner: Option<Box<dyn Pruner>>,
    /// Whether a trial must wait for the answer to each report before its next epoch: only
    /// a pruner's (or a shared store's) answers must arrive in time.
    await_decisions: bool,
    slots: Vec<Slot>,
    progress: Progress,
    started: Instant,
    /// The sampler has nothing left to propose (an exhausted grid).
    exhausted: bool,
    /// Ctrl-C (or SIGTERM): running trials stop after their current epoch.
    stopping: bool,
    /// The store has no trial left to claim, now or later.
    done: bool,
    /// When nothing was claimable (trials held by other workers), when to ask again.
    next_claim: Instant,
    /// When to look for configurations `kiln enqueue` left next.
    next_queue_check: Instant,
    reports: ReportTimer,
}

/// When the reports are rewritten during a sweep. Writing them costs time in proportion to
/// the trials: waiting ten times as long as the last write took (and at least a second) keeps
/// them under a tenth of the sweep's time, however large it grows.
struct ReportTimer {
    written: Instant,
    cost: Duration,
    dirty: bool,
}

impl ReportTimer {
    fn due(&self) -> bool {
        self.dirty && self.written.elapsed() >= (10 * self.cost).max(Duration::from_secs(1))
    }
}

impl<'a> Orchestrator<'a> {
    fn new(
        experiment: &'a Experiment,
        options: &'a SweepOptions,
        execution: Execution,
        prepared: &'a Prepared,
        store: &'a mut dyn Store,
        state: SweepState,
    ) -> Orchestrator<'a> {
        let spec = ReportSpec::of(experiment);
        let launcher = match &execution {
            Execution::Processes { exe, .. } => Launcher::Processes {
                exe: exe.clone(),
                experiment: crate::layout::experiment(store.folder()),
                base_dir: experiment.source.base_dir.clone(),
                devices: experiment.budget.devices.clone(),
            },
            Execution::Threads(objective) => Launcher::Threads {
                objective: Arc::clone(objective),
                experiment: Box::new(experiment.clone()),
            },
        };
        let pruner = crate::pruner::build(experiment, prepared.max_epochs);
        let workers = options.workers.unwrap_or(experiment.budget.workers).max(1);
        let resumable: Vec<u64> = state.unfinished().map(|t| t.number).collect();
        if !resumable.is_empty() {
            tracing::info!("unfinished trials {:?}", resumable);
        }
        let budget = state.budget.unwrap_or(experiment.budget.trials);
        Orchestrator {
            experiment,
            options,
            prepared,
            await_decisions: pruner.is_some() || store.awaits_reports(),
            store,
            progress: Progress::new(&state, &spec, budget, options.quiet),
            state,
            spec,
            fingerprint: crate::experiment::fingerprint(&experiment.source.text),
            sampler: sampler::build(experiment, &earlier_sweeps(&experiment.sampler.warm_start)),
            pool: Pool::new(launcher),
            pruner,
            slots: (0..workers).map(|_| Slot::default()).collect(),
            started: Instant::now(),
            exhausted: false,
            stopping: false,
            done: false,
            next_claim: Instant::now(),
            next_queue_check: Instant::now(),
            reports: ReportTimer {
                written: Instant::now(),
                cost: Duration::ZERO,
                dirty: true,
            },
        }
    }

    /// Runs trials until the budget is spent, the store has none left, or Ctrl-C.
    fn run(mut self) -> Result<SweepOutcome> {
        loop {
            if signals::interrupted() && !self.stopping {
                self.stop_all();
            }
            self.dispatch()?;
            if running(&self.slots) == 0 && (self.done || self.stopping) {
                break;
            }
            match self.pool.events().recv_timeout(Duration::from_millis(100)) {
                Ok(PoolEvent::Message(id, FromWorker::Report { trial, report })) => {
                    self.on_report(id, trial, report)?
                }
                Ok(PoolEvent::Message(
                    id,
                    FromWorker::Finished {
                        trial,
                        result,
                        retiring,
                    },
                )) => {
                    self.on_finished(id, trial, result)?;
                    // No trial goes to a worker that is ending; its exit frees the slot.
                    self.slots[id].retiring = retiring;
                }
                Ok(PoolEvent::Exited(id, why)) => self.on_exited(id, why)?,
                Err(_) => {}
            }
            self.store.tick(&mut self.state)?;
            if self.reports.due() {
                let started = Instant::now();
                write_reports(&*self.store, &self.state, &self.spec)?;
                self.reports = ReportTimer {
                    written: Instant::now(),
                    cost: started.elapsed(),
                    dirty: false,
                };
            }
        }
        self.finish()
    }

    /// Ctrl-C: every running trial stops after its current epoch, checkpointed.
    fn stop_all(&mut self) {
        self.stopping = true;
        self.progress.println("Stopping: running trials stop after their current epoch, checkpointed (Ctrl-C again to quit at once).");
        for (id, slot) in self.slots.iter_mut().enumerate() {
            if slot.trial.is_some() && slot.stopped.is_none() {
                slot.stopped = Some(StopReason::Interrupt);
                self.pool.send(id, &ToWorker::Stop);
            }
        }
    }

    /// Hands trials to free workers: unfinished trials first, then new ones.
    fn dispatch(&mut self) -> Result<()> {
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
            let mut create = |state: &SweepState| {
                let budget = state.budget.unwrap_or(experiment.budget.trials);
                if *exhausted || !time_left || state.trials.len() as u64 >= budget {
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
        self.progress.update(&self.state, running(&self.slots));
        Ok(())
    }

    /// Records a trial's end, tells the log and the user, and marks the reports out of date.
    fn end(&mut self, event: Event) -> Result<()> {
        let Event::TrialFinished { trial, .. } = event else {
            return Ok(());
        };
        if !self.store.record(&mut self.state, trial, vec![event])? {
            lost(trial);
            return Ok(());
        }
        self.reports.dirty = true;
        // A deterministic sweep may have been waiting for this trial to propose the next.
        self.next_claim = Instant::now();
        let t = &self.state.trials[trial as usize];
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
        Ok(())
    }

    /// An epoch's report: recorded, then judged by the pruner; the answer goes back.
    fn on_report(&mut self, id: usize, trial: u64, report: Epoch) -> Result<()> {
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
                self.end(ended_early(trial, EndState::Failed, note))?;
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
    fn on_finished(
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
            (None, Ok(summary)) => Some(ended(trial, EndState::Complete, None, summary)),
            (None, Err(_)) if stopping_now => None,
            (None, Err(reason)) => Some(ended_early(trial, EndState::Failed, reason.to_string())),
        };
        if let Some(event) = event {
            self.store.before_end(trial)?;
            self.end(event)?;
        }
        self.slots[id].trial = None;
        Ok(())
    }

    /// A worker process died: its trial fails, unless it was stopped or the sweep is stopping.
    fn on_exited(&mut self, id: usize, why: String) -> Result<()> {
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

    /// The workers are gone: closes the store, writes the final reports, and fails a sweep
    /// whose every trial failed.
    fn finish(self) -> Result<SweepOutcome> {
        let Orchestrator {
            experiment: _,
            options,
            store,
            mut state,
            spec,
            pool,
            progress,
            stopping: interrupted,
            ..
        } = self;
        drop(pool);
        store.close(&mut state)?;
        write_reports(&*store, &state, &spec)?;
        progress.finish();
        if !interrupted {
            let failed = state.count(crate::state::TrialState::Ended(EndState::Failed));
            if failed > 0 && failed == state.trials.len() {
                let first = state.trials[0].note.clone().unwrap_or_default();
                let see = match &options.storage {
                    None => format!(". See {}/leaderboard.csv", options.results_dir.display()),
                    Some(_) => String::new(),
                };
                return Err(Error::runtime(format!(
                    "all {failed} trials failed; the first: {first}{see}"
                )));
            }
        }
        Ok(SweepOutcome { state, interrupted })
    }
}

/// The sweeps of `folders`, for a warm start; one that cannot be read is left out, with a
/// warning (the experiment checked that each holds a journal).
fn earlier_sweeps(folders: &[PathBuf]) -> Vec<SweepState> {
    folders
        .iter()
        .filter_map(
            |dir| match crate::journal::FileJournal::fold(&crate::layout::journal(dir)) {
                Ok(state) => Some(state),
                Err(e) => {
                    tracing::warn!("warm start: {e}; its trials are left out");
                    None
                }
            },
        )
        .collect()
}

/// Rewrites the report files of a store that keeps them, unless they are newer than the
/// journal already (nothing happened since they were written).
fn write_reports(store: &dyn Store, state: &SweepState, spec: &ReportSpec<'_>) -> Result<()> {
    let dir = store.folder();
    if !store.keeps_reports() {
        return Ok(());
    }
    let files = [layout::LEADERBOARD, layout::CURVES, layout::IMPORTANCE].map(|f| dir.join(f));
    if layout::newer_than_journal(dir, &files) {
        return Ok(());
    }
    crate::report::write(dir, state, spec)
}

/// The command that continues sweep `name` run with `options`.
pub fn continue_command(options: &SweepOptions, name: &str) -> String {
    match &options.storage {
        None => format!(
            "kiln resume {}",
            crate::output::pasteable(&options.results_dir)
        ),
        Some(storage) => format!(
            "kiln worker --storage {} --sweep {}",
            crate::redact::redact(&storage.url),
            storage.sweep.as_deref().unwrap_or(name)
        ),
    }
}

fn lost(trial: u64) {
    tracing::warn!(
        "trial {trial} was taken over by another worker (this one was silent longer than its lease); stopping it here"
    );
}

fn running_trials(slots: &[Slot]) -> Vec<u64> {
    slots.iter().filter_map(|s| s.trial).collect()
}

fn running(slots: &[Slot]) -> usize {
    slots.iter().filter(|s| s.trial.is_some()).count()
}

/// A trial's end, as an event.
/// The trials the sampler proposes the next trial from: all of them, or with `[sampler]
/// deterministic`, the first N - lag for trial N, once every one of them has ended (`None`
/// until then), so that the proposal does not depend on which trials finished first.
fn history<'s>(experiment: &Experiment, state: &'s SweepState) -> Option<&'s [TrialRecord]> {
    let Some(lag) = experiment.sampler.lag else {
        return Some(&state.trials);
    };
    let seen = state.trials.len().saturating_sub(lag as usize);
    // The unfinished trials come in number order: the first decides.
    let ended = state
        .unfinished()
        .next()
        .is_none_or(|t| t.number as usize >= seen);
    ended.then_some(&state.trials[..seen])
}

/// The end of a trial that stopped without a result (failed, or pruned), and why.
fn ended_early(trial: u64, end: EndState, note: String) -> Event {
    ended(trial, end, Some(note), TrialSummary::default())
}

fn ended(trial: u64, end: EndState, note: Option<String>, summary: TrialSummary) -> Event {
    Event::TrialFinished {
        trial,
        state: end,
        note: note.map(|n| crate::trial::shorten(&n, crate::trial::NOTE_LIMIT).into_owned()),
        n_params: summary.n_params,
        metrics: summary.metrics,
        time: now(),
    }
}

/// How often a running sweep looks for configurations `kiln enqueue` left.
const QUEUE_EVERY: Duration = Duration::from_millis(250);

/// Trial `number`'s parameters from a queued configuration: the given values, the others
/// drawn from the trial's own stream (never the sampler's, whose draws stay those of the
/// trials it proposes), the inactive ones left out.
fn queued_params(experiment: &Experiment, number: u64, given: &Params) -> Params {
    use rand::Rng as _;
    let mut draws = rng::stream(experiment.seed, rng::Stream::Fill, &[number]);
    let point: Vec<f64> = (experiment.space.dimensions.iter())
        .map(|_| draws.random())
        .collect();
    experiment.space.fill(given, &point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Create, begin, choose};

    /// A store that keeps the journal in memory: the orchestrator's logic without files.
    struct MemoryStore {
        events: Vec<Event>,
        dir: tempfile::TempDir,
    }

    impl MemoryStore {
        fn append(&mut self, state: &mut SweepState, events: &[Event]) {
            for event in events {
                state.apply(event);
                self.events.push(event.clone());
            }
        }
    }

    impl Store for MemoryStore {
        fn claim(
            &mut self,
            state: &mut SweepState,
            slot: usize,
            running: &[u64],
            create: &mut Create<'_>,
        ) -> Result<Claim> {
            let (events, claim) = choose(state, running, |_| true, create, slot.to_string());
            self.append(state, &events);
            Ok(claim)
        }

        fn record(&mut self, state: &mut SweepState, _: u64, events: Vec<Event>) -> Result<bool> {
            self.append(state, &events);
            Ok(true)
        }

        fn tick(&mut self, _: &mut SweepState) -> Result<()> {
            Ok(())
        }

        fn folder(&self) -> &std::path::Path {
            self.dir.path()
        }

        fn close(&mut self, _: &mut SweepState) -> Result<()> {
            Ok(())
        }
    }

    const EXPERIMENT: &str = "name = \"m\"\nseed = 3\n[objective]\nkind = \"function\"\nfunction = \"branin\"\nmetric = \"value\"\nepochs = 4\n[budget]\ntrials = 12\nworkers = 1\n[sampler]\nkind = \"tpe\"\nstartup_trials = 4\n[pruner]\nkind = \"median\"\nwarmup_epochs = 1\nmin_trials = 2\n[space]\nx1 = { uniform = [-5.0, 10.0] }\nx2 = { uniform = [0.0, 15.0] }\n";

    /// Runs the sweep on a journal holding `events` already; the journal it ends with.
    fn sweep_from(experiment: &Experiment, events: &[Event]) -> Vec<Event> {
        let prepared = crate::objective::registry::Objectives::builtin()
            .build(experiment)
            .unwrap();
        let execution = Execution::Threads(Arc::clone(&prepared.objective));
        let mut store = MemoryStore {
            events: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        let mut state = SweepState::default();
        store.append(&mut state, events);
        let trials = Some(experiment.budget.trials);
        begin(
            experiment,
            None,
            None,
            trials,
            &mut state,
            |state, events| {
                let events = events(state);
                store.append(state, &events);
                Ok(())
            },
        )
        .unwrap();
        let options = SweepOptions {
            quiet: true,
            resume: !events.is_empty(),
            ..SweepOptions::default()
        };
        Orchestrator::new(
            experiment, &options, execution, &prepared, &mut store, state,
        )
        .run()
        .unwrap();
        store.events
    }

    /// What a sweep's result is, without its times and worker names.
    fn result(events: &[Event]) -> Vec<String> {
        SweepState::replay(events)
            .trials
            .iter()
            .map(|t| {
                let epochs: Vec<_> = t.epochs.iter().map(|e| (e.epoch, &e.metrics)).collect();
                format!(
                    "{} {:?} {:?} {epochs:?} {:?}",
                    t.number, t.params, t.state, t.note
                )
            })
            .collect()
    }

    #[test]
    fn a_sweep_cut_after_any_event_resumes_to_the_uninterrupted_result() {
        let experiment = Experiment::parse(
            EXPERIMENT,
            std::path::Path::new("m.toml"),
            std::path::Path::new("."),
        )
        .unwrap();
        let whole = sweep_from(&experiment, &[]);
        let expected = result(&whole);
        assert!(
            expected.iter().any(|t| t.contains("Pruned")),
            "{expected:#?}"
        );
        for cut in 2..whole.len() {
            let resumed = sweep_from(&experiment, &whole[..cut]);
            assert_eq!(result(&resumed), expected, "cut after event {cut}");
        }
    }
}
