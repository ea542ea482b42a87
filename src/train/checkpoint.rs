//! A trial's checkpoint: everything needed to continue training after its last finished epoch.
//!
//! One file, `checkpoint.bin`: a header, our own state as JSON (epoch, time, the epochs'
//! reports, early-stopping and best-epoch bookkeeping), the model and the optimizer state as
//! burnpack bytes. It is written to a temporary file, synced, then renamed over the old one, so
//! a kill at any moment leaves either the old checkpoint or the new one, whole. The learning-rate
//! schedule and the random streams need no state: both are pure functions of (seed, epoch).

use crate::objective::EpochReport;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 10] = b"KILNCKPT1\n";

/// Our part of a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// The last finished epoch.
    pub epoch: u32,
    /// Training time so far.
    pub elapsed_s: f64,
    /// Every epoch's report so far (to re-report epochs the journal missed).
    pub reports: Vec<EpochReport>,
    /// Best value of the monitored metric, for patience.
    pub monitor_best: Option<f64>,
    /// Epochs since the monitored metric last improved.
    pub epochs_without_improvement: u32,
    /// Best value of the objective metric (its weights are in `best.bpk`).
    pub objective_best: Option<f64>,
}

/// A checkpoint in memory.
pub struct Checkpoint {
    /// Our state.
    pub state: TrainingState,
    /// The model's burnpack bytes.
    pub model: Vec<u8>,
    /// The optimizer's burnpack bytes.
    pub optimizer: Vec<u8>,
}

/// The checkpoint file of a trial folder.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.bin")
}

impl Checkpoint {
    /// Writes atomically into `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let state = serde_json::to_vec(&self.state)?;
        let mut bytes = Vec::with_capacity(
            MAGIC.len() + 24 + state.len() + self.model.len() + self.optimizer.len(),
        );
        bytes.extend_from_slice(MAGIC);
        for part in [&state, &self.model, &self.optimizer] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        write_atomic(&path(dir), &bytes)
    }

    /// Reads the checkpoint of `dir`; `None` if there is none or it is not whole.
    pub fn load(dir: &Path) -> Option<Checkpoint> {
        let mut bytes = Vec::new();
        File::open(path(dir)).ok()?.read_to_end(&mut bytes).ok()?;
        let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let mut parts = Vec::new();
        for _ in 0..3 {
            let (len, tail) = rest.split_at_checked(8)?;
            let len = u64::from_le_bytes(len.try_into().ok()?) as usize;
            let (part, tail) = tail.split_at_checked(len)?;
            parts.push(part.to_vec());
            rest = tail;
        }
        let optimizer = parts.pop()?;
        let model = parts.pop()?;
        let state = serde_json::from_slice(&parts.pop()?).ok()?;
        Some(Checkpoint {
            state,
            model,
            optimizer,
        })
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix:
/// temporary file, sync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_a_torn_file() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint {
            state: TrainingState {
                epoch: 3,
                elapsed_s: 1.5,
                ..TrainingState::default()
            },
            model: vec![1, 2, 3],
            optimizer: vec![4, 5],
        };
        checkpoint.save(dir.path()).unwrap();
        let back = Checkpoint::load(dir.path()).unwrap();
        assert_eq!(
            (back.state, back.model, back.optimizer),
            (checkpoint.state, vec![1, 2, 3], vec![4, 5])
        );
        let bytes = std::fs::read(path(dir.path())).unwrap();
        std::fs::write(path(dir.path()), &bytes[..bytes.len() - 1]).unwrap();
        assert!(Checkpoint::load(dir.path()).is_none());
    }
}
