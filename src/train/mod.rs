//! The built-in burn trainer's machinery: its settings ([`spec`]), data, models, training loop
//! and checkpoints. [`crate::objective::train`] is its face as an objective.

mod adamw;
pub mod data;
pub mod model;
pub mod saved;
pub mod spec;
pub mod trainer;

use data::Dataset;
use spec::Task;

/// The metrics the built-in trainer reports for a data set.
pub fn metric_names(data: &Dataset) -> Vec<String> {
    let per_split: &[&str] = match data.task {
        Task::Classification => &["loss", "accuracy", "f1"],
        Task::Regression => &["loss", "rmse", "mae", "r2"],
    };
    let mut names = vec!["train_loss".to_string()];
    let splits: &[&str] = if data.test.is_some() {
        &["val", "test"]
    } else {
        &["val"]
    };
    for split in splits {
        names.extend(per_split.iter().map(|m| format!("{split}_{m}")));
    }
    names
}
