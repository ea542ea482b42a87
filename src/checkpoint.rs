//! A trial's checkpoint: everything needed to continue training after its last finished epoch.
//! The built-in trainer and burn objectives of your own write the same record
//! ([`crate::objective::checkpoint`]), and a shared sweep's store moves it with the trial.
//!
//! A checkpoint is one record: a header, a checksum, our own state as JSON (epoch, time, the
//! epochs' reports, early-stopping and best-epoch bookkeeping), then the model, the optimizer
//! state and the best epoch's model as burnpack bytes. The learning-rate schedule and the random streams need no state:
//! both are pure functions of (seed, epoch).
//!
//! Two slots, `checkpoint.0.bin` and `checkpoint.1.bin`, written in place and in turn: a
//! checkpoint never goes into the slot holding the newest one (see [`Slots`]), and loading takes
//! the newest slot whose checksum holds. A process killed mid-write garbles only the slot being
//! written; the other still holds the previous checkpoint, which is no newer than the last epoch
//! the journal can have recorded (a report is sent after its checkpoint is written). This keeps
//! the guarantee of "write a temporary file, then rename" without creating a file per
//! checkpoint (see the `checkpoint` benchmark), and disk use stays bounded at two checkpoints
//! per trial.
//!
//! Checkpoints are not synced to disk: the journal is the truth and a checkpoint only saves
//! recomputing. If a power cut loses or garbles both slots, the trial restarts from scratch
//! and, training being a pure function of its seed, reports the same epochs again.

use crate::trial::Epoch;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 10] = b"KILNCKPT3\n";

/// Our part of a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// The last finished epoch.
    pub epoch: u32,
    /// Training time so far.
    pub elapsed_s: f64,
    /// Every epoch's report so far (to re-report epochs the journal missed).
    pub reports: Vec<Epoch>,
    /// Best value of the monitored metric, for patience.
    pub monitor_best: Option<f64>,
    /// Epochs since the monitored metric last improved.
    pub epochs_without_improvement: u32,
    /// Best value of the objective metric (its weights are in `best.bpk`).
    pub objective_best: Option<f64>,
    /// Whose checkpoint this is ([`crate::objective::TrialTask::owner`]): a trial loads only
    /// its own, never one a stale folder or another sweep left behind.
    #[serde(default)]
    pub owner: String,
}

/// A checkpoint in memory.
pub struct Checkpoint {
    /// Our state.
    pub state: TrainingState,
    /// The model's burnpack bytes.
    pub model: Vec<u8>,
    /// The optimizer's burnpack bytes.
    pub optimizer: Vec<u8>,
    /// A fourth part: for the built-in trainer the best epoch's model, burnpack bytes (written
    /// to `best.bpk` when the trial stops); for a user objective its own state, JSON.
    pub extra: Vec<u8>,
}

/// The file of checkpoint slot `slot` (0 or 1) of a trial folder.
pub fn path(dir: &Path, slot: u32) -> PathBuf {
    dir.join(format!("checkpoint.{slot}.bin"))
}

/// The two slots of one trial folder, and which one the next checkpoint goes into.
///
/// Invariant: the next slot is never the one holding the checkpoint a resume would load, so
/// that a write torn by a kill always leaves that one whole. (The epoch's parity would not do:
/// with sparse checkpoints, epochs 1, 3 and 5 all go into one slot, and one torn write loses
/// them all.)
#[derive(Debug)]
pub struct Slots {
    dir: PathBuf,
    next: u32,
}

impl Slots {
    /// The slots of `dir`, for a trial that loads nothing: the first checkpoint goes into slot 0.
    pub fn new(dir: &Path) -> Slots {
        Slots {
            dir: dir.to_path_buf(),
            next: 0,
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a checkpoint into the next slot, in place; the slot after is the other one.
    pub fn save(
        &mut self,
        state: &TrainingState,
        model: &[u8],
        optimizer: &[u8],
        extra: &[u8],
    ) -> std::io::Result<()> {
        let file = path(&self.dir, self.next);
        save(&file, state, &[model, optimizer, extra])?;
        tracing::debug!(
            "checkpoint of epoch {} written to {} ({} bytes)",
            state.epoch,
            file.display(),
            model.len() + optimizer.len() + extra.len()
        );
        self.next = 1 - self.next;
        Ok(())
    }

    /// The newest whole checkpoint that belongs to `owner` and is of epoch `epoch` or earlier,
    /// if any; the next checkpoint goes into the other slot. (Checkpoints written before
    /// owners were recorded have none, and count as anyone's.)
    pub fn load_owned(&mut self, owner: &str, epoch: u32) -> Option<Checkpoint> {
        let mine = |c: &Checkpoint| c.state.owner.is_empty() || c.state.owner == owner;
        let found: Vec<(u32, Checkpoint)> = [0, 1]
            .into_iter()
            .filter_map(|slot| Some((slot, Checkpoint::load_file(&path(&self.dir, slot))?)))
            .collect();
        if found.iter().any(|(_, c)| !mine(c)) {
            tracing::warn!(
                "{}: ignoring a checkpoint of another sweep or trial",
                self.dir.display()
            );
        }
        let (slot, newest) = found
            .into_iter()
            .filter(|(_, c)| mine(c) && c.state.epoch <= epoch)
            .max_by_key(|(_, c)| c.state.epoch)?;
        self.next = 1 - slot;
        Some(newest)
    }
}

/// The bytes of the whole checkpoint of epoch `epoch` in `dir`, if a slot holds one.
pub fn find(dir: &Path, epoch: u32) -> Option<Vec<u8>> {
    [0, 1].into_iter().find_map(|slot| {
        let bytes = std::fs::read(path(dir, slot)).ok()?;
        let checkpoint = Checkpoint::from_bytes(&bytes)?;
        (checkpoint.state.epoch == epoch).then_some(bytes)
    })
}

/// Removes both slots of `dir` (a trial that ended and runs no more): a slot already gone is
/// no error.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    for slot in [0, 1] {
        match std::fs::remove_file(path(dir, slot)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

impl Checkpoint {
    /// Reads one slot's file; `None` if it is missing, torn or garbled.
    pub fn load_file(file: &Path) -> Option<Checkpoint> {
        let mut bytes = Vec::new();
        File::open(file).ok()?.read_to_end(&mut bytes).ok()?;
        Checkpoint::from_bytes(&bytes)
    }

    /// A checkpoint from a slot file's bytes; `None` if they are torn or garbled.
    pub fn from_bytes(bytes: &[u8]) -> Option<Checkpoint> {
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
        let extra = parts.pop()?;
        let optimizer = parts.pop()?;
        let model = parts.pop()?;
        let state = serde_json::from_slice(&parts.pop()?).ok()?;
        Some(Checkpoint {
            state,
            model,
            optimizer,
            extra,
        })
    }
}

/// Writes a checkpoint of `state` and the model's, the optimizer's and the extra part's bytes
/// over `file`, in place. The parts are written as they are, not gathered into one buffer
/// first: that would copy a megabyte or two per checkpoint.
fn save(
    file: &Path,
    state: &TrainingState,
    [model, optimizer, extra]: &[&[u8]; 3],
) -> std::io::Result<()> {
    let state_json = serde_json::to_vec(state)?;
    let parts = [state_json.as_slice(), model, optimizer, extra];
    let file = crate::files::open_own(
        OpenOptions::new().create(true).truncate(false).write(true),
        file,
    )?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    out.write_all(MAGIC)?;
    out.write_all(&checksum(&parts).to_le_bytes())?;
    let mut length = (MAGIC.len() + 8) as u64;
    for part in parts {
        out.write_all(&(part.len() as u64).to_le_bytes())?;
        out.write_all(part)?;
        length += 8 + part.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    // The record grows with each epoch's report; cut what an older, longer one left behind.
    file.set_len(length)
}

/// A fast 64-bit checksum (word-wise multiply-xorshift): catches a garbled or zeroed file.
pub(crate) fn checksum(parts: &[&[u8]]) -> u64 {
    // Four independent lanes, so the multiplications overlap instead of waiting on each other.
    const K: u64 = 0xFF51_AFD7_ED55_8CCD;
    let mut lanes: [u64; 4] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0x85EB_CA77_C2B2_AE63,
    ];
    for part in parts {
        let mut blocks = part.chunks_exact(32);
        for block in &mut blocks {
            for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                *lane = (*lane ^ word).wrapping_mul(K);
                *lane ^= *lane >> 32;
            }
        }
        for &byte in blocks.remainder() {
            lanes[0] = (lanes[0] ^ byte as u64).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        }
        lanes[1] ^= part.len() as u64;
    }
    lanes.iter().fold(0, |h: u64, &lane| {
        (h.rotate_left(17) ^ lane).wrapping_mul(K)
    })
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
            extra: vec![6],
        }
    }

    fn save(slots: &mut Slots, c: &Checkpoint) {
        slots
            .save(&c.state, &c.model, &c.optimizer, &c.extra)
            .unwrap();
    }

    /// The newest whole checkpoint, loaded through fresh slots as a resumed trial would.
    fn newest(dir: &Path) -> Option<u32> {
        Slots::new(dir)
            .load_owned("", u32::MAX)
            .map(|c| c.state.epoch)
    }

    /// Tears the last byte off, or flips it, in the slot holding epoch `epoch`.
    fn damage(dir: &Path, epoch: u32, tear: bool) {
        let slot = (0..2)
            .find(|&s| Checkpoint::load_file(&path(dir, s)).is_some_and(|c| c.state.epoch == epoch))
            .unwrap();
        let mut bytes = std::fs::read(path(dir, slot)).unwrap();
        let last = bytes.len() - 1;
        if tear {
            bytes.truncate(last);
        } else {
            bytes[last] ^= 1;
        }
        std::fs::write(path(dir, slot), &bytes).unwrap();
    }

    #[test]
    fn newest_whole_slot_wins_and_a_torn_or_garbled_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(newest(dir.path()), None);
        let mut slots = Slots::new(dir.path());
        save(&mut slots, &checkpoint(3));
        save(&mut slots, &checkpoint(4));
        let back = Slots::new(dir.path()).load_owned("", u32::MAX).unwrap();
        assert_eq!(
            (back.state.epoch, back.model, back.optimizer),
            (4, vec![1, 2, 3], vec![4, 5])
        );
        // Epoch 5 goes over epoch 3's slot; torn or garbled mid-write, epoch 4 remains.
        save(&mut slots, &checkpoint(5));
        damage(dir.path(), 5, true);
        assert_eq!(newest(dir.path()), Some(4), "torn");
        // The trial resumes from epoch 4 and writes epoch 5 again, garbled this time.
        let mut resumed = Slots::new(dir.path());
        assert_eq!(resumed.load_owned("", u32::MAX).unwrap().state.epoch, 4);
        save(&mut resumed, &checkpoint(5));
        damage(dir.path(), 5, false);
        assert_eq!(newest(dir.path()), Some(4), "garbled");
    }

    #[test]
    fn sparse_checkpoints_alternate_so_a_torn_write_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut slots = Slots::new(dir.path());
        for epoch in [1, 3, 5] {
            save(&mut slots, &checkpoint(epoch));
        }
        damage(dir.path(), 5, true);
        assert_eq!(newest(dir.path()), Some(3));
        // A resumed trial writes over the torn slot, never over epoch 3's.
        let mut resumed = Slots::new(dir.path());
        assert_eq!(resumed.load_owned("", u32::MAX).unwrap().state.epoch, 3);
        save(&mut resumed, &checkpoint(7));
        damage(dir.path(), 7, true);
        assert_eq!(newest(dir.path()), Some(3));
        assert_eq!(find(dir.path(), 3).map(|b| !b.is_empty()), Some(true));
        assert!(find(dir.path(), 7).is_none());
    }

    #[test]
    fn a_checkpoint_of_another_owner_is_never_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut slots = Slots::new(dir.path());
        let mut theirs = checkpoint(6);
        theirs.state.owner = "another sweep".into();
        save(&mut slots, &theirs);
        let mut mine = checkpoint(3);
        mine.state.owner = "this trial".into();
        save(&mut slots, &mine);
        let load = |owner: &str, epoch| Slots::new(dir.path()).load_owned(owner, epoch);
        assert_eq!(load("this trial", u32::MAX).unwrap().state.epoch, 3);
        assert!(load("this trial", 2).is_none());
        assert!(load("a third", u32::MAX).is_none());
    }
}
