//! The file backend: `journal.jsonl`, one JSON event per line.
//!
//! Appends are single `write` calls on a file opened with `O_APPEND`, then `fdatasync` when the
//! event matters. A process killed mid-write leaves a torn last line (no `\n`): replay ignores
//! it, and the next writer cuts it off before appending, so it never becomes a corrupt line in
//! the middle. Lines before the last are never changed.

use super::{Event, Journal};
use crate::error::{Context, Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A journal in a JSON-lines file.
pub struct FileJournal {
    path: PathBuf,
    file: File,
    /// Whether something was written since the last sync.
    unsynced: bool,
}

impl FileJournal {
    /// Opens (creating if needed) the journal at `path` for appending.
    pub fn open(path: &Path) -> Result<FileJournal> {
        let file = crate::files::open_own(
            OpenOptions::new().create(true).read(true).append(true),
            path,
        )
        .context(|| format!("cannot open the journal {}", path.display()))?;
        let mut journal = FileJournal {
            path: path.to_path_buf(),
            file,
            unsynced: false,
        };
        journal.cut_torn_tail()?;
        Ok(journal)
    }

    /// Reads a journal without opening it for writing (for `kiln status` and friends).
    pub fn read(path: &Path) -> Result<Vec<Event>> {
        let mut text = String::new();
        File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .context(|| format!("cannot read the journal {}", path.display()))?;
        parse(path, &text)
    }

    /// The state a journal file folds into, without holding its events: the cost of reading a
    /// sweep is its text and its state, not every event at once.
    pub fn fold(path: &Path) -> Result<crate::state::SweepState> {
        let file =
            File::open(path).context(|| format!("cannot read the journal {}", path.display()))?;
        let mut state = crate::state::SweepState::default();
        parse_each(path, BufReader::with_capacity(1 << 20, file), |event| {
            state.apply(&event)
        })?;
        Ok(state)
    }

    /// The journal's first event, if it has a whole one, read without the rest.
    pub fn first(path: &Path) -> Result<Option<Event>> {
        let file =
            File::open(path).context(|| format!("cannot read the journal {}", path.display()))?;
        let mut line = String::new();
        BufReader::new(file)
            .read_line(&mut line)
            .context(|| format!("cannot read the journal {}", path.display()))?;
        Ok(serde_json::from_str(&line).ok())
    }

    /// The error of an append that did not land whole. The part that did is cut, so the next
    /// append (after room is made) starts a line of its own; a full disk says how to go on.
    fn write_failed(&mut self, error: std::io::Error) -> Error {
        let _ = self.cut_torn_tail();
        let mut message = format!("cannot write the journal {}: {error}", self.path.display());
        if crate::files::is_storage_error(&error) {
            let folder = self.path.parent().unwrap_or(Path::new("."));
            message.push_str(&format!(
                ". The sweep stopped; every event written before is kept. Make room (or mend the disk), then continue with: {} resume {}",
                crate::output::program(),
                crate::output::pasteable(folder)
            ));
        }
        Error::runtime(message)
    }

    fn cut_torn_tail(&mut self) -> Result<()> {
        let length = self.file.metadata().context(|| self.what())?.len();
        if length == 0 {
            return Ok(());
        }
        let mut text = Vec::new();
        self.file.seek(SeekFrom::Start(0)).context(|| self.what())?;
        self.file.read_to_end(&mut text).context(|| self.what())?;
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            tracing::warn!(
                "{}: ignoring a torn last line ({} bytes) left by an interrupted write",
                self.path.display(),
                text.len() - complete
            );
            self.file.set_len(complete as u64).context(|| self.what())?;
            self.file.sync_data().context(|| self.what())?;
        }
        Ok(())
    }

    fn what(&self) -> String {
        format!("journal {}", self.path.display())
    }
}

/// `events` as the journal file holds them: one JSON object per line.
pub fn lines(events: &[Event]) -> serde_json::Result<Vec<u8>> {
    let mut buffer = Vec::with_capacity(256 * events.len());
    for event in events {
        serde_json::to_writer(&mut buffer, event)?;
        buffer.push(b'\n');
    }
    Ok(buffer)
}

impl Journal for FileJournal {
    fn append(&mut self, events: &[Event], sync: bool) -> Result<()> {
        let buffer = lines(events).context(|| self.what())?;
        if !buffer.is_empty() {
            // One write call: with O_APPEND the lines land whole and in order.
            if let Err(error) = self.file.write_all(&buffer) {
                return Err(self.write_failed(error));
            }
            self.unsynced = true;
        }
        if sync && self.unsynced {
            if let Err(error) = self.file.sync_data() {
                return Err(self.write_failed(error));
            }
            tracing::debug!("journal synced: {}", self.path.display());
            self.unsynced = false;
        }
        Ok(())
    }

    fn read_from(&mut self, from: u64) -> Result<Vec<Event>> {
        let mut events = FileJournal::read(&self.path)?;
        Ok(events.split_off((from as usize).min(events.len())))
    }
}

fn parse(path: &Path, text: &str) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    parse_each(path, text.as_bytes(), |event| events.push(event))?;
    Ok(events)
}

/// Hands each event of a journal to `each`, in order, checking their sequence, one line in
/// memory at a time; a torn last line (no newline, not JSON) is left out.
fn parse_each(path: &Path, input: impl BufRead, each: impl FnMut(Event)) -> Result<()> {
    parse_lines(path, input, &mut crate::state::Sequence::default(), 0, each).map(|_| ())
}

/// [`parse_each`] from line `skipped + 1` on, continuing `sequence`; returns the lines read.
fn parse_lines(
    path: &Path,
    mut input: impl BufRead,
    sequence: &mut crate::state::Sequence,
    skipped: usize,
    mut each: impl FnMut(Event),
) -> Result<usize> {
    let corrupt = |line: usize, why: String| {
        Error::runtime(format!(
            "{}:{line}: the journal is corrupt{why}; it was changed by something other than kiln",
            path.display()
        ))
    };
    let mut line = String::new();
    let mut number = skipped;
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .context(|| format!("cannot read the journal {}", path.display()))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(event) => {
                sequence
                    .check(&event)
                    .map_err(|why| corrupt(number, format!(": {why}")))?;
                each(event)
            }
            Err(_) if !line.ends_with('\n') => break,
            Err(e) => return Err(corrupt(number, format!(" ({e})"))),
        }
    }
    Ok(number - skipped)
}

/// A reader that follows a journal file as it grows (for `kiln dashboard`): each call reads
/// only the whole lines appended since the last, so following costs what is new, not the
/// whole sweep again.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    /// Bytes of whole lines already read.
    offset: u64,
    /// Lines already read.
    lines: usize,
    /// The file read (its inode): another file in its place is another journal.
    inode: Option<u64>,
    sequence: crate::state::Sequence,
}

/// What [`Tail::read_new`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grown {
    /// Only appended lines (maybe none): they were handed on.
    Appended,
    /// The file was replaced or is shorter than what was read (a new sweep in the same
    /// folder): it was read
    /// again from its start, and the caller must forget what it folded before.
    Restarted,
}

impl Tail {
    /// A tail at the start of the journal at `path`.
    pub fn new(path: &Path) -> Tail {
        Tail {
            path: path.to_path_buf(),
            offset: 0,
            lines: 0,
            inode: None,
            sequence: Default::default(),
        }
    }

    /// Hands each event appended since the last call to `each`. A torn last line waits for
    /// the rest of it.
    pub fn read_new(&mut self, mut each: impl FnMut(Event)) -> Result<Grown> {
        let path = self.path.clone();
        let what = || format!("cannot read the journal {}", path.display());
        let mut file = File::open(&self.path).context(what)?;
        let metadata = file.metadata().context(what)?;
        let (length, inode) = (
            metadata.len(),
            std::os::unix::fs::MetadataExt::ino(&metadata),
        );
        let grown = if length < self.offset || self.inode.is_some_and(|i| i != inode) {
            *self = Tail::new(&path);
            Grown::Restarted
        } else {
            Grown::Appended
        };
        self.inode = Some(inode);
        let mut text = Vec::with_capacity((length - self.offset) as usize);
        file.seek(SeekFrom::Start(self.offset)).context(what)?;
        file.read_to_end(&mut text).context(what)?;
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.lines += parse_lines(
            &self.path,
            &text[..whole],
            &mut self.sequence,
            self.lines,
            &mut each,
        )?;
        self.offset += whole as u64;
        Ok(grown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trial `trial`'s creation: events in order, as a journal holds them.
    fn created(trial: u64) -> Event {
        Event::TrialCreated {
            trial,
            seed: trial,
            params: Default::default(),
            queued: false,
            time: 1.0,
        }
    }

    #[test]
    fn torn_tail_is_ignored_then_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        FileJournal::open(&path)
            .unwrap()
            .append(&[created(0), created(1)], true)
            .unwrap();
        let whole = std::fs::read(&path).unwrap();
        // A write killed halfway through the second line.
        let first_line = whole.iter().position(|&b| b == b'\n').unwrap() + 1;
        std::fs::write(&path, &whole[..first_line + 20]).unwrap();
        assert_eq!(FileJournal::read(&path).unwrap(), vec![created(0)]);
        let mut journal = FileJournal::open(&path).unwrap();
        journal.append(&[created(1)], true).unwrap();
        assert_eq!(journal.read_from(0).unwrap(), vec![created(0), created(1)]);
        assert_eq!(journal.read_from(1).unwrap(), vec![created(1)]);
    }

    #[test]
    fn a_tail_reads_each_whole_line_once_and_waits_for_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = FileJournal::open(&path).unwrap();
        journal.append(&[created(0)], true).unwrap();
        let mut tail = Tail::new(&path);
        let mut seen = Vec::new();
        assert_eq!(tail.read_new(|e| seen.push(e)).unwrap(), Grown::Appended);
        assert_eq!(seen, [created(0)]);
        // Half of the next line, then the rest.
        let line = lines(&[created(1)]).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&line[..10]).unwrap();
        tail.read_new(|e| seen.push(e)).unwrap();
        assert_eq!(seen.len(), 1, "a torn line is not read");
        file.write_all(&line[10..]).unwrap();
        tail.read_new(|e| seen.push(e)).unwrap();
        assert_eq!(seen, [created(0), created(1)]);
        // A new journal in its place is read from its start.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, lines(&[created(0)]).unwrap()).unwrap();
        seen.clear();
        assert_eq!(tail.read_new(|e| seen.push(e)).unwrap(), Grown::Restarted);
        assert_eq!(seen, [created(0)]);
    }

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        FileJournal::open(&path)
            .unwrap()
            .append(&[created(0)], true)
            .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "garbage\n");
        std::fs::write(&path, text).unwrap();
        let e = FileJournal::read(&path).unwrap_err().to_string();
        assert!(e.contains("journal.jsonl:1"), "{e}");
    }
}
