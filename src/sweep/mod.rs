//! The orchestrator: ask the sampler, record the trial, dispatch it to a worker, record its
//! reports and its end, keep the reports fresh, and stop cleanly.
//!
//! The orchestrator is the journal's only writer. Everything it knows is the fold of the
//! journal ([`SweepState`]); it appends an event before acting on it (a trial is created in the
//! journal before any worker sees it), so a sweep killed at any moment resumes from the journal
//! alone: ended trials stay ended, unfinished ones continue from their last checkpoint, and the
//! sampler continues at the next trial number.

mod trials;

use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::journal::{Event, now};
use crate::layout;
use crate::objective::registry::Prepared;
use crate::objective::{Objective, TrialSummary};
use crate::progress::Progress;
use crate::pruner::Pruner;
use crate::report::ReportSpec;
use crate::rng;
use crate::sampler;
use crate::sampler::Sampler;
use crate::signals;
use crate::space::Params;
use crate::state::{SweepState, TrialRecord};
use crate::store::{FolderStore, Storage, Store};
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
    /// `kiln retry`: failed trials to run again before the sweep goes on (a results folder's).
    pub retry: Retry,
    /// `kiln resume --no-stop-rules`: the stopping rules do not apply in this run.
    pub lift_stop_rules: bool,
}

pub use crate::store::Retry;

/// How a sweep run ended.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The final state.
    pub state: SweepState,
    /// Whether Ctrl-C stopped it (trials are left to resume).
    pub interrupted: bool,
    /// Trials this run started on a worker (none: the sweep was complete already).
    pub ran: u64,
    /// The stopping rule that ended the sweep before its budget, described.
    pub stopped_by: Option<String>,
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
                &options.retry,
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
    )?
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
    /// Ctrl-C (or SIGTERM), or too many failures: running trials stop after their current epoch.
    stopping: bool,
    /// The failures of this run so far.
    failures: Failures,
    /// Trials this run started on a worker.
    ran: u64,
    /// The stopping rule that holds: no new trial starts.
    stopped_by: Option<crate::stopping::Stop>,
    /// Why the sweep stopped itself, when too many trials failed (an error: exit 1).
    failing: Option<String>,
    /// The store has no trial left to claim, now or later.
    done: bool,
    /// When nothing was claimable (trials held by other workers), when to ask again.
    next_claim: Instant,
    /// When to look for configurations `kiln enqueue` left next.
    next_queue_check: Instant,
    reports: ReportTimer,
}

/// Failures as trials end, for fail-fast: how many in a row, whether any trial succeeded, and
/// the first failure's trial and note.
#[derive(Default)]
struct Failures {
    in_row: u64,
    succeeded: bool,
    first: Option<(u64, String)>,
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
    ) -> Result<Orchestrator<'a>> {
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
        let sampler_kind = sampler::kind_in_sweep(experiment, state.default_sampler.as_deref())?;
        Ok(Orchestrator {
            experiment,
            options,
            prepared,
            await_decisions: pruner.is_some() || store.awaits_reports(),
            store,
            progress: Progress::new(&state, &spec, budget, options.quiet),
            state,
            spec,
            fingerprint: crate::experiment::fingerprint(&experiment.source.text),
            sampler: sampler::of_kind(
                experiment,
                sampler_kind,
                &earlier_sweeps(&experiment.sampler.warm_start),
            ),
            pool: Pool::new(launcher),
            pruner,
            slots: (0..workers).map(|_| Slot::default()).collect(),
            started: Instant::now(),
            exhausted: false,
            stopping: false,
            failures: Failures::default(),
            ran: 0,
            stopped_by: None,
            failing: None,
            done: false,
            next_claim: Instant::now(),
            next_queue_check: Instant::now(),
            reports: ReportTimer {
                written: Instant::now(),
                cost: Duration::ZERO,
                dirty: true,
            },
        })
    }

    /// Runs trials until the budget is spent, the store has none left, or Ctrl-C.
    fn run(mut self) -> Result<SweepOutcome> {
        self.check_stop_rules();
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
        self.progress.println("Stopping: running trials stop after their current epoch, checkpointed (Ctrl-C again to quit at once).");
        self.stop_running();
    }

    /// No trial starts any more, and every running one stops after its current epoch.
    fn stop_running(&mut self) {
        self.stopping = true;
        for (id, slot) in self.slots.iter_mut().enumerate() {
            if slot.trial.is_some() && slot.stopped.is_none() {
                slot.stopped = Some(StopReason::Interrupt);
                self.pool.send(id, &ToWorker::Stop);
            }
        }
    }

    /// The workers are gone: closes the store, writes the final reports, and fails a sweep
    /// whose every trial failed.
    fn finish(self) -> Result<SweepOutcome> {
        let Orchestrator {
            experiment,
            options,
            store,
            mut state,
            spec,
            pool,
            progress,
            stopping: interrupted,
            failing,
            ran,
            stopped_by,
            ..
        } = self;
        drop(pool);
        store.close(&mut state)?;
        write_reports(&*store, &state, &spec)?;
        progress.finish();
        if let Some(why) = failing {
            let then = match &options.storage {
                None => format!(
                    "rerun the failed trials and go on with: {} retry {}",
                    crate::output::program(),
                    crate::output::pasteable(&options.results_dir)
                ),
                Some(_) => format!(
                    "go on with: {}",
                    continue_command(options, &experiment.name)
                ),
            };
            return Err(Error::runtime(format!("{why}\nFix the cause, then {then}")));
        }
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
        let stopped_by = stopped_by.map(|s| s.describe(spec.metric));
        Ok(SweepOutcome {
            state,
            interrupted,
            ran,
            stopped_by,
        })
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
            "{} resume {}",
            crate::output::program(),
            crate::output::pasteable(&options.results_dir)
        ),
        Some(storage) => format!(
            "{} worker --storage {} --sweep {}",
            crate::output::program(),
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
mod tests;
