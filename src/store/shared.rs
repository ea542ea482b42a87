//! The shared store: a sweep in PostgreSQL, with leases, fencing and trial files in the
//! database (see the parent module). Built with the `postgres` feature.

use super::{Claim, Create, Lease, Storage, Store, begin, choose, refuse_different};
use crate::checkpoint::Checkpoint;
use crate::db::{Db, DbError};
use crate::error::{Context, Error, Result};
use crate::experiment::{self, Experiment};
use crate::journal::{Event, PgJournal, now};
use crate::layout;
use crate::state::SweepState;
use std::path::Path;
use std::time::{Duration, Instant};

/// Trial files kept in the database: the checkpoint, and what a trial leaves behind.
pub const CHECKPOINT_BLOB: &str = "checkpoint";

/// The whole trial folder, packed, for objectives that keep their own checkpoints there (a
/// command's `KILN_TRIAL_DIR`): copied with each report, unpacked where the trial continues.
pub const FOLDER_BLOB: &str = "folder";

/// Whether a stored file is kiln's bookkeeping rather than one of the trial's own files.
pub fn internal_blob(name: &str) -> bool {
    name == CHECKPOINT_BLOB || name == FOLDER_BLOB
}

/// Whose leases a worker writes: its sweep, its name (host, pid and start time) and the
/// lease's length, as the queries bind them.
struct Holder {
    sweep: String,
    worker: String,
    lease: Duration,
    /// `lease` in seconds.
    seconds: f64,
}

/// A sweep in PostgreSQL, shared with other workers.
pub struct DbStore {
    journal: PgJournal,
    /// What this worker's rows in `kiln_leases` hold.
    holder: Holder,
    /// Trial folders for this process (removed when it ends).
    scratch: tempfile::TempDir,
    heartbeat: Instant,
}

impl DbStore {
    /// Connects, creates the sweep of `experiment` or checks that the stored one is the same,
    /// and records its start and budget.
    pub fn open(
        storage: &Storage,
        experiment: &Experiment,
        data: Option<&str>,
        trials: Option<u64>,
    ) -> Result<(DbStore, SweepState)> {
        let db = Db::connect(&storage.url)?;
        let worker = format!(
            "{}:{}:{}",
            crate::lock::hostname(),
            std::process::id(),
            now() as u64
        );
        let sweep = storage.sweep.clone().unwrap_or(experiment.name.clone());
        let mut journal = PgJournal::new(db, &sweep, &worker);
        let stored = journal.create(
            &experiment.source.text,
            &experiment.source.base_dir.display().to_string(),
        )?;
        if experiment::fingerprint(&stored.experiment)
            != experiment::fingerprint(&experiment.source.text)
        {
            let program = crate::output::program();
            return Err(refuse_different(
                &stored.experiment,
                experiment,
                &format!("sweep `{sweep}` in {}", journal.db().shown()),
                &format!("--sweep name, or `{program} worker` to join the one it holds"),
            ));
        }
        remove_stale_scratch();
        let scratch = tempfile::Builder::new()
            .prefix(&format!("kiln-{}-{sweep}-", std::process::id()))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .context(|| "cannot create a scratch folder for trial files".to_string())?;
        std::fs::write(layout::experiment(scratch.path()), &experiment.source.text)
            .context(|| "cannot write the scratch folder".to_string())?;
        let mut state = SweepState::default();
        begin(
            experiment,
            None,
            data,
            trials,
            &mut state,
            |state, events| {
                journal.transact("start the sweep", state, |state, _| Ok((events(state), ())))
            },
        )?;
        tracing::info!(
            "worker {worker} joined sweep {sweep} in {} ({} trials so far)",
            journal.db().shown(),
            state.trials.len()
        );
        let store = DbStore {
            journal,
            holder: Holder {
                sweep,
                worker,
                lease: storage.lease,
                seconds: storage.lease.as_secs_f64(),
            },
            scratch,
            heartbeat: Instant::now(),
        };
        Ok((store, state))
    }

    fn put_blob(&mut self, trial: u64, name: &str, data: &[u8]) -> Result<()> {
        let sweep = &self.holder.sweep;
        self.journal.db().run("store a trial file", |conn| {
            conn.execute(
                "INSERT INTO kiln_blobs (sweep, trial, name, data) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sweep, trial, name) DO UPDATE SET data = EXCLUDED.data",
                &[sweep, &(trial as i64), &name, &data],
            )?;
            Ok(())
        })
    }
}

/// The files stored for a trial: `(name, bytes)`.
pub fn blobs(
    db: &mut Db,
    sweep: &str,
    trial: u64,
    name: Option<&str>,
) -> Result<Vec<(String, Vec<u8>)>> {
    db.run("read trial files", |conn| {
        let rows = conn.query(
            "SELECT name, data FROM kiln_blobs WHERE sweep = $1 AND trial = $2
             AND ($3::text IS NULL OR name = $3)",
            &[&sweep, &(trial as i64), &name],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
}

impl Store for DbStore {
    fn claim(
        &mut self,
        state: &mut SweepState,
        slot: usize,
        running: &[u64],
        create: &mut Create<'_>,
    ) -> Result<Claim> {
        let Holder {
            sweep,
            worker: me,
            seconds: lease,
            ..
        } = &self.holder;
        self.journal.transact("claim a trial", state, |state, tx| {
            // Leases of other workers that are still running.
            let held: Vec<i64> = tx
                .query(
                    "SELECT trial FROM kiln_leases
                         WHERE sweep = $1 AND worker <> $2 AND expires > now()",
                    &[sweep, me],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let free = |n: u64| !held.contains(&(n as i64));
            let (events, claim) = choose(state, running, free, create, format!("{me}/{slot}"));
            if let Claim::Run(trial) = claim {
                tx.execute(
                    "INSERT INTO kiln_leases (sweep, trial, worker, expires)
                     VALUES ($1, $2, $3, now() + $4 * interval '1 second')
                     ON CONFLICT (sweep, trial) DO UPDATE
                     SET worker = EXCLUDED.worker, expires = EXCLUDED.expires",
                    &[sweep, &(trial as i64), me, lease],
                )?;
            }
            Ok((events, claim))
        })
    }

    fn record(&mut self, state: &mut SweepState, trial: u64, events: Vec<Event>) -> Result<bool> {
        let Holder {
            sweep,
            worker: me,
            seconds: lease,
            ..
        } = &self.holder;
        let ends = events
            .iter()
            .any(|e| matches!(e, Event::TrialFinished { .. }));
        self.journal.transact("record a report", state, |_, tx| {
            // Renew the lease (or, at the trial's end, drop it) if it is still ours.
            let ours = if ends {
                tx.execute(
                    "DELETE FROM kiln_leases WHERE sweep = $1 AND trial = $2 AND worker = $3",
                    &[sweep, &(trial as i64), me],
                )?
            } else {
                tx.execute(
                    "UPDATE kiln_leases SET expires = now() + $4 * interval '1 second'
                     WHERE sweep = $1 AND trial = $2 AND worker = $3",
                    &[sweep, &(trial as i64), me, lease],
                )?
            };
            if ours == 0 {
                return Ok((Vec::new(), false));
            }
            Ok((events.clone(), true))
        })
    }

    fn tick(&mut self, _state: &mut SweepState) -> Result<()> {
        // A few heartbeats per lease, so one slow round trip does not lose it.
        if self.heartbeat.elapsed() < self.holder.lease / 4 {
            return Ok(());
        }
        self.heartbeat = Instant::now();
        let Holder {
            sweep,
            worker: me,
            seconds: lease,
            ..
        } = &self.holder;
        self.journal.db().run("renew leases", |conn| {
            conn.execute(
                "UPDATE kiln_leases SET expires = now() + $3 * interval '1 second'
                 WHERE sweep = $1 AND worker = $2",
                &[sweep, me, lease],
            )?;
            Ok(())
        })
    }

    fn awaits_reports(&self) -> bool {
        true
    }

    fn folder(&self) -> &Path {
        self.scratch.path()
    }

    fn before_run(&mut self, trial: u64) -> Result<()> {
        let dir = self.trial_dir(trial);
        // Files of an earlier run of this trial in this process are stale: the database wins.
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let sweep = &self.holder.sweep;
        for (_, data) in blobs(self.journal.db(), sweep, trial, Some(FOLDER_BLOB))? {
            crate::files::unpack_folder(&data, &dir).context(|| {
                format!("cannot unpack trial {trial}'s files into {}", dir.display())
            })?;
        }
        for (_, data) in blobs(self.journal.db(), sweep, trial, Some(CHECKPOINT_BLOB))? {
            // Into a slot of the emptied folder, where the trial looks for it.
            if Checkpoint::from_bytes(&data).is_none() {
                tracing::warn!("trial {trial}: its stored checkpoint is garbled; it starts over");
                continue;
            }
            std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
            let checkpoint = crate::checkpoint::path(&dir, 0);
            crate::files::write_atomic(&checkpoint, &data, false)
                .context(|| format!("cannot write {}", checkpoint.display()))?;
        }
        Ok(())
    }

    fn after_checkpoint(&mut self, trial: u64, epoch: u32) -> Result<()> {
        let dir = self.trial_dir(trial);
        if let Some(data) = crate::checkpoint::find(&dir, epoch) {
            return self.put_blob(trial, CHECKPOINT_BLOB, &data);
        }
        let data = crate::files::pack_folder(&dir)
            .context(|| format!("cannot read the files of {}", dir.display()))?;
        self.put_blob(trial, FOLDER_BLOB, &data)
    }

    fn before_end(&mut self, trial: u64) -> Result<()> {
        let dir = self.trial_dir(trial);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("checkpoint.") || !entry.path().is_file() {
                continue;
            }
            let data = std::fs::read(entry.path()).context(|| format!("cannot read {name}"))?;
            self.put_blob(trial, &name, &data)?;
        }
        Ok(())
    }

    fn drop_checkpoints(&mut self, trial: u64) -> Result<()> {
        super::remove_checkpoints(&self.trial_dir(trial))?;
        let sweep = &self.holder.sweep;
        self.journal.db().run("drop a checkpoint", |conn| {
            conn.execute(
                "DELETE FROM kiln_blobs WHERE sweep = $1 AND trial = $2 AND name = $3",
                &[sweep, &(trial as i64), &CHECKPOINT_BLOB],
            )?;
            Ok(())
        })
    }

    fn close(&mut self, _state: &mut SweepState) -> Result<()> {
        // Trials left unfinished (Ctrl-C) are free for others at once, not after the lease.
        let Holder {
            sweep, worker: me, ..
        } = &self.holder;
        self.journal.db().run("release leases", |conn| {
            conn.execute(
                "DELETE FROM kiln_leases WHERE sweep = $1 AND worker = $2",
                &[sweep, me],
            )?;
            Ok(())
        })
    }
}

/// The leases of a shared sweep.
pub fn leases(storage: &Storage) -> Result<Vec<Lease>> {
    let sweep = storage.sweep.clone().unwrap_or_default();
    Db::connect(&storage.url)?.run("read leases", |conn| {
        let rows = conn.query(
            "SELECT trial, worker, extract(epoch FROM expires - now())::float8
             FROM kiln_leases WHERE sweep = $1 ORDER BY trial",
            &[&sweep],
        )?;
        Ok(rows
            .iter()
            .map(|r| Lease {
                trial: r.get::<_, i64>(0) as u64,
                worker: r.get(1),
                seconds_left: r.get(2),
            })
            .collect())
    })
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Error {
        match e {
            DbError::Kiln(e) => e,
            DbError::Postgres(e) => Error::runtime(e.to_string()),
        }
    }
}

/// Removes the scratch folders of `kiln worker`s of this machine that died without removing
/// theirs (SIGKILL): `kiln-PID-...` folders of this user in the temporary folder whose process
/// is gone.
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("kiln-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        let ours = std::fs::metadata(entry.path())
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == unsafe { libc::getuid() });
        if !alive && ours && layout::experiment(&entry.path()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
