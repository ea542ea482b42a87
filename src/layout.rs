//! Where a results folder keeps its files. Every path into a results folder is made here,
//! so a name is written once.
//!
//! ```text
//! DIR/experiment.toml   the experiment, frozen when the sweep started
//! DIR/journal.jsonl     the journal: the sweep's one source of truth
//! DIR/kiln.lock         held by the process that sweeps DIR
//! DIR/kiln.log          what that process logged
//! DIR/leaderboard.csv, curves.csv, importance.csv, report.html, plots/
//! DIR/trials/N/         trial N's files: checkpoints, best.bpk, model.json, its own
//! DIR/queue/            configurations `kiln enqueue` left for the sweep running there
//! ```

use std::path::{Path, PathBuf};

/// The frozen experiment's file name.
pub const EXPERIMENT: &str = "experiment.toml";
/// The journal's file name.
pub const JOURNAL: &str = "journal.jsonl";
/// The lock's file name.
pub const LOCK: &str = "kiln.lock";
/// The log's file name.
pub const LOG: &str = "kiln.log";
/// The leaderboard's file name.
pub const LEADERBOARD: &str = "leaderboard.csv";
/// The curves' file name.
pub const CURVES: &str = "curves.csv";
/// The importance table's file name.
pub const IMPORTANCE: &str = "importance.csv";

/// The files a sweep's start writes before it records anything.
pub const STARTING_FILES: [&str; 4] = [EXPERIMENT, JOURNAL, LOCK, LOG];

/// Whether every one of `files` was written after the journal of `dir` last changed. The
/// reports are a pure function of the journal, so such files need not be written again; a
/// journal appended to since, or a file missing, says they must. (Strictly after: a file
/// written in the same clock tick as the journal counts as stale.)
pub fn newer_than_journal(dir: &Path, files: &[PathBuf]) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(journal) = modified(&journal(dir)) else {
        return false;
    };
    files
        .iter()
        .all(|file| modified(file).is_some_and(|t| t > journal))
}

/// The frozen experiment of results folder `dir`.
pub fn experiment(dir: &Path) -> PathBuf {
    dir.join(EXPERIMENT)
}

/// The journal of `dir`.
pub fn journal(dir: &Path) -> PathBuf {
    dir.join(JOURNAL)
}

/// The lock of `dir`.
pub fn lock(dir: &Path) -> PathBuf {
    dir.join(LOCK)
}

/// The log of `dir`.
pub fn log(dir: &Path) -> PathBuf {
    dir.join(LOG)
}

/// The folder of the trial folders of `dir`.
pub fn trials(dir: &Path) -> PathBuf {
    dir.join("trials")
}

/// Trial `number`'s folder in `dir`.
pub fn trial(dir: &Path, number: u64) -> PathBuf {
    trials(dir).join(number.to_string())
}

/// The plots' folder of `dir`.
pub fn plots(dir: &Path) -> PathBuf {
    dir.join("plots")
}

/// The marker of a folder exported from a shared sweep: which sweep, from where.
pub fn exported_from(dir: &Path) -> PathBuf {
    dir.join("exported-from")
}

/// Where `kiln enqueue` leaves configurations for the process sweeping `dir`, which journals
/// them and removes the files.
pub fn queue(dir: &Path) -> PathBuf {
    dir.join("queue")
}

/// The report page of `dir`.
pub fn report(dir: &Path) -> PathBuf {
    dir.join("report.html")
}
