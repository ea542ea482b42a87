//! The MLP: `layers` hidden layers of width `hidden`, each followed by an activation and
//! dropout, then a linear output (class logits, or one value for regression).
//!
//! Weights are drawn from the trial's own RNG (PyTorch's default `U(-1/sqrt(fan_in),
//! 1/sqrt(fan_in))`), and dropout masks are drawn on the host from the epoch's stream, never from
//! burn's process-global RNG: that makes a trial's training a pure function of its seed, also
//! when other trials train beside it and across resumes. It is also faster than burn's own
//! `Dropout` (`../shared/BURN.md`, section 9).

use crate::rng::Rng;
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation;
use rand::{Rng as _, RngCore};

/// The activation after each hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// Gaussian error linear unit.
    Gelu,
    /// Hyperbolic tangent.
    Tanh,
    /// max(0.01 x, x)
    LeakyRelu,
}

impl Activation {
    /// From the setting's name.
    pub fn from_name(name: &str) -> Activation {
        match name {
            "gelu" => Activation::Gelu,
            "tanh" => Activation::Tanh,
            "leaky_relu" => Activation::LeakyRelu,
            _ => Activation::Relu,
        }
    }

    fn apply(self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Gelu => activation::gelu(x),
            Activation::Tanh => activation::tanh(x),
            Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
        }
    }
}

/// A multi-layer perceptron.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    output: Linear,
}

/// Dropout masks for one epoch: probability `p`, drawn from the epoch's stream.
pub struct DropoutMasks<'a> {
    /// Drop probability.
    pub p: f64,
    /// The epoch's dropout stream.
    pub rng: &'a mut Rng,
}

impl DropoutMasks<'_> {
    /// A mask of `rows x cols` with zeros (probability p) and 1/(1-p) elsewhere.
    fn mask(&mut self, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
        let keep = (1.0 - self.p) as f32;
        let scale = 1.0 / keep;
        // 32 random bits per element, two per draw of the 64-bit generator.
        let threshold = (self.p * 4_294_967_296.0) as u64;
        let n = rows * cols;
        let mut mask = Vec::with_capacity(n);
        while mask.len() < n {
            let bits = self.rng.next_u64();
            for half in [bits & 0xFFFF_FFFF, bits >> 32] {
                if mask.len() < n {
                    mask.push(if half < threshold { 0.0 } else { scale });
                }
            }
        }
        Tensor::from_data(TensorData::new(mask, [rows, cols]), device)
    }
}

impl Mlp {
    /// A new MLP with weights drawn from `rng`.
    pub fn new(
        inputs: usize,
        outputs: usize,
        hidden: usize,
        layers: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Mlp {
        let mut width = inputs;
        let mut hidden_layers = Vec::with_capacity(layers);
        for _ in 0..layers {
            hidden_layers.push(linear(width, hidden, rng, device));
            width = hidden;
        }
        Mlp {
            hidden: hidden_layers,
            output: linear(width, outputs, rng, device),
        }
    }

    /// The model's output for a batch `[rows, inputs]`: `[rows, outputs]`. Dropout applies when
    /// masks are given (training).
    pub fn forward(
        &self,
        mut x: Tensor<2>,
        activation: Activation,
        mut dropout: Option<&mut DropoutMasks<'_>>,
    ) -> Tensor<2> {
        for layer in &self.hidden {
            x = activation.apply(layer.forward(x));
            if let Some(masks) = dropout.as_deref_mut().filter(|m| m.p > 0.0) {
                let [rows, cols] = x.dims();
                let device = x.device();
                x = x * masks.mask(rows, cols, &device);
            }
        }
        self.output.forward(x)
    }

    /// Sum of absolute values of all weights (not biases), for the L1 penalty.
    pub fn l1_norm(&self) -> Tensor<1> {
        self.hidden
            .iter()
            .chain(std::iter::once(&self.output))
            .map(|l| l.weight.val().abs().sum())
            .reduce(|a, b| a + b)
            .expect("an MLP has an output layer")
    }
}

/// A linear layer `[d_in, d_out]` initialised like PyTorch's default, from our RNG.
fn linear(d_in: usize, d_out: usize, rng: &mut Rng, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f64).sqrt();
    let mut draw = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect()
    };
    let weight = draw(d_in * d_out);
    let bias = draw(d_out);
    Linear {
        weight: Param::from_data(TensorData::new(weight, [d_in, d_out]), device),
        bias: Some(Param::from_data(TensorData::new(bias, [d_out]), device)),
    }
}
