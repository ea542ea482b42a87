//! What each `kiln` command does. `main.rs` parses arguments and calls one of these; each
//! returns the process exit code (or an error, whose exit code [`Error::exit_code`] gives).

use crate::error::{Error, Result};
use crate::experiment::{self, Experiment, SplitSpec, task_name};
use crate::functions::FunctionObjective;
use crate::journal::{EndState, FileJournal};
use crate::report::{self, ReportSpec};
use crate::settings::{SETTINGS, Section};
use crate::state::{SweepState, TrialState};
use crate::sweep::{self, Execution, SweepOptions};
use crate::train::{BurnObjective, metric_names};
use crate::worker;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Exit code of a sweep stopped by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// `kiln run`: start or continue the sweep of an experiment file.
pub fn run(
    file: &Path,
    results: Option<PathBuf>,
    workers: Option<usize>,
    trials: Option<u64>,
    quiet: bool,
) -> Result<u8> {
    let experiment = Experiment::load(file)?;
    let results_dir = results.unwrap_or_else(|| Path::new("results").join(&experiment.name));
    sweep_and_report(
        &experiment,
        SweepOptions {
            results_dir,
            workers,
            trials,
            resume: false,
            quiet,
        },
    )
}

/// `kiln resume`: continue the sweep held in a results folder.
pub fn resume(dir: &Path, workers: Option<usize>, trials: Option<u64>, quiet: bool) -> Result<u8> {
    let experiment = frozen_experiment(dir)?;
    sweep_and_report(
        &experiment,
        SweepOptions {
            results_dir: dir.to_path_buf(),
            workers,
            trials,
            resume: true,
            quiet,
        },
    )
}

fn sweep_and_report(experiment: &Experiment, options: SweepOptions) -> Result<u8> {
    crate::signals::install();
    let outcome = sweep::run(experiment, &options, execution(experiment)?)?;
    let dir = &options.results_dir;
    let spec = ReportSpec::of(experiment);
    report::plots::write(dir, &outcome.state, &spec)?;
    if outcome.interrupted {
        let left = outcome.state.unfinished().count();
        let budget = outcome.state.budget.unwrap_or(0);
        let unstarted = budget.saturating_sub(outcome.state.trials.len() as u64);
        eprintln!(
            "Stopped. {left} unfinished trials are checkpointed and {unstarted} are not started yet. Continue with: kiln resume {}",
            dir.display()
        );
        return Ok(INTERRUPTED);
    }
    if !options.quiet {
        // The top five, narrow enough for a terminal: the objective and the parameters.
        let table = report::leaderboard(&outcome.state, &spec);
        let summary = report::SUMMARY_COLUMNS;
        let skip: Vec<&str> = table
            .columns
            .iter()
            .map(String::as_str)
            .filter(|c| !summary.contains(c) && !spec.params.iter().any(|p| p == c))
            .collect();
        print!("{}", report::render(&table, Some(5), &skip));
        println!(
            "\nLeaderboard: {}  Curves: {}",
            dir.join("leaderboard.csv").display(),
            dir.join("curves.csv").display()
        );
    }
    Ok(0)
}

/// Where an experiment's trials run: burn training in worker processes of this executable;
/// synthetic functions, which take microseconds, on threads of this process.
fn execution(experiment: &Experiment) -> Result<Execution> {
    if experiment.settings.name("kind") == Some("function") {
        return Ok(Execution::Custom(Arc::new(FunctionObjective::new(
            experiment,
        ))));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::runtime(format!("cannot find the kiln executable: {e}")))?;
    Ok(Execution::BuiltIn { exe })
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
    let state = read_state(dir)?;
    let path = dir.join("experiment.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    Experiment::parse(&text, &path, &state.base_dir)
}

fn read_state(dir: &Path) -> Result<SweepState> {
    let journal = dir.join("journal.jsonl");
    if !journal.exists() {
        return Err(Error::input(format!(
            "{} holds no sweep (no journal.jsonl); start one with `kiln run EXPERIMENT.toml`",
            dir.display()
        )));
    }
    Ok(SweepState::replay(&FileJournal::read(&journal)?))
}

/// `kiln check`: validate an experiment, load its data, print the space and the plan.
pub fn check(file: &Path) -> Result<u8> {
    let experiment = Experiment::load(file)?;
    let (metrics, data) = match execution(&experiment)? {
        Execution::Custom(objective) => (objective.metrics(&experiment)?, None),
        Execution::BuiltIn { .. } => {
            let data = BurnObjective::new(experiment.clone()).data()?.clone();
            (metric_names(&data), Some(data))
        }
    };
    experiment.check_metrics(&metrics)?;
    let e = &experiment;
    println!("{}: {} is valid.\n", e.name, file.display());
    if let Some(function) = e.settings.name("function").filter(|_| data.is_none()) {
        println!("function   {function} (synthetic; reports `value` each epoch)");
    }
    if let (Some(spec), Some(data)) = (&e.data, &data) {
        let classes = if data.class_names.is_empty() {
            String::new()
        } else {
            format!(", {} classes", data.class_names.len())
        };
        let split = match &spec.split {
            SplitSpec::Fractions { .. } => "by seeded fractions",
            SplitSpec::Column(_) => "by column",
        };
        println!(
            "data       {}: {} features{classes}, {}\n           split {split}: train {}, val {}, test {}",
            spec.path.display(),
            data.n_features(),
            task_name(spec.task),
            data.train.rows,
            data.val.rows,
            data.test.as_ref().map_or(0, |t| t.rows)
        );
    }
    println!(
        "objective  {} {}  (reported: {})",
        e.objective.direction.name(),
        e.objective.metric,
        metrics.join(", ")
    );
    let sampler = match e.sampler.kind.as_str() {
        "grid" => format!(
            "grid sampler over {} points",
            experiment::grid_size(&e.space, e.sampler.points).unwrap_or(0)
        ),
        "tpe" => format!(
            "tpe sampler (seed {}; {} random trials first, gamma {}, {} candidates)",
            e.seed, e.sampler.startup_trials, e.sampler.gamma, e.sampler.candidates
        ),
        kind => format!("{kind} sampler (seed {})", e.seed),
    };
    println!(
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
        crate::pruner::describe(e)
    );
    if let Some(es) = &e.early_stopping {
        println!(
            "patience   stop a trial after {} epochs without {} improving by more than {}",
            es.patience, es.monitor, es.min_delta
        );
    }
    println!("\nspace ({} dimensions)", e.space.dimensions.len());
    for d in &e.space.dimensions {
        let points = d
            .points
            .map(|p| format!(", {p} grid points"))
            .unwrap_or_default();
        println!("  {:<16} {}{points}", d.name, d.distribution);
    }
    for section in [Section::Model, Section::Train] {
        println!(
            "\n[{}] resolved settings (searched ones show their default)",
            section.name()
        );
        for spec in SETTINGS.iter().filter(|s| s.section == section) {
            let value = e
                .settings
                .get(spec.name)
                .map_or("(none)".to_string(), |v| v.to_string());
            let origin = if e.space.names().any(|n| n == spec.name) {
                "searched"
            } else if e.fixed.contains_key(spec.name) {
                "set"
            } else {
                "default"
            };
            println!(
                "  {:<16} {:<12} {:<9} {}",
                spec.name, value, origin, spec.help
            );
        }
    }
    Ok(0)
}

/// `kiln leaderboard`: the leaderboard as a terminal table.
pub fn leaderboard(dir: &Path, top: Option<usize>) -> Result<u8> {
    let experiment = frozen_experiment(dir)?;
    let state = read_state(dir)?;
    let table = report::leaderboard(&state, &ReportSpec::of(&experiment));
    if table.rows.is_empty() {
        println!("No trial has ended yet in {}.", dir.display());
    } else {
        print!("{}", report::render(&table, top, &[]));
    }
    Ok(0)
}

/// `kiln plot`: redraw the SVG plots and `report.html` of a sweep.
pub fn plot(dir: &Path) -> Result<u8> {
    let experiment = frozen_experiment(dir)?;
    let state = read_state(dir)?;
    let files = report::plots::write(dir, &state, &ReportSpec::of(&experiment))?;
    for file in &files {
        println!("{}", file.display());
    }
    println!("{}", dir.join("report.html").display());
    Ok(0)
}

/// `kiln compare`: trials of one or several sweeps side by side, as CSV on stdout.
pub fn compare(dirs: &[PathBuf], filter: report::compare::Filter, curves: bool) -> Result<u8> {
    if let Some(state) = &filter.state
        && !["complete", "pruned", "failed"].contains(&state.as_str())
    {
        return Err(Error::input(format!(
            "--state `{state}`: use `complete`, `pruned` or `failed`"
        )));
    }
    let experiments: Vec<Experiment> = dirs
        .iter()
        .map(|d| frozen_experiment(d))
        .collect::<Result<_>>()?;
    let mut sweeps = Vec::new();
    for (dir, experiment) in dirs.iter().zip(&experiments) {
        let state = read_state(dir)?;
        let duplicate = experiments
            .iter()
            .filter(|e| e.name == experiment.name)
            .count()
            > 1;
        sweeps.push(report::compare::Sweep {
            name: if duplicate {
                dir.display().to_string()
            } else {
                experiment.name.clone()
            },
            state,
            spec: ReportSpec::of(experiment),
        });
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

/// `kiln status`: trials by state, the best so far, what is running or resumable.
pub fn status(dir: &Path) -> Result<u8> {
    let experiment = frozen_experiment(dir)?;
    let state = read_state(dir)?;
    let spec = ReportSpec::of(&experiment);
    let count = |s| state.count(TrialState::Ended(s));
    let budget = state.budget.unwrap_or(0);
    println!("sweep      {} in {}", state.name, dir.display());
    println!(
        "trials     {} of {budget}: {} complete, {} pruned, {} failed, {} unfinished",
        state.trials.len(),
        count(EndState::Complete),
        count(EndState::Pruned),
        count(EndState::Failed),
        state.unfinished().count()
    );
    match state.best(spec.metric, spec.direction) {
        Some((t, v)) => {
            let epoch = t
                .best_epoch(spec.metric, spec.direction)
                .map_or(0, |e| e.epoch);
            let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "best       trial {}: {} {v} at epoch {epoch} ({})",
                t.number,
                spec.metric,
                params.join(", ")
            );
        }
        None => println!("best       none yet"),
    }
    let ranked = report::importance(&state, &spec);
    if !ranked.rows.is_empty() {
        let shown: Vec<String> = ranked
            .rows
            .iter()
            .take(5)
            .map(|r| format!("{} {}", r[0], r[1]))
            .collect();
        println!(
            "importance {} (PED-ANOVA; importance.csv)",
            shown.join(", ")
        );
    }
    for t in state.unfinished() {
        println!(
            "unfinished trial {}: {} epochs reported, resumes from its checkpoint",
            t.number,
            t.epochs.len()
        );
    }
    let ago = crate::journal::now() - state.last_activity;
    println!(
        "activity   last event {} ago",
        crate::progress::format_duration(ago.max(0.0))
    );
    if let Some(holder) = crate::lock::holder(dir) {
        println!("running    yes ({holder})");
    } else if state.unfinished().count() > 0 || (state.trials.len() as u64) < budget {
        println!(
            "running    no; continue with: kiln resume {}",
            dir.display()
        );
    }
    Ok(0)
}

/// `kiln predict`: predictions of a trial's best weights for the rows of a CSV.
pub fn predict(dir: &Path, trial: &str, data: &Path, out: Option<&Path>) -> Result<u8> {
    let state = read_state(dir)?;
    let number = match trial {
        "best" => {
            let experiment = frozen_experiment(dir)?;
            let spec = ReportSpec::of(&experiment);
            state
                .best(spec.metric, spec.direction)
                .map(|(t, _)| t.number)
                .ok_or_else(|| {
                    Error::input(format!("{} has no complete trial yet", dir.display()))
                })?
        }
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
    let trial_dir = dir.join("trials").join(number.to_string());
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
pub fn worker_process(experiment_file: &Path, base_dir: &Path) -> Result<u8> {
    worker::become_worker_process();
    let text = std::fs::read_to_string(experiment_file)
        .map_err(|e| Error::runtime(format!("{}: {e}", experiment_file.display())))?;
    let experiment = Experiment::parse(&text, experiment_file, base_dir)?;
    let objective = BurnObjective::new(experiment.clone());
    worker::serve(&objective, &experiment, &mut worker::StdioLink::default());
    Ok(0)
}
