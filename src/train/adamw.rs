//! AdamW in one pass over each parameter.
//!
//! burn's `AdamW` is written as a dozen whole-tensor operations per parameter (scale the
//! moments, add, square, correct the bias, square-root, divide, decay, subtract), each reading
//! and writing every element, a noticeable share of a small model's training step. This is the same update, element by element in one loop, with the same state type
//! (`AdamWState`), so checkpoints and `kiln check` are unchanged. Decoupled weight decay as in
//! Loshchilov & Hutter (2019); no AMSGrad, no cautious decay (kiln does not offer them).

use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;

/// AdamW's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdamW {
    /// First-moment decay.
    pub beta_1: f32,
    /// Second-moment decay.
    pub beta_2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// Decoupled weight decay (times the learning rate per step).
    pub weight_decay: f32,
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .expect("parameters are f32")
}

/// The constants of one step.
struct Step {
    beta_1: f32,
    beta_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    lr: f32,
    /// What weight decay leaves of a weight: `1 - lr * weight_decay`.
    keep: f32,
}

impl Step {
    /// Updates `params` and the moments `m` and `v` from `grads`, with the widest vectors the
    /// CPU has (checked at run time, so the build stays portable).
    fn apply(&self, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { self.apply_avx2(params, grads, m, v) };
            return;
        }
        self.apply_portable(params, grads, m, v);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply_avx2(&self, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
        self.apply_portable(params, grads, m, v);
    }

    #[inline(always)]
    fn apply_portable(&self, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
        let (b1, b2) = (self.beta_1, self.beta_2);
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let step = (*m / self.correction_1) / ((*v / self.correction_2).sqrt() + self.epsilon);
            *p = *p * self.keep - self.lr * step;
        }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let shape = tensor.shape();
        let mut params = values(tensor);
        let grads = values(grad);
        let (time, mut m, mut v) = match state {
            Some(state) => (
                state.momentum.time + 1,
                values(state.momentum.moment_1),
                values(state.momentum.moment_2),
            ),
            None => (1, vec![0.0; params.len()], vec![0.0; params.len()]),
        };
        let lr = lr as f32;
        let step = Step {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            correction_1: 1.0 - self.beta_1.powi(time as i32),
            correction_2: 1.0 - self.beta_2.powi(time as i32),
            epsilon: self.epsilon,
            lr,
            keep: 1.0 - lr * self.weight_decay,
        };
        step.apply(&mut params, &grads, &mut m, &mut v);
        let tensor =
            |data: Vec<f32>| Tensor::<D>::from_data(TensorData::new(data, shape.clone()), &device);
        let momentum = AdaptiveMomentumState::new(time, tensor(m), tensor(v));
        (tensor(params), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum.moment_1 = state.momentum.moment_1.to_device(device);
        state.momentum.moment_2 = state.momentum.moment_2.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};

    fn weights(model: &Linear) -> Vec<f32> {
        model
            .weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    }

    /// A few steps of each on the same model and data give the same weights.
    #[test]
    fn matches_burns_adamw() {
        let device = Device::flex().autodiff();
        let start = LinearConfig::new(4, 3).init(&device);
        let start = Linear {
            weight: Param::from_data(
                TensorData::new((0..12).map(|i| (i as f32 - 6.0) / 7.0).collect(), [4, 3]),
                &device,
            ),
            ..start
        };
        let x = Tensor::<2>::from_data(
            TensorData::new((0..8).map(|i| (i as f32).sin()).collect(), [2, 4]),
            &device,
        );
        let train = |mut optimizer: ModuleOptimizer| {
            let mut model = start.clone();
            for step in 0..5 {
                let loss = model.forward(x.clone()).powf_scalar(2.0).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(1e-2 * (step + 1) as f64, model, grads);
            }
            weights(&model)
        };
        let ours = train(ModuleOptimizer::from(FusedAdamW {
            beta_1: 0.9,
            beta_2: 0.99,
            epsilon: 1e-8,
            weight_decay: 0.05,
        }));
        let burns = train(
            AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.99)
                .with_epsilon(1e-8)
                .with_weight_decay(0.05)
                .init(),
        );
        assert_ne!(ours, weights(&start), "the weights moved");
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() < 1e-6, "{ours:?} vs {burns:?}");
        }
    }
}
