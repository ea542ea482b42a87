//! Checkpoints for a burn objective of your own, with the built-in trainer's guarantees: one
//! checksummed record per checkpoint, at the epochs you choose (the model and optimizer as burn
//! records, plus your own small state as JSON), in two slots of the trial's folder written in
//! place in turn, so a kill mid-write leaves the previous checkpoint whole. In a shared sweep the folder's checkpoint moves
//! with the trial to whichever worker continues it.
//!
//! Exact resume needs one more thing from the objective: every random stream derived from the
//! trial's seed and the epoch ([`Trial::rng`], [`Trial::seed_for`]), never carried over from
//! earlier epochs, so the epochs after a checkpoint come out as an uninterrupted run's.

use crate::checkpoint::TrainingState;
use crate::objective::{Trial, TrialError};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What [`Trial::load_checkpoint`] gives back.
pub struct Resumed<M, S> {
    /// The checkpoint's epoch: train on from the next.
    pub epoch: u32,
    /// The model, with the checkpoint's weights.
    pub model: M,
    /// The optimizer, with the checkpoint's state.
    pub optimizer: ModuleOptimizer,
    /// Your own state, as saved.
    pub state: S,
}

impl Trial<'_> {
    /// Saves the checkpoint of `epoch` (call it before reporting the epoch): the model, the
    /// optimizer and `state` (anything serde can write as JSON: best value so far, counters).
    pub fn save_checkpoint<M: Module>(
        &self,
        epoch: u32,
        model: &M,
        optimizer: &ModuleOptimizer,
        state: &impl Serialize,
    ) -> Result<(), TrialError> {
        let model = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| format!("cannot serialise the model: {e}"))?;
        let optimizer = optimizer
            .into_bytes()
            .map_err(|e| format!("cannot serialise the optimizer: {e}"))?;
        let own =
            serde_json::to_vec(state).map_err(|e| format!("cannot serialise the state: {e}"))?;
        let dir = self.dir();
        std::fs::create_dir_all(dir)
            .map_err(|e| TrialError::io(format!("cannot create {}", dir.display()), &e))?;
        let training = TrainingState {
            epoch,
            elapsed_s: self.elapsed_s(),
            owner: self.owner().to_string(),
            ..TrainingState::default()
        };
        let mut slots = self.slots.borrow_mut();
        slots
            .save(&training, &model, &optimizer, &own)
            .map_err(|e| {
                TrialError::io(
                    format!("cannot write the checkpoint in {}", dir.display()),
                    &e,
                )
            })
    }

    /// The newest whole checkpoint no newer than the last epoch the journal holds (a newer one
    /// was saved but its report never recorded), loaded into `model` and `optimizer` as built
    /// for a new trial; `None` for a new trial or when there is none.
    pub fn load_checkpoint<M: Module, S: DeserializeOwned>(
        &self,
        model: M,
        optimizer: ModuleOptimizer,
    ) -> Result<Option<Resumed<M, S>>, String> {
        let found = (self.slots.borrow_mut()).load_owned(self.owner(), self.journaled_epochs());
        let Some(found) = found else {
            return Ok(None);
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(found.model))
            .map_err(|e| format!("cannot read the checkpoint's model: {e}"))?;
        let model = model
            .try_load_record(record)
            .map_err(|e| format!("cannot load the checkpoint's model: {e}"))?;
        let optimizer = optimizer
            .from_bytes(Bytes::from_bytes_vec(found.optimizer))
            .map_err(|e| format!("cannot load the checkpoint's optimizer: {e}"))?;
        let state = serde_json::from_slice(&found.extra)
            .map_err(|e| format!("cannot read the checkpoint's state: {e}"))?;
        Ok(Some(Resumed {
            epoch: found.state.epoch,
            model,
            optimizer,
            state,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::objective::tests::Silent;
    use crate::objective::{Trial, TrialTask};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::prelude::*;

    fn task(dir: &std::path::Path, journaled_epochs: u32) -> TrialTask {
        TrialTask {
            number: 0,
            seed: 7,
            params: Default::default(),
            journaled_epochs,
            journaled_elapsed_s: 0.0,
            dir: dir.to_path_buf(),
            owner: "trial".to_string(),
            await_decisions: false,
        }
    }

    fn weights(model: &Linear) -> Vec<f32> {
        model.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_checkpoint_restores_model_optimizer_and_state_but_never_one_the_journal_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex().autodiff();
        let fresh = || LinearConfig::new(2, 1).init(&device);
        let mut model = fresh();
        let mut optimizer = AdamConfig::new().init();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device);
        let mut silent = Silent;
        let trial = Trial::new(task(dir.path(), 0), Default::default(), &mut silent);
        let mut saved = Vec::new();
        for epoch in 1..=2 {
            let loss = model.forward(x.clone()).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(0.1, model, grads);
            trial
                .save_checkpoint(epoch, &model, &optimizer, &format!("state {epoch}"))
                .unwrap();
            saved.push(weights(&model));
        }
        drop(trial);
        for (journaled, expected) in [(2, Some(1)), (1, Some(0)), (0, None)] {
            let mut silent = Silent;
            let trial = Trial::new(task(dir.path(), journaled), Default::default(), &mut silent);
            let resumed = trial
                .load_checkpoint::<_, String>(fresh(), AdamConfig::new().init())
                .unwrap();
            match expected {
                None => assert!(resumed.is_none(), "a new trial starts afresh"),
                Some(i) => {
                    let resumed = resumed.unwrap();
                    assert_eq!(resumed.epoch, journaled);
                    assert_eq!(resumed.state, format!("state {journaled}"));
                    assert_eq!(weights(&resumed.model), saved[i]);
                }
            }
        }
    }
}
