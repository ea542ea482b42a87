//! A trained network's outputs: what training evaluates each epoch and `kiln predict` writes.

use super::data::Split;
use super::model::{Architecture, Network};
use burn::prelude::*;

/// The model's outputs for the rows of a split, evaluated in chunks, as one flat vector.
pub fn predict(
    model: &Network,
    split: &Split,
    architecture: &Architecture,
    device: &Device,
) -> Vec<f32> {
    let inputs = architecture.inputs;
    let n_categorical = architecture.embeddings.len();
    let mut outputs = Vec::new();
    let mut start = 0;
    while start < split.rows {
        let rows = (split.rows - start).min(4096);
        let x = split.x[start * inputs..(start + rows) * inputs].to_vec();
        let input = Tensor::<2>::from_data(TensorData::new(x, [rows, inputs]), device);
        let categories = (n_categorical > 0).then(|| {
            let c =
                split.categories[start * n_categorical..(start + rows) * n_categorical].to_vec();
            Tensor::<2, Int>::from_data(TensorData::new(c, [rows, n_categorical]), device)
        });
        let output = model.forward(input, categories, architecture, None);
        outputs.extend(output.into_data().try_into_vec::<f32>().unwrap_or_default());
        start += rows;
    }
    outputs
}

/// Index of the largest value (the first, on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}
