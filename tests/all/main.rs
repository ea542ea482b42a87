//! kiln's integration tests, in one binary so that burn and the PostgreSQL client are linked
//! once: each module runs the real `kiln` (or a program built on it) in temporary folders.

mod bad_input;
mod best;
mod command;
mod common;
mod crash;
mod custom;
mod dashboard;
mod deterministic;
mod disk;
mod edges;
mod failures;
mod golden;
#[cfg(feature = "wgpu")]
mod gpu;
mod pareto;
#[cfg(feature = "postgres")]
mod postgres;
mod queue;
mod samplers;
mod stopping;
mod sweeps;
mod training;
mod warm;
