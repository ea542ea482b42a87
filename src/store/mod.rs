//! Where a sweep lives: a results folder on this machine, or a PostgreSQL database shared by
//! workers on many machines. The orchestrator ([`crate::sweep`]) talks to either through
//! [`Store`]; the two differ in who else may be writing.
//!
//! - [`FolderStore`]: one process sweeps the folder (it holds `kiln.lock`), so every
//!   unfinished trial is its own to continue, and trial files live in `trials/N/`.
//! - [`DbStore`]: any number of worker processes share the sweep. A trial is claimed under the
//!   sweep's lock, with a lease in `kiln_leases` that its worker renews (heartbeats); a trial
//!   whose lease has expired is taken over by another worker. Every report of a trial is
//!   appended only while its worker still holds the lease (fencing), so a worker that was
//!   merely slow, not dead, cannot write over its successor. Trial files live in a scratch
//!   folder and are copied to `kiln_blobs`: the checkpoint before each checkpointed report, the
//!   rest (best weights, `model.json`) before the trial's end; any worker can continue any trial.

use crate::error::{Context, Error, Result};
use crate::experiment::{self, Experiment};
use crate::files::write_atomic;
use crate::journal::{Event, FileJournal, GROUP_COMMIT, Journal, now};
use crate::layout;
use crate::lock::FolderLock;
use crate::state::SweepState;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(feature = "postgres")]
mod retry;
mod shared;
#[cfg(feature = "postgres")]
pub use retry::Retry;
pub use shared::{DbStore, blobs, internal_blob, leases};

/// A trial's lease, for `kiln status`.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The trial.
    pub trial: u64,
    /// The worker holding it.
    pub worker: String,
    /// Seconds until it expires (negative: expired, free to take over).
    pub seconds_left: f64,
}

/// Opens the shared sweep of `experiment` in `storage` (creating it, or checking that the
/// stored one is the same) and records its start and budget.
pub fn open_shared(
    storage: &Storage,
    experiment: &Experiment,
    data: Option<&str>,
    trials: Option<u64>,
) -> Result<(Box<dyn Store>, SweepState)> {
    #[cfg(feature = "postgres")]
    {
        let (store, state) = DbStore::open(storage, experiment, data, trials)?;
        Ok((Box::new(store), state))
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (storage, experiment, data, trials);
        Err(without_postgres())
    }
}

/// The error of a shared sweep asked of a kiln built without PostgreSQL.
#[cfg(not(feature = "postgres"))]
pub fn without_postgres() -> Error {
    Error::input(
        "this kiln was built without the `postgres` feature, which sweeps shared through PostgreSQL need: build it with its default features (`cargo build --release`)",
    )
}

/// What a free worker slot gets from [`Store::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Run this trial (its `TrialStarted` is recorded).
    Run(u64),
    /// Nothing to run now: trials held by other workers may still need taking over, or the
    /// next trial's proposal needs trials that are running to end.
    Wait,
    /// Nothing left to do.
    Done,
}

/// Why [`Create`] made no trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTrial {
    /// The budget, the time limit or the sampler says no more.
    Finished,
    /// The sampler needs trials to end first (`[sampler] deterministic`).
    NotYet,
}

/// Makes the next new trial's `TrialCreated` event for a state, or says why not.
pub type Create<'a> = dyn FnMut(&SweepState) -> std::result::Result<Event, NoTrial> + 'a;

/// A sweep's storage, as the orchestrator sees it.
pub trait Store {
    /// Claims a trial for worker slot `slot`: an unfinished trial nobody runs, else a new one.
    /// `running` are the trials this process runs now.
    fn claim(
        &mut self,
        state: &mut SweepState,
        slot: usize,
        running: &[u64],
        create: &mut Create<'_>,
    ) -> Result<Claim>;

    /// Records `events` of `trial`, which this process runs. False when the trial is no
    /// longer this process's to record (another worker took it over, or it ended).
    fn record(&mut self, state: &mut SweepState, trial: u64, events: Vec<Event>) -> Result<bool>;

    /// Called every loop of the orchestrator: group commits, heartbeats.
    fn tick(&mut self, state: &mut SweepState) -> Result<()>;

    /// The folder of the frozen `experiment.toml` and the trial folders on this machine.
    fn folder(&self) -> &Path;

    /// The folder trial `trial`'s files are written in.
    fn trial_dir(&self, trial: u64) -> PathBuf {
        crate::layout::trial(self.folder(), trial)
    }

    /// Whether each report must be answered before the trial trains on: a report is only
    /// final once the store has recorded it (and copied its checkpoint), which a shared
    /// store does over the network.
    fn awaits_reports(&self) -> bool {
        false
    }

    /// Makes a trial's files ready before it runs (a checkpoint from the database).
    fn before_run(&mut self, _trial: u64) -> Result<()> {
        Ok(())
    }

    /// A trial wrote the checkpoint of `epoch`; called before its report is recorded.
    fn after_checkpoint(&mut self, _trial: u64, _epoch: u32) -> Result<()> {
        Ok(())
    }

    /// A trial's objective returned; called before its end is recorded.
    fn before_end(&mut self, _trial: u64) -> Result<()> {
        Ok(())
    }

    /// Trial `trial` ended for good and its worker let go of it: its checkpoints go (its best
    /// weights stay).
    fn drop_checkpoints(&mut self, trial: u64) -> Result<()> {
        remove_checkpoints(&self.trial_dir(trial))
    }

    /// Journals the configurations `kiln enqueue` left for this sweep since the last call.
    fn take_queued(&mut self, _state: &mut SweepState, _space: &crate::space::Space) -> Result<()> {
        Ok(())
    }

    /// Whether the report files (leaderboard, curves, plots) belong in [`Store::folder`]: a
    /// results folder's do; a shared sweep's are written by `kiln export`.
    fn keeps_reports(&self) -> bool {
        false
    }

    /// The sweep run ends: make everything durable, let go of unfinished trials.
    fn close(&mut self, state: &mut SweepState) -> Result<()>;
}

/// Records the sweep's start (once, with `data`, the objective's data fingerprint, and where
/// its `results` folder is, if it has one) and its budget (when `trials` differs), with `append`
/// doing the appending as each store must (under its lock). A budget below the trials the sweep
/// holds, data other than the sweep's, or a default sampler this kiln does not know, is
/// refused, and then nothing is recorded.
pub(crate) fn begin(
    experiment: &Experiment,
    results: Option<&Path>,
    data: Option<&str>,
    trials: Option<u64>,
    state: &mut SweepState,
    mut append: impl FnMut(&mut SweepState, &dyn Fn(&SweepState) -> Vec<Event>) -> Result<()>,
) -> Result<()> {
    let refusal = |state: &SweepState| -> Option<String> {
        let default_sampler = state.default_sampler.as_deref();
        if let Err(unknown) = crate::sampler::kind_in_sweep(experiment, default_sampler) {
            return Some(unknown.to_string());
        }
        if let Some(trials) = trials.filter(|&t| t < state.trials.len() as u64) {
            return Some(format!(
                "the sweep already holds {} trials, more than the {trials} asked for: give --trials {} or more",
                state.trials.len(),
                state.trials.len()
            ));
        }
        match (&state.data, data) {
            (Some(recorded), Some(now)) if recorded != now => Some(format!(
                "the objective's data changed since the sweep started (fingerprint {recorded}, now {now}): its trials would mix results on different data in one leaderboard. Restore the data the sweep started with, or start a new sweep"
            )),
            _ => None,
        }
    };
    let started = |state: &SweepState| -> Vec<Event> {
        let mut events = Vec::new();
        if refusal(state).is_some() {
            return events;
        }
        if state.fingerprint.is_none() {
            events.push(Event::SweepStarted {
                name: experiment.name.clone(),
                fingerprint: experiment::fingerprint(&experiment.source.text),
                seed: experiment.seed,
                base_dir: experiment.source.base_dir.clone(),
                results: results.and_then(|dir| inside(dir, &experiment.source.base_dir)),
                data: data.map(str::to_string),
                kiln_version: env!("CARGO_PKG_VERSION").to_string(),
                default_sampler: Some(
                    <crate::experiment::SamplerKind as crate::names::Named>::ALL[0].to_string(),
                ),
                experiment: Some(experiment.source.text.clone()),
                time: now(),
            });
        }
        if let Some(trials) = trials.filter(|&t| state.budget != Some(t)) {
            events.push(Event::BudgetSet {
                trials,
                time: now(),
            });
        }
        events
    };
    append(state, &started)?;
    refusal(state).map_or(Ok(()), |why| Err(Error::input(why)))
}

/// `dir` relative to `base`, when it lies inside it.
fn inside(dir: &Path, base: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let base = std::fs::canonicalize(base).ok()?;
    dir.strip_prefix(base).ok().map(Path::to_path_buf)
}

/// Whether results folder `dir` may hold the sweep of `experiment`: not an export, not a file;
/// the same experiment if it records a start; a sweep to continue with `resume`; otherwise
/// nothing but what a start that recorded nothing leaves. Reads only.
fn check_folder(dir: &Path, experiment: &Experiment, resume: bool) -> Result<()> {
    let journal_path = layout::journal(dir);
    if let Ok(origin) = std::fs::read_to_string(layout::exported_from(dir)) {
        let program = crate::output::program();
        return Err(Error::input(format!(
            "{} is an export of {}; continue that sweep with `{program} worker --storage URL --sweep NAME`, or run this experiment into another --results folder",
            dir.display(),
            origin.trim()
        )));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(Error::input(format!(
            "{} is a file, not a results folder: choose another --results",
            dir.display()
        )));
    }
    if journal_started(&journal_path) {
        let frozen = std::fs::read_to_string(layout::experiment(dir)).unwrap_or_default();
        if experiment::fingerprint(&frozen) != experiment::fingerprint(&experiment.source.text) {
            return Err(refuse_different(
                &frozen,
                experiment,
                &dir.display().to_string(),
                &format!(
                    "--results folder, or `{} resume {}` to continue the one it holds",
                    crate::output::program(),
                    crate::output::pasteable(dir)
                ),
            ));
        }
    } else if resume {
        return Err(Error::input(format!(
            "{} holds no sweep to resume (nothing was recorded: the sweep stopped as it started); start it again with `kiln run EXPERIMENT.toml --results {}`",
            dir.display(),
            crate::output::pasteable(dir)
        )));
    } else {
        refuse_foreign(dir)?;
    }
    Ok(())
}

/// Whether a journal records a sweep's start (its first line): a journal that is missing,
/// empty or torn at its first write records nothing, and the folder holds no sweep yet.
pub fn journal_started(path: &Path) -> bool {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    let _ = std::io::BufReader::new(file).read_line(&mut first);
    first.ends_with('\n')
        && serde_json::from_str::<Event>(&first)
            .is_ok_and(|e| matches!(e, Event::SweepStarted { .. }))
}

/// Refuses to start a sweep in a folder that holds other things than a start that recorded
/// nothing: kiln would write its reports, plots and trial folders over them.
fn refuse_foreign(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut foreign: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| !layout::STARTING_FILES.contains(&name.as_str()) && !name.ends_with(".tmp"))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    foreign.truncate(5);
    Err(Error::input(format!(
        "{} is not empty and holds no kiln sweep (no journal of one; it holds {}): kiln would write its reports, plots and trial folders there. Choose a new or empty --results folder",
        dir.display(),
        foreign.join(", ")
    )))
}

/// The experiment differs from the one a sweep was started with: say how.
fn refuse_different(frozen: &str, experiment: &Experiment, place: &str, resume: &str) -> Error {
    let differences = experiment::differences(frozen, &experiment.source.text);
    Error::input(format!(
        "{place} holds a different experiment; refusing to mix them. It differs in: {}. Use another {resume}.",
        differences.join("; "),
    ))
}

/// The first unfinished trial that `claimable` allows and this process does not run.
fn unfinished(state: &SweepState, running: &[u64], claimable: impl Fn(u64) -> bool) -> Option<u64> {
    state
        .unfinished()
        .map(|t| t.number)
        .find(|n| !running.contains(n) && claimable(*n))
}

/// What a free slot of `worker` gets, with the events that record it: the first unfinished
/// trial that `claimable` allows and this process does not run, else a new one from `create`.
/// `Wait` when the only unfinished trials left are ones `claimable` refuses (held by others).
pub(crate) fn choose(
    state: &SweepState,
    running: &[u64],
    claimable: impl Fn(u64) -> bool,
    create: &mut Create<'_>,
    worker: String,
) -> (Vec<Event>, Claim) {
    let mut events = Vec::new();
    let trial = match unfinished(state, running, claimable) {
        Some(trial) => trial,
        None => match create(state) {
            Ok(created) => {
                events.push(created);
                state.trials.len() as u64
            }
            Err(NoTrial::NotYet) => return (events, Claim::Wait),
            Err(NoTrial::Finished) if unfinished(state, running, |_| true).is_some() => {
                return (events, Claim::Wait);
            }
            Err(NoTrial::Finished) => return (events, Claim::Done),
        },
    };
    let from_epoch = state
        .trials
        .get(trial as usize)
        .and_then(|t| t.epochs.last())
        .map_or(0, |e| e.epoch);
    if from_epoch > 0 {
        tracing::info!("trial {trial} continues after epoch {from_epoch}");
    }
    events.push(Event::TrialStarted {
        trial,
        from_epoch,
        worker,
        time: now(),
    });
    (events, Claim::Run(trial))
}

/// Removes the checkpoint slots of trial folder `dir`.
pub(crate) fn remove_checkpoints(dir: &Path) -> Result<()> {
    crate::checkpoint::remove(dir)
        .context(|| format!("cannot remove the checkpoints in {}", dir.display()))
}

/// A sweep in a results folder, swept by this process alone.
pub struct FolderStore {
    dir: PathBuf,
    journal: FileJournal,
    synced: Instant,
    _lock: FolderLock,
}

impl FolderStore {
    /// Opens the results folder `dir`: creates it for a new sweep, or checks that it holds
    /// this same experiment; takes its lock; replays its journal; records the budget
    /// (`trials`, when given). With `resume`, the folder must hold a sweep already.
    pub fn open(
        dir: &Path,
        experiment: &Experiment,
        data: Option<&str>,
        trials: Option<u64>,
        resume: bool,
        retry: &Retry,
    ) -> Result<(FolderStore, SweepState)> {
        let journal_path = layout::journal(dir);
        // Read-only first: a folder that is not the sweep's is never written into.
        check_folder(dir, experiment, resume)?;
        std::fs::create_dir_all(dir)
            .context(|| format!("cannot create the results folder {}", dir.display()))?;
        let lock = FolderLock::acquire(dir)?;
        // Under the lock the folder is this process's alone: what another process did before
        // the lock was taken counts, and a start that recorded nothing (killed, or a full
        // disk, at its first write) is cleared.
        check_folder(dir, experiment, resume)?;
        if !journal_started(&journal_path) {
            let _ = std::fs::remove_file(&journal_path);
        }
        crate::logging::attach(dir);
        let mut journal = FileJournal::open(&journal_path)?;
        let mut state = FileJournal::fold(&journal_path)?;
        if state.fingerprint.is_none() {
            write_atomic(
                &layout::experiment(dir),
                experiment.source.text.as_bytes(),
                true,
            )
            .context(|| format!("cannot write {}/experiment.toml", dir.display()))?;
            tracing::info!("started sweep {} in {}", experiment.name, dir.display());
        } else {
            tracing::info!(
                "continuing sweep {} in {} ({} trials so far)",
                experiment.name,
                dir.display(),
                state.trials.len()
            );
        }
        begin(
            experiment,
            Some(dir),
            data,
            trials,
            &mut state,
            |state, events| {
                let events = events(state);
                journal.append(&events, true)?;
                events.iter().for_each(|e| state.apply(e));
                Ok(())
            },
        )?;
        let reopened = retry::reopen(&state, retry)?;
        journal.append(&reopened, true)?;
        reopened.iter().for_each(|e| state.apply(e));
        let store = FolderStore {
            dir: dir.to_path_buf(),
            journal,
            synced: Instant::now(),
            _lock: lock,
        };
        Ok((store, state))
    }

    fn append(&mut self, state: &mut SweepState, events: &[Event]) -> Result<()> {
        let sync = events.iter().any(Event::must_sync);
        self.journal.append(events, sync)?;
        events.iter().for_each(|e| state.apply(e));
        Ok(())
    }
}

impl Store for FolderStore {
    fn claim(
        &mut self,
        state: &mut SweepState,
        slot: usize,
        running: &[u64],
        create: &mut Create<'_>,
    ) -> Result<Claim> {
        // This process holds the folder's lock: every unfinished trial is its own to continue.
        let (events, claim) = choose(state, running, |_| true, create, slot.to_string());
        self.append(state, &events)?;
        Ok(claim)
    }

    fn record(&mut self, state: &mut SweepState, _trial: u64, events: Vec<Event>) -> Result<bool> {
        self.append(state, &events)?;
        Ok(true)
    }

    fn tick(&mut self, _state: &mut SweepState) -> Result<()> {
        if self.synced.elapsed() >= GROUP_COMMIT {
            self.journal.append(&[], true)?;
            self.synced = Instant::now();
        }
        Ok(())
    }

    fn folder(&self) -> &Path {
        &self.dir
    }

    fn before_run(&mut self, trial: u64) -> Result<()> {
        // Never write through a link into a folder that is not the sweep's.
        let trials = layout::trials(&self.dir);
        for path in [trials.clone(), trials.join(trial.to_string())] {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::input(format!(
                    "{} is a symbolic link; kiln writes trial files only into folders of its own (remove the link)",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    fn take_queued(&mut self, state: &mut SweepState, space: &crate::space::Space) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(layout::queue(&self.dir)) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            // Journaled first, removed after: a kill between the two leaves a file the
            // journal already names, which is removed now, not queued again.
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let given = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| serde_json::from_str::<crate::space::Params>(&text).ok());
            // `kiln enqueue` checked it against this same space; anything else is not ours.
            match given.map(|g| space.admit(&g)) {
                _ if name.as_ref().is_some_and(|n| state.taken.contains(n)) => {}
                Some(Ok(params)) => {
                    let event = Event::TrialEnqueued {
                        params,
                        time: now(),
                        file: name,
                    };
                    self.append(state, &[event])?;
                    self.journal.append(&[], true)?;
                }
                _ => tracing::warn!(
                    "{}: not a configuration of this sweep; ignored",
                    file.display()
                ),
            }
            std::fs::remove_file(&file).context(|| format!("cannot remove {}", file.display()))?;
        }
        Ok(())
    }

    fn keeps_reports(&self) -> bool {
        true
    }

    fn close(&mut self, _state: &mut SweepState) -> Result<()> {
        self.journal.append(&[], true)
    }
}

/// Where a shared sweep is kept, and how this worker holds its trials.
#[derive(Debug, Clone)]
pub struct Storage {
    /// `postgres://USER@HOST:PORT/DATABASE`.
    pub url: String,
    /// The sweep's name (default: the experiment's).
    pub sweep: Option<String>,
    /// How long a silent worker keeps its trials before others take them over.
    pub lease: Duration,
}
