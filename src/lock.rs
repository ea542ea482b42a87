//! One writer per results folder: an exclusive `flock` on the folder itself, and `kiln.lock`
//! naming its holder.
//!
//! The lock is on the folder, not on the file: people delete a "stale" `kiln.lock`, and a lock on
//! a deleted file excludes nobody, while the folder cannot go without the sweep. The kernel
//! releases a `flock` when its process dies, however it dies, so a lock left by a killed kiln
//! never blocks the next one; `kiln.lock` only serves the message.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

/// Held while a process sweeps a folder; released on drop or death.
pub struct FolderLock {
    _folder: File,
}

impl FolderLock {
    /// Takes the lock of `dir`, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        let folder = File::open(dir)
            .map_err(|e| Error::runtime(format!("cannot open {}: {e}", dir.display())))?;
        match folder.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(busy(dir, &named_holder(dir))),
            Err(TryLockError::Error(e)) => {
                return Err(Error::runtime(format!(
                    "cannot lock {}: {e}",
                    dir.display()
                )));
            }
        }
        let path = crate::layout::lock(dir);
        let named = crate::files::open_own(
            OpenOptions::new().create(true).truncate(true).write(true),
            &path,
        )
        .and_then(|mut file| {
            write!(file, "pid {} on {}", std::process::id(), hostname())?;
            file.flush()
        });
        named.map_err(|e| Error::runtime(format!("cannot create {}: {e}", path.display())))?;
        Ok(FolderLock { _folder: folder })
    }
}

/// What `kiln.lock` says of the holder ("" when it is gone).
fn named_holder(dir: &Path) -> String {
    std::fs::read_to_string(crate::layout::lock(dir))
        .unwrap_or_default()
        .trim()
        .to_string()
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

/// Who sweeps `dir` right now, if anyone (takes the lock shared for a moment).
pub fn holder(dir: &Path) -> Option<String> {
    let folder = File::open(dir).ok()?;
    // A shared lock is refused while a writer holds the exclusive one.
    if !matches!(folder.try_lock_shared(), Err(TryLockError::WouldBlock)) {
        return None;
    }
    Some(named_holder(dir))
}
