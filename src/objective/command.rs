//! `command`: a training script in any language as a trial. The script imports nothing of
//! kiln; the protocol is the environment, stdout lines and signals:
//!
//! - Environment: `KILN_TRIAL` (number), `KILN_SEED`, `KILN_PARAMS` (a JSON object of the
//!   parameters), `KILN_TRIAL_DIR` (a folder that survives resumes, and in a shared sweep moves
//!   with the trial; the script keeps its checkpoints there) and `KILN_RESUME_EPOCH` (the last
//!   epoch the journal holds; 0 for a new trial).
//! - Reports: one stdout line `kiln-report {"epoch": 3, "val_loss": 0.21}` per epoch, after the
//!   epoch's checkpoint is saved. `lr`, if given, is the learning rate column; every other key
//!   is a metric and must be one of `[objective] metrics`. Everything else the script prints
//!   (stdout and stderr) goes to `log.txt` in the trial's folder.
//! - Stopping (pruned, Ctrl-C, SIGTERM): SIGTERM to the script's process group, then SIGKILL
//!   after `grace` (default 10 s).
//! - Exit 0 completes the trial. Any other exit, a signal, a report kiln cannot read, or
//!   `timeout` fails it, with the last lines of stderr in its note.
//! - The script dies with its worker process however that dies (SIGKILL included), so no
//!   script goes on writing into a trial folder behind a resumed sweep.

use crate::error::Result;
use crate::experiment::Experiment;
use crate::objective::{Decision, Objective, Trial, TrialError, TrialSummary};
use crate::trial::{Epoch, Metrics};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The prefix of a report line on the script's stdout.
pub const REPORT_PREFIX: &str = "kiln-report ";

/// Lines of stderr kept for a failed trial's note.
const STDERR_LINES: usize = 5;

/// Runs an external command per trial.
pub struct CommandObjective {
    argv: Vec<String>,
    metrics: Vec<String>,
    grace: Duration,
    timeout: Option<Duration>,
    base_dir: PathBuf,
}

impl CommandObjective {
    /// The command of `experiment`'s `[objective]`: `command` (argv, run in the experiment
    /// file's folder), `metrics`, and optional `grace`, `timeout` and `epochs`.
    pub fn new(experiment: &Experiment) -> Result<CommandObjective> {
        experiment.refuse_other_options(&["command", "metrics", "grace", "timeout", "epochs"])?;
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
        Ok(CommandObjective {
            argv,
            metrics,
            grace: experiment
                .duration_option("grace")?
                .unwrap_or(Duration::from_secs(10)),
            timeout: experiment.duration_option("timeout")?,
            base_dir: experiment.source.base_dir.clone(),
        })
    }

    fn spawn(&self, trial: &Trial<'_>, dir: &Path) -> std::io::Result<Child> {
        let params = serde_json::to_string(trial.params()).unwrap_or_else(|_| "{}".into());
        let parent = std::process::id();
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .current_dir(&self.base_dir)
            .env("KILN_TRIAL", trial.number().to_string())
            .env("KILN_SEED", trial.seed().to_string())
            .env("KILN_PARAMS", params)
            .env("KILN_TRIAL_DIR", dir)
            .env("KILN_RESUME_EPOCH", trial.journaled_epochs().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Its own process group: a terminal's Ctrl-C reaches kiln, which stops the
                // script by the protocol, and a stop reaches the script's own children.
                libc::setpgid(0, 0);
                // A worker ignores both (its orchestrator handles them); the script must not.
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // The worker may have died before the line above took effect.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        command.spawn()
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

/// What the script's output threads send.
enum Line {
    Report(String),
    Closed,
}

/// The script's log file and the last lines of its stderr.
#[derive(Clone)]
struct Log {
    file: Arc<Mutex<std::fs::File>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Log {
    fn open(dir: &Path) -> std::io::Result<Log> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log.txt"))?;
        Ok(Log {
            file: Arc::new(Mutex::new(file)),
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
        })
    }

    fn write(&self, line: &str) {
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{line}");
        }
    }

    fn stderr(&self, line: String) {
        self.write(&line);
        if let Ok(mut tail) = self.stderr_tail.lock() {
            if tail.len() == STDERR_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }

    fn tail(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        let lines: Vec<&str> = tail
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; stderr: {}", lines.join(" | "))
        }
    }
}

/// Reads the script's stdout (reports to `lines`, the rest to the log) and stderr (to the log);
/// the second receiver hears when stderr has closed.
fn follow(child: &mut Child, log: &Log) -> (Receiver<Line>, Receiver<()>) {
    let (tx, lines) = channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let out_log = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match line.strip_prefix(REPORT_PREFIX) {
                Some(json) => {
                    let _ = tx.send(Line::Report(json.to_string()));
                }
                None => out_log.write(&line),
            }
        }
        let _ = tx.send(Line::Closed);
    });
    let err_log = log.clone();
    let (closed_tx, stderr_closed) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            err_log.stderr(line);
        }
        let _ = closed_tx.send(());
    });
    (lines, stderr_closed)
}

/// Stops the script: SIGTERM to its process group, SIGKILL after `grace`.
fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let group = child.id() as i32;
    // SAFETY: signals a process group this process created.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    if let Some(status) = exit_by(child, Instant::now() + grace) {
        return Some(status);
    }
    // SAFETY: as above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    child.wait().ok()
}

/// How a run of the script ended.
enum Ending {
    /// Its stdout closed (it exited, or is about to).
    Exited,
    /// kiln stopped it (pruned, Ctrl-C): the trial is not its to end.
    Stopped,
    /// It failed: why.
    Failed(String),
}

impl CommandObjective {
    /// Follows the script's reports until it exits, is stopped, or fails.
    fn follow_reports(
        &self,
        trial: &mut Trial<'_>,
        child: &mut Child,
        lines: &Receiver<Line>,
    ) -> Ending {
        let started = Instant::now();
        loop {
            if let Some(limit) = self.timeout.filter(|&t| started.elapsed() >= t) {
                stop(child, self.grace);
                return Ending::Failed(format!(
                    "timed out after {} (`timeout` in [objective])",
                    crate::progress::format_duration(limit.as_secs_f64())
                ));
            }
            if trial.stop_requested() {
                stop(child, self.grace);
                return Ending::Stopped;
            }
            let json = match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(Line::Report(json)) => json,
                Ok(Line::Closed) | Err(RecvTimeoutError::Disconnected) => return Ending::Exited,
                Err(RecvTimeoutError::Timeout) => continue,
            };
            let (epoch, lr, metrics) = match self.parse_report(&json) {
                Ok(report) => report,
                Err(why) => {
                    stop(child, self.grace);
                    return Ending::Failed(format!(
                        "bad report line `{REPORT_PREFIX}{json}`: {why}"
                    ));
                }
            };
            let report = Epoch {
                epoch,
                elapsed_s: trial.elapsed_s(),
                lr,
                metrics,
                checkpointed: true,
            };
            if trial.report_epoch(report) == Decision::Stop {
                stop(child, self.grace);
                return Ending::Stopped;
            }
        }
    }
}

impl Objective for CommandObjective {
    fn metrics(&self, _experiment: &Experiment) -> Result<Vec<String>> {
        Ok(self.metrics.clone())
    }

    fn run(&self, trial: &mut Trial<'_>) -> std::result::Result<TrialSummary, TrialError> {
        let dir = trial.dir().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| TrialError::io(format!("cannot create {}", dir.display()), &e))?;
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let log = Log::open(&dir).map_err(|e| TrialError::io("cannot open its log.txt", &e))?;
        log.write(&format!(
            "--- kiln: trial {} from epoch {} ---",
            trial.number(),
            trial.journaled_epochs() + 1
        ));
        let mut child = self
            .spawn(trial, &dir)
            .map_err(|e| format!("cannot start `{}`: {e}", self.argv.join(" ")))?;
        let (lines, stderr_closed) = follow(&mut child, &log);
        let ending = self.follow_reports(trial, &mut child, &lines);
        let status = match ending {
            Ending::Exited => wait(&mut child, self.timeout, self.grace),
            Ending::Stopped | Ending::Failed(_) => None,
        };
        // Its last stderr lines, for the note (a child of the script may hold stderr open).
        let _ = stderr_closed.recv_timeout(Duration::from_secs(1));
        match (ending, status) {
            (Ending::Stopped, _) => Ok(TrialSummary::default()),
            (Ending::Failed(why), _) => Err(format!("{why}{}", log.tail()).into()),
            (_, Some(status)) if status.success() => Ok(TrialSummary::default()),
            (_, Some(status)) => {
                Err(format!("the command {}{}", describe(status), log.tail()).into())
            }
            (_, None) => Err(format!("the command did not exit{}", log.tail()).into()),
        }
    }
}

/// Waits for a script whose stdout has closed (one that closed it early is stopped at `timeout`).
fn wait(child: &mut Child, timeout: Option<Duration>, grace: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout.unwrap_or(Duration::from_secs(3600));
    exit_by(child, deadline).or_else(|| stop(child, grace))
}

/// The script's exit status once it has exited, if it does by `deadline`.
fn exit_by(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
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
