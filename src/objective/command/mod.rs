//! `command`: a training script in any language as a trial. The script imports nothing of
//! kiln; the protocol is the environment, report lines and signals:
//!
//! - Environment: `KILN_TRIAL` (number), `KILN_SEED` (below 2^21, so `seed * 1000 + epoch`
//!   stays below 2^31), `KILN_PARAMS` (a JSON object of the parameters), `KILN_TRIAL_DIR` (a
//!   folder that survives resumes, and in a shared sweep moves with the trial; the script keeps
//!   its checkpoints there), `KILN_RESUME_EPOCH` (the last epoch the journal holds; 0 for a new
//!   trial), `KILN_REPORT_FD` and `PYTHONUNBUFFERED=1` (unless kiln's environment sets it).
//! - Reports: one stdout line `kiln-report {"epoch": 3, "val_loss": 0.21}` per epoch, after the
//!   epoch's checkpoint is saved, or the JSON alone as a line on the descriptor
//!   `KILN_REPORT_FD`. `lr`, if given, is the learning rate column; every other key is a metric
//!   and must be one of `[objective] metrics`. Everything else the script prints (stdout and
//!   stderr) goes to `log.txt` in the trial's folder, byte for byte.
//! - Stopping (pruned, Ctrl-C, SIGTERM): SIGTERM to the script's process group, then SIGKILL
//!   after `grace` (default 10 s). Reports received before the stop are kept.
//! - Its exit ends the trial: exit 0 completes it (a first run must have reported); any other
//!   exit, a signal, a report kiln cannot read, or `timeout` fails it, with the last lines of
//!   stderr in its note. What is left of its process group is then killed.
//! - The script dies with its worker process however that dies (SIGKILL included), so no
//!   script goes on writing into a trial folder behind a resumed sweep.
//! - A Python command (`python3 script.py ...`, `python3 -m module ...`) starts warm
//!   ((`warm.rs`): forked from a server that imported the script's modules once per worker.

mod launch;
mod warm;

pub use launch::{REPORT_FD, REPORT_PREFIX};

use crate::error::Result;
use crate::experiment::Experiment;
use crate::objective::{Decision, Objective, Trial, TrialError, TrialSummary};
use crate::trial::{Epoch, Metrics};
use launch::{Event, Log, Streams};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};
use warm::{Python, Server};

/// `KILN_SEED` is the trial's seed modulo this: every framework's seeding function takes
/// `KILN_SEED * 1000 + epoch` (below 2^31) as it is.
pub const SCRIPT_SEEDS: u64 = 1 << 21;

/// How long reports written before the script exited may take to arrive (a child of the
/// script may hold its pipes open for longer; what it writes then is not the trial's).
const DRAIN: Duration = Duration::from_secs(1);

/// The seed a trial's script is given, `KILN_SEED`.
pub fn script_seed(seed: u64) -> u64 {
    seed % SCRIPT_SEEDS
}

/// Runs an external command per trial.
pub struct CommandObjective {
    argv: Vec<String>,
    metrics: Vec<String>,
    grace: Duration,
    timeout: Option<Duration>,
    base_dir: PathBuf,
    warm: Option<Warm>,
}

/// The warm start of a Python command: its form, what to import, and the idle servers (one
/// per worker thread that runs trials; a worker process has one).
struct Warm {
    python: Python,
    preload: Option<Vec<String>>,
    servers: Mutex<Vec<Server>>,
    /// A server could not be started here: later trials start cold without trying again.
    unavailable: AtomicBool,
}

impl CommandObjective {
    /// The command of `experiment`'s `[objective]`: `command` (argv, run in the experiment
    /// file's folder), `metrics`, and optional `grace`, `timeout`, `epochs`, `warm` and
    /// `preload`.
    pub fn new(experiment: &Experiment) -> Result<CommandObjective> {
        experiment.refuse_other_options(&[
            "command", "metrics", "grace", "timeout", "epochs", "warm", "preload",
        ])?;
        let argv = strings(experiment, "command")?;
        if argv.first().is_none_or(|a| a.trim().is_empty()) {
            return Err(experiment.error_at(
                &["objective", "command"],
                "`command` is empty: give the program and its arguments, e.g. [\"python3\", \"train.py\"]",
            ));
        }
        let metrics = strings(experiment, "metrics")?;
        if metrics.is_empty() {
            return Err(experiment.error_at(
                &["objective", "metrics"],
                "`metrics` is empty: list the metrics the script reports, e.g. [\"val_loss\", \"val_accuracy\"]",
            ));
        }
        if let Some(bad) = metrics
            .iter()
            .find(|m| m.as_str() == "epoch" || m.as_str() == "lr" || m.is_empty())
        {
            return Err(experiment.error_at(
                &["objective", "metrics"],
                format!("`{bad}` cannot be a metric (`epoch` and `lr` are columns of their own)"),
            ));
        }
        let base_dir = experiment.source.base_dir.clone();
        check_runnable(&argv, &base_dir)
            .map_err(|why| experiment.error_at(&["objective", "command"], why))?;
        Ok(CommandObjective {
            warm: warm_start(experiment, &argv)?,
            argv,
            metrics,
            grace: experiment
                .duration_option("grace")?
                .unwrap_or(Duration::from_secs(10)),
            timeout: experiment.duration_option("timeout")?,
            base_dir,
        })
    }

    /// What the script finds in its environment besides kiln's own.
    fn environment(&self, trial: &Trial<'_>, dir: &Path) -> Vec<(String, String)> {
        let params = serde_json::to_string(trial.params()).unwrap_or_else(|_| "{}".into());
        let mut env = vec![
            ("KILN_TRIAL".into(), trial.number().to_string()),
            ("KILN_SEED".into(), script_seed(trial.seed()).to_string()),
            ("KILN_PARAMS".into(), params),
            ("KILN_TRIAL_DIR".into(), dir.display().to_string()),
            (
                "KILN_RESUME_EPOCH".into(),
                trial.journaled_epochs().to_string(),
            ),
            ("KILN_REPORT_FD".into(), REPORT_FD.to_string()),
        ];
        // A print to a pipe waits in Python's buffer until exit: reports must not.
        if std::env::var_os("PYTHONUNBUFFERED").is_none() {
            env.push(("PYTHONUNBUFFERED".into(), "1".into()));
        }
        env
    }

    /// Starts the script, warm where it can; returns its process group.
    fn start(
        &self,
        env: &[(String, String)],
        streams: Streams,
        events: Sender<Event>,
        log: &Log,
    ) -> std::result::Result<i32, String> {
        let Some(warm) = self
            .warm
            .as_ref()
            .filter(|w| !w.unavailable.load(Ordering::SeqCst))
        else {
            return launch::cold(&self.argv, &self.base_dir, env, streams, events)
                .map_err(|e| format!("cannot start `{}`: {e}", self.argv.join(" ")));
        };
        let idle = warm.servers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let server = match idle.filter(Server::alive) {
            Some(server) => Ok(server),
            None => Server::start(&warm.python, &self.base_dir, warm.preload.as_deref()),
        };
        let mut server = match server {
            Ok(server) => server,
            Err(why) => {
                warm.unavailable.store(true, Ordering::SeqCst);
                log.note(&format!(
                    "--- kiln: no warm start ({why}); trials start a fresh interpreter ---"
                ));
                return launch::cold(&self.argv, &self.base_dir, env, streams, events)
                    .map_err(|e| format!("cannot start `{}`: {e}", self.argv.join(" ")));
            }
        };
        log.note(&format!(
            "--- kiln: warm start, forked from a server that imported {}{} ---",
            if server.imported.is_empty() {
                "nothing".to_string()
            } else {
                server.imported.join(", ")
            },
            if server.failed.is_empty() {
                String::new()
            } else {
                format!(" (could not import {})", server.failed.join(", "))
            }
        ));
        let pid = server
            .launch(env, &self.base_dir, &warm.python.args, streams, events)
            .map_err(|e| format!("cannot start `{}` warm: {e}", self.argv.join(" ")))?;
        warm.servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(server);
        Ok(pid)
    }

    /// A report line's epoch, learning rate and metrics, or why it cannot be read.
    fn parse_report(&self, json: &str) -> std::result::Result<(u32, Option<f64>, Metrics), String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("not JSON ({e})"))?;
        let object = value
            .as_object()
            .ok_or("not a JSON object such as {\"epoch\": 1, \"val_loss\": 0.5}")?;
        let epoch = object
            .get("epoch")
            .and_then(serde_json::Value::as_u64)
            .filter(|&e| (1..=u32::MAX as u64).contains(&e))
            .ok_or("no `epoch` (an integer from 1)")?;
        let mut lr = None;
        let mut metrics = Metrics::new();
        for (key, value) in object.iter().filter(|(k, _)| k.as_str() != "epoch") {
            let number = value
                .as_f64()
                .ok_or_else(|| format!("`{key}` is not a number"))?;
            if key == "lr" {
                lr = Some(number);
            } else if !self.metrics.contains(key) {
                return Err(format!(
                    "`{key}` is not one of the declared metrics ({}); add it to [objective] metrics",
                    self.metrics.join(", ")
                ));
            } else {
                metrics.insert(key.clone(), number);
            }
        }
        Ok((epoch as u32, lr, metrics))
    }

    /// Records one report line (or fails the trial on one it could not read); says whether
    /// the trial goes on.
    fn record(&self, trial: &mut Trial<'_>, line: &Result<String, String>) -> Recorded {
        let json = match line {
            Ok(json) => json,
            Err(why) => return Recorded::Bad(why.clone()),
        };
        let (epoch, lr, metrics) = match self.parse_report(json) {
            Ok(report) => report,
            Err(why) => {
                let shown = crate::trial::shorten(json, QUOTED);
                return Recorded::Bad(format!("bad report line `{REPORT_PREFIX}{shown}`: {why}"));
            }
        };
        let report = Epoch {
            epoch,
            elapsed_s: trial.elapsed_s(),
            lr,
            metrics,
            checkpointed: true,
        };
        match trial.report_epoch(report) {
            Decision::Continue => Recorded::Continue,
            Decision::Stop => Recorded::Stop,
        }
    }
}

/// The most of a bad report line its note quotes.
const QUOTED: usize = 200;

/// What a report did.
enum Recorded {
    Continue,
    /// Pruned, or the sweep is stopping.
    Stop,
    /// It could not be read: the trial fails, why.
    Bad(String),
}

/// The warm start `experiment` asks for (`warm`, default on, and `preload`), if `argv` allows one.
fn warm_start(experiment: &Experiment, argv: &[String]) -> Result<Option<Warm>> {
    let options = &experiment.objective.options;
    let on = match options.get("warm") {
        None => true,
        Some(toml::Value::Boolean(on)) => *on,
        Some(_) => {
            return Err(experiment.error_at(&["objective", "warm"], "`warm` must be true or false"));
        }
    };
    let preload = match options.get("preload") {
        None => None,
        Some(_) => Some(strings(experiment, "preload")?),
    };
    let python = Python::of(argv);
    if on && python.is_none() && options.contains_key("warm") {
        return Err(experiment.error_at(
            &["objective", "warm"],
            "`warm = true` needs a Python command: [\"python3\", \"script.py\", ...] or [\"python3\", \"-m\", \"module\", ...] (with -u at most)",
        ));
    }
    if preload.is_some() && !(on && python.is_some()) {
        return Err(experiment.error_at(
            &["objective", "preload"],
            "`preload` is for the warm start of a Python command; this command starts cold",
        ));
    }
    Ok(python.filter(|_| on).map(|python| Warm {
        python,
        preload,
        servers: Mutex::new(Vec::new()),
        unavailable: AtomicBool::new(false),
    }))
}

/// File endings of scripts, whose first argument to an interpreter must be a file.
const SCRIPT_ENDINGS: [&str; 12] = [
    ".py", ".sh", ".bash", ".R", ".r", ".jl", ".js", ".mjs", ".ts", ".rb", ".pl", ".lua",
];

/// Why `argv` cannot run from `base_dir`: its program is not found, or its script is missing.
fn check_runnable(argv: &[String], base_dir: &Path) -> std::result::Result<(), String> {
    let program = &argv[0];
    if program.contains('/') {
        let path = base_dir.join(program);
        if !is_executable(&path) {
            return Err(format!(
                "`{program}` is not an executable file (looked for {}; paths are relative to the experiment's folder)",
                path.display()
            ));
        }
    } else if find_on_path(program).is_none() {
        return Err(format!(
            "`{program}` is not a program on PATH: check its spelling, or give its path"
        ));
    }
    // The first argument that is not an option, unless code is given inline (-c, -e).
    let first = argv[1..]
        .iter()
        .take_while(|a| !matches!(a.as_str(), "-c" | "-e" | "-m"))
        .find(|a| !a.starts_with('-'));
    if let Some(script) = first.filter(|a| SCRIPT_ENDINGS.iter().any(|e| a.ends_with(e))) {
        let path = base_dir.join(script);
        if !path.is_file() {
            return Err(format!(
                "the script `{script}` does not exist (looked for {}; paths are relative to the experiment's folder)",
                path.display()
            ));
        }
    }
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where PATH finds `program`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// An `[objective]` option that must be a list of strings.
fn strings(experiment: &Experiment, key: &str) -> Result<Vec<String>> {
    let wrong = || {
        experiment.error_at(
            &["objective", key],
            format!("`{key}` must be a list of strings"),
        )
    };
    let Some(value) = experiment.objective.options.get(key) else {
        return Err(experiment.error_at(
            &["objective"],
            format!("the `command` objective needs `{key}` in [objective] (see README: \"Any framework's training script\")"),
        ));
    };
    value
        .as_array()
        .ok_or_else(wrong)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(wrong))
        .collect()
}

/// A running script, as its events tell it.
struct Run {
    group: i32,
    events: Receiver<Event>,
    /// Events taken while waiting for the exit, not yet handled.
    pending: VecDeque<Event>,
    exited: Option<ExitStatus>,
    /// Report streams still open (stdout and the report descriptor).
    open: u8,
    /// Report lines taken.
    reports: usize,
}

impl Run {
    fn new(group: i32, events: Receiver<Event>) -> Run {
        Run {
            group,
            events,
            pending: VecDeque::new(),
            exited: None,
            open: 2,
            reports: 0,
        }
    }

    /// The next event within `wait`, if any.
    fn next(&mut self, wait: Duration) -> Option<Event> {
        let event = match self.pending.pop_front() {
            Some(event) => event,
            None => match self.events.recv_timeout(wait) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            },
        };
        match &event {
            Event::Closed => self.open = self.open.saturating_sub(1),
            Event::Exited(status) => self.exited = Some(*status),
            Event::Report(_) => self.reports += 1,
        }
        Some(event)
    }

    /// Waits up to `wait` for the exit, keeping the other events for later.
    fn wait_exit(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.exited.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Exited(status)) => self.exited = Some(status),
                Ok(other) => self.pending.push_back(other),
                Err(_) => return false,
            }
        }
        true
    }

    /// Stops the script: SIGTERM to its process group, SIGKILL after `grace`.
    fn stop(&mut self, grace: Duration) {
        if self.exited.is_none() {
            launch::signal_group(self.group, libc::SIGTERM);
            if !self.wait_exit(grace) {
                launch::signal_group(self.group, libc::SIGKILL);
                self.wait_exit(Duration::from_secs(10));
            }
        }
        launch::signal_group(self.group, libc::SIGKILL);
    }

    /// The reports still to come from a script that has exited: until its report streams end,
    /// or [`DRAIN`] has passed.
    fn remaining_reports(&mut self) -> Vec<Result<String, String>> {
        let deadline = Instant::now() + DRAIN;
        let mut reports = Vec::new();
        while self.open > 0 || !self.pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(Event::Report(json)) => reports.push(json),
                Some(_) => {}
                None => break,
            }
        }
        reports
    }
}

/// How a run of the script ended.
enum Ending {
    /// It exited by itself.
    Exited(ExitStatus),
    /// kiln stopped it (pruned, Ctrl-C): the trial is not its to end.
    Stopped,
    /// It failed: why.
    Failed(String),
}

impl CommandObjective {
    /// Follows the script's reports until it exits, is stopped, or fails.
    fn follow(&self, trial: &mut Trial<'_>, run: &mut Run) -> Ending {
        let started = Instant::now();
        loop {
            if let Some(limit) = self.timeout.filter(|&t| started.elapsed() >= t) {
                run.stop(self.grace);
                return Ending::Failed(format!(
                    "timed out after {} (`timeout` in [objective])",
                    crate::progress::format_duration(limit.as_secs_f64())
                ));
            }
            if trial.stop_requested() {
                run.stop(self.grace);
                // What it reported before it stopped is kept.
                for json in run.remaining_reports() {
                    if !matches!(self.record(trial, &json), Recorded::Continue) {
                        break;
                    }
                }
                return Ending::Stopped;
            }
            match run.next(Duration::from_millis(20)) {
                Some(Event::Report(json)) => match self.record(trial, &json) {
                    Recorded::Continue => {}
                    Recorded::Stop => {
                        run.stop(self.grace);
                        return Ending::Stopped;
                    }
                    Recorded::Bad(why) => {
                        run.stop(self.grace);
                        return Ending::Failed(why);
                    }
                },
                Some(Event::Exited(status)) => return self.after_exit(trial, run, status),
                Some(Event::Closed) | None => {}
            }
        }
    }

    /// Records what the script reported before it exited, then ends the run.
    fn after_exit(&self, trial: &mut Trial<'_>, run: &mut Run, status: ExitStatus) -> Ending {
        let reports = run.remaining_reports();
        run.stop(self.grace);
        for json in reports {
            match self.record(trial, &json) {
                Recorded::Continue => {}
                Recorded::Stop => return Ending::Stopped,
                Recorded::Bad(why) => return Ending::Failed(why),
            }
        }
        Ending::Exited(status)
    }
}

impl Objective for CommandObjective {
    fn metrics(&self, _experiment: &Experiment) -> Result<Vec<String>> {
        Ok(self.metrics.clone())
    }

    fn describe(&self) -> Option<String> {
        Some(match &self.warm {
            Some(warm) => format!(
                "trials start warm: a {} server per worker imports {} once and forks each trial (warm = false: a fresh interpreter per trial)",
                warm.python.interpreter,
                warm.preload
                    .as_ref()
                    .map_or("the script's top-level imports".to_string(), |p| p
                        .join(", "))
            ),
            None => format!("each trial starts `{}` afresh", self.argv[0]),
        })
    }

    fn run(&self, trial: &mut Trial<'_>) -> std::result::Result<TrialSummary, TrialError> {
        let dir = trial.dir().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| TrialError::io(format!("cannot create {}", dir.display()), &e))?;
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let log = Log::open(&dir).map_err(|e| TrialError::io("cannot open its log.txt", &e))?;
        log.note(&format!(
            "--- kiln: trial {} from epoch {} ---",
            trial.number(),
            trial.journaled_epochs() + 1
        ));
        let (streams, readers) =
            launch::pipes().map_err(|e| format!("cannot make the script's pipes: {e}"))?;
        let (events, received) = channel();
        let stderr_closed = launch::follow(readers, &log, &events);
        let env = self.environment(trial, &dir);
        let group = self.start(&env, streams, events, &log)?;
        let guard = launch::Guard::start(group)
            .map_err(|e| {
                log.note(&format!(
                    "--- kiln: no guard for the script's children: {e} ---"
                ))
            })
            .ok();
        let mut run = Run::new(group, received);
        let ending = self.follow(trial, &mut run);
        drop(guard); // every ending has killed the group
        // Its last stderr lines, for the note (a child of the script may hold stderr open).
        let _ = stderr_closed.recv_timeout(Duration::from_secs(1));
        match ending {
            Ending::Stopped => Ok(TrialSummary::default()),
            Ending::Failed(why) => Err(format!("{why}{}", log.tail()).into()),
            Ending::Exited(status) if !status.success() => {
                Err(format!("the command {}{}", describe(status), log.tail()).into())
            }
            Ending::Exited(_) if run.reports == 0 && trial.journaled_epochs() == 0 => Err(format!(
                "no report: the command exited with code 0 without reporting an epoch (print a line `{REPORT_PREFIX}{{\"epoch\": 1, ...}}` after each epoch){}",
                log.tail()
            )
            .into()),
            Ending::Exited(_) => Ok(TrialSummary::default()),
        }
    }
}

/// "exited with code 3" or "was killed by signal 9".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => format!("ended ({status})"),
    }
}
