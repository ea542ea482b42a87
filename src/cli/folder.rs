//! Where a command finds a sweep: a results folder (its frozen experiment, checked against the
//! journal, its relative paths resolved where the project is now) or a shared sweep.

#[cfg(feature = "postgres")]
use crate::db::Db;
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::journal::{Event, FileJournal};
#[cfg(feature = "postgres")]
use crate::journal::{Journal, PgJournal};
use crate::layout;
use crate::output::pasteable;
use crate::state::SweepState;
use crate::store::Storage;
use std::path::{Path, PathBuf};

/// A sweep to read: a results folder, or a sweep in a database.
pub enum Source {
    /// A results folder.
    Folder(PathBuf),
    /// A shared sweep.
    Database(Storage),
}

impl Source {
    /// The source of a command given `DIR` or `--storage URL --sweep NAME`.
    pub fn of(dir: Option<PathBuf>, storage: Option<Storage>) -> Result<Source> {
        match (dir, storage) {
            (Some(dir), None) => Ok(Source::Folder(dir)),
            (None, Some(storage)) => Ok(Source::Database(storage)),
            (Some(_), Some(_)) => Err(Error::input(
                "give a results folder or --storage URL --sweep NAME, not both",
            )),
            (None, None) => Err(Error::input(
                "which sweep? Give a results folder (e.g. results/quickstart) or --storage URL --sweep NAME",
            )),
        }
    }

    /// The experiment and the state.
    pub(super) fn load(&self) -> Result<(Experiment, SweepState)> {
        match self {
            Source::Folder(dir) => folder_sweep(dir),
            #[cfg(feature = "postgres")]
            Source::Database(storage) => {
                let (experiment, mut journal) = open_shared(storage)?;
                let events = journal.read_from(0)?;
                Ok((experiment, SweepState::replay(&events)))
            }
            #[cfg(not(feature = "postgres"))]
            Source::Database(_) => Err(crate::store::without_postgres()),
        }
    }

    /// How messages name it.
    pub(super) fn describe(&self) -> String {
        match self {
            Source::Folder(dir) => dir.display().to_string(),
            Source::Database(storage) => format!(
                "sweep `{}` in {}",
                storage.sweep.as_deref().unwrap_or(""),
                crate::redact::redact(&storage.url)
            ),
        }
    }
}

/// What to run after a sweep in `dir` is complete (every trial ended, the budget spent), or
/// `None` while it is not: raise the budget, or start a new sweep of `file` (the experiment
/// file the user ran, when there is one) elsewhere.
pub fn when_complete(dir: &Path, state: &SweepState, file: Option<&Path>) -> Option<String> {
    let budget = state.budget.unwrap_or(0);
    if state.unfinished().count() > 0 || (state.trials.len() as u64) < budget {
        return None;
    }
    let program = crate::output::program();
    let file = file.map_or("EXPERIMENT.toml".to_string(), pasteable);
    Some(format!(
        "the sweep is complete: its {budget} trials ended. For more, raise the budget: {program} resume {} --trials {}; for a new sweep: {program} run {file} --results NEW_FOLDER",
        pasteable(dir),
        budget * 2
    ))
}

/// What a sweep in `dir` that a stopping rule ended (`why`) says, and how to go on past it.
pub fn stopped_early(dir: &Path, why: &str) -> String {
    format!(
        "stopped before the budget: {why}. To go on past it: {} resume {} --no-stop-rules",
        crate::output::program(),
        pasteable(dir)
    )
}

/// Reads the experiment a results folder was started with.
pub fn frozen_experiment(dir: &Path) -> Result<Experiment> {
    // The journal's first event says where the sweep started: the rest need not be read.
    let journal = journal_of(dir)?;
    match FileJournal::first(&journal)? {
        Some(Event::SweepStarted {
            base_dir,
            results,
            fingerprint,
            experiment,
            ..
        }) => {
            let base = base_now(dir, &base_dir, results.as_deref());
            parse_frozen(dir, &base, &fingerprint, experiment.as_deref())
        }
        _ => Err(no_sweep_yet(dir)),
    }
}

/// The experiment a results folder was started with, and the state its journal folds into
/// (read once: on a large sweep the fold is most of a command's cost).
pub(super) fn folder_sweep(dir: &Path) -> Result<(Experiment, SweepState)> {
    let journal = journal_of(dir)?;
    let state = FileJournal::fold(&journal)?;
    let Some(fingerprint) = &state.fingerprint else {
        return Err(no_sweep_yet(dir));
    };
    let recorded = match FileJournal::first(&journal)? {
        Some(Event::SweepStarted { experiment, .. }) => experiment,
        _ => None,
    };
    let base = base_now(dir, &state.base_dir, state.results.as_deref());
    let experiment = parse_frozen(dir, &base, fingerprint, recorded.as_deref())?;
    Ok((experiment, state))
}

/// The folder results folder `dir`'s experiment resolves relative paths against: the project
/// the results folder lies in now. A copied or moved project resolves against its new place,
/// and says so, rather than against the original's data and scripts (which may still be
/// there, and changed). Where the journal does not place the results folder inside the
/// project (results kept elsewhere, a results folder moved on its own, an older journal), the
/// recorded folder.
fn base_now(dir: &Path, recorded: &Path, results: Option<&Path>) -> PathBuf {
    let Some(results) = results else {
        return recorded.to_path_buf();
    };
    let here = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let project = here
        .ends_with(results)
        .then(|| here.ancestors().nth(results.components().count()))
        .flatten();
    match project {
        Some(project) if project != recorded => {
            crate::tell!(
                "{}: relative paths resolve against {}, where its project is now (the sweep started in {})",
                dir.display(),
                project.display(),
                recorded.display()
            );
            project.to_path_buf()
        }
        _ => recorded.to_path_buf(),
    }
}

/// The frozen `experiment.toml` of `dir`, its relative paths resolved against `base_dir`; refused
/// unless it is the experiment the journal recorded (`fingerprint`, and its text when recorded):
/// an edited file, or another sweep's journal, would rank trials under an experiment they did
/// not run.
fn parse_frozen(
    dir: &Path,
    base_dir: &Path,
    fingerprint: &str,
    recorded: Option<&str>,
) -> Result<Experiment> {
    let path = layout::experiment(dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    let now = crate::experiment::fingerprint(&text);
    if now != fingerprint {
        let differences = recorded
            .map(|old| crate::experiment::differences(old, &text))
            .filter(|d| !d.is_empty())
            .map_or(String::new(), |d| format!(" ({})", d.join(", ")));
        return Err(Error::input(format!(
            "{} is not the experiment its journal recorded (fingerprint {now}, the journal's {fingerprint}){differences}: it was edited, or the journal is another sweep's. Restore the file the sweep started with, or start a new sweep",
            path.display()
        )));
    }
    Experiment::parse(&text, &path, base_dir)
}

fn no_sweep_yet(dir: &Path) -> Error {
    let program = crate::output::program();
    Error::input(format!(
        "{} holds no sweep yet (nothing was recorded: it stopped as it started); start it again with `{program} run EXPERIMENT.toml --results {}`",
        dir.display(),
        pasteable(dir)
    ))
}

/// The journal of results folder `dir`, which must have one.
fn journal_of(dir: &Path) -> Result<PathBuf> {
    let journal = layout::journal(dir);
    if !journal.exists() {
        let program = crate::output::program();
        return Err(Error::input(format!(
            "{} holds no sweep (no journal.jsonl); start one with `{program} run EXPERIMENT.toml`",
            dir.display()
        )));
    }
    Ok(journal)
}

/// The experiment and state of a shared sweep. Relative paths in the experiment resolve
/// against the folder recorded when the sweep was created if this machine has it, else
/// against the current folder (a worker on another machine, started where the data is).
#[cfg(feature = "postgres")]
pub(super) fn open_shared(storage: &Storage) -> Result<(Experiment, PgJournal)> {
    let name = storage.sweep.as_deref().ok_or_else(|| {
        Error::input(
            "--sweep NAME is required with --storage (the sweep's name: its experiment's `name`)",
        )
    })?;
    let mut journal = PgJournal::new(Db::connect(&storage.url)?, name, "reader");
    let Some(stored) = journal.stored()? else {
        let known = PgJournal::sweeps(journal.db())?;
        let hint = crate::text::hint(name, known.iter().map(String::as_str));
        let program = crate::output::program();
        return Err(Error::input(format!(
            "no sweep `{name}` in {}; it holds {}.{hint} Start one with `{program} run --storage URL EXPERIMENT.toml`",
            journal.db().shown(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let recorded = PathBuf::from(&stored.base_dir);
    let base_dir = if recorded.is_dir() {
        recorded
    } else {
        std::env::current_dir().unwrap_or_default()
    };
    let label = PathBuf::from(format!(
        "{name}.toml (sweep `{name}` in {})",
        journal.db().shown()
    ));
    let experiment = Experiment::parse(&stored.experiment, &label, &base_dir)?;
    Ok((experiment, journal))
}
