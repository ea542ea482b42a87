//! The `kiln` command line: parses arguments and calls the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        after_help = "Example:\n  kiln run experiments/digits.toml --workers 2\n\nWrites results/<name>/ (leaderboard.csv, curves.csv, journal.jsonl, trials/N/). Ctrl-C stops after the running trials' next checkpoint; `kiln resume` continues."
    )]
    Run {
        /// The experiment file.
        experiment: PathBuf,
        /// Results folder [default: results/<name>].
        #[arg(long)]
        results: Option<PathBuf>,
        #[command(flatten)]
        sweep: SweepArgs,
    },
    /// Continue an interrupted sweep exactly where it stopped.
    #[command(
        after_help = "Example:\n  kiln resume results/digits-mlp --trials 60\n\nFinished trials are not rerun; unfinished ones continue from their last checkpoint."
    )]
    Resume {
        /// The results folder.
        dir: PathBuf,
        #[command(flatten)]
        sweep: SweepArgs,
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
        /// The results folder.
        dir: PathBuf,
        /// Show only the best K trials.
        #[arg(long)]
        top: Option<usize>,
    },
    /// Trials of one or several sweeps side by side, as CSV on stdout.
    #[command(
        after_help = "Examples:\n  kiln compare results/digits-mlp results/digits-cnn --top 5 > best.csv\n  kiln compare results/digits-mlp --sort val_loss --state complete\n  kiln compare results/digits-mlp --trials 3,7 --curves > curves.csv\n\nColumns: `sweep`, then the leaderboard's (a parameter a sweep does not search is empty). Without --sort, rows keep each sweep's ranking and --top keeps each sweep's best K; with --sort, the best K overall. --curves puts the chosen trials' per-epoch metrics side by side."
    )]
    Compare {
        /// Results folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
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
        after_help = "Example:\n  kiln plot results/digits-mlp && xdg-open results/digits-mlp/report.html\n\nhistory.svg, curves.svg (top trials' train and val loss), param_<name>.svg, parallel.svg, importance.svg. kiln run and kiln resume redraw them when they end."
    )]
    Plot {
        /// The results folder.
        dir: PathBuf,
    },
    /// Trials by state, the best so far, and what is running or resumable.
    #[command(after_help = "Example:\n  kiln status results/digits-mlp")]
    Status {
        /// The results folder.
        dir: PathBuf,
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
    /// Internal: a worker process started by `kiln run`.
    #[command(name = "__worker", hide = true)]
    Worker {
        #[arg(long)]
        experiment: PathBuf,
        #[arg(long)]
        base_dir: PathBuf,
    },
}

/// Options of `run` and `resume`.
#[derive(clap::Args)]
struct SweepArgs {
    /// Trials trained at once [default: the file's [budget] workers, else all cores].
    #[arg(long)]
    workers: Option<usize>,
    /// Total trials; on resume, raises the budget [default: the file's [budget] trials].
    #[arg(long)]
    trials: Option<u64>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    kiln::logging::init();
    let result = match cli.command {
        Command::Run {
            experiment,
            results,
            sweep,
        } => kiln::commands::run(
            &experiment,
            results,
            sweep.workers,
            sweep.trials,
            sweep.quiet,
        ),
        Command::Resume { dir, sweep } => {
            kiln::commands::resume(&dir, sweep.workers, sweep.trials, sweep.quiet)
        }
        Command::Check { experiment } => kiln::commands::check(&experiment),
        Command::Leaderboard { dir, top } => kiln::commands::leaderboard(&dir, top),
        Command::Status { dir } => kiln::commands::status(&dir),
        Command::Plot { dir } => kiln::commands::plot(&dir),
        Command::Compare {
            dirs,
            top,
            sort,
            state,
            trials,
            curves,
        } => {
            let filter = kiln::report::compare::Filter {
                state,
                trials,
                sort,
                top,
            };
            kiln::commands::compare(&dirs, filter, curves)
        }
        Command::Predict {
            dir,
            trial,
            data,
            out,
        } => kiln::commands::predict(&dir, &trial, &data, out.as_deref()),
        Command::Worker {
            experiment,
            base_dir,
        } => kiln::commands::worker_process(&experiment, &base_dir),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
