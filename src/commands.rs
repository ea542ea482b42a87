//! What each `kiln` command does. `main.rs` parses arguments and calls one of these; each
//! returns the process exit code (or an error, whose exit code [`Error::exit_code`] gives).

#[cfg(feature = "postgres")]
use crate::db::Db;
use crate::device::DeviceName;
use crate::error::{Context, Error, Result};
use crate::experiment::SamplerKind;
use crate::experiment::{self, Experiment};
use crate::journal::{Event, FileJournal};
#[cfg(feature = "postgres")]
use crate::journal::{Journal, PgJournal};
use crate::layout;
use crate::names::Named;
use crate::objective::registry::{Objectives, Prepared};
use crate::output::pasteable;
use crate::report::{self, ReportSpec};
use crate::settings::{Backend, SETTINGS, Section};
use crate::space::ParamValue;
use crate::state::{SweepState, TrialState};
use crate::store::Storage;
use crate::sweep::{self, Execution, SweepOptions};
use crate::train::objective::BurnObjective;
use crate::train::spec::SplitSpec;
use crate::trial::EndState;
use crate::worker;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
            "Sweep {name} in {}: {} of {trials} trials created. Workers join with:\n  kiln worker --storage {} --sweep {name}",
            crate::redact::redact(&storage.url),
            state.trials.len(),
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

/// The experiment and state of a shared sweep. Relative paths in the experiment resolve
/// against the folder recorded when the sweep was created if this machine has it, else
/// against the current folder (a worker on another machine, started where the data is).
#[cfg(feature = "postgres")]
fn open_shared(storage: &Storage) -> Result<(Experiment, PgJournal)> {
    let name = storage.sweep.as_deref().ok_or_else(|| {
        Error::input(
            "--sweep NAME is required with --storage (the sweep's name: its experiment's `name`)",
        )
    })?;
    let mut journal = PgJournal::new(Db::connect(&storage.url)?, name, "reader");
    let Some(stored) = journal.stored()? else {
        let known = PgJournal::sweeps(journal.db())?;
        let hint = crate::settings::hint(name, known.iter().map(String::as_str));
        return Err(Error::input(format!(
            "no sweep `{name}` in {}; it holds {}.{hint} Start one with `kiln run --storage URL EXPERIMENT.toml`",
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
    fn load(&self) -> Result<(Experiment, SweepState)> {
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
    fn describe(&self) -> String {
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
    let state = SweepState::replay(&events);
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

/// `kiln resume`: continue the sweep held in a results folder.
pub fn resume(
    objectives: &Objectives,
    dir: &Path,
    workers: Option<usize>,
    trials: Option<u64>,
    quiet: bool,
) -> Result<u8> {
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
            workers,
            trials,
            resume: true,
            quiet,
            storage: None,
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
                "Report: {}  (live: kiln dashboard {})",
                pasteable(&report),
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
    Ok(Execution::Processes {
        exe,
        objective: prepared.objective,
    })
}

/// Writes CSV to stdout; a reader that stops early (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    match std::io::Write::write_all(&mut std::io::stdout(), bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::runtime(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
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
fn folder_sweep(dir: &Path) -> Result<(Experiment, SweepState)> {
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
    Error::input(format!(
        "{} holds no sweep yet (nothing was recorded: it stopped as it started); start it again with `kiln run EXPERIMENT.toml --results {}`",
        dir.display(),
        pasteable(dir)
    ))
}

/// The journal of results folder `dir`, which must have one.
fn journal_of(dir: &Path) -> Result<PathBuf> {
    let journal = layout::journal(dir);
    if !journal.exists() {
        return Err(Error::input(format!(
            "{} holds no sweep (no journal.jsonl); start one with `kiln run EXPERIMENT.toml`",
            dir.display()
        )));
    }
    Ok(journal)
}

/// `kiln check`: validate an experiment, load its data, print the space and the plan.
pub fn check(objectives: &Objectives, file: &Path) -> Result<u8> {
    let experiment = Experiment::load(file)?;
    // The built-in trainer's data and settings are shown too.
    let burn = (experiment.objective.kind == "train")
        .then(|| BurnObjective::new(&experiment).map(Arc::new))
        .transpose()?;
    let prepared: Prepared = match &burn {
        Some(burn) => crate::objective::registry::prepare(&experiment, Arc::clone(burn) as _)?,
        None => objectives.build(&experiment)?,
    };
    let metrics = &prepared.metrics;
    let e = &experiment;
    crate::say!("{}: {} is valid.\n", e.name, file.display());
    if let Some(warning) = e.warning() {
        crate::say!("warning: {warning}\n");
    }
    match &burn {
        Some(burn) => print_data(burn),
        None => {
            let options: Vec<String> = e
                .objective
                .options
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            crate::say!("objective  {} ({})", e.objective.kind, options.join(", "));
            if let Some(line) = prepared.objective.describe() {
                crate::say!("           {line}");
            }
        }
    }
    let goals: Vec<String> = e
        .objective
        .goals()
        .iter()
        .map(|g| format!("{} {}", g.direction.name(), g.metric))
        .collect();
    crate::say!(
        "metric     {}  (reported: {})",
        goals.join(", "),
        metrics.join(", ")
    );
    if e.objective.is_multi() {
        crate::say!(
            "           several objectives: trials rank by Pareto front; their values are read at the best epoch by {}",
            e.objective.metric
        );
    }
    if e.objective.by_default {
        crate::say!("           (the default: the file has no [objective])");
    }
    print_plan(e, prepared.max_epochs);
    crate::say!("\nspace ({} dimensions)", e.space.dimensions.len());
    for d in &e.space.dimensions {
        let points = d
            .points
            .map(|p| format!(", {p} grid points"))
            .unwrap_or_default();
        let when: Vec<String> = d.when.iter().map(ToString::to_string).collect();
        let when = if when.is_empty() {
            String::new()
        } else {
            format!("  when {}", when.join(" and "))
        };
        crate::say!("  {:<16} {}{points}{when}", d.name, d.distribution);
    }
    if let Some(burn) = &burn {
        print_settings(e, burn);
    }
    check_devices(e, burn.as_deref())
}

/// The GPUs this machine has, and a computation on each device the trainer will use.
fn check_devices(e: &Experiment, burn: Option<&BurnObjective>) -> Result<u8> {
    let gpus: Vec<String> = (crate::device::nvidia_gpus().iter().enumerate())
        .map(|(n, model)| format!("cuda:{n} {model}"))
        .collect();
    let built: Vec<&str> = (Backend::ALL.iter())
        .filter(|b| crate::device::built_with(**b))
        .map(|b| b.name())
        .collect();
    crate::say!("\ndevices");
    crate::say!("  backends built in  {}", built.join(", "));
    crate::say!(
        "  NVIDIA GPUs        {}",
        if gpus.is_empty() {
            "none found".to_string()
        } else {
            gpus.join(", ")
        }
    );
    let Some(ParamValue::Str(backend)) = burn.and_then(|b| b.spec().settings.get("backend")) else {
        return Ok(0);
    };
    let Some(backend) = Backend::from_name(backend).filter(|b| b.on_gpu()) else {
        return Ok(0);
    };
    let mut names: Vec<Option<DeviceName>> = Vec::new();
    for name in e.budget.devices.iter().filter_map(|n| n.parse().ok()) {
        if !names.contains(&Some(name)) {
            names.push(Some(name));
        }
    }
    if names.is_empty() {
        names.push(None);
    }
    let mut failed = 0;
    for name in names {
        let shown = name.map_or(format!("{} (its first device)", backend.name()), |n| {
            n.to_string()
        });
        match crate::device::probe(backend, name) {
            Ok(()) => crate::say!("  {shown:<18} computes"),
            Err(why) => {
                failed += 1;
                crate::say!("  {shown:<18} FAILED: {}", why.lines().next().unwrap_or(""));
            }
        }
    }
    if failed > 0 {
        return Err(Error::runtime(format!(
            "{failed} device(s) could not compute; a sweep's trials would fail there"
        )));
    }
    Ok(0)
}

/// The columns a model learns from, as `kiln check` names them: at most 12 of each kind.
fn feature_list(data: &crate::train::data::Dataset) -> String {
    fn some(names: &[String]) -> String {
        let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
        match names.len() - shown.len() {
            0 => shown.join(", "),
            more => format!("{} and {more} more", shown.join(", ")),
        }
    }
    match (data.features.is_empty(), data.categorical.is_empty()) {
        (false, true) => some(&data.features),
        (true, false) => format!("categorical {}", some(&data.categorical)),
        _ => format!(
            "{}; categorical {}",
            some(&data.features),
            some(&data.categorical)
        ),
    }
}

/// The built-in trainer's data, as `kiln check` shows it.
fn print_data(burn: &BurnObjective) {
    let (spec, data) = (&burn.spec().data, burn.data());
    let classes = if data.class_names.is_empty() {
        String::new()
    } else {
        format!(", {} classes", data.class_names.len())
    };
    let split = match &spec.split {
        SplitSpec::Fractions { .. } => "by seeded fractions",
        SplitSpec::Column(_) => "by column",
    };
    crate::say!(
        "data       {}: {} features{classes}, {}\n           split {split}: train {}, val {}, test {}",
        spec.path.display(),
        data.n_features(),
        match &data.task_inferred {
            Some(why) => format!("{} (inferred: {why}; set [data] task to choose)", data.task),
            None => data.task.to_string(),
        },
        data.train.rows,
        data.val.rows,
        data.test.as_ref().map_or(0, |t| t.rows)
    );
    crate::say!("features   {}", feature_list(data));
    match (data.dropped_rows, data.filled_cells) {
        (0, 0) => {}
        (dropped, filled) => {
            let rows = if dropped == 1 { "row" } else { "rows" };
            let cells = if filled == 1 { "cell" } else { "cells" };
            crate::say!(
                "missing    {dropped} {rows} left out, {filled} {cells} filled with the train split's mean ([data] missing = \"{}\")",
                spec.missing.name()
            )
        }
    }
    if let Some(es) = &burn.spec().early_stopping {
        crate::say!(
            "patience   stop a trial after {} epochs without {} improving by more than {}",
            es.patience,
            es.monitor,
            es.min_delta
        );
    }
}

/// The sampler, budget, pruner and storage, as `kiln check` shows them.
fn print_plan(e: &Experiment, max_epochs: Option<u32>) {
    let sampler = match e.sampler.kind {
        SamplerKind::Grid => format!(
            "grid sampler over {} points",
            experiment::grid_size(&e.space, e.sampler.points).unwrap_or(0)
        ),
        SamplerKind::Tpe => format!(
            "{} sampler (seed {}; {} random trials first, gamma {}, {} candidates)",
            if e.objective.is_multi() {
                "tpe (MOTPE)"
            } else {
                "tpe"
            },
            e.seed,
            e.sampler.startup_trials,
            e.sampler.gamma,
            e.sampler.candidates
        ),
        SamplerKind::Cmaes => format!(
            "cmaes sampler (seed {}; sigma0 {}, {} trials per generation, restart {})",
            e.seed,
            e.sampler.cmaes.sigma0,
            e.sampler
                .cmaes
                .popsize
                .map_or("4 + 3 ln n".to_string(), |p| p.to_string()),
            e.sampler.cmaes.restart.name()
        ),
        SamplerKind::Gp => format!(
            "gp sampler (seed {}; {} random trials first, then a Matern 5/2 Gaussian process and log expected improvement)",
            e.seed, e.sampler.startup_trials
        ),
        SamplerKind::Nsga2 => format!(
            "nsga2 sampler (seed {}; generations of {} trials, the first drawn at random)",
            e.seed, e.sampler.population
        ),
        kind @ (SamplerKind::Random | SamplerKind::Sobol) => {
            format!("{kind} sampler (seed {})", e.seed)
        }
    };
    let sampler = match e.sampler.lag {
        Some(lag) => format!(
            "{sampler}, deterministic: trial N is proposed from trials 0..N-{lag} once they have ended"
        ),
        None => sampler,
    };
    crate::say!(
        "plan       {sampler}; {} trials, {} at once{}; pruner {}",
        e.budget.trials,
        e.budget.workers,
        e.budget
            .max_time
            .map(|t| format!(
                ", at most {}",
                crate::progress::format_duration(t.as_secs_f64())
            ))
            .unwrap_or_default(),
        crate::pruner::describe(e, max_epochs)
    );
    if !e.budget.devices.is_empty() {
        crate::say!(
            "devices    {} (worker N gets the Nth; each sees its own in KILN_DEVICE)",
            e.budget.devices.join(", ")
        );
    }
    if let Some(url) = &e.storage_url {
        crate::say!(
            "storage    {url} (password from PGPASSWORD); workers join with: kiln worker --storage {url} --sweep {}",
            e.name
        );
    }
    for dir in &e.sampler.warm_start {
        crate::say!("warm start from the complete trials of {}", dir.display());
    }
    for (i, given) in e.enqueue.iter().enumerate() {
        crate::say!(
            "queued     trial {i} takes {} (the rest drawn)",
            crate::space::shown(given)
        );
    }
    for c in &e.constraints {
        let bounds: Vec<String> = [
            c.min.map(|m| format!(">= {m}")),
            c.max.map(|m| format!("<= {m}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        crate::say!(
            "constraint {} {} (a trial outside ranks after the feasible ones)",
            c.metric,
            bounds.join(" and ")
        );
    }
}

/// The built-in trainer's settings, resolved, as `kiln check` shows them.
fn print_settings(e: &Experiment, burn: &BurnObjective) {
    let spec = burn.spec();
    for section in [Section::Model, Section::Train] {
        crate::say!(
            "\n[{}] resolved settings (searched ones show their default)",
            section.name()
        );
        for setting in SETTINGS.iter().filter(|s| s.section == section) {
            let value = spec
                .settings
                .get(setting.name)
                .map_or("(none)".to_string(), |v| v.to_string());
            let origin = if e.space.names().any(|n| n == setting.name) {
                "searched"
            } else if spec.fixed.contains_key(setting.name) {
                "set"
            } else {
                "default"
            };
            crate::say!(
                "  {:<16} {:<12} {:<9} {}",
                setting.name,
                value,
                origin,
                setting.help
            );
        }
    }
}

/// `kiln leaderboard`: the leaderboard as a terminal table.
pub fn leaderboard(source: &Source, top: Option<usize>, wide: bool) -> Result<u8> {
    let (experiment, state) = source.load()?;
    let spec = ReportSpec::of(&experiment);
    let table = report::leaderboard_top(&state, &spec, top);
    if table.rows.is_empty() {
        crate::say!("No trial has ended yet in {}.", source.describe());
        return Ok(0);
    }
    match report::terminal_width().filter(|_| !wide) {
        // What a person reads first: how each trial did and what it searched.
        Some(width) => {
            let first: Vec<String> = ["rank", "trial", "state", "objective"]
                .map(String::from)
                .into_iter()
                .chain(spec.params.iter().cloned())
                .collect();
            let (keep, left_out) = report::fitting(&table, top, width, &first);
            crate::output::text(&report::render_columns(&table, top, &keep));
            if left_out > 0 {
                crate::tell!("({left_out} more columns: --wide shows them all)");
            }
        }
        None => crate::output::text(&report::render(&table, top, &[])),
    }
    Ok(0)
}

/// `kiln plot`: redraw the SVG plots and `report.html` of a sweep (of a shared sweep: export
/// it to `results/<sweep>` first).
pub fn plot(source: &Source) -> Result<u8> {
    let dir = match source {
        Source::Folder(dir) => dir.clone(),
        Source::Database(storage) => {
            let dir = Path::new("results").join(storage.sweep.as_deref().unwrap_or_default());
            export(storage, &dir)?;
            dir
        }
    };
    let dir = dir.as_path();
    let (experiment, state) = folder_sweep(dir)?;
    let files = report::plots::write(dir, &state, &ReportSpec::of(&experiment))?;
    for file in &files {
        crate::say!("{}", file.display());
    }
    crate::say!("{}", layout::report(dir).display());
    Ok(0)
}

/// `kiln compare`: trials of one or several sweeps side by side, as CSV on stdout.
pub fn compare(sources: &[Source], filter: report::compare::Filter, curves: bool) -> Result<u8> {
    if let Some(state) = &filter.state
        && !["complete", "pruned", "failed"].contains(&state.as_str())
    {
        return Err(Error::input(format!(
            "--state `{state}`: use `complete`, `pruned` or `failed`"
        )));
    }
    let loaded: Vec<(Experiment, SweepState)> =
        sources.iter().map(Source::load).collect::<Result<_>>()?;
    let mut sweeps = Vec::new();
    for (source, (experiment, state)) in sources.iter().zip(loaded.iter()) {
        let state = state.clone();
        let duplicate = loaded
            .iter()
            .filter(|(e, _)| e.name == experiment.name)
            .count()
            > 1;
        sweeps.push(report::compare::Sweep {
            name: if duplicate {
                source.describe()
            } else {
                experiment.name.clone()
            },
            state,
            spec: ReportSpec::of(experiment),
        });
    }
    let most = sweeps
        .iter()
        .map(|s| s.state.trials.len())
        .max()
        .unwrap_or(0);
    if let Some(missing) = filter
        .trials
        .iter()
        .flatten()
        .find(|&&n| n as usize >= most)
    {
        return Err(Error::input(format!(
            "--trials: no compared sweep has trial {missing} (the largest has trials 0 to {})",
            most.saturating_sub(1)
        )));
    }
    if filter.sort.as_deref() == Some("objective")
        && sweeps
            .iter()
            .any(|s| s.spec.direction != sweeps[0].spec.direction)
    {
        let each: Vec<String> = sweeps
            .iter()
            .map(|s| format!("{} {} {}", s.name, s.spec.direction.name(), s.spec.metric))
            .collect();
        return Err(Error::input(format!(
            "--sort objective: the sweeps optimise in different directions ({}), so their objectives do not sort together; sort by a metric column instead",
            each.join(", ")
        )));
    }
    let table = report::compare::compare(&sweeps, &report::compare::Filter::default());
    if let Some(sort) = filter.sort.as_ref().filter(|s| !table.columns.contains(s)) {
        return Err(Error::input(format!(
            "--sort `{sort}` is not a column; the columns are {}",
            table.columns.join(", ")
        )));
    }
    let table = if curves {
        report::compare::curves(&sweeps, &filter)
    } else {
        report::compare::compare(&sweeps, &filter)
    };
    write_stdout(&table.to_csv()?)?;
    Ok(0)
}

/// `kiln enqueue`: a configuration for the next new trial of a sweep. A folder's is journaled
/// now when no process sweeps it, else left in its queue folder for that process; a shared
/// sweep's is appended to its journal in the database, which every worker reads.
pub fn enqueue(source: &Source, assignments: &[String]) -> Result<u8> {
    match source {
        Source::Folder(dir) => {
            let experiment = frozen_experiment(dir)?;
            let params = given_params(&experiment.space, assignments)?;
            enqueue_in_folder(dir, params)
        }
        #[cfg(feature = "postgres")]
        Source::Database(storage) => {
            let (experiment, mut journal) = open_shared(storage)?;
            let params = given_params(&experiment.space, assignments)?;
            let shown = crate::space::shown(&params);
            let event = Event::TrialEnqueued {
                params,
                time: crate::journal::now(),
                file: None,
            };
            crate::journal::Journal::append(&mut journal, &[event], true)?;
            crate::tell!(
                "Queued {shown} for the next new trial of {}. Raise the budget with `kiln run EXPERIMENT.toml --storage URL --trials N` if it is spent.",
                source.describe()
            );
            Ok(0)
        }
        #[cfg(not(feature = "postgres"))]
        Source::Database(_) => Err(crate::store::without_postgres()),
    }
}

/// `KEY=VALUE` arguments as a configuration `space` admits.
fn given_params(
    space: &crate::space::Space,
    assignments: &[String],
) -> Result<crate::space::Params> {
    let mut given = crate::space::Params::new();
    for assignment in assignments {
        let Some((key, text)) = assignment.split_once('=') else {
            return Err(Error::input(format!(
                "`{assignment}` is not KEY=VALUE, e.g. learning_rate=0.01"
            )));
        };
        let value = match space.dimensions.iter().find(|d| d.name == key.trim()) {
            Some(d) => d
                .distribution
                .parse(text.trim())
                .map_err(|why| Error::input(format!("{key}: {why}")))?,
            None => crate::space::ParamValue::Str(text.to_string()),
        };
        if given.insert(key.trim().to_string(), value).is_some() {
            return Err(Error::input(format!(
                "`{}` is given twice: give each parameter once",
                key.trim()
            )));
        }
    }
    space
        .admit(&given)
        .map_err(|(key, why)| Error::input(format!("{key}: {why}")))
}

/// Queues `params` in results folder `dir`.
fn enqueue_in_folder(dir: &Path, params: crate::space::Params) -> Result<u8> {
    let shown = crate::space::shown(&params);
    match crate::lock::FolderLock::acquire(dir) {
        Ok(_lock) => {
            let mut journal = FileJournal::open(&layout::journal(dir))?;
            let event = Event::TrialEnqueued {
                params,
                time: crate::journal::now(),
                file: None,
            };
            crate::journal::Journal::append(&mut journal, &[event], true)?;
            let state = FileJournal::fold(&layout::journal(dir))?;
            let budget = state.budget.unwrap_or(0);
            let more = if state.trials.len() as u64 >= budget {
                format!(
                    " The budget of {budget} trials is spent: run it with `kiln resume {} --trials {}`.",
                    pasteable(dir),
                    budget + 1
                )
            } else {
                format!(" `kiln resume {}` runs it.", pasteable(dir))
            };
            crate::tell!("Queued {shown} for the next new trial.{more}");
        }
        Err(_) => {
            let queue = layout::queue(dir);
            std::fs::create_dir_all(&queue)
                .context(|| format!("cannot create {}", queue.display()))?;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let file = queue.join(format!("{nanos:024}-{}.json", std::process::id()));
            let json = serde_json::to_vec(&params).context(|| "cannot write JSON".into())?;
            crate::files::write_atomic(&file, &json, true)
                .context(|| format!("cannot write {}", file.display()))?;
            crate::tell!(
                "Queued {shown} for the sweep running in {}: it takes it as its next new trial.",
                dir.display()
            );
        }
    }
    Ok(0)
}

/// `kiln dashboard`: serve a live page of the sweeps of `sources` until stopped.
pub fn dashboard(sources: &[Source], host: std::net::IpAddr, port: u16) -> Result<u8> {
    if sources.is_empty() {
        return Err(Error::input(
            "which sweeps? Give results folders (or a folder of them, e.g. results), or --storage URL --sweep NAME",
        ));
    }
    let mut sweeps = Vec::new();
    for source in sources {
        match source {
            Source::Folder(dir) => {
                wait_for_sweep(dir);
                for dir in sweeps_in(dir)? {
                    let experiment = frozen_experiment(&dir)?;
                    let feed = crate::dashboard::Feed::Folder(crate::journal::Tail::new(
                        &layout::journal(&dir),
                    ));
                    let label = dir.display().to_string();
                    sweeps.push(crate::dashboard::Followed::new(
                        label,
                        Some(dir),
                        experiment,
                        feed,
                    )?);
                }
            }
            #[cfg(feature = "postgres")]
            Source::Database(storage) => {
                let (experiment, journal) = open_shared(storage)?;
                let feed = crate::dashboard::Feed::Shared(Box::new(journal));
                sweeps.push(crate::dashboard::Followed::new(
                    source.describe(),
                    None,
                    experiment,
                    feed,
                )?);
            }
            #[cfg(not(feature = "postgres"))]
            Source::Database(_) => return Err(crate::store::without_postgres()),
        }
    }
    if !host.is_loopback() {
        eprintln!(
            "warning: listening on {host}: anyone who can reach this machine can read these sweeps (parameters, metrics, logs); the dashboard has no login"
        );
    }
    let count = sweeps.len();
    crate::dashboard::serve(sweeps, host, port, |address| {
        let plural = if count == 1 { "" } else { "s" };
        eprintln!("Dashboard of {count} sweep{plural} at http://{address}/  (Ctrl-C stops it)");
    })
}

/// Waits while a sweep may still appear in `dir`: it is missing or empty (the dashboard was
/// started before `kiln run`), or a running kiln holds it and has not recorded its start yet.
/// A folder that holds something else, or a start that died, is left to [`sweeps_in`] to refuse.
fn wait_for_sweep(dir: &Path) {
    let mut told = false;
    while sweep_may_appear(dir) {
        if !told {
            eprintln!(
                "Waiting for a sweep to start in {} (`kiln run EXPERIMENT.toml --results {}`); Ctrl-C stops",
                dir.display(),
                pasteable(dir)
            );
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn sweep_may_appear(dir: &Path) -> bool {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return e.kind() == std::io::ErrorKind::NotFound,
    };
    if entries.next().is_none() {
        return true;
    }
    // Only asked of a folder with files: `kiln run` takes the lock before it writes any, so
    // this momentary shared lock never meets its first one.
    let started = FileJournal::first(&layout::journal(dir))
        .is_ok_and(|first| matches!(first, Some(Event::SweepStarted { .. })));
    !started && crate::lock::holder(dir).is_some()
}

/// The results folders in `dir`: itself when it holds a sweep, else its subfolders that do.
fn sweeps_in(dir: &Path) -> Result<Vec<PathBuf>> {
    if layout::journal(dir).exists() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::input(format!("{}: cannot read: {e}", dir.display())))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| layout::journal(p).exists())
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::input(format!(
            "{} holds no sweep (no journal.jsonl in it or in its subfolders); start one with `kiln run EXPERIMENT.toml`",
            dir.display()
        )));
    }
    Ok(found)
}

/// `kiln status`: trials by state, the best so far, what is running or resumable.
pub fn status(source: &Source) -> Result<u8> {
    let (experiment, state) = source.load()?;
    let spec = ReportSpec::of(&experiment);
    let count = |s| state.count(TrialState::Ended(s));
    let budget = state.budget.unwrap_or(0);
    crate::say!("sweep      {} in {}", state.name, source.describe());
    crate::say!(
        "trials     {} of {budget}: {} complete, {} pruned, {} failed, {} unfinished",
        state.trials.len(),
        count(EndState::Complete),
        count(EndState::Pruned),
        count(EndState::Failed),
        state.unfinished().count()
    );
    match report::best(&state, &spec) {
        Some((t, v)) => {
            let epoch = t
                .best_epoch(spec.metric, spec.direction)
                .map_or(0, |e| e.epoch);
            let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            crate::say!(
                "best       trial {}: {} {} at epoch {epoch} ({})",
                t.number,
                spec.metric,
                report::for_people(v),
                params.join(", ")
            );
        }
        None => crate::say!("best       none yet"),
    }
    if !spec.others.is_empty() {
        let (ranked, fronts) = report::ranked_with_fronts(&state, &spec);
        let front: Vec<String> = ranked
            .into_iter()
            .filter(|t| fronts[t.number as usize] == Some(1))
            .map(|t| t.number.to_string())
            .collect();
        crate::say!(
            "front      {} trials on the Pareto front: {}",
            front.len(),
            front.join(", ")
        );
    }
    let ranked = report::importance(&state, &spec);
    if !ranked.rows.is_empty() {
        let shown: Vec<String> = ranked
            .rows
            .iter()
            .take(5)
            .map(|r| format!("{} {}", r[0], r[1]))
            .collect();
        crate::say!(
            "importance {} (PED-ANOVA; importance.csv)",
            shown.join(", ")
        );
    }
    let leases: Vec<crate::store::Lease> = match source {
        #[cfg(feature = "postgres")]
        Source::Database(storage) => crate::store::leases(storage)?,
        #[cfg(not(feature = "postgres"))]
        Source::Database(_) => Vec::new(),
        Source::Folder(_) => Vec::new(),
    };
    for t in state.unfinished() {
        match leases.iter().find(|l| l.trial == t.number) {
            Some(lease) if lease.seconds_left > 0.0 => crate::say!(
                "running    trial {}: epoch {} on worker {} (lease {:.0} s left)",
                t.number,
                t.epochs.len(),
                lease.worker,
                lease.seconds_left
            ),
            _ => crate::say!(
                "unfinished trial {}: {} epochs reported, resumes from its checkpoint",
                t.number,
                t.epochs.len()
            ),
        }
    }
    let ago = crate::journal::now() - state.last_activity;
    crate::say!(
        "activity   last event {} ago",
        crate::progress::format_duration(ago.max(0.0))
    );
    let Source::Folder(dir) = source else {
        return Ok(0);
    };
    if let Some(holder) = crate::lock::holder(dir) {
        crate::say!("running    yes ({holder})");
    } else if state.unfinished().count() > 0 || (state.trials.len() as u64) < budget {
        crate::say!(
            "running    no; continue with: kiln resume {}",
            pasteable(dir)
        );
    }
    Ok(0)
}

/// `kiln predict`: predictions of a trial's best weights for the rows of a CSV.
pub fn predict(dir: &Path, trial: &str, data: &Path, out: Option<&Path>) -> Result<u8> {
    let (experiment, state) = folder_sweep(dir)?;
    let kind = &experiment.objective.kind;
    if kind != "train" {
        return Err(Error::input(format!(
            "`kiln predict` runs the built-in trainer's models; {} is a sweep of the `{kind}` objective, whose trials keep their own files in trials/N/",
            dir.display()
        )));
    }
    let number = match trial {
        "best" => report::best(&state, &ReportSpec::of(&experiment))
            .map(|(t, _)| t.number)
            .ok_or_else(|| Error::input(format!("{} has no complete trial yet", dir.display())))?,
        n => n
            .parse::<u64>()
            .ok()
            .filter(|&n| (n as usize) < state.trials.len())
            .ok_or_else(|| {
                Error::input(format!(
                    "--trial must be `best` or a trial number below {}, got `{n}`",
                    state.trials.len()
                ))
            })?,
    };
    let trial_dir = layout::trial(dir, number);
    let predictions = crate::train::saved::predict_csv(&trial_dir, data)?;
    let table = report::Table {
        columns: predictions.columns,
        rows: predictions.rows,
    };
    let bytes = table.to_csv()?;
    match out {
        Some(path) => crate::files::write_atomic(path, &bytes, false)
            .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))?,
        None => write_stdout(&bytes)?,
    }
    Ok(0)
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
    let prepared = objectives.build(&experiment)?;
    worker::serve(
        prepared.objective.as_ref(),
        &experiment,
        &mut worker::StdioLink::default(),
    );
    Ok(0)
}
