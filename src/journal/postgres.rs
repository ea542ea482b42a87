//! The journal in PostgreSQL: one row per event in `kiln_events`, shared by every worker of a
//! sweep on any machine.
//!
//! **Total order without gaps.** An event's position (`seq`) is taken from its sweep's row in
//! `kiln_sweeps` (`next_seq`), which the appending transaction locks (`SELECT ... FOR UPDATE`)
//! until it commits. So appends to one sweep commit one after another, in `seq` order, and a
//! reader can never see event `n + 1` before event `n` (which a sequence or an identity column
//! allows: concurrent transactions take numbers in one order and commit in another).
//!
//! **Appends are retried safely.** Every append carries a token unique to its writer and batch.
//! If the connection drops after the commit was sent, the retry finds its own token among the
//! events it reads first, and does not append twice.
//!
//! **Durability.** Like the file journal, only the events that start a sweep or set its budget
//! wait for the server's disk; the others are committed with `synchronous_commit = off`, which
//! the server writes out within `wal_writer_delay` (200 ms by default). A server crash can lose
//! that last fraction of a second of reports (never corrupt the journal), and the sweep redoes
//! that work to the same result, every trial being a pure function of its seed; a trial a
//! worker was told it had claimed but whose claim was lost fails that worker's next lease check
//! and stops there. Waiting for the disk at every commit held one worker to 140 no-op trials
//! per second here, against 168 without.
//!
//! **Conditional appends.** [`PgJournal::transact`] reads what others appended, lets the
//! caller decide what to append from the up-to-date state (claim a trial, check a lease), and
//! appends it, all in one transaction under the sweep's lock.

use super::{Event, Journal};
use crate::db::{Conn, Db, DbError, Tx};
use crate::error::{Error, Result};
use crate::state::SweepState;

/// The events of one sweep in PostgreSQL.
pub struct PgJournal {
    db: Db,
    sweep: String,
    /// This writer's name, unique among all writers ever (host, pid, start time).
    writer: String,
    /// Batches appended so far by this writer.
    batches: u64,
}

/// A sweep as stored in `kiln_sweeps`.
#[derive(Debug, Clone)]
pub struct StoredSweep {
    /// The experiment file's text, frozen when the sweep was created.
    pub experiment: String,
    /// The folder its relative paths resolved against on the machine that created it.
    pub base_dir: String,
}

impl PgJournal {
    /// The journal of sweep `sweep`, written as `writer`.
    pub fn new(db: Db, sweep: &str, writer: &str) -> PgJournal {
        PgJournal {
            db,
            sweep: sweep.to_string(),
            writer: writer.to_string(),
            batches: 0,
        }
    }

    /// The connection, for the other tables of the sweep.
    pub fn db(&mut self) -> &mut Db {
        &mut self.db
    }

    /// The sweep's name.
    pub fn sweep(&self) -> &str {
        &self.sweep
    }

    /// Creates the sweep's row unless it exists; returns the stored sweep either way.
    pub fn create(&mut self, experiment: &str, base_dir: &str) -> Result<StoredSweep> {
        let sweep = self.sweep.clone();
        self.db.run("create the sweep", |conn| {
            conn.execute(
                "INSERT INTO kiln_sweeps (name, experiment, base_dir) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&sweep, &experiment, &base_dir],
            )?;
            Ok(())
        })?;
        self.stored()?
            .ok_or_else(|| Error::runtime(format!("sweep {} vanished as it was created", sweep)))
    }

    /// The stored sweep, if it exists.
    pub fn stored(&mut self) -> Result<Option<StoredSweep>> {
        let sweep = self.sweep.clone();
        self.db.run("read the sweep", |conn| {
            let rows = conn.query(
                "SELECT experiment, base_dir FROM kiln_sweeps WHERE name = $1",
                &[&sweep],
            )?;
            Ok(rows.first().map(|r| StoredSweep {
                experiment: r.get(0),
                base_dir: r.get(1),
            }))
        })
    }

    /// Names of all sweeps in the database, oldest first (for "did you mean").
    pub fn sweeps(db: &mut Db) -> Result<Vec<String>> {
        db.run("list sweeps", |conn| {
            Ok(conn
                .query("SELECT name FROM kiln_sweeps ORDER BY created", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    /// Brings `state` up to date, then appends what `decide` returns for the new state, in one
    /// transaction that holds the sweep's lock: nobody appends in between. `decide` may also
    /// write other tables in the same transaction (a lease). Returns `decide`'s answer; the
    /// appended events are applied to `state`.
    pub fn transact<T>(
        &mut self,
        what: &str,
        state: &mut SweepState,
        mut decide: impl FnMut(
            &SweepState,
            &mut Tx<'_>,
        ) -> std::result::Result<(Vec<Event>, T), DbError>,
    ) -> Result<T> {
        self.batches += 1;
        let token = format!("{}#{}", self.writer, self.batches);
        let sweep = self.sweep.clone();
        self.db.run(what, |conn| {
            let mut tx = conn.transaction()?;
            let next: i64 = tx
                .query(
                    "SELECT next_seq FROM kiln_sweeps WHERE name = $1 FOR UPDATE",
                    &[&sweep],
                )?
                .first()
                .ok_or_else(|| Error::runtime(format!("sweep {sweep} is gone from the database")))?
                .get(0);
            let mut committed_before = false;
            let rows = tx.query(READ_EVENTS, &[&sweep, &(state.events as i64)])?;
            for (event, event_token) in read_events(rows, &sweep, state.events)? {
                committed_before |= event_token == token;
                state.apply(&event);
            }
            debug_assert_eq!(state.events, next as u64);
            let (events, answer) = decide(state, &mut tx)?;
            if committed_before {
                // An earlier attempt committed before its connection was lost.
                return Ok(answer);
            }
            append_events(&mut tx, &sweep, &token, next, &events)?;
            if events.iter().any(Event::must_sync) {
                tx.batch_execute("SET LOCAL synchronous_commit = on")?;
            }
            tx.commit()?;
            for event in &events {
                state.apply(event);
            }
            Ok(answer)
        })
    }
}

const READ_EVENTS: &str =
    "SELECT seq, token, body FROM kiln_events WHERE sweep = $1 AND seq >= $2 ORDER BY seq";

/// Events of `sweep` from `from` on (`rows` of [`READ_EVENTS`]), with their tokens.
fn read_events(
    rows: Vec<postgres::Row>,
    sweep: &str,
    from: u64,
) -> std::result::Result<Vec<(Event, String)>, DbError> {
    let mut events = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let seq: i64 = row.get(0);
        if seq as u64 != from + i as u64 {
            return Err(DbError::Kiln(Error::runtime(format!(
                "the journal of sweep {sweep} has a gap before event {seq}"
            ))));
        }
        let body: &str = row.get(2);
        let event = serde_json::from_str(body).map_err(|e| {
            Error::runtime(format!(
                "event {seq} of sweep {sweep} is unreadable ({e}): {body}"
            ))
        })?;
        events.push((event, row.get(1)));
    }
    Ok(events)
}

fn append_events(
    tx: &mut Tx<'_>,
    sweep: &str,
    token: &str,
    next: i64,
    events: &[Event],
) -> std::result::Result<(), DbError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut seqs = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        seqs.push(next + i as i64);
        bodies.push(
            serde_json::to_string(event)
                .map_err(|e| Error::runtime(format!("cannot encode an event: {e}")))?,
        );
    }
    // One statement, one round trip: the events and the sweep's next position.
    tx.execute(
        "WITH appended AS (
             INSERT INTO kiln_events (sweep, seq, token, body)
             SELECT $1, s, $2, b FROM unnest($3::bigint[], $4::text[]) AS t(s, b)
         )
         UPDATE kiln_sweeps SET next_seq = $5 WHERE name = $1",
        &[
            &sweep,
            &token,
            &seqs,
            &bodies,
            &(next + events.len() as i64),
        ],
    )?;
    Ok(())
}

impl Journal for PgJournal {
    fn append(&mut self, events: &[Event], _sync: bool) -> Result<()> {
        // Events that must be durable are synced by `transact` itself.
        if events.is_empty() {
            return Ok(());
        }
        // Appending does not need the caller's state: start from the end of the journal.
        let mut state = SweepState::default();
        let sweep = self.sweep.clone();
        state.events = self.db.run("read the journal's length", |conn| {
            let rows = conn.query(
                "SELECT next_seq FROM kiln_sweeps WHERE name = $1",
                &[&sweep],
            )?;
            Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0) as u64))
        })?;
        let events = events.to_vec();
        self.transact("append to the journal", &mut state, |_, _| {
            Ok((events.clone(), ()))
        })
    }

    fn read_from(&mut self, from: u64) -> Result<Vec<Event>> {
        let sweep = self.sweep.clone();
        let events = self.db.run("read the journal", |conn: &mut Conn| {
            let rows = conn.query(READ_EVENTS, &[&sweep, &(from as i64)])?;
            read_events(rows, &sweep, from)
        })?;
        Ok(events.into_iter().map(|(event, _)| event).collect())
    }
}
