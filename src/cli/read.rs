//! The commands that only read a sweep: leaderboard, status, plot, compare, enqueue (which
//! adds a queue file or a journaled configuration), dashboard and predict.

#[cfg(feature = "postgres")]
use super::folder::open_shared;
use super::folder::{Source, folder_sweep, frozen_experiment};
use super::run::{export, write_stdout};
use crate::error::{Context, Error, Result};
use crate::experiment::Experiment;
use crate::journal::{Event, FileJournal};
use crate::layout;
use crate::output::pasteable;
use crate::report::{self, ReportSpec};
use crate::state::{SweepState, TrialState};
use crate::trial::EndState;
use std::path::{Path, PathBuf};

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
            let program = crate::output::program();
            crate::tell!(
                "Queued {shown} for the next new trial of {}. Raise the budget with `{program} run EXPERIMENT.toml --storage URL --trials N` if it is spent.",
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
                    " The budget of {budget} trials is spent: run it with `{} resume {} --trials {}`.",
                    crate::output::program(),
                    pasteable(dir),
                    budget + 1
                )
            } else {
                format!(
                    " `{} resume {}` runs it.",
                    crate::output::program(),
                    pasteable(dir)
                )
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
            let program = crate::output::program();
            eprintln!(
                "Waiting for a sweep to start in {} (`{program} run EXPERIMENT.toml --results {}`); Ctrl-C stops",
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
        let program = crate::output::program();
        return Err(Error::input(format!(
            "{} holds no sweep (no journal.jsonl in it or in its subfolders); start one with `{program} run EXPERIMENT.toml`",
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
    print_results(&state, &spec);
    print_unfinished(source, &state)?;
    let ago = crate::journal::now() - state.last_activity;
    crate::say!(
        "activity   last event {} ago",
        crate::progress::format_duration(ago.max(0.0))
    );
    let Source::Folder(dir) = source else {
        return Ok(0);
    };
    print_disk(dir, &state);
    if let Some(holder) = crate::lock::holder(dir) {
        crate::say!("running    yes ({holder})");
    } else if let Some(hint) = super::folder::when_complete(dir, &state, None) {
        crate::say!("running    no; {hint}");
    } else if let Some(stop) = crate::stopping::fired(&experiment.budget.stop, &state, &spec)
        && state.unfinished().count() == 0
    {
        let said = super::folder::stopped_early(dir, &stop.describe(spec.metric));
        crate::say!("running    no; {said}");
    } else {
        crate::say!(
            "running    no; continue with: {} resume {}",
            crate::output::program(),
            pasteable(dir)
        );
    }
    Ok(0)
}

/// `kiln status`'s line on the folder's size, and each trial's share of it.
fn print_disk(dir: &Path, state: &SweepState) {
    let trials = crate::files::folder_size(&layout::trials(dir));
    let others = (std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.path() != layout::trials(dir))
        .map(|e| match e.file_type() {
            Ok(kind) if kind.is_dir() => crate::files::folder_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        });
    let total = trials + others.sum::<u64>();
    let per_trial = match state.trials.len() as u64 {
        0 => String::new(),
        n => format!(
            " ({} a trial in trials/)",
            crate::files::for_people(trials / n)
        ),
    };
    crate::say!("disk       {}{per_trial}", crate::files::for_people(total));
}

/// `kiln status`'s lines on results: the best trial, the Pareto front, importance.
fn print_results(state: &SweepState, spec: &ReportSpec<'_>) {
    match report::best(state, spec) {
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
        let (ranked, fronts) = report::ranked_with_fronts(state, spec);
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
    let ranked = report::importance(state, spec);
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
}

/// `kiln status`'s line for each unfinished trial: running (on a worker that holds its
/// lease) or waiting to resume.
fn print_unfinished(source: &Source, state: &SweepState) -> Result<()> {
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
    Ok(())
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
    if trial == "best" {
        crate::tell!("predicting with trial {number}, the leaderboard's rank 1");
    }
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
