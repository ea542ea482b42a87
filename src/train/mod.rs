//! The built-in burn trainer's machinery: its settings ([`spec`]), data, models, training loop
//! and checkpoints. [`objective`] is its face as an objective, registered by [`crate::builtin`].

mod adamw;
pub mod config;
pub mod data;
pub mod infer;
mod metrics;
pub mod model;
pub mod objective;
pub mod saved;
pub mod sections;
pub(crate) mod settings;
pub mod spec;
pub mod trainer;

use data::Dataset;
use spec::Task;

/// The metrics the built-in trainer reports each epoch for a data set.
pub fn metric_names(data: &Dataset) -> Vec<String> {
    let mut names = vec!["train_loss".to_string()];
    names.extend(per_split(data.task).iter().map(|m| format!("val_{m}")));
    names
}

/// The metrics of the test split, measured once per trial with the best epoch's weights (none
/// without a test split).
pub fn test_metric_names(data: &Dataset) -> Vec<String> {
    if data.test.is_none() {
        return Vec::new();
    }
    per_split(data.task)
        .iter()
        .map(|m| format!("test_{m}"))
        .collect()
}

fn per_split(task: Task) -> &'static [&'static str] {
    match task {
        Task::Classification => &["loss", "accuracy", "f1"],
        Task::Regression => &["loss", "rmse", "mae", "r2"],
    }
}
