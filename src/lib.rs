//! kiln runs hyperparameter sweeps for burn models: a TOML experiment in, trained trials and
//! CSV leaderboards out, resumable at any moment.
//!
//! The pieces, in the order data flows through them: [`experiment`] parses and validates the
//! file; [`sampler`] proposes parameters from the [`space`]; [`sweep`] records trials in the
//! [`journal`] and hands them to [`worker`]s, which run an [`objective::Objective`] (the built-in
//! [`train::BurnObjective`], or your own); [`report`] writes the leaderboard and curves from the
//! [`state`] that the journal replays into.
#![warn(missing_docs)]

pub mod commands;
pub mod db;
pub mod error;
pub mod experiment;
pub mod files;
pub mod functions;
pub mod importance;
pub mod journal;
pub mod lock;
pub mod logging;
pub mod objective;
pub mod progress;
pub mod pruner;
pub mod report;
pub mod rng;
pub mod sampler;
pub mod settings;
pub mod signals;
pub mod space;
pub mod state;
pub mod store;
pub mod sweep;
pub mod train;
pub mod worker;

pub use error::{Error, Result};
pub use experiment::Experiment;
pub use objective::{Decision, Objective, Trial, TrialSummary};
pub use sweep::{Execution, SweepOptions, SweepOutcome};
