//! Whole-file writes that readers never see half done: write a temporary file beside the
//! target, then rename it over the target (atomic on POSIX file systems).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically. With `sync`, the data is on disk before the rename, so
/// the file survives a power cut too; without it, a power cut may lose the new file. Files that
/// can be rebuilt (reports from the journal, checkpoints by retraining) skip the sync.
pub fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    std::fs::rename(&temporary, path)
}

/// Makes an existing file durable (e.g. a trial's best weights when the trial ends).
pub fn sync(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}
