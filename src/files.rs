//! Whole-file writes that readers never see half done: write a temporary file beside the
//! target, then rename it over the target (atomic on POSIX file systems).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically. With `sync`, the data is on disk before the rename, so
/// the file survives a power cut too; without it, a power cut may lose the new file. Files that
/// can be rebuilt (reports from the journal, checkpoints by retraining) skip the sync.
pub fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    // Per process: two processes writing the same file (two exports of one sweep) never
    // write into each other's temporary file.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    std::fs::rename(&temporary, path)
}

/// FNV-1a, 64 bits: a fingerprint stable across platforms and versions, unlike std's hasher.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Whether an I/O error is the storage's rather than the caller's: a full disk, a quota, a
/// failing or read-only device. Such an error stops a sweep instead of failing its trials.
pub fn is_storage_error(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS)
    )
}

/// A folder's regular files (recursively, symlinks left out) as one byte string: for each,
/// the length of its relative path, the path, the length of its data, the data.
#[cfg(feature = "postgres")]
pub fn pack_folder(dir: &Path) -> std::io::Result<Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy();
                let data = std::fs::read(&path)?;
                out.extend_from_slice(&(name.len() as u64).to_le_bytes());
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(&(data.len() as u64).to_le_bytes());
                out.extend_from_slice(&data);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Writes the files of [`pack_folder`]'s bytes into `dir`. A path that would leave `dir`
/// (absolute, or with `..`) or bytes that do not parse are refused.
#[cfg(feature = "postgres")]
pub fn unpack_folder(bytes: &[u8], dir: &Path) -> std::io::Result<()> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut rest = bytes;
    let take = |n: usize, rest: &mut &[u8]| -> std::io::Result<Vec<u8>> {
        if rest.len() < n {
            return Err(bad("a packed folder is cut short"));
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head.to_vec())
    };
    let length = |b: Vec<u8>| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize;
    while !rest.is_empty() {
        let n = length(take(8, &mut rest)?);
        let name = String::from_utf8(take(n, &mut rest)?).map_err(|_| bad("a packed name"))?;
        let n = length(take(8, &mut rest)?);
        let data = take(n, &mut rest)?;
        let relative = Path::new(&name);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad("a packed path leaves its folder"));
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(feature = "postgres")]
    fn a_packed_folder_unpacks_to_the_same_files() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir(from.path().join("sub")).unwrap();
        std::fs::write(from.path().join("a.txt"), "alpha").unwrap();
        std::fs::write(from.path().join("sub/b.bin"), [0u8, 1, 2]).unwrap();
        let bytes = super::pack_folder(from.path()).unwrap();
        let to = tempfile::tempdir().unwrap();
        super::unpack_folder(&bytes, to.path()).unwrap();
        assert_eq!(std::fs::read(to.path().join("a.txt")).unwrap(), b"alpha");
        assert_eq!(
            std::fs::read(to.path().join("sub/b.bin")).unwrap(),
            [0, 1, 2]
        );
        assert!(super::unpack_folder(&bytes[..bytes.len() - 1], to.path()).is_err());
    }
}
