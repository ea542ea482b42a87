//! A trial's checkpoint: everything needed to continue training after its last finished epoch.
//!
//! A checkpoint is one record: a header, a checksum, our own state as JSON (epoch, time, the
//! epochs' reports, early-stopping and best-epoch bookkeeping), then the model, the optimizer
//! state and the best epoch's model as burnpack bytes. The learning-rate schedule and the random streams need no state:
//! both are pure functions of (seed, epoch).
//!
//! Two slots, `checkpoint.0.bin` and `checkpoint.1.bin`: epoch N is written over the slot of
//! epoch N-2, in place, and loading takes the newest slot whose checksum holds. A process killed
//! mid-write garbles only the slot being written; the other still holds the previous epoch, which
//! is the last one the journal can have recorded (a report is sent after its checkpoint is
//! written). This keeps the guarantee of "write a temporary file, then rename" at a fraction of
//! the cost: on this machine's ext4, creating and renaming a 320 KB file took 0.46 ms, while
//! overwriting an existing one took 0.01 ms, and a checkpoint is written every epoch. Disk use
//! stays bounded at two checkpoints per trial.
//!
//! Checkpoints are not synced to disk: the journal is the truth and a checkpoint only saves
//! recomputing. If a power cut loses or garbles both slots, the trial restarts from scratch
//! and, training being a pure function of its seed, reports the same epochs again.

use crate::objective::EpochReport;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 10] = b"KILNCKPT2\n";

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
    /// The best epoch's model, burnpack bytes (written to `best.bpk` when the trial stops).
    pub best_model: Vec<u8>,
}

/// The file of checkpoint slot `slot` (0 or 1) of a trial folder.
pub fn path(dir: &Path, slot: u32) -> PathBuf {
    dir.join(format!("checkpoint.{slot}.bin"))
}

impl Checkpoint {
    /// Writes into the slot of its epoch's parity in `dir`, in place.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let state = serde_json::to_vec(&self.state)?;
        let parts = [
            state.as_slice(),
            &self.model,
            &self.optimizer,
            &self.best_model,
        ];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 32 + total);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&checksum(&parts).to_le_bytes());
        for part in parts {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path(dir, self.state.epoch % 2))?;
        file.rewind()?;
        file.write_all(&bytes)?;
        // The record grows with each epoch's report; cut what an older, longer one left behind.
        file.set_len(bytes.len() as u64)
    }

    /// The newest whole checkpoint in `dir`, if any.
    pub fn load(dir: &Path) -> Option<Checkpoint> {
        [0, 1]
            .into_iter()
            .filter_map(|slot| Checkpoint::load_file(&path(dir, slot)))
            .max_by_key(|c| c.state.epoch)
    }

    /// Reads one slot's file; `None` if it is missing, torn or garbled.
    pub fn load_file(file: &Path) -> Option<Checkpoint> {
        let mut bytes = Vec::new();
        File::open(file).ok()?.read_to_end(&mut bytes).ok()?;
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (sum, mut rest) = rest.split_at_checked(8)?;
        let mut parts = Vec::new();
        for _ in 0..4 {
            let (len, tail) = rest.split_at_checked(8)?;
            let len = u64::from_le_bytes(len.try_into().ok()?) as usize;
            let (part, tail) = tail.split_at_checked(len)?;
            parts.push(part.to_vec());
            rest = tail;
        }
        if !rest.is_empty()
            || checksum(&[&parts[0], &parts[1], &parts[2], &parts[3]]).to_le_bytes() != sum
        {
            return None;
        }
        let best_model = parts.pop()?;
        let optimizer = parts.pop()?;
        let model = parts.pop()?;
        let state = serde_json::from_slice(&parts.pop()?).ok()?;
        Some(Checkpoint {
            state,
            model,
            optimizer,
            best_model,
        })
    }
}

/// A fast 64-bit checksum (word-wise multiply-xorshift): catches a garbled or zeroed file.
fn checksum(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for part in parts {
        let mut words = part.chunks_exact(8);
        for word in &mut words {
            h = (h ^ u64::from_le_bytes(word.try_into().expect("8 bytes")))
                .wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            h ^= h >> 32;
        }
        for &byte in words.remainder() {
            h = (h ^ byte as u64).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        }
        h ^= part.len() as u64;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(epoch: u32) -> Checkpoint {
        Checkpoint {
            state: TrainingState {
                epoch,
                elapsed_s: 1.5,
                ..TrainingState::default()
            },
            model: vec![1, 2, 3],
            optimizer: vec![4, 5],
            best_model: vec![6],
        }
    }

    #[test]
    fn newest_whole_slot_wins_and_a_torn_or_garbled_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Checkpoint::load(dir.path()).is_none());
        checkpoint(3).save(dir.path()).unwrap();
        checkpoint(4).save(dir.path()).unwrap();
        let back = Checkpoint::load(dir.path()).unwrap();
        assert_eq!(
            (back.state.epoch, back.model, back.optimizer),
            (4, vec![1, 2, 3], vec![4, 5])
        );
        // Epoch 5 goes over epoch 3's slot; torn mid-write, epoch 4 remains.
        checkpoint(5).save(dir.path()).unwrap();
        let mut bytes = std::fs::read(path(dir.path(), 1)).unwrap();
        std::fs::write(path(dir.path(), 1), &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap().state.epoch, 4, "torn");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(path(dir.path(), 1), &bytes).unwrap();
        assert_eq!(
            Checkpoint::load(dir.path()).unwrap().state.epoch,
            4,
            "garbled"
        );
    }
}
