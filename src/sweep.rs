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
use crate::objective::registry::Prepared;
use crate::objective::{Decision, Objective, TrialError, TrialTask};
use crate::progress::Progress;
use crate::report::ReportSpec;
use crate::rng;
use crate::sampler;
use crate::signals;
use crate::state::{SweepState, TrialRecord};
use crate::store::{Claim, DbStore, FolderStore, Storage, Store};
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
        /// This process's copy of the objective, for what it reports.
        objective: Arc<dyn Objective>,
    },
    /// On threads of this process (library use, for objectives that take microseconds; no
    /// crash isolation, and burn's backend RNG is shared by the threads).
    Threads(Arc<dyn Objective>),
}

impl Execution {
    fn objective(&self) -> &Arc<dyn Objective> {
        match self {
            Execution::Processes { objective, .. } | Execution::Threads(objective) => objective,
        }
    }
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
    trial: Option<u64>,
    stopped: Option<StopReason>,
    /// The last epoch this run of the trial reported.
    reported: Option<u32>,
}

/// Whether a report is new (to record) or repeats an epoch the journal holds (to skip), or
/// why it can be neither: a metric the objective does not declare, an epoch out of sequence,
/// or a repeated epoch whose metrics differ from the journal's (a splice of two different
/// runs, which must never reach the leaderboard).
fn check_report(
    trial: &TrialRecord,
    report: &Epoch,
    previous: Option<u32>,
    metrics: &[String],
) -> std::result::Result<bool, String> {
    if let Some(name) = report.metrics.keys().find(|m| !metrics.contains(m)) {
        return Err(format!(
            "reported the metric `{name}`, which the objective does not declare (it reports {})",
            metrics.join(", ")
        ));
    }
    let journaled = trial.epochs.last().map_or(0, |e| e.epoch);
    let expected = previous.map(|p| p + 1);
    if expected.is_some_and(|e| report.epoch != e)
        || (expected.is_none() && report.epoch > journaled + 1)
    {
        let after = previous.unwrap_or(journaled);
        return Err(format!(
            "reported epoch {} after epoch {after}: epochs must follow one another (resume from a checkpoint no newer than the last epoch the journal holds, KILN_RESUME_EPOCH)",
            report.epoch
        ));
    }
    let Some(recorded) = trial.epochs.iter().find(|e| e.epoch == report.epoch) else {
        return Ok(true);
    };
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
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
                "reported epoch {} again with {metric} {} where the journal holds {}: a resumed run must repeat the recorded epochs exactly (seed its randomness from the trial's seed, and resume from its own checkpoint)",
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
    let prepared =
        crate::objective::registry::prepare(experiment, Arc::clone(execution.objective()))?;
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
        Some(storage) => {
            let (store, state) = DbStore::open(storage, experiment, data, trials)?;
            (Box::new(store), state)
        }
    };
    orchestrate(
        experiment,
        options,
        execution,
        &prepared,
        store.as_mut(),
        state,
    )
}

fn orchestrate(
    experiment: &Experiment,
    options: &SweepOptions,
    execution: Execution,
    prepared: &Prepared,
    store: &mut dyn Store,
    mut state: SweepState,
) -> Result<SweepOutcome> {
    let spec = ReportSpec::of(experiment);
    let fingerprint = crate::experiment::fingerprint(&experiment.source.text);
    let mut sampler = sampler::build(
        &experiment.sampler,
        &experiment.space,
        experiment.seed,
        &experiment.objective,
    );
    let launcher = match &execution {
        Execution::Processes { exe, .. } => Launcher::Processes {
            exe: exe.clone(),
            experiment: store.folder().join("experiment.toml"),
            base_dir: experiment.source.base_dir.clone(),
        },
        Execution::Threads(objective) => Launcher::Threads {
            objective: Arc::clone(objective),
            experiment: Box::new(experiment.clone()),
        },
    };
    let mut pool = Pool::new(launcher);
    let pruner = crate::pruner::build(experiment, prepared.max_epochs);
    let await_decisions = pruner.is_some() || store.awaits_reports();
    let workers = options.workers.unwrap_or(experiment.budget.workers).max(1);
    let mut slots: Vec<Slot> = (0..workers).map(|_| Slot::default()).collect();
    let resumable: Vec<u64> = state.unfinished().map(|t| t.number).collect();
    if !resumable.is_empty() {
        tracing::info!("unfinished trials {:?}", resumable);
    }
    let budget_of = |state: &SweepState| state.budget.unwrap_or(experiment.budget.trials);
    let progress = Progress::new(&state, &spec, budget_of(&state), options.quiet);
    let started = Instant::now();
    let mut exhausted = false;
    let mut stopping = false;
    let mut reports_written = Instant::now();
    let mut reports_dirty = true;
    // Writing the reports costs time in proportion to the trials: waiting ten times as long as
    // the last write took keeps them under a tenth of the sweep's time, however large it grows.
    let mut reports_cost = Duration::ZERO;
    // When nothing was claimable (trials held by other workers), when to ask again.
    let mut next_claim = Instant::now();
    let mut done = false;

    loop {
        if signals::interrupted() && !stopping {
            stopping = true;
            progress.println("Stopping: running trials stop after their current epoch, checkpointed (Ctrl-C again to quit at once).");
            for (id, slot) in slots.iter_mut().enumerate() {
                if slot.trial.is_some() && slot.stopped.is_none() {
                    slot.stopped = Some(StopReason::Interrupt);
                    pool.send(id, &ToWorker::Stop);
                }
            }
        }
        let time_left = experiment
            .budget
            .max_time
            .is_none_or(|limit| started.elapsed() < limit);
        // Dispatch: unfinished trials first, then new ones, while workers are free.
        while !stopping && !done && Instant::now() >= next_claim {
            let Some(id) = slots.iter().position(|s| s.trial.is_none()) else {
                break;
            };
            let mut create = |state: &SweepState| {
                if exhausted || !time_left || state.trials.len() as u64 >= budget_of(state) {
                    return None;
                }
                let number = state.trials.len() as u64;
                let Some(params) = sampler.sample(&experiment.space, number, &state.trials) else {
                    exhausted = true;
                    return None;
                };
                Some(Event::TrialCreated {
                    trial: number,
                    seed: rng::trial_seed(experiment.seed, number),
                    params,
                    time: now(),
                })
            };
            let number = match store.claim(&mut state, id, &running_trials(&slots), &mut create)? {
                Claim::Run(number) => number,
                Claim::Wait => {
                    next_claim = Instant::now() + Duration::from_secs(1);
                    break;
                }
                Claim::Done => {
                    done = true;
                    break;
                }
            };
            store.before_run(number)?;
            let t = &state.trials[number as usize];
            let task = TrialTask {
                number,
                seed: t.seed,
                params: t.params.clone(),
                journaled_epochs: t.epochs.last().map_or(0, |e| e.epoch),
                journaled_elapsed_s: t.epochs.last().map_or(0.0, |e| e.elapsed_s),
                owner: crate::objective::owner(&fingerprint, t.seed, &t.params),
                dir: store.trial_dir(number),
                // Only a pruner's (or a shared store's) answers must arrive before the next epoch.
                await_decisions,
            };
            if !slots[id].started {
                pool.start(Some(id))
                    .context(|| "cannot start a worker".to_string())?;
                slots[id].started = true;
            }
            slots[id].trial = Some(number);
            slots[id].stopped = None;
            slots[id].reported = None;
            pool.send(id, &ToWorker::Run { task });
            progress.update(&state, running(&slots));
        }
        if running(&slots) == 0 && (done || stopping) {
            break;
        }

        match pool.events().recv_timeout(Duration::from_millis(100)) {
            Ok(PoolEvent::Message(id, FromWorker::Report { trial, report })) => {
                // A trial asked to stop by Ctrl-C still reports its last epoch, checkpointed.
                if slots[id].trial != Some(trial)
                    || slots[id]
                        .stopped
                        .is_some_and(|s| s != StopReason::Interrupt)
                {
                    continue;
                }
                // Epochs the journal holds come from retraining after an older checkpoint:
                // the same values (training is a pure function of the seed), already recorded
                // and decided.
                let checked = check_report(
                    &state.trials[trial as usize],
                    &report,
                    slots[id].reported,
                    &prepared.metrics,
                );
                slots[id].reported = Some(report.epoch);
                let fresh = match checked {
                    Ok(fresh) => fresh,
                    Err(note) => {
                        let event = ended(trial, EndState::Failed, Some(note), None);
                        end_trial(store, &mut state, &progress, &spec, &slots, event)?;
                        slots[id].stopped = Some(StopReason::Rejected);
                        reports_dirty = true;
                        pool.send(
                            id,
                            &ToWorker::Decision {
                                decision: Decision::Stop,
                            },
                        );
                        continue;
                    }
                };
                if report.checkpointed {
                    store.after_checkpoint(trial, report.epoch)?;
                }
                let recorded = if fresh {
                    let event = Event::EpochReported {
                        trial,
                        epoch: report.epoch,
                        elapsed_s: report.elapsed_s,
                        lr: report.lr,
                        metrics: report.metrics,
                        checkpointed: report.checkpointed,
                        time: now(),
                    };
                    store.record(&mut state, trial, vec![event])?
                } else {
                    true
                };
                let decision = if !recorded {
                    lost(trial);
                    slots[id].stopped = Some(StopReason::Lost);
                    Decision::Stop
                } else if let Some(reason) = pruner
                    .as_ref()
                    .filter(|_| fresh && !stopping)
                    .and_then(|p| p.decide(&state.trials[trial as usize], &state))
                {
                    // Recorded now, before the trial hears of it: a resumed sweep keeps it.
                    let event = ended(trial, EndState::Pruned, Some(reason), None);
                    end_trial(store, &mut state, &progress, &spec, &slots, event)?;
                    slots[id].stopped = Some(StopReason::Pruned);
                    reports_dirty = true;
                    Decision::Stop
                } else if stopping || signals::interrupted() {
                    slots[id].stopped = Some(StopReason::Interrupt);
                    Decision::Stop
                } else {
                    Decision::Continue
                };
                pool.send(id, &ToWorker::Decision { decision });
            }
            Ok(PoolEvent::Message(id, FromWorker::Finished { trial, result })) => {
                if slots[id].trial != Some(trial) {
                    continue;
                }
                let stopped = slots[id].stopped.take();
                if let Err(TrialError::Storage(why)) = &result {
                    pool.kill_all();
                    store.close(&mut state)?;
                    return Err(Error::runtime(format!(
                        "trial {trial} could not write its files: {why}. The sweep stopped; nothing was recorded as failed. Make room (or mend the disk), then continue with: {}",
                        continue_command(options, &experiment.name)
                    )));
                }
                // A stop is never a trial's failure: when the sweep is stopping (a scheduler
                // signals every process of the job), a trial that ended badly resumes.
                let stopping_now = stopping || signals::interrupted();
                let event = match (stopped, result) {
                    // Recorded already (pruned, rejected), not this worker's (lost), or to
                    // resume (interrupted).
                    (Some(_), _) => None,
                    (None, Ok(summary)) => {
                        Some(ended(trial, EndState::Complete, None, summary.n_params))
                    }
                    (None, Err(_)) if stopping_now => None,
                    (None, Err(reason)) => Some(ended(
                        trial,
                        EndState::Failed,
                        Some(reason.to_string()),
                        None,
                    )),
                };
                if let Some(event) = event {
                    store.before_end(trial)?;
                    end_trial(store, &mut state, &progress, &spec, &slots, event)?;
                    reports_dirty = true;
                }
                slots[id].trial = None;
            }
            Ok(PoolEvent::Exited(id, why)) => {
                let status = pool.exit_status(id).unwrap_or(why);
                slots[id].started = false;
                let stopped = slots[id].stopped.take();
                if let Some(trial) = slots[id].trial
                    && !matches!(
                        stopped,
                        Some(StopReason::Pruned | StopReason::Lost | StopReason::Rejected)
                    )
                    && !(stopping || signals::interrupted())
                {
                    let note = format!("its worker process died ({status})");
                    tracing::warn!("trial {trial}: {note}");
                    let event = ended(trial, EndState::Failed, Some(note), None);
                    end_trial(store, &mut state, &progress, &spec, &slots, event)?;
                    reports_dirty = true;
                }
                slots[id].trial = None;
            }
            Err(_) => {}
        }
        store.tick(&mut state)?;
        if reports_dirty
            && reports_written.elapsed() >= (10 * reports_cost).max(Duration::from_secs(1))
        {
            let started = Instant::now();
            store.write_reports(&state, &spec)?;
            reports_cost = started.elapsed();
            reports_written = Instant::now();
            reports_dirty = false;
        }
    }
    drop(pool);
    store.close(&mut state)?;
    store.write_reports(&state, &spec)?;
    progress.finish();
    let interrupted = stopping;
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

/// The command that continues sweep `name` run with `options`.
pub fn continue_command(options: &SweepOptions, name: &str) -> String {
    match &options.storage {
        None => format!("kiln resume {}", options.results_dir.display()),
        Some(storage) => format!(
            "kiln worker --storage {} --sweep {}",
            crate::db::redact(&storage.url),
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
fn ended(trial: u64, end: EndState, note: Option<String>, n_params: Option<u64>) -> Event {
    Event::TrialFinished {
        trial,
        state: end,
        note,
        n_params,
        time: now(),
    }
}

/// Records a trial's end and tells the log and the user.
fn end_trial(
    store: &mut dyn Store,
    state: &mut SweepState,
    progress: &Progress,
    spec: &ReportSpec<'_>,
    slots: &[Slot],
    event: Event,
) -> Result<()> {
    let Event::TrialFinished { trial, .. } = event else {
        return Ok(());
    };
    if !store.record(state, trial, vec![event])? {
        lost(trial);
        return Ok(());
    }
    let t = &state.trials[trial as usize];
    tracing::info!(
        "trial {} {} {}",
        t.number,
        t.state.name(),
        t.note.as_deref().unwrap_or("")
    );
    progress.trial_ended(t, state, spec, running(slots));
    Ok(())
}
