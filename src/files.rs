//! Whole-file writes that readers never see half done: write a temporary file beside the
//! target, then rename it over the target (atomic on POSIX file systems).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically. With `sync`, the data is on disk before the rename, so
/// the file survives a power cut too; without it, a power cut may lose the new file. Files that
/// can be rebuilt (reports from the journal, checkpoints by retraining) skip the sync.
/// The rename replaces a symbolic link at `path` itself, never its target.
pub fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    // Per process: two processes writing the same file (two exports of one sweep) never
    // write into each other's temporary file.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    // A new file, never an existing one: whatever lies at the temporary name (a crashed
    // write's leftover, a planted link) is removed, not written through.
    match std::fs::remove_file(&temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    std::fs::rename(&temporary, path)
}

/// Opens `path` as `options` say, but never through a symbolic link: kiln writes only its own
/// files, and a link planted in a results folder (at a checkpoint, at `kiln.log`) would make it
/// overwrite or append to whatever the link points at. A link is refused with an error that
/// names it.
pub fn open_own(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(format!(
                    "{} is a symbolic link: kiln never writes through a link (remove it)",
                    path.display()
                ))
            } else {
                e
            }
        })
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

/// The bytes of a folder's regular files, recursively (symlinks not followed); what cannot
/// be read counts nothing.
pub fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => folder_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// A size in bytes for people: "812 B", "105.0 KB", "1.2 MB", "3.4 GB" (powers of 1000).
pub fn for_people(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1000.0;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
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
        write_atomic(&path, &data, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        let shown: Vec<String> = [0, 999, 1000, 105_000, 1_225_864, 118_000_000_000]
            .into_iter()
            .map(super::for_people)
            .collect();
        assert_eq!(
            shown,
            ["0 B", "999 B", "1.0 KB", "105.0 KB", "1.2 MB", "118.0 GB"]
        );
    }

    #[test]
    fn a_link_at_the_target_or_at_the_temporary_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("report.html");
        let temporary = dir
            .path()
            .join(format!("report.html.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        std::os::unix::fs::symlink(&victim, &temporary).unwrap();
        super::write_atomic(&target, b"new", false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");

        let appended = dir.path().join("kiln.log");
        std::os::unix::fs::symlink(&victim, &appended).unwrap();
        let mut options = std::fs::OpenOptions::new();
        let error = super::open_own(options.create(true).append(true), &appended).unwrap_err();
        assert!(
            error.to_string().contains("kiln.log is a symbolic link"),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

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
