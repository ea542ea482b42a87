//! kiln runs hyperparameter sweeps for burn models: a TOML experiment in, trained trials and
//! CSV leaderboards out, resumable at any moment.
//!
//! The pieces, in the order data flows through them: [`experiment`] parses and validates the
//! file's common sections; [`objective`] builds what a trial computes (the built-in burn
//! trainer, a synthetic function, an external command, or your own) and checks its settings;
//! [`sampler`] proposes parameters from the [`space`]; [`sweep`] records trials in the
//! [`journal`] and hands them to worker processes, which run the objective; [`report`]
//! writes the leaderboard and curves from the [`state`] that the journal replays into.
//! [`cli::main`] is the command line, for kiln and for programs of your own.
//!
//! The modules shown here are the library's surface; the command line's own parts (its
//! terminal output, locks, the PostgreSQL client, the worker processes, the results
//! folder's store) are private to it.
#![warn(missing_docs)]

pub mod budget;
pub(crate) mod builtin;
pub mod checkpoint;
pub mod cli;
pub mod constraint;
pub(crate) mod dashboard;
#[cfg(feature = "postgres")]
pub(crate) mod db;
pub mod device;
pub mod error;
pub mod experiment;
pub(crate) mod files;
pub(crate) mod importance;
pub mod journal;
pub mod layout;
pub(crate) mod lock;
pub(crate) mod logging;
pub mod names;
pub mod objective;
pub(crate) mod output;
pub mod pareto;
pub(crate) mod progress;
pub mod pruner;
pub(crate) mod redact;
pub mod report;
pub mod rng;
pub mod sampler;
pub(crate) mod settings;
pub(crate) mod signals;
pub mod space;
pub mod state;
pub mod stopping;
pub(crate) mod store;
pub mod sweep;
pub(crate) mod text;
#[cfg(feature = "postgres")]
pub(crate) mod tls;
pub mod train;
pub mod trial;
pub(crate) mod worker;

pub use error::{Error, Result};
pub use experiment::Experiment;
pub use objective::registry::Objectives;
pub use objective::{Decision, Objective, Trial, TrialError, TrialSummary};
pub use sweep::{Execution, SweepOptions, SweepOutcome};
