//! The `kiln` command line: parses arguments and calls its commands. A program of your
//! own gets the same command line, with its own objectives, from one call:
//!
//! ```no_run
//! # struct Mine;
//! # impl kiln::Objective for Mine {
//! #     fn metrics(&self, _: &kiln::Experiment) -> kiln::Result<Vec<String>> { Ok(vec![]) }
//! #     fn run(&self, _: &mut kiln::Trial<'_>) -> Result<kiln::TrialSummary, kiln::TrialError> { Ok(Default::default()) }
//! # }
//! fn main() -> std::process::ExitCode {
//!     kiln::cli::main(kiln::Objectives::builtin().with("mine", Mine))
//! }
//! ```
//!
//! Its trials then run in worker processes of that same program (`PROGRAM __worker`).

mod check;
mod folder;
mod read;
mod run;

use crate::objective::registry::Objectives;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Hyperparameter sweeps for burn models: one TOML file in, trained trials and CSV leaderboards out.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = "Start with:\n  kiln check experiments/quickstart.toml\n  kiln run experiments/quickstart.toml\n  kiln leaderboard results/quickstart")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a sweep (or continue it, if the results folder holds the same experiment).
    #[command(
        after_help = "Example:\n  kiln run experiments/digits.toml --workers 2\n\nWrites results/<name>/ (leaderboard.csv, curves.csv, journal.jsonl, trials/N/). Ctrl-C stops the running trials after their current epoch, checkpointed; `kiln resume` continues."
    )]
    Run {
        /// The experiment file.
        experiment: PathBuf,
        /// Results folder [default: results/<name>]; with --storage, where the sweep is exported when it ends.
        #[arg(long)]
        results: Option<PathBuf>,
        /// Keep the sweep in PostgreSQL (postgres://USER@HOST:PORT/DATABASE; password from PGPASSWORD), where `kiln worker` on other machines can join it [default: the file's [storage] url]. With --workers 0, only create the sweep, for `kiln worker`s to train.
        #[arg(long)]
        storage: Option<String>,
        /// The shared sweep's name [default: the experiment's name].
        #[arg(long, requires = "storage", value_parser = sweep_name)]
        sweep_name: Option<String>,
        /// With --storage: seconds a silent worker keeps its trials before others take them over.
        #[arg(long, default_value_t = 60.0, value_parser = positive_seconds)]
        lease: f64,
        #[command(flatten)]
        sweep: SweepArgs,
    },
    /// Join a sweep kept in PostgreSQL and train its trials, from any machine.
    #[command(
        after_help = "Example:\n  kiln run --storage postgres://kiln@db:5432/kiln experiments/digits.toml --workers 2\n  # on any other machine:\n  PGPASSWORD=... kiln worker --storage postgres://kiln@db:5432/kiln --sweep digits-mlp --workers 16\n\nEach trial is claimed by exactly one worker, which renews its lease while it trains. A worker silent for longer than the lease (killed, cut off) loses its trials to the others, which continue them from their last checkpoint (kept in the database). A worker exits when no trial is left to run."
    )]
    Worker {
        #[command(flatten)]
        shared: SharedArgs,
        /// Seconds a silent worker keeps its trials before others take them over.
        #[arg(long, default_value_t = 60.0, value_parser = positive_seconds)]
        lease: f64,
        /// Trials trained at once [default: the file's [budget] workers, else all cores].
        #[arg(long)]
        workers: Option<usize>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Write a sweep kept in PostgreSQL as a results folder, like a local sweep's.
    #[command(
        after_help = "Example:\n  kiln export --storage postgres://kiln@db/kiln --sweep digits-mlp results/digits-mlp\n\nWrites journal.jsonl, experiment.toml, leaderboard.csv, curves.csv, plots and trials/N/ (best.bpk, model.json), so `kiln predict` and your own code can use them."
    )]
    Export {
        #[command(flatten)]
        shared: SharedArgs,
        /// The folder to write.
        dir: PathBuf,
    },
    /// Continue an interrupted sweep exactly where it stopped.
    #[command(
        after_help = "Example:\n  kiln resume results/digits-mlp --trials 60\n  kiln resume results/digits-mlp --trials 60 --no-stop-rules   (a sweep [budget] target or no_improvement stopped)\n\nFinished trials are not rerun; unfinished ones continue from their last checkpoint."
    )]
    Resume {
        /// The results folder.
        dir: PathBuf,
        #[command(flatten)]
        sweep: SweepArgs,
        /// Run on past [budget] target, no_improvement and regret_bound (this run only).
        #[arg(long)]
        no_stop_rules: bool,
    },
    /// Run a sweep's failed trials again (after you fixed their cause), then go on.
    #[command(
        after_help = "Examples:\n  kiln retry results/digits-mlp\n  kiln retry results/digits-mlp --trials 3,7\n\nEach trial keeps its number, parameters and seed, and continues from its last checkpoint; the leaderboard shows how it ends this time. Then the sweep goes on to its budget, like `kiln resume`."
    )]
    Retry {
        /// The results folder.
        dir: PathBuf,
        /// The failed trials to run again [default: every failed trial].
        #[arg(long, value_delimiter = ',')]
        trials: Option<Vec<u64>>,
        /// Trials trained at once [default: the file's [budget] workers, else all cores].
        #[arg(long)]
        workers: Option<usize>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate an experiment file and its data; print the space and the plan.
    #[command(after_help = "Example:\n  kiln check experiments/digits.toml")]
    Check {
        /// The experiment file.
        experiment: PathBuf,
    },
    /// Show the leaderboard of a sweep as a table.
    #[command(after_help = "Example:\n  kiln leaderboard results/digits-mlp --top 10")]
    Leaderboard {
        /// The results folder (or --storage URL --sweep NAME).
        dir: Option<PathBuf>,
        #[command(flatten)]
        shared: SharedSource,
        /// Show only the best K trials.
        #[arg(long)]
        top: Option<usize>,
        /// Every column, however wide (by default a terminal shows what fits its width:
        /// the result and the parameters first).
        #[arg(long)]
        wide: bool,
    },
    /// Trials of one or several sweeps side by side, as CSV on stdout.
    #[command(
        after_help = "Examples:\n  kiln compare results/digits-mlp results/digits-cnn --top 5 > best.csv\n  kiln compare results/digits-mlp --sort val_loss --state complete\n  kiln compare results/digits-mlp --trials 3,7 --curves > curves.csv\n\nColumns: `sweep`, then the leaderboard's (a parameter a sweep does not search is empty). Without --sort, rows keep each sweep's ranking and --top keeps each sweep's best K; with --sort, the best K overall. --curves puts the chosen trials' per-epoch metrics side by side."
    )]
    Compare {
        /// Results folders.
        dirs: Vec<PathBuf>,
        /// A PostgreSQL database holding the sweeps named by --sweep.
        #[arg(long)]
        storage: Option<String>,
        /// Sweeps in --storage to compare (repeat for several).
        #[arg(long, requires = "storage", value_parser = sweep_name)]
        sweep: Vec<String>,
        /// Keep the best K trials.
        #[arg(long)]
        top: Option<usize>,
        /// Sort by this column, best first.
        #[arg(long)]
        sort: Option<String>,
        /// Keep only trials in this state: complete, pruned or failed.
        #[arg(long)]
        state: Option<String>,
        /// Keep only these trial numbers, e.g. 3,7.
        #[arg(long, value_delimiter = ',')]
        trials: Option<Vec<u64>>,
        /// Per-epoch metrics of the chosen trials instead, one column per trial and metric.
        #[arg(long)]
        curves: bool,
    },
    /// Draw the sweep's plots (SVG, in DIR/plots/) and DIR/report.html.
    #[command(
        after_help = "Example:\n  kiln plot results/digits-mlp && xdg-open results/digits-mlp/report.html\n\nhistory.svg, curves.svg (the objective per epoch of the top trials), param_<name>.svg, parallel.svg, importance.svg; report.html holds them all inline. kiln run and kiln resume redraw them when they end. For a live view while a sweep runs: kiln dashboard DIR."
    )]
    Plot {
        /// The results folder (or --storage URL --sweep NAME: exported to results/NAME first).
        dir: Option<PathBuf>,
        #[command(flatten)]
        shared: SharedSource,
    },
    /// Queue a configuration: the sweep's next new trial takes these values (the rest sampled).
    #[command(
        after_help = "Examples:\n  kiln enqueue results/digits-mlp learning_rate=0.003 batch_size=64\n  kiln resume results/digits-mlp --trials 41      (a finished sweep: one more trial, the queued one)\n  kiln enqueue --storage postgres://kiln@db/kiln --sweep digits-mlp learning_rate=0.003\n\nEach value must be one the [space] key allows. A sweep running in DIR takes it as its next new trial; otherwise it is journaled for the next `kiln resume` (raise --trials if the budget is spent). The experiment's own [[enqueue]] tables come first."
    )]
    Enqueue {
        /// The results folder, then KEY=VALUE pairs of [space] keys (with --storage, the pairs
        /// alone).
        #[arg(required = true, value_name = "DIR KEY=VALUE")]
        args: Vec<String>,
        #[command(flatten)]
        shared: SharedSource,
    },
    /// A live web page of sweeps: leaderboard, plots, curves that grow as trials train.
    #[command(
        after_help = "Examples:\n  kiln dashboard results/digits-mlp\n  kiln dashboard results                     (every sweep in results/)\n  kiln dashboard --storage postgres://kiln@db.example/kiln --sweep digits-mlp\n\nOpen the address it prints. It only reads: the sweeps may be running (here or on other machines), and a new epoch or trial shows within 2 s. The same data is served as JSON under /api/ (see the README). It listens on 127.0.0.1 unless --host says otherwise; it has no login. Ctrl-C stops it."
    )]
    Dashboard {
        /// Results folders, or folders of them.
        dirs: Vec<PathBuf>,
        /// A PostgreSQL database holding the sweeps named by --sweep.
        #[arg(long)]
        storage: Option<String>,
        /// Sweeps in --storage to show (repeat for several).
        #[arg(long, requires = "storage", value_parser = sweep_name)]
        sweep: Vec<String>,
        /// The address to listen on; anything but loopback lets other machines read the sweeps.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// The port (0: any free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Trials by state, the best so far, and what is running or resumable.
    #[command(after_help = "Example:\n  kiln status results/digits-mlp")]
    Status {
        /// The results folder (or --storage URL --sweep NAME).
        dir: Option<PathBuf>,
        #[command(flatten)]
        shared: SharedSource,
    },
    /// Predict rows of a CSV with a trial's best weights (and its preprocessing).
    #[command(
        after_help = "Example:\n  kiln predict results/digits-mlp --trial best --data new_rows.csv --out predictions.csv\n\nWrites `prediction` (class name or value) and, for classification, `prob_<class>` per row."
    )]
    Predict {
        /// The results folder.
        dir: PathBuf,
        /// A trial number, or `best`.
        #[arg(long, default_value = "best")]
        trial: String,
        /// A CSV with (at least) the model's feature columns.
        #[arg(long)]
        data: PathBuf,
        /// Where to write the predictions [default: stdout].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Shell completions, on stdout: bash, zsh, fish, powershell or elvish.
    #[command(
        after_help = "Examples:\n  kiln completions bash > ~/.local/share/bash-completion/completions/kiln\n  kiln completions zsh > \"${fpath[1]}/_kiln\"\n  kiln completions fish > ~/.config/fish/completions/kiln.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The manual page (roff), on stdout.
    #[command(after_help = "Example:\n  kiln man > ~/.local/share/man/man1/kiln.1 && man kiln")]
    Man,
    /// Internal: a worker process started by `kiln run`.
    #[command(name = "__worker", hide = true)]
    TrialWorker {
        #[arg(long)]
        experiment: PathBuf,
        #[arg(long)]
        base_dir: PathBuf,
    },
}

/// The name this program was started by (`kiln`, or a program of your own).
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg| {
            std::path::Path::new(&arg)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
        })
        .unwrap_or_else(|| "kiln".to_string())
}

/// A sweep in PostgreSQL, required.
#[derive(clap::Args)]
struct SharedArgs {
    /// postgres://USER@HOST:PORT/DATABASE (password from PGPASSWORD).
    #[arg(long)]
    storage: String,
    /// The sweep's name (its experiment's `name`, unless started with --sweep-name).
    #[arg(long, value_parser = sweep_name)]
    sweep: String,
}

/// A sweep in PostgreSQL, instead of a results folder.
#[derive(clap::Args)]
struct SharedSource {
    /// Read the sweep from PostgreSQL: postgres://USER@HOST:PORT/DATABASE.
    #[arg(long, requires = "sweep")]
    storage: Option<String>,
    /// The sweep's name in --storage.
    #[arg(long, requires = "storage", value_parser = sweep_name)]
    sweep: Option<String>,
}

/// A sweep name on the command line: the same rule as the file's `name`.
fn sweep_name(name: &str) -> Result<String, String> {
    crate::experiment::check_name(name).map(|_| name.to_string())
}

/// Seconds that must be more than zero (a lease of 0 s would be lost at once).
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!(
            "`{text}` is not a number of seconds above 0, e.g. 60"
        )),
    }
}

fn storage(url: String, sweep: Option<String>, lease: f64) -> crate::store::Storage {
    crate::store::Storage {
        url,
        sweep,
        lease: std::time::Duration::from_secs_f64(lease),
    }
}

/// The sweeps of commands that read several: results folders, then `--sweep`s in `--storage`.
fn sources(dirs: Vec<PathBuf>, url: Option<String>, sweeps: Vec<String>) -> Vec<folder::Source> {
    let mut sources: Vec<folder::Source> = dirs.into_iter().map(folder::Source::Folder).collect();
    if let Some(url) = url {
        sources.extend(
            sweeps
                .into_iter()
                .map(|name| folder::Source::Database(storage(url.clone(), Some(name), 60.0))),
        );
    }
    sources
}

impl SharedSource {
    fn source(self, dir: Option<PathBuf>) -> crate::Result<folder::Source> {
        let shared = self.storage.map(|url| storage(url, self.sweep, 60.0));
        folder::Source::of(dir, shared)
    }
}

/// Options of `run` and `resume`.
#[derive(clap::Args)]
struct SweepArgs {
    /// Trials trained at once [default: the file's [budget] workers, else all cores].
    #[arg(long)]
    workers: Option<usize>,
    /// Total trials; on resume, raises the budget [default: the file's [budget] trials].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    trials: Option<u64>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

/// Parses the command line and runs the command, with `objectives` the ones the experiment
/// file's `[objective] kind` may name; returns the exit code.
pub fn main(objectives: Objectives) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    crate::logging::init();
    match execute(cli.command, &objectives) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the commands that train or check an experiment; the others read.
fn execute(command: Command, objectives: &Objectives) -> crate::Result<u8> {
    match command {
        Command::Run {
            experiment,
            results,
            storage: url,
            sweep_name,
            lease,
            sweep,
        } => run::run(
            objectives,
            &experiment,
            results,
            url.map(|url| storage(url, sweep_name, lease)),
            sweep.workers,
            sweep.trials,
            sweep.quiet,
        ),
        Command::Worker {
            shared,
            lease,
            workers,
            quiet,
        } => run::worker(
            objectives,
            storage(shared.storage, Some(shared.sweep), lease),
            workers,
            quiet,
        ),
        Command::Export { shared, dir } => {
            run::export(&storage(shared.storage, Some(shared.sweep), 60.0), &dir)
        }
        Command::Resume {
            dir,
            sweep,
            no_stop_rules,
        } => {
            let how = run::Continue {
                workers: sweep.workers,
                trials: sweep.trials,
                quiet: sweep.quiet,
                retry: crate::sweep::Retry::Nothing,
                lift_stop_rules: no_stop_rules,
            };
            run::resume(objectives, &dir, how)
        }
        Command::Retry {
            dir,
            trials,
            workers,
            quiet,
        } => {
            let retry = match trials {
                Some(numbers) => crate::sweep::Retry::Trials(numbers),
                None => crate::sweep::Retry::Failed,
            };
            let how = run::Continue {
                workers,
                trials: None,
                quiet,
                retry,
                lift_stop_rules: false,
            };
            run::resume(objectives, &dir, how)
        }
        Command::Check { experiment } => check::check(objectives, &experiment),
        Command::TrialWorker {
            experiment,
            base_dir,
        } => run::worker_process(objectives, &experiment, &base_dir),
        other => read_only(other),
    }
}

/// Runs the commands that read sweeps, and those that print about kiln itself.
fn read_only(command: Command) -> crate::Result<u8> {
    match command {
        Command::Leaderboard {
            dir,
            shared,
            top,
            wide,
        } => shared
            .source(dir)
            .and_then(|source| read::leaderboard(&source, top, wide)),
        Command::Status { dir, shared } => {
            shared.source(dir).and_then(|source| read::status(&source))
        }
        Command::Plot { dir, shared } => shared.source(dir).and_then(|source| read::plot(&source)),
        Command::Compare {
            dirs,
            storage: url,
            sweep,
            top,
            sort,
            state,
            trials,
            curves,
        } => {
            let filter = crate::report::compare::Filter {
                state,
                trials,
                sort,
                top,
            };
            let sources = sources(dirs, url, sweep);
            if sources.is_empty() {
                Err(crate::Error::input(
                    "give results folders to compare, or --storage URL --sweep NAME",
                ))
            } else {
                read::compare(&sources, filter, curves)
            }
        }
        Command::Enqueue { mut args, shared } => {
            // Without --storage the first argument is the results folder.
            let dir = (shared.storage.is_none()).then(|| PathBuf::from(args.remove(0)));
            shared
                .source(dir)
                .and_then(|source| read::enqueue(&source, &args))
        }
        Command::Dashboard {
            dirs,
            storage: url,
            sweep,
            host,
            port,
        } => read::dashboard(&sources(dirs, url, sweep), host, port),
        Command::Predict {
            dir,
            trial,
            data,
            out,
        } => read::predict(&dir, &trial, &data, out.as_deref()),
        Command::Completions { shell } => Ok(completions(shell)),
        Command::Man => manual(),
        Command::Run { .. }
        | Command::Worker { .. }
        | Command::Export { .. }
        | Command::Resume { .. }
        | Command::Retry { .. }
        | Command::Check { .. }
        | Command::TrialWorker { .. } => unreachable!("run by `execute`"),
    }
}

/// `kiln completions SHELL`, named after the program that runs: a program built on kiln
/// completes its own name.
fn completions(shell: clap_complete::Shell) -> u8 {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, program_name(), &mut out);
    crate::output::text(&String::from_utf8_lossy(&out));
    0
}

/// `kiln man`: the manual page, in roff.
fn manual() -> crate::Result<u8> {
    let mut out = Vec::new();
    let name = program_name();
    clap_mangen::Man::new(Cli::command().display_name(name.clone()).bin_name(name))
        .render(&mut out)
        .map_err(|e| crate::Error::runtime(format!("cannot write the manual: {e}")))?;
    crate::output::text(&String::from_utf8_lossy(&out));
    Ok(0)
}
