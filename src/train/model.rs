//! The networks kiln trains. The MLP: `layers` hidden layers of width `hidden`, each followed
//! by optional normalisation, an activation and dropout, then a linear output (class logits, or
//! one value for regression). The CNN, for image-shaped rows: `conv_layers` 2-D convolutions
//! (`channels`, doubling at each layer, `kernel_size`, same padding) with the activation, a 2x2
//! max-pool when the image is at least 4x4, then the MLP on the flattened features.
//!
//! Weights are drawn from the trial's own RNG (PyTorch's default `U(-1/sqrt(fan_in),
//! 1/sqrt(fan_in))`), and dropout masks are drawn on the host from the epoch's stream, never from
//! burn's process-global RNG: that makes a trial's training a pure function of its seed, also
//! when other trials train beside it and across resumes. It is also cheaper than burn's own
//! `Dropout` on the CPU.

use crate::rng::Rng;
use crate::train::settings::{Activation, ModelKind, Norm};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{
    BatchNorm, BatchNormConfig, Embedding, LayerNorm, LayerNormConfig, Linear, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation;
use rand::{Rng as _, RngCore};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

impl Activation {
    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Gelu => activation::gelu(x),
            Activation::Tanh => activation::tanh(x),
            Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
        }
    }
}

/// A multi-layer perceptron; categorical columns enter through embeddings concatenated with
/// the numeric features.
#[derive(Module, Debug)]
pub struct Mlp {
    embeddings: Vec<Embedding>,
    hidden: Vec<Linear>,
    batch_norms: Vec<BatchNorm>,
    layer_norms: Vec<LayerNorm>,
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
            embeddings: Vec::new(),
            hidden: hidden_layers,
            batch_norms: Vec::new(),
            layer_norms: Vec::new(),
            output: linear(width, outputs, rng, device),
        }
    }

    /// Adds one embedding table per categorical column (`sizes`: categories of each, the
    /// unseen one included), initialised N(0, 1) from `rng`.
    pub fn with_embeddings(
        mut self,
        sizes: &[usize],
        dim: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Mlp {
        self.embeddings = sizes
            .iter()
            .map(|&n| {
                let values: Vec<f32> = (0..n * dim).map(|_| StandardNormal.sample(rng)).collect();
                Embedding {
                    weight: Param::from_data(TensorData::new(values, [n, dim]), device),
                }
            })
            .collect();
        self
    }

    /// Adds normalisation after each hidden layer (its parameters start at 1 and 0: no
    /// randomness).
    pub fn with_norm(mut self, norm: Norm, device: &Device) -> Mlp {
        let widths: Vec<usize> = self.hidden.iter().map(|l| l.weight.dims()[1]).collect();
        match norm {
            Norm::None => {}
            Norm::Batch => {
                self.batch_norms = widths
                    .iter()
                    .map(|&w| BatchNormConfig::new(w).init(device))
                    .collect()
            }
            Norm::Layer => {
                self.layer_norms = widths
                    .iter()
                    .map(|&w| LayerNormConfig::new(w).init(device))
                    .collect()
            }
        }
        self
    }

    /// The model's output for a batch `[rows, inputs]`: `[rows, outputs]`. Dropout applies when
    /// masks are given (training).
    pub fn forward(
        &self,
        mut x: Tensor<2>,
        categories: Option<Tensor<2, Int>>,
        activation: Activation,
        mut dropout: Option<&mut DropoutMasks<'_>>,
    ) -> Tensor<2> {
        if let Some(categories) = categories.filter(|_| !self.embeddings.is_empty()) {
            let [rows, _] = x.dims();
            let mut parts = vec![x];
            for (j, table) in self.embeddings.iter().enumerate() {
                let embedded = table.forward(categories.clone().narrow(1, j, 1)); // [rows, 1, dim]
                let [_, _, dim] = embedded.dims();
                parts.push(embedded.reshape([rows, dim]));
            }
            x = Tensor::cat(parts, 1);
        }
        for (i, layer) in self.hidden.iter().enumerate() {
            x = layer.forward(x);
            if let Some(norm) = self.batch_norms.get(i) {
                x = norm.forward(x);
            }
            if let Some(norm) = self.layer_norms.get(i) {
                x = norm.forward(x);
            }
            x = activation.apply(x);
            if let Some(masks) = dropout.as_deref_mut().filter(|m| m.p > 0.0) {
                let [rows, cols] = x.dims();
                let device = x.device();
                x = x * masks.mask(rows, cols, &device);
            }
        }
        self.output.forward(x)
    }

    /// Every weight (not bias) of every layer, flattened, for inspection.
    pub fn weights(&self) -> Vec<f32> {
        self.hidden
            .iter()
            .chain(std::iter::once(&self.output))
            .flat_map(|l| {
                l.weight
                    .val()
                    .into_data()
                    .try_into_vec::<f32>()
                    .unwrap_or_default()
            })
            .collect()
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

/// `n` values uniform in (-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for weights and
/// biases of linear and convolution layers.
fn uniform(n: usize, fan_in: usize, rng: &mut Rng) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    (0..n)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect()
}

/// A linear layer `[d_in, d_out]` initialised like PyTorch's default, from our RNG.
fn linear(d_in: usize, d_out: usize, rng: &mut Rng, device: &Device) -> Linear {
    let mut draw = |n: usize| uniform(n, d_in, rng);
    let weight = draw(d_in * d_out);
    let bias = draw(d_out);
    Linear {
        weight: Param::from_data(TensorData::new(weight, [d_in, d_out]), device),
        bias: Some(Param::from_data(TensorData::new(bias, [d_out]), device)),
    }
}

/// A 2-D convolution `c_in -> c_out`, `k x k`, same padding, initialised from our RNG.
fn conv(c_in: usize, c_out: usize, k: usize, rng: &mut Rng, device: &Device) -> Conv2d {
    let mut layer = Conv2dConfig::new([c_in, c_out], [k, k])
        .with_padding(PaddingConfig2d::Same)
        .init(device);
    let fan_in = c_in * k * k;
    layer.weight = Param::from_data(
        TensorData::new(uniform(c_out * fan_in, fan_in, rng), [c_out, c_in, k, k]),
        device,
    );
    layer.bias = Some(Param::from_data(
        TensorData::new(uniform(c_out, fan_in, rng), [c_out]),
        device,
    ));
    layer
}

/// A convolutional network for image-shaped rows, with an MLP head.
#[derive(Module, Debug)]
pub struct Cnn {
    convs: Vec<Conv2d>,
    head: Mlp,
}

/// Whether the CNN pools an image of this size (2x2, once, after the convolutions).
fn pools(height: usize, width: usize) -> bool {
    height >= 4 && width >= 4
}

/// The networks kiln trains.
#[derive(Module, Debug)]
pub enum Network {
    /// A multi-layer perceptron.
    Mlp(Mlp),
    /// A convolutional network.
    Cnn(Cnn),
}

/// A network's shape: what `model.json` records, and all that is needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// The model family.
    pub kind: ModelKind,
    /// Input width: the number of feature columns.
    pub inputs: usize,
    /// Output width: classes, or 1 for regression.
    pub outputs: usize,
    /// Hidden layer width.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
    /// The activation.
    pub activation: Activation,
    /// The normalisation.
    pub norm: Norm,
    /// `[channels, height, width]` of image rows (CNN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<[usize; 3]>,
    /// Channels of the first convolution (CNN).
    #[serde(default)]
    pub channels: usize,
    /// Convolution kernel size (CNN).
    #[serde(default)]
    pub kernel_size: usize,
    /// Convolutions (CNN).
    #[serde(default)]
    pub conv_layers: usize,
    /// Categories of each categorical column, the unseen one included.
    #[serde(default)]
    pub embeddings: Vec<usize>,
    /// Width of each category's embedding.
    #[serde(default)]
    pub embedding_dim: usize,
}

/// The most parameters a trial's model may have: past this its weights and AdamW state
/// (12 bytes a parameter) take 12 GB, and building it would end in an allocation failure.
pub const MAX_PARAMS: u64 = 1_000_000_000;

impl Architecture {
    /// The parameters of the dense layers and embeddings (the bulk of any of these models),
    /// saturating instead of overflowing for absurd widths.
    pub fn dense_params(&self) -> u64 {
        let (inputs, hidden, outputs) =
            (self.inputs as u64, self.hidden as u64, self.outputs as u64);
        let embedded = (self.embeddings.iter().sum::<usize>() as u64)
            .saturating_mul(self.embedding_dim as u64);
        let first = inputs.saturating_add(1).saturating_mul(hidden);
        let middle = (self.layers.saturating_sub(1) as u64)
            .saturating_mul(hidden.saturating_add(1).saturating_mul(hidden));
        let last = hidden.saturating_add(1).saturating_mul(outputs);
        first
            .saturating_add(middle)
            .saturating_add(last)
            .saturating_add(embedded)
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// A new network of this shape with weights drawn from `rng`.
    pub fn build(&self, rng: &mut Rng, device: &Device) -> Network {
        let norm = self.norm;
        match (self.kind, self.image) {
            (ModelKind::Cnn, Some([channels, height, width])) => {
                let mut c_in = channels;
                let mut convs = Vec::new();
                for i in 0..self.conv_layers {
                    let c_out = self.channels << i;
                    convs.push(conv(c_in, c_out, self.kernel_size, rng, device));
                    c_in = c_out;
                }
                let (h, w) = if pools(height, width) {
                    (height / 2, width / 2)
                } else {
                    (height, width)
                };
                let head = Mlp::new(
                    c_in * h * w,
                    self.outputs,
                    self.hidden,
                    self.layers,
                    rng,
                    device,
                )
                .with_norm(norm, device);
                Network::Cnn(Cnn { convs, head })
            }
            // A CNN without image-shaped rows is refused when the experiment is checked.
            (ModelKind::Mlp, _) | (ModelKind::Cnn, None) => {
                let width = self.inputs + self.embeddings.len() * self.embedding_dim;
                let mlp = Mlp::new(width, self.outputs, self.hidden, self.layers, rng, device)
                    .with_embeddings(&self.embeddings, self.embedding_dim, rng, device)
                    .with_norm(norm, device);
                Network::Mlp(mlp)
            }
        }
    }
}

impl Network {
    /// The outputs for a batch of rows `[rows, inputs]`: `[rows, outputs]`. Dropout applies when
    /// masks are given (training).
    pub fn forward(
        &self,
        x: Tensor<2>,
        categories: Option<Tensor<2, Int>>,
        architecture: &Architecture,
        dropout: Option<&mut DropoutMasks<'_>>,
    ) -> Tensor<2> {
        let activation = architecture.activation();
        match (self, architecture.image) {
            (Network::Cnn(cnn), Some([channels, height, width])) => {
                let [rows, _] = x.dims();
                let mut x = x.reshape([rows, channels, height, width]); // [rows, c, h, w]
                for conv in &cnn.convs {
                    x = activation.apply(conv.forward(x));
                }
                if pools(height, width) {
                    x = MaxPool2dConfig::new([2, 2]).init().forward(x); // [rows, c', h/2, w/2]
                }
                let [rows, c, h, w] = x.dims();
                cnn.head
                    .forward(x.reshape([rows, c * h * w]), None, activation, dropout)
            }
            (Network::Mlp(mlp), _) | (Network::Cnn(Cnn { head: mlp, .. }), None) => {
                mlp.forward(x, categories, activation, dropout)
            }
        }
    }

    /// Sum of absolute values of all weights (not biases), for the L1 penalty.
    pub fn l1_norm(&self) -> Tensor<1> {
        match self {
            Network::Mlp(mlp) => mlp.l1_norm(),
            Network::Cnn(cnn) => cnn
                .convs
                .iter()
                .map(|c| c.weight.val().abs().sum())
                .fold(cnn.head.l1_norm(), |a, b| a + b),
        }
    }

    /// The number of trainable parameters. burn's `num_params` also counts batch norm's
    /// running mean and variance, which are statistics, not parameters (PyTorch leaves them
    /// out of `parameters()` too).
    pub fn trainable_params(&self) -> usize {
        let mlp = match self {
            Network::Mlp(mlp) | Network::Cnn(Cnn { head: mlp, .. }) => mlp,
        };
        let running: usize = mlp.batch_norms.iter().map(|n| 2 * n.gamma.dims()[0]).sum();
        self.num_params() - running
    }

    /// Every weight (not bias), flattened, for inspection.
    pub fn weights(&self) -> Vec<f32> {
        match self {
            Network::Mlp(mlp) => mlp.weights(),
            Network::Cnn(cnn) => cnn
                .convs
                .iter()
                .flat_map(|c| {
                    c.weight
                        .val()
                        .into_data()
                        .try_into_vec::<f32>()
                        .unwrap_or_default()
                })
                .chain(cnn.head.weights())
                .collect(),
        }
    }
}
