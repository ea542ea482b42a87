//! The journal: an append-only log of [`Event`]s, the single source of truth of a sweep.
//!
//! Every fact about a sweep (it started, a trial was created with these parameters, epoch 3
//! reported these metrics, the trial ended) is an event. The sweep's state is always a fold over
//! the events ([`crate::state::SweepState::replay`]); nothing else is stored. Resuming is reading
//! the journal again. A backend only needs to append in a total order and read from a position,
//! which a file does for one machine and a database table can do for many.

mod file;
#[cfg(feature = "postgres")]
mod postgres;

pub use file::{FileJournal, Grown, Tail, lines};
#[cfg(feature = "postgres")]
pub use postgres::{PgJournal, StoredSweep};

use crate::error::Result;
use crate::space::Params;
use crate::trial::{EndState, Metrics};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One fact about a sweep. `time` is seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The sweep was created.
    SweepStarted {
        /// The experiment's name.
        name: String,
        /// Fingerprint of the experiment (all but `[budget]`).
        fingerprint: String,
        /// The sweep seed.
        seed: u64,
        /// The folder relative paths of the experiment resolve against.
        base_dir: PathBuf,
        /// The results folder, relative to `base_dir`, when it lies inside it: a copied or
        /// moved project then resolves against where it is now (journals of earlier versions,
        /// and results kept elsewhere, lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        results: Option<PathBuf>,
        /// A fingerprint of the objective's data (the built-in trainer's CSV): a sweep
        /// continues only on the same data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        /// The kiln version that created it.
        kiln_version: String,
        /// The sampler a file without `[sampler] kind` gets in this sweep: kiln's default
        /// when it started (journals of earlier versions, whose default was `random`, lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default_sampler: Option<String>,
        /// The experiment file's text, to say what changed when `experiment.toml` no longer
        /// matches the fingerprint (journals of earlier versions lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment: Option<String>,
        /// When.
        time: f64,
    },
    /// The trial budget was set (at start, or raised on resume).
    BudgetSet {
        /// Total trials.
        trials: u64,
        /// When.
        time: f64,
    },
    /// A trial was created with its parameters; it is handed to a worker next.
    TrialCreated {
        /// Trial number, from 0 in creation order.
        trial: u64,
        /// The trial's seed.
        seed: u64,
        /// Its sampled parameters.
        params: Params,
        /// Whether it is the next configuration of the queue (`[[enqueue]]`, `kiln enqueue`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        queued: bool,
        /// When.
        time: f64,
    },
    /// A configuration was queued by `kiln enqueue`: the next trial created takes its values
    /// (after the experiment's own `[[enqueue]]` ones).
    TrialEnqueued {
        /// The given parameters; the others are sampled.
        params: Params,
        /// When.
        time: f64,
        /// The queue file it was taken from (by a running sweep), if any: a file already
        /// journaled is never taken twice, also when a kill left it behind.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
    },
    /// A worker started (or restarted) a trial.
    TrialStarted {
        /// Trial number.
        trial: u64,
        /// Epochs already in the journal when it started.
        from_epoch: u32,
        /// Which worker.
        worker: String,
        /// When.
        time: f64,
    },
    /// A trial finished an epoch (and, when `checkpointed`, saved a checkpoint of it first).
    EpochReported {
        /// Trial number.
        trial: u64,
        /// Epoch, from 1.
        epoch: u32,
        /// Training time of the trial up to the end of this epoch, across resumes.
        elapsed_s: f64,
        /// Learning rate used in this epoch, when the objective reports one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
        /// The metrics (finite values only).
        metrics: Metrics,
        /// Whether a checkpoint of this epoch was written before this event.
        checkpointed: bool,
        /// When.
        time: f64,
    },
    /// A failed trial is to run again (`kiln retry`): it is unfinished once more, with its
    /// number, seed, parameters and the epochs the journal holds, and continues from its last
    /// checkpoint like any unfinished trial.
    TrialReopened {
        /// Trial number.
        trial: u64,
        /// Why it ended before, kept for the record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        was: Option<String>,
        /// When.
        time: f64,
    },
    /// A trial ended; nothing about it changes afterwards, unless a failed one is reopened.
    TrialFinished {
        /// Trial number.
        trial: u64,
        /// How it ended.
        state: EndState,
        /// Why it failed or was pruned.
        note: Option<String>,
        /// The model's parameter count, when the objective knows it.
        n_params: Option<u64>,
        /// Metrics measured once, as the trial ended (the built-in trainer's test metrics,
        /// with the best epoch's weights); none in journals of kiln 0.1.
        #[serde(default, skip_serializing_if = "Metrics::is_empty")]
        metrics: Metrics,
        /// When.
        time: f64,
    },
}

impl Event {
    /// The trial this event is about, if any.
    pub fn trial(&self) -> Option<u64> {
        match self {
            Event::SweepStarted { .. } | Event::BudgetSet { .. } | Event::TrialEnqueued { .. } => {
                None
            }
            Event::TrialCreated { trial, .. }
            | Event::TrialStarted { trial, .. }
            | Event::EpochReported { trial, .. }
            | Event::TrialReopened { trial, .. }
            | Event::TrialFinished { trial, .. } => Some(*trial),
        }
    }

    /// When it was appended (seconds since the Unix epoch).
    pub fn time(&self) -> f64 {
        match self {
            Event::SweepStarted { time, .. }
            | Event::BudgetSet { time, .. }
            | Event::TrialEnqueued { time, .. }
            | Event::TrialCreated { time, .. }
            | Event::TrialStarted { time, .. }
            | Event::EpochReported { time, .. }
            | Event::TrialReopened { time, .. }
            | Event::TrialFinished { time, .. } => *time,
        }
    }

    /// Whether this event is synced to disk as it is appended: only those that start a sweep
    /// or change its budget. Trial events come many times a second, so the orchestrator syncs
    /// them in groups, at most [`GROUP_COMMIT`] after they are written, and always before it
    /// exits. A killed process loses nothing (its writes are in the kernel's cache); a power cut
    /// can lose the last [`GROUP_COMMIT`] of events, and the resumed sweep redoes that work to
    /// the same result, every trial being a pure function of its seed (a lost trial creation
    /// is made again with the same parameters; a lost epoch is trained again from an earlier
    /// checkpoint). A synced append waits for the disk; two per trial would be most of the cost
    /// of a trial of a cheap objective.
    pub fn must_sync(&self) -> bool {
        matches!(self, Event::SweepStarted { .. } | Event::BudgetSet { .. })
    }
}

/// How long an appended event may wait before it is synced to disk.
pub const GROUP_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// An append-only, totally ordered event log.
pub trait Journal: Send {
    /// Appends `events` in order. When `sync` is set they, and every event appended before
    /// them, are durable when this returns (`append(&[], true)` only syncs).
    fn append(&mut self, events: &[Event], sync: bool) -> Result<()>;

    /// The events from position `from` (0-based) to the end.
    fn read_from(&mut self, from: u64) -> Result<Vec<Event>>;
}

/// Seconds since the Unix epoch, for event times.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
