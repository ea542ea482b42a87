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
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
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
            self.file
                .write_all(&buffer)
                .context(|| format!("cannot write the journal {}", self.path.display()))?;
            self.unsynced = true;
        }
        if sync && self.unsynced {
            self.file.sync_data().context(|| self.what())?;
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
fn parse_each(path: &Path, mut input: impl BufRead, mut each: impl FnMut(Event)) -> Result<()> {
    let mut sequence = crate::state::Sequence::default();
    let corrupt = |line: usize, why: String| {
        Error::runtime(format!(
            "{}:{line}: the journal is corrupt{why}; it was changed by something other than kiln",
            path.display()
        ))
    };
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        let read = input
            .read_line(&mut line)
            .context(|| format!("cannot read the journal {}", path.display()))?;
        if read == 0 {
            break;
        }
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
    Ok(())
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
