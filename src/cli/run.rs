//! The commands that train: `kiln run`, `kiln resume`, `kiln worker`, `kiln export` and the
//! hidden `kiln __worker` a sweep starts its worker processes with. Each returns the process
//! exit code (or an error, whose exit code [`crate::Error::exit_code`] gives).

use super::folder::frozen_experiment;
#[cfg(feature = "postgres")]
use super::folder::open_shared;
use crate::error::{Error, Result};
use crate::experiment::Experiment;
#[cfg(feature = "postgres")]
use crate::journal::Journal;
use crate::layout;
use crate::objective::registry::Objectives;
use crate::output::pasteable;
use crate::report::{self, ReportSpec};
use crate::store::Storage;
use crate::sweep::{self, Execution, SweepOptions};
use crate::worker;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit code of a sweep stopped by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// How long a worker of a shared sweep keeps its trials while silent, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// `kiln run`: start or continue the sweep of an experiment file, in a results folder or, with
/// `storage` (or `[storage] url`), in a database that other workers may join.
pub fn run(
    objectives: &Objectives,
    file: &Path,
    results: Option<PathBuf>,
    storage: Option<Storage>,
    workers: Option<usize>,
    trials: Option<u64>,
    quiet: bool,
) -> Result<u8> {
    let experiment = Experiment::load(file)?;
    if let Some(warning) = experiment.warning() {
        tracing::warn!("{warning}");
    }
    let storage = storage.or_else(|| {
        experiment.storage_url.clone().map(|url| Storage {
            url,
            sweep: None,
            lease: DEFAULT_LEASE,
        })
    });
    let name = storage
        .as_ref()
        .and_then(|s| s.sweep.clone())
        .unwrap_or(experiment.name.clone());
    if workers == Some(0) {
        // Only create the sweep (with its budget) for workers elsewhere to train.
        let Some(storage) = storage else {
            return Err(Error::input(
                "--workers 0 only creates a shared sweep: it needs --storage (or [storage] url)",
            ));
        };
        let prepared = objectives.build(&experiment)?;
        let trials = trials.unwrap_or(experiment.budget.trials);
        let (_, state) = crate::store::open_shared(
            &storage,
            &experiment,
            prepared.data.as_deref(),
            Some(trials),
        )?;
        crate::say!(
            "Sweep {name} in {}: {} of {trials} trials created. Workers join with:\n  {} worker --storage {} --sweep {name}",
            crate::redact::redact(&storage.url),
            state.trials.len(),
            crate::output::program(),
            crate::redact::redact(&storage.url),
        );
        return Ok(0);
    }
    let results_dir = results.unwrap_or_else(|| Path::new("results").join(name));
    sweep_and_report(
        objectives,
        &experiment,
        SweepOptions {
            results_dir,
            workers,
            trials,
            resume: false,
            quiet,
            storage,
            retry: crate::sweep::Retry::Nothing,
            lift_stop_rules: false,
        },
    )
}

/// `kiln worker`: join a sweep kept in a database and train its trials until none is left.
#[cfg(feature = "postgres")]
pub fn worker(
    objectives: &Objectives,
    storage: Storage,
    workers: Option<usize>,
    quiet: bool,
) -> Result<u8> {
    let (experiment, _) = open_shared(&storage)?;
    crate::tell!(
        "Relative paths of the experiment resolve against {}.",
        experiment.source.base_dir.display()
    );
    let options = SweepOptions {
        workers: workers.or(Some(experiment.budget.workers)),
        resume: true,
        quiet,
        storage: Some(storage),
        ..SweepOptions::default()
    };
    crate::signals::install(&sweep::continue_command(&options, &experiment.name));
    let outcome = sweep::run(&experiment, &options, execution(objectives, &experiment)?)?;
    let state = &outcome.state;
    eprintln!(
        "{}: {} of {} trials ended ({} unfinished).",
        if outcome.interrupted {
            "Stopped"
        } else {
            "Done"
        },
        state.ended(),
        state.budget.unwrap_or(0),
        state.unfinished().count()
    );
    Ok(if outcome.interrupted { INTERRUPTED } else { 0 })
}

/// `kiln worker` in a kiln built without PostgreSQL.
#[cfg(not(feature = "postgres"))]
pub fn worker(_: &Objectives, _: Storage, _: Option<usize>, _: bool) -> Result<u8> {
    Err(crate::store::without_postgres())
}

/// `kiln export` in a kiln built without PostgreSQL.
#[cfg(not(feature = "postgres"))]
pub fn export(_: &Storage, _: &Path) -> Result<u8> {
    Err(crate::store::without_postgres())
}

/// `kiln export`: write a shared sweep as a results folder (journal, experiment, reports,
/// plots and every trial's files), the same as a local sweep's.
#[cfg(feature = "postgres")]
pub fn export(storage: &Storage, dir: &Path) -> Result<u8> {
    let (experiment, mut journal) = open_shared(storage)?;
    let events = journal.read_from(0)?;
    let marker = layout::exported_from(dir);
    // Another export of this sweep may be writing here now (two runs of one shared sweep
    // export when they end): it writes its marker first, and its temporary files do not count.
    let empty = std::fs::read_dir(dir).map_or(true, |d| {
        d.flatten()
            .all(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
    });
    if !empty && !marker.exists() {
        let what = if layout::journal(dir).exists() {
            "holds a local sweep"
        } else {
            "is not empty and holds no export"
        };
        return Err(Error::input(format!(
            "{} {what}: export into a new or empty folder",
            dir.display()
        )));
    }
    let name = storage.sweep.as_deref().unwrap_or_default();
    let write = |path: &Path, bytes: &[u8]| {
        crate::files::write_atomic(path, bytes, false)
            .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", dir.display())))?;
    write(
        &marker,
        format!("sweep {name} in {}\n", journal.db().shown()).as_bytes(),
    )?;
    std::fs::create_dir_all(layout::trials(dir))
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", dir.display())))?;
    let state = crate::state::SweepState::replay(&events);
    let lines = crate::journal::lines(&events)
        .map_err(|e| Error::runtime(format!("cannot encode the journal: {e}")))?;
    write(&layout::journal(dir), &lines)?;
    write(&layout::experiment(dir), experiment.source.text.as_bytes())?;
    for trial in &state.trials {
        let trial_dir = layout::trial(dir, trial.number);
        for (file, data) in crate::store::blobs(journal.db(), name, trial.number, None)? {
            if crate::store::internal_blob(&file) {
                continue;
            }
            std::fs::create_dir_all(&trial_dir).map_err(|e| {
                Error::runtime(format!("cannot create {}: {e}", trial_dir.display()))
            })?;
            write(&trial_dir.join(file), &data)?;
        }
    }
    let spec = ReportSpec::of(&experiment);
    report::write(dir, &state, &spec)?;
    report::plots::write(dir, &state, &spec)?;
    crate::say!(
        "Exported sweep {name} ({} trials) to {}",
        state.trials.len(),
        dir.display()
    );
    Ok(0)
}

/// How `kiln resume` and `kiln retry` continue a sweep.
pub struct Continue {
    /// Trials at once.
    pub workers: Option<usize>,
    /// A new budget.
    pub trials: Option<u64>,
    /// No progress output.
    pub quiet: bool,
    /// Failed trials to run again first.
    pub retry: crate::sweep::Retry,
    /// Go on past the stopping rules.
    pub lift_stop_rules: bool,
}

/// `kiln resume` and `kiln retry`: continue the sweep in results folder `dir`.
pub fn resume(objectives: &Objectives, dir: &Path, how: Continue) -> Result<u8> {
    crate::lock::ensure_free(dir)?;
    let experiment = frozen_experiment(dir)?;
    let base = &experiment.source.base_dir;
    if !base.is_dir() {
        return Err(Error::input(format!(
            "the sweep's experiment was in {}, which no longer exists (moved or deleted), and its relative paths resolve there. From the experiment's new place, continue with `kiln run NEW/PLACE/EXPERIMENT.toml --results {}`",
            base.display(),
            pasteable(dir)
        )));
    }
    sweep_and_report(
        objectives,
        &experiment,
        SweepOptions {
            results_dir: dir.to_path_buf(),
            workers: how.workers,
            trials: how.trials,
            resume: true,
            quiet: how.quiet,
            storage: None,
            retry: how.retry,
            lift_stop_rules: how.lift_stop_rules,
        },
    )
}

fn sweep_and_report(
    objectives: &Objectives,
    experiment: &Experiment,
    options: SweepOptions,
) -> Result<u8> {
    crate::signals::install(&sweep::continue_command(&options, &experiment.name));
    let outcome = sweep::run(experiment, &options, execution(objectives, experiment)?)?;
    let dir = &options.results_dir;
    let spec = ReportSpec::of(experiment);
    match &options.storage {
        // A sweep that recorded nothing new (resumed when finished) keeps its plots.
        None if layout::newer_than_journal(dir, &[layout::report(dir)]) => {}
        None => {
            report::plots::write(dir, &outcome.state, &spec)?;
        }
        Some(storage) => {
            let storage = Storage {
                sweep: Some(storage.sweep.clone().unwrap_or(experiment.name.clone())),
                ..storage.clone()
            };
            export(&storage, dir)?;
        }
    }
    let continue_with = sweep::continue_command(&options, &experiment.name);
    if outcome.interrupted {
        let left = outcome.state.unfinished().count();
        let budget = outcome.state.budget.unwrap_or(0);
        let unstarted = budget.saturating_sub(outcome.state.trials.len() as u64);
        eprintln!(
            "Stopped. {left} unfinished trials are checkpointed and {unstarted} are not started yet. Continue with: {continue_with}"
        );
        return Ok(INTERRUPTED);
    }
    if let Some(why) = &outcome.stopped_by {
        crate::tell!("The sweep {}", super::folder::stopped_early(dir, why));
    }
    // A resumed sweep's experiment is its frozen copy, whose relative paths are not its own.
    let file = (!options.resume).then_some(experiment.source.path.as_path());
    let hint = super::folder::when_complete(dir, &outcome.state, file);
    if let Some(hint) = hint.filter(|_| outcome.ran == 0 && options.storage.is_none()) {
        crate::tell!("Nothing ran: {hint}.");
    }
    if !options.quiet {
        // The top five, narrow enough for a terminal: the objective and the parameters.
        let table = report::leaderboard_top(&outcome.state, &spec, Some(5));
        let summary = report::SUMMARY_COLUMNS;
        let skip: Vec<&str> = table
            .columns
            .iter()
            .map(String::as_str)
            .filter(|c| {
                !summary.contains(c)
                    && *c != report::PARETO_RANK
                    && !spec.others.iter().any(|g| g.metric == *c)
                    && !spec.params.iter().any(|p| p == c)
            })
            .collect();
        crate::output::text(&report::render(&table, Some(5), &skip));
        crate::tell!(
            "\nLeaderboard: {}  Curves: {}",
            pasteable(&dir.join(layout::LEADERBOARD)),
            pasteable(&dir.join(layout::CURVES))
        );
        let report = layout::report(dir);
        if report.exists() {
            crate::tell!(
                "Report: {}  (live: {} dashboard {})",
                pasteable(&report),
                crate::output::program(),
                pasteable(dir)
            );
        }
    }
    Ok(0)
}

/// Where an experiment's trials run: worker processes of this executable, which knows the
/// same objectives.
fn execution(objectives: &Objectives, experiment: &Experiment) -> Result<Execution> {
    let prepared = objectives.build(experiment)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::runtime(format!("cannot find this program's executable: {e}")))?;
    Ok(Execution::Processes { exe, prepared })
}

/// Writes CSV to stdout; a reader that stops early (`| head`) is not an error.
pub(super) fn write_stdout(bytes: &[u8]) -> Result<()> {
    match std::io::Write::write_all(&mut std::io::stdout(), bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::runtime(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// The hidden `kiln __worker`: run trials for the orchestrator that started this process.
pub fn worker_process(
    objectives: &Objectives,
    experiment_file: &Path,
    base_dir: &Path,
) -> Result<u8> {
    worker::become_worker_process();
    let text = std::fs::read_to_string(experiment_file)
        .map_err(|e| Error::runtime(format!("{}: {e}", experiment_file.display())))?;
    let experiment = Experiment::parse(&text, experiment_file, base_dir)?;
    // A worker is a process of its own: it builds its own copy of the objective (the
    // built-in trainer loads its data here, once per worker process, for all its trials).
    let prepared = objectives.build(&experiment)?;
    worker::serve(
        prepared.objective.as_ref(),
        &experiment,
        &mut worker::StdioLink::default(),
    );
    Ok(0)
}
