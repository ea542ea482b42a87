//! The orchestrator: ask the sampler, record the trial, dispatch it to a worker, record its
//! reports and its end, keep the reports fresh, and stop cleanly.
//!
//! The orchestrator is the journal's only writer. Everything it knows is the fold of the
//! journal ([`SweepState`]); it appends an event before acting on it (a trial is created in the
//! journal before any worker sees it), so a sweep killed at any moment resumes from the journal
//! alone: ended trials stay ended, unfinished ones continue from their last checkpoint, and the
//! sampler continues at the next trial number.

use crate::error::{Context, Error, Result};
use crate::experiment::{self, Experiment};
use crate::files::write_atomic;
use crate::journal::{EndState, Event, FileJournal, GROUP_COMMIT, Journal, now};
use crate::lock::FolderLock;
use crate::objective::{Decision, Objective, TrialTask};
use crate::progress::Progress;
use crate::report::{self, ReportSpec};
use crate::rng;
use crate::sampler;
use crate::signals;
use crate::state::SweepState;
use crate::train::BurnObjective;
use crate::worker::{FromWorker, Launcher, Pool, PoolEvent, ToWorker};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How trials are run.
#[derive(Clone)]
pub enum Execution {
    /// The built-in burn objective, in worker processes of this kiln executable.
    BuiltIn {
        /// The kiln executable.
        exe: PathBuf,
    },
    /// A user's objective, on threads of this process.
    Custom(Arc<dyn Objective>),
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
}

#[derive(Default)]
struct Slot {
    started: bool,
    trial: Option<u64>,
    stopped: Option<StopReason>,
}

/// Checks what the objective reports against the experiment, before anything is written.
pub fn check_objective(experiment: &Experiment, execution: &Execution) -> Result<()> {
    let metrics = match execution {
        Execution::BuiltIn { .. } => BurnObjective::new(experiment.clone()).metrics(experiment)?,
        Execution::Custom(objective) => objective.metrics(experiment)?,
    };
    experiment.check_metrics(&metrics)
}

/// Runs (or continues) the sweep of `experiment` in `options.results_dir`.
pub fn run(
    experiment: &Experiment,
    options: &SweepOptions,
    execution: Execution,
) -> Result<SweepOutcome> {
    check_objective(experiment, &execution)?;
    let dir = &options.results_dir;
    let (mut journal, mut state, _lock) = open(dir, experiment, options)?;
    let spec = ReportSpec::of(experiment);
    let budget = state.budget.unwrap_or(experiment.budget.trials);
    let mut sampler = sampler::build(
        &experiment.sampler,
        &experiment.space,
        experiment.seed,
        &experiment.objective,
    );
    let launcher = match &execution {
        Execution::BuiltIn { exe } => Launcher::Processes {
            exe: exe.clone(),
            experiment: dir.join("experiment.toml"),
            base_dir: state.base_dir.clone(),
        },
        Execution::Custom(objective) => Launcher::Threads {
            objective: Arc::clone(objective),
            experiment: Box::new(experiment.clone()),
        },
    };
    let mut pool = Pool::new(launcher);
    let pruner = crate::pruner::build(experiment);
    let workers = options.workers.unwrap_or(experiment.budget.workers).max(1);
    let mut slots: Vec<Slot> = (0..workers).map(|_| Slot::default()).collect();
    let mut resumable: VecDeque<u64> = state.unfinished().map(|t| t.number).collect();
    if !resumable.is_empty() {
        tracing::info!("resuming trials {:?}", resumable);
    }
    let progress = Progress::new(&state, budget, options.quiet);
    let started = Instant::now();
    let mut exhausted = false;
    let mut stopping = false;
    let mut reports_written = Instant::now();
    let mut reports_dirty = true;
    let mut synced = Instant::now();

    loop {
        if signals::interrupted() && !stopping {
            stopping = true;
            progress.println("Stopping: running trials stop at their next checkpoint (Ctrl-C again to quit at once).");
        }
        let time_left = experiment
            .budget
            .max_time
            .is_none_or(|limit| started.elapsed() < limit);
        // Dispatch: resumable trials first, then new ones, while workers are free.
        loop {
            let free = slots.iter().position(|s| s.trial.is_none());
            let Some(id) = free.filter(|_| !stopping) else {
                break;
            };
            let task = if let Some(number) = resumable.pop_front() {
                let t = &state.trials[number as usize];
                task(
                    pruner.is_some(),
                    dir,
                    t.number,
                    t.seed,
                    t.params.clone(),
                    t.epochs.last().map_or(0, |e| e.epoch),
                )
            } else if !exhausted && time_left && (state.trials.len() as u64) < budget {
                let number = state.trials.len() as u64;
                let Some(params) = sampler.sample(&experiment.space, number, &state.trials) else {
                    exhausted = true;
                    continue;
                };
                let seed = rng::trial_seed(experiment.seed, number);
                record(
                    &mut journal,
                    &mut state,
                    Event::TrialCreated {
                        trial: number,
                        seed,
                        params: params.clone(),
                        time: now(),
                    },
                )?;
                task(pruner.is_some(), dir, number, seed, params, 0)
            } else {
                break;
            };
            if !slots[id].started {
                pool.start(Some(id))
                    .context(|| "cannot start a worker".to_string())?;
                slots[id].started = true;
            }
            record(
                &mut journal,
                &mut state,
                Event::TrialStarted {
                    trial: task.number,
                    from_epoch: task.journaled_epochs,
                    worker: format!("{}", id),
                    time: now(),
                },
            )?;
            slots[id].trial = Some(task.number);
            slots[id].stopped = None;
            pool.send(id, &ToWorker::Run { task });
            progress.update(&state, &spec, running(&slots));
        }
        if running(&slots) == 0 {
            break;
        }

        match pool.events().recv_timeout(Duration::from_millis(100)) {
            Ok(PoolEvent::Message(id, FromWorker::Report { trial, report })) => {
                if slots[id].trial != Some(trial) {
                    continue;
                }
                let checkpointed = report.checkpointed;
                let event = Event::EpochReported {
                    trial,
                    epoch: report.epoch,
                    elapsed_s: report.elapsed_s,
                    lr: report.lr,
                    metrics: report.metrics,
                    checkpointed,
                    time: now(),
                };
                record(&mut journal, &mut state, event)?;
                let pruned = pruner
                    .as_ref()
                    .filter(|_| !stopping)
                    .and_then(|p| p.decide(&state.trials[trial as usize], &state));
                let decision = if let Some(reason) = pruned {
                    // Recorded now, before the trial hears of it: a resumed sweep keeps it.
                    let event = ended(trial, EndState::Pruned, Some(reason), None);
                    end_trial(
                        &mut journal,
                        &mut state,
                        &progress,
                        &spec,
                        running(&slots),
                        event,
                    )?;
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
                slots[id].trial = None;
                let event = match result {
                    Ok(_) if stopped.is_some() => None,
                    Ok(summary) => Some(ended(trial, EndState::Complete, None, summary.n_params)),
                    Err(reason) => Some(ended(trial, EndState::Failed, Some(reason), None)),
                };
                if let Some(event) = event {
                    end_trial(
                        &mut journal,
                        &mut state,
                        &progress,
                        &spec,
                        running(&slots),
                        event,
                    )?;
                    reports_dirty = true;
                }
            }
            Ok(PoolEvent::Exited(id, why)) => {
                let status = pool.exit_status(id).unwrap_or(why);
                slots[id].started = false;
                if let Some(trial) = slots[id].trial.take() {
                    let note = format!("its worker process died ({status})");
                    tracing::warn!("trial {trial}: {note}");
                    let event = ended(trial, EndState::Failed, Some(note), None);
                    end_trial(
                        &mut journal,
                        &mut state,
                        &progress,
                        &spec,
                        running(&slots),
                        event,
                    )?;
                    reports_dirty = true;
                }
            }
            Err(_) => {}
        }
        if synced.elapsed() >= GROUP_COMMIT {
            journal.append(&[], true)?;
            synced = Instant::now();
        }
        if reports_dirty && reports_written.elapsed() >= Duration::from_secs(1) {
            report::write(dir, &state, &spec)?;
            reports_written = Instant::now();
            reports_dirty = false;
        }
    }
    drop(pool);
    journal.append(&[], true)?;
    report::write(dir, &state, &spec)?;
    progress.finish();
    let interrupted = stopping;
    if !interrupted {
        let failed = state.count(crate::state::TrialState::Ended(EndState::Failed));
        if failed > 0 && failed == state.trials.len() {
            let first = state.trials[0].note.clone().unwrap_or_default();
            return Err(Error::runtime(format!(
                "all {failed} trials failed; the first: {first}. See {}/leaderboard.csv",
                dir.display()
            )));
        }
    }
    Ok(SweepOutcome { state, interrupted })
}

fn running(slots: &[Slot]) -> usize {
    slots.iter().filter(|s| s.trial.is_some()).count()
}

fn task(
    await_decisions: bool,
    dir: &Path,
    number: u64,
    seed: u64,
    params: crate::space::Params,
    journaled_epochs: u32,
) -> TrialTask {
    TrialTask {
        number,
        seed,
        params,
        journaled_epochs,
        dir: dir.join("trials").join(number.to_string()),
        // Only a pruner's answers must arrive before the next epoch.
        await_decisions,
    }
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
    journal: &mut FileJournal,
    state: &mut SweepState,
    progress: &Progress,
    spec: &ReportSpec<'_>,
    running: usize,
    event: Event,
) -> Result<()> {
    record(journal, state, event.clone())?;
    if let Event::TrialFinished { trial, .. } = event {
        let t = &state.trials[trial as usize];
        tracing::info!(
            "trial {} {} {}",
            t.number,
            t.state.name(),
            t.note.as_deref().unwrap_or("")
        );
        progress.trial_ended(t, state, spec, running);
    }
    Ok(())
}

fn record(journal: &mut FileJournal, state: &mut SweepState, event: Event) -> Result<()> {
    journal.append(std::slice::from_ref(&event), event.must_sync())?;
    state.apply(&event);
    Ok(())
}

/// Opens the results folder: creates it for a new sweep, or checks that it holds this same
/// experiment; takes its lock; replays its journal; records the budget.
fn open(
    dir: &Path,
    experiment: &Experiment,
    options: &SweepOptions,
) -> Result<(FileJournal, SweepState, FolderLock)> {
    let journal_path = dir.join("journal.jsonl");
    let existing = journal_path.exists();
    if existing {
        let frozen = std::fs::read_to_string(dir.join("experiment.toml")).unwrap_or_default();
        if experiment::fingerprint(&frozen) != experiment::fingerprint(&experiment.source.text) {
            let differences = experiment::differences(&frozen, &experiment.source.text);
            return Err(Error::input(format!(
                "{} holds a different experiment; refusing to mix them. It differs in: {}. Use another --results folder, or `kiln resume {}` to continue the one it holds.",
                dir.display(),
                differences.join("; "),
                dir.display()
            )));
        }
    } else if options.resume {
        return Err(Error::input(format!(
            "{} holds no sweep to resume (no journal.jsonl)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::runtime(format!(
            "cannot create the results folder {}: {e}",
            dir.display()
        ))
    })?;
    let lock = FolderLock::acquire(dir)?;
    crate::logging::attach(dir);
    let mut journal = FileJournal::open(&journal_path)?;
    let mut state = SweepState::replay(&journal.read_from(0)?);
    if state.fingerprint.is_none() {
        write_atomic(
            &dir.join("experiment.toml"),
            experiment.source.text.as_bytes(),
            true,
        )
        .context(|| format!("cannot write {}/experiment.toml", dir.display()))?;
        let event = Event::SweepStarted {
            name: experiment.name.clone(),
            fingerprint: experiment::fingerprint(&experiment.source.text),
            seed: experiment.seed,
            base_dir: experiment.source.base_dir.clone(),
            kiln_version: env!("CARGO_PKG_VERSION").to_string(),
            time: now(),
        };
        record(&mut journal, &mut state, event)?;
        tracing::info!("started sweep {} in {}", experiment.name, dir.display());
    } else {
        tracing::info!(
            "continuing sweep {} in {} ({} trials so far)",
            experiment.name,
            dir.display(),
            state.trials.len()
        );
    }
    let wanted = options
        .trials
        .or((!options.resume).then_some(experiment.budget.trials));
    if let Some(trials) = wanted.filter(|&t| state.budget != Some(t)) {
        record(
            &mut journal,
            &mut state,
            Event::BudgetSet {
                trials,
                time: now(),
            },
        )?;
    }
    Ok((journal, state, lock))
}
