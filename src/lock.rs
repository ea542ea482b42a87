//! One writer per results folder: an exclusive `flock` on `kiln.lock`, which names its holder.
//!
//! The kernel releases a `flock` when its process dies, however it dies, so a lock left by a
//! killed kiln never blocks the next one; the pid written in the file only serves the message.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held while a process sweeps a folder; released on drop or death.
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    /// Takes the lock of `dir`, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        let path = crate::layout::lock(dir);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::runtime(format!("cannot create {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(busy(dir, holder.trim()));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::runtime(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "pid {} on {}", std::process::id(), hostname());
        let _ = file.flush();
        Ok(FolderLock { _file: file })
    }
}

/// The error for a folder another process sweeps.
fn busy(dir: &Path, holder: &str) -> Error {
    Error::runtime(format!(
        "{} is being swept by another kiln process ({}); wait for it to finish or stop it (Ctrl-C) first",
        dir.display(),
        if holder.is_empty() {
            "pid unknown"
        } else {
            holder
        }
    ))
}

/// Fails, naming the holder, if another process sweeps `dir`: checked before reading a folder
/// to continue it, which a sweep that has just started may not have finished writing.
pub fn ensure_free(dir: &Path) -> Result<()> {
    match holder(dir) {
        Some(holder) => Err(busy(dir, &holder)),
        None => Ok(()),
    }
}

/// This machine's name (for messages and worker names).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into())
}

/// Who sweeps `dir` right now, if anyone (reads the lock without taking it for long).
pub fn holder(dir: &Path) -> Option<String> {
    let file = File::open(crate::layout::lock(dir)).ok()?;
    // A shared lock is refused while a writer holds the exclusive one.
    if !matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)) {
        return None;
    }
    Some(
        std::fs::read_to_string(crate::layout::lock(dir))
            .unwrap_or_default()
            .trim()
            .to_string(),
    )
}
