//! A PostgreSQL connection that outlives server restarts.
//!
//! Workers of a shared sweep run for hours; the database may restart under them (an upgrade, a
//! failover, a crash). Every operation goes through [`Db::run`], which reconnects and retries
//! the whole operation when the connection drops, for up to [`Db::patience`]. Operations are
//! written to be safe to retry: reads and upserts are, and appends carry a token that tells a
//! retry whether the first attempt committed ([`crate::journal::PgJournal`]).
//!
//! The password never comes from a file: it is taken from the URL given on the command line,
//! or from the `PGPASSWORD` environment variable (libpq's own convention).

use crate::error::{Error, Result};
use crate::redact::redact;
use postgres::{Client, Config, GenericClient, NoTls, Statement, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The tables of every sweep kept in one database. Created once, under an advisory lock, so
/// that workers starting together do not race on `CREATE TABLE`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kiln_sweeps (
    name        text PRIMARY KEY,
    experiment  text NOT NULL,
    base_dir    text NOT NULL,
    next_seq    bigint NOT NULL DEFAULT 0,
    created     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS kiln_events (
    sweep  text NOT NULL REFERENCES kiln_sweeps(name) ON DELETE CASCADE,
    seq    bigint NOT NULL,
    token  text NOT NULL,
    body   text NOT NULL,
    PRIMARY KEY (sweep, seq)
);
CREATE TABLE IF NOT EXISTS kiln_leases (
    sweep    text NOT NULL REFERENCES kiln_sweeps(name) ON DELETE CASCADE,
    trial    bigint NOT NULL,
    worker   text NOT NULL,
    expires  timestamptz NOT NULL,
    PRIMARY KEY (sweep, trial)
);
CREATE TABLE IF NOT EXISTS kiln_blobs (
    sweep  text NOT NULL REFERENCES kiln_sweeps(name) ON DELETE CASCADE,
    trial  bigint NOT NULL,
    name   text NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (sweep, trial, name)
);
";

/// Why one attempt of an operation failed.
#[derive(Debug)]
pub enum DbError {
    /// From the server or the connection; retried when it is a lost connection.
    Postgres(postgres::Error),
    /// Anything else (a garbled event, say): not retried.
    Kiln(Error),
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        DbError::Postgres(e)
    }
}

impl From<Error> for DbError {
    fn from(e: Error) -> DbError {
        DbError::Kiln(e)
    }
}

/// Statements prepared on one connection, by their SQL. A query given as text is parsed and
/// planned again at every call, one more round trip each time; the hot paths of a shared sweep
/// (claim, report, heartbeat) prepare theirs once per connection.
#[derive(Default)]
pub struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// `sql`, prepared on `client`'s connection the first time.
    pub fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &'static str,
    ) -> std::result::Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        self.0.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// A live connection and its prepared statements.
pub struct Conn {
    client: Client,
    statements: Statements,
}

/// Parameters of a statement.
pub type Params<'a> = &'a [&'a (dyn postgres::types::ToSql + Sync)];

/// A transaction on a [`Conn`], with its prepared statements.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut Statements,
}

impl Tx<'_> {
    /// Runs a prepared `sql` that returns no rows.
    pub fn execute(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<u64, postgres::Error> {
        let statement = self.statements.get(&mut self.tx, sql)?;
        self.tx.execute(&statement, params)
    }

    /// Runs a prepared `sql` and returns its rows.
    pub fn query(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error> {
        let statement = self.statements.get(&mut self.tx, sql)?;
        self.tx.query(&statement, params)
    }

    /// Runs statements without parameters, in one round trip.
    pub fn batch_execute(&mut self, sql: &str) -> std::result::Result<(), postgres::Error> {
        self.tx.batch_execute(sql)
    }

    /// Commits.
    pub fn commit(self) -> std::result::Result<(), postgres::Error> {
        self.tx.commit()
    }
}

impl Conn {
    /// Starts a transaction.
    pub fn transaction(&mut self) -> std::result::Result<Tx<'_>, postgres::Error> {
        Ok(Tx {
            tx: self.client.transaction()?,
            statements: &mut self.statements,
        })
    }

    /// Runs a prepared `sql` (see [`Statements`]) that returns no rows.
    pub fn execute(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<u64, postgres::Error> {
        let statement = self.statements.get(&mut self.client, sql)?;
        self.client.execute(&statement, params)
    }

    /// Runs a prepared `sql` (see [`Statements`]) and returns its rows.
    pub fn query(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error> {
        let statement = self.statements.get(&mut self.client, sql)?;
        self.client.query(&statement, params)
    }
}

/// One connection to the database of a `--storage` URL.
pub struct Db {
    config: Config,
    /// TLS, unless `sslmode=disable`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The URL without its password, for messages.
    shown: String,
    client: Option<Conn>,
    /// Connections made so far (a second one is a reconnection, logged).
    connections: u32,
    /// How long to keep reconnecting before giving up.
    pub patience: Duration,
}

impl Db {
    /// Connects to `url` (`postgres://user@host:port/database`) and creates kiln's tables.
    pub fn connect(url: &str) -> Result<Db> {
        let bad =
            |why: crate::tls::TlsError| Error::input(format!("--storage `{}`: {why}", redact(url)));
        let (driver_url, tls) = crate::tls::split(url).map_err(bad)?;
        let connector = crate::tls::connector(&tls).map_err(bad)?;
        let mut config = Config::from_str(&driver_url).map_err(|e| {
            Error::input(format!(
                "--storage `{}`: not a PostgreSQL URL ({}); expected postgres://USER@HOST:PORT/DATABASE",
                redact(url),
                redact(&e.to_string())
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::input(format!(
                "--storage `{}` names no host: expected postgres://USER@HOST:PORT/DATABASE",
                redact(url)
            )));
        }
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        config.ssl_mode(tls.mode.driver());
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("kiln");
        let patience = std::env::var("KILN_DB_PATIENCE_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(300), Duration::from_secs_f64);
        let mut db = Db {
            config,
            tls: connector,
            shown: redact(url),
            client: None,
            connections: 0,
            patience: patience.min(Duration::from_secs(15)),
        };
        // The first connection gives up sooner: a wrong URL should not wait five minutes, but
        // a server restarting as a worker starts (or as a sweep exports) is waited for.
        db.run("create kiln's tables", |conn| {
            let mut tx = conn.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(7305068323)", &[])?;
            tx.batch_execute(SCHEMA)?;
            tx.commit()?;
            Ok(())
        })?;
        db.patience = patience;
        Ok(db)
    }

    /// A new connection, over TLS unless `sslmode=disable`.
    fn open(&self) -> std::result::Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }

    /// The URL, without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Runs `operation` (`what` names it in errors), reconnecting and running it again when
    /// the connection is lost, until [`Db::patience`] has passed.
    pub fn run<T>(
        &mut self,
        what: &str,
        mut operation: impl FnMut(&mut Conn) -> std::result::Result<T, DbError>,
    ) -> Result<T> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let attempt = match self.client.as_mut().filter(|c| !c.client.is_closed()) {
                Some(client) => operation(client),
                None => match self.open() {
                    Ok(mut client) => {
                        // Commits wait for the disk only where the caller asks (see
                        // `PgJournal::transact`): the same group-commit bargain as the file
                        // journal's (140 -> 168 no-op trials/s for one worker, measured here).
                        if let Err(e) = client.batch_execute("SET synchronous_commit = off") {
                            tracing::warn!("cannot set synchronous_commit: {e}");
                        }
                        let encrypted = client
                            .query_one(
                                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                                &[],
                            )
                            .is_ok_and(|row| row.get::<_, bool>(0));
                        let tls = if encrypted { "TLS" } else { "no TLS" };
                        if self.connections > 0 {
                            tracing::warn!("reconnected to {} ({tls})", self.shown);
                        } else {
                            tracing::info!("connected to {} ({tls})", self.shown);
                        }
                        self.connections += 1;
                        self.client = Some(Conn {
                            client,
                            statements: Statements::default(),
                        });
                        continue;
                    }
                    Err(e) => Err(DbError::Postgres(e)),
                },
            };
            let error = match attempt {
                Ok(value) => return Ok(value),
                Err(DbError::Kiln(e)) => return Err(e),
                Err(DbError::Postgres(e)) => e,
            };
            if !transient(&error)
                || untrusted_certificate(&error)
                || started.elapsed() >= self.patience
            {
                return Err(Error::runtime(format!(
                    "cannot {what} in {}: {}",
                    self.shown,
                    describe(&error)
                )));
            }
            tracing::warn!(
                "{what}: {} (retrying for up to {} s)",
                describe(&error),
                self.patience.saturating_sub(started.elapsed()).as_secs()
            );
            if error
                .as_db_error()
                .is_none_or(|e| !e.code().code().starts_with("40"))
            {
                // Anything but a retried transaction: start again on a fresh connection.
                self.client = None;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

/// Whether an error is worth retrying: a lost or refused connection, a server shutting down
/// or starting, or a transaction the server asked to retry.
fn transient(error: &postgres::Error) -> bool {
    let Some(db) = error.as_db_error() else {
        // No SQL state: the connection itself failed (refused, reset, closed).
        return true;
    };
    let code = db.code().code();
    code.starts_with("08") // connection exception
        || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
        || code == "53300" // too many connections
}

/// The server's message, or the client's.
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            // The cause says why (a refused connection, a certificate that does not verify).
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

/// Whether an error is a server certificate that does not verify: retrying cannot help.
fn untrusted_certificate(error: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
            || cause
                .downcast_ref::<rustls::Error>()
                .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
        {
            return true;
        }
        source = cause.source();
    }
    false
}
