//! The sweeps a dashboard shows, each folded from its journal and kept up to date by one
//! thread that reads what was appended: requests only read the folded state.

use crate::error::Result;
use crate::experiment::Experiment;
use crate::journal::{Event, Grown, Tail};
use crate::state::SweepState;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How often the follower looks for new events: a new epoch reaches the API within this
/// (and the page within this and its own poll).
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Where a sweep's events come from.
pub enum Feed {
    /// A results folder's journal file.
    Folder(Tail),
    /// A shared sweep in PostgreSQL.
    #[cfg(feature = "postgres")]
    Shared(Box<crate::journal::PgJournal>),
}

/// New events, and whether the source started over (a new sweep in the same folder).
type Fresh = (Vec<Event>, Grown);

impl Feed {
    /// The events appended since the last call; `known` is how many were read before (what a
    /// database is asked from; a file's tail keeps its own place).
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    fn read_new(&mut self, known: u64) -> Result<Fresh> {
        match self {
            Feed::Folder(tail) => {
                let mut events = Vec::new();
                let grown = tail.read_new(|e| events.push(e))?;
                Ok((events, grown))
            }
            #[cfg(feature = "postgres")]
            Feed::Shared(journal) => {
                use crate::journal::Journal;
                Ok((journal.read_from(known)?, Grown::Appended))
            }
        }
    }
}

/// One sweep as the dashboard knows it now.
pub struct View {
    /// How the sweep is named on the page: its folder, or its name and database.
    pub source: String,
    /// Its results folder, when it has one here (for trial logs).
    pub dir: Option<PathBuf>,
    /// Its experiment.
    pub experiment: Experiment,
    /// Its state, folded from every event read so far.
    pub state: SweepState,
    /// For each trial, the version at which it last changed: what `?since=` compares.
    pub changed: Vec<u64>,
    /// Counts the times the source started over; a page that saw another generation reloads.
    pub generation: u64,
    /// Why the last read failed, until one succeeds.
    pub error: Option<String>,
}

impl View {
    /// The number of events folded: grows with every change.
    pub fn version(&self) -> u64 {
        self.state.events
    }

    fn take(&mut self, (events, grown): Fresh) {
        if grown == Grown::Restarted {
            self.state = SweepState::default();
            self.changed.clear();
            self.generation += 1;
        }
        for event in &events {
            self.state.apply(event);
            if let Some(trial) = event.trial() {
                let slot = trial as usize;
                if self.changed.len() <= slot {
                    self.changed.resize(slot + 1, 0);
                }
                self.changed[slot] = self.state.events;
            }
        }
    }
}

/// A followed sweep: its feed (used only by the follower) and its view (read by requests).
pub struct Followed {
    feed: Mutex<Feed>,
    /// What requests read.
    pub view: RwLock<View>,
}

impl Followed {
    /// A sweep read from `feed` to its end.
    pub fn new(
        source: String,
        dir: Option<PathBuf>,
        experiment: Experiment,
        feed: Feed,
    ) -> Result<Followed> {
        let followed = Followed {
            feed: Mutex::new(feed),
            view: RwLock::new(View {
                source,
                dir,
                experiment,
                state: SweepState::default(),
                changed: Vec::new(),
                generation: 0,
                error: None,
            }),
        };
        let fresh = followed.read_new()?;
        followed.view.write().expect("not poisoned").take(fresh);
        Ok(followed)
    }

    fn read_new(&self) -> Result<Fresh> {
        let known = self.view.read().expect("not poisoned").state.events;
        self.feed.lock().expect("not poisoned").read_new(known)
    }

    /// Reads what was appended and folds it in; a failure is kept for the page to show.
    pub fn refresh(&self) {
        let fresh = self.read_new();
        let mut view = self.view.write().expect("not poisoned");
        match fresh {
            Ok(fresh) => {
                view.error = None;
                if !fresh.0.is_empty() || fresh.1 == Grown::Restarted {
                    view.take(fresh);
                }
            }
            Err(e) => view.error = Some(e.to_string()),
        }
    }
}

/// Starts the thread that keeps every sweep up to date, for as long as the process lives.
pub fn follow(sweeps: Arc<Vec<Followed>>) {
    std::thread::Builder::new()
        .name("follower".into())
        .spawn(move || {
            loop {
                std::thread::sleep(FOLLOW_EVERY);
                for sweep in sweeps.iter() {
                    sweep.refresh();
                }
            }
        })
        .expect("a thread starts");
}
