//! Workers: where trials run, one at a time each.
//!
//! A worker is an OS process: the running executable (kiln, or a program of yours built on
//! [`crate::cli::main`], which knows your objectives) started again with the hidden `__worker`
//! command. Processes, because burn 0.22's training threads in one process saturate near
//! 2.5-3x on any number of cores while processes scale, because burn's backend RNG is global
//! to a process, and because a process contains a crash to its trial. The library can also run
//! an objective on threads of the calling process ([`Launcher::Threads`]), for objectives that
//! take microseconds. Both speak the same messages: the orchestrator sends [`ToWorker`], the
//! worker answers with [`FromWorker`]; over pipes as JSON lines for a process, over channels
//! for a thread. The journal stays with the orchestrator.

use crate::experiment::Experiment;
use crate::objective::{Decision, Objective, Reporter, Trial, TrialError, TrialSummary, TrialTask};
use crate::trial::Epoch;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// What the orchestrator tells a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Run this trial.
    Run {
        /// The trial.
        task: TrialTask,
    },
    /// The answer to the last report.
    Decision {
        /// Go on or stop.
        decision: Decision,
    },
    /// The sweep is stopping (Ctrl-C, SIGTERM): stop the running trial soon, checkpointed. A
    /// report still gets its [`ToWorker::Decision`].
    Stop,
}

/// What a worker tells the orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// A trial finished an epoch; a [`ToWorker::Decision`] must follow.
    Report {
        /// Trial number.
        trial: u64,
        /// The epoch's report.
        report: Epoch,
    },
    /// A trial's objective returned.
    Finished {
        /// Trial number.
        trial: u64,
        /// Its summary, or why it failed.
        result: Result<TrialSummary, TrialError>,
        /// The worker ends after this message: its trial panicked, which leaves burn's device
        /// (a GPU's memory, its runtime's locks) in a state nothing can vouch for, so the
        /// next trial gets a fresh worker.
        #[serde(default)]
        retiring: bool,
    },
}

/// What the pool tells the orchestrator.
#[derive(Debug)]
pub enum PoolEvent {
    /// A worker's message.
    Message(usize, FromWorker),
    /// A worker is gone (its process died or its thread ended), with why.
    Exited(usize, String),
}

/// A worker's two directions of messages, from the worker's side.
pub trait Link: Send {
    /// The next message, or `None` when the orchestrator is gone.
    fn receive(&mut self) -> Option<ToWorker>;
    /// Sends a message; false when the orchestrator is gone.
    fn send(&mut self, message: FromWorker) -> bool;
    /// The next message if one has arrived, without waiting.
    fn poll(&mut self) -> Option<ToWorker>;
}

/// Runs trials from `link` until the orchestrator goes away.
pub fn serve(objective: &dyn Objective, experiment: &Experiment, link: &mut dyn Link) {
    let fixed = objective.settings(experiment);
    while let Some(message) = link.receive() {
        let ToWorker::Run { task } = message else {
            continue;
        };
        let number = task.number;
        let settings = fixed.with_params(&task.params);
        let mut reporter = LinkReporter {
            link,
            number,
            await_decisions: task.await_decisions,
            stop: false,
        };
        let ran = {
            let mut trial = Trial::new(task, settings, &mut reporter);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| objective.run(&mut trial)))
        };
        let retiring = ran.is_err();
        let result = ran.unwrap_or_else(|panic| Err(TrialError::Failed(panicked(panic.as_ref()))));
        if !link.send(FromWorker::Finished {
            trial: number,
            result,
            retiring,
        }) || retiring
        {
            return;
        }
    }
}

/// A trial's failure note for a panic; running out of a device's memory says what to lower.
fn panicked(panic: &(dyn std::any::Any + Send)) -> String {
    let message = crate::device::panic_message(panic);
    let oom = [
        "out of device memory",
        "OutOfMemory",
        "BufferTooBig",
        "out of memory",
    ]
    .iter()
    .any(|m| message.contains(m));
    let device = std::env::var(crate::objective::DEVICE_VARIABLE)
        .map(|d| format!(" on {d}"))
        .unwrap_or_default();
    let first = message.lines().next().unwrap_or_default();
    if oom {
        format!(
            "out of device memory{device}: {first} (lower batch_size or the model's size, or trials_per_device)"
        )
    } else {
        format!("panicked{device}: {message}")
    }
}

struct LinkReporter<'a> {
    link: &'a mut dyn Link,
    number: u64,
    await_decisions: bool,
    /// A stop was asked for (or, not awaiting decisions, answered to an earlier report).
    stop: bool,
}

impl LinkReporter<'_> {
    /// Reads the messages that have arrived, without waiting.
    fn drain(&mut self) {
        while let Some(message) = self.link.poll() {
            match message {
                ToWorker::Stop
                | ToWorker::Decision {
                    decision: Decision::Stop,
                } => self.stop = true,
                ToWorker::Decision { .. } | ToWorker::Run { .. } => {}
            }
        }
    }

    fn decided(&self, decision: Decision) -> Decision {
        if self.stop { Decision::Stop } else { decision }
    }
}

impl Reporter for LinkReporter<'_> {
    fn report(&mut self, report: Epoch) -> Decision {
        if !self.link.send(FromWorker::Report {
            trial: self.number,
            report,
        }) {
            return Decision::Stop;
        }
        if !self.await_decisions {
            // Answers to earlier reports that have arrived: stop if any says so.
            self.drain();
            return self.decided(Decision::Continue);
        }
        loop {
            match self.link.receive() {
                Some(ToWorker::Decision { decision }) => return self.decided(decision),
                Some(ToWorker::Stop) => self.stop = true,
                Some(ToWorker::Run { .. }) => continue,
                None => return Decision::Stop,
            }
        }
    }

    fn stop_requested(&mut self) -> bool {
        if !self.stop {
            self.drain();
        }
        self.stop
    }
}

/// The worker side of a process worker: JSON lines on stdin and stdout.
pub struct StdioLink {
    input: BufReader<std::io::Stdin>,
    output: std::io::Stdout,
}

impl Default for StdioLink {
    fn default() -> Self {
        StdioLink {
            input: BufReader::new(std::io::stdin()),
            output: std::io::stdout(),
        }
    }
}

impl Link for StdioLink {
    fn receive(&mut self) -> Option<ToWorker> {
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&line).ok(),
        }
    }

    fn send(&mut self, message: FromWorker) -> bool {
        let Ok(mut line) = serde_json::to_vec(&message) else {
            return false;
        };
        line.push(b'\n');
        self.output
            .write_all(&line)
            .and_then(|_| self.output.flush())
            .is_ok()
    }

    fn poll(&mut self) -> Option<ToWorker> {
        if self.input.buffer().is_empty() {
            let mut stdin = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no waiting.
            if unsafe { libc::poll(&mut stdin, 1, 0) } <= 0 || stdin.revents & libc::POLLIN == 0 {
                return None;
            }
        }
        // The orchestrator writes whole lines, so a readable pipe holds a whole message.
        self.receive()
    }
}

/// Prepares this process to be a worker: it dies with its orchestrator (so no orphan keeps
/// writing into a trial folder that a resumed sweep reuses), leaves Ctrl-C and SIGTERM to the
/// orchestrator (which stops trials after their current epoch, checkpointed: a scheduler that
/// signals the whole process group must not fail the running trials), and keeps panics out of
/// the terminal (a panic's message becomes the trial's failure note).
pub fn become_worker_process() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // SAFETY: SIG_IGN installs no handler code; called before any thread of ours starts.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    std::panic::set_hook(Box::new(|_| {}));
}

/// How a pool starts its workers.
#[derive(Clone)]
pub enum Launcher {
    /// Processes of this executable, run as `EXE __worker --experiment FILE --base-dir DIR`.
    Processes {
        /// The kiln executable.
        exe: PathBuf,
        /// The frozen experiment file.
        experiment: PathBuf,
        /// Folder its relative paths resolve against.
        base_dir: PathBuf,
        /// The device of each worker, by id (`[budget] devices`); empty without.
        devices: Vec<String>,
    },
    /// Threads of this process running `objective`.
    Threads {
        /// The objective.
        objective: Arc<dyn Objective>,
        /// The experiment (for each trial's settings).
        experiment: Box<Experiment>,
    },
}

enum Handle {
    Process { child: Child, stdin: ChildStdin },
    Thread { sender: Sender<ToWorker> },
}

/// A set of workers and one stream of their events.
pub struct Pool {
    launcher: Launcher,
    handles: Vec<Option<Handle>>,
    events_tx: Sender<PoolEvent>,
    events: Receiver<PoolEvent>,
}

impl Pool {
    /// A pool with no workers yet.
    pub fn new(launcher: Launcher) -> Pool {
        let (events_tx, events) = channel();
        Pool {
            launcher,
            handles: Vec::new(),
            events_tx,
            events,
        }
    }

    /// The stream of worker events.
    pub fn events(&self) -> &Receiver<PoolEvent> {
        &self.events
    }

    /// Starts a worker (or restarts worker `id`); returns its id.
    pub fn start(&mut self, id: Option<usize>) -> std::io::Result<usize> {
        let id = id.unwrap_or(self.handles.len());
        let events = self.events_tx.clone();
        let handle = match &self.launcher {
            Launcher::Processes {
                exe,
                experiment,
                base_dir,
                devices,
            } => {
                let mut command = Command::new(exe);
                if let Some(device) = devices.get(id) {
                    command.env(crate::objective::DEVICE_VARIABLE, device);
                }
                let mut child = command
                    .arg("__worker")
                    .arg("--experiment")
                    .arg(experiment)
                    .arg("--base-dir")
                    .arg(base_dir)
                    .env("RAYON_NUM_THREADS", "1")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()?;
                tracing::debug!("worker {id} started: process {}", child.id());
                let stdin = child.stdin.take().expect("stdin is piped");
                let stdout = child.stdout.take().expect("stdout is piped");
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        match serde_json::from_str(&line) {
                            Ok(message) => {
                                let _ = events.send(PoolEvent::Message(id, message));
                            }
                            Err(e) => {
                                tracing::warn!("worker {id} sent an unreadable line ({e}): {line}")
                            }
                        }
                    }
                    tracing::debug!("worker {id}: its process ended");
                    let _ = events.send(PoolEvent::Exited(id, "its process ended".into()));
                });
                Handle::Process { child, stdin }
            }
            Launcher::Threads {
                objective,
                experiment,
            } => {
                let (sender, receiver) = channel();
                let objective = Arc::clone(objective);
                let experiment = experiment.clone();
                std::thread::Builder::new()
                    .name(format!("kiln-worker-{id}"))
                    .spawn(move || {
                        let mut link = ChannelLink {
                            id,
                            receiver,
                            events: events.clone(),
                        };
                        serve(objective.as_ref(), &experiment, &mut link);
                        let _ = events.send(PoolEvent::Exited(id, "its thread ended".into()));
                    })?;
                Handle::Thread { sender }
            }
        };
        if id == self.handles.len() {
            self.handles.push(Some(handle));
        } else {
            self.handles[id] = Some(handle);
        }
        Ok(id)
    }

    /// Sends a message to worker `id`; false if it is gone.
    pub fn send(&mut self, id: usize, message: &ToWorker) -> bool {
        match self.handles.get_mut(id).and_then(Option::as_mut) {
            Some(Handle::Process { stdin, .. }) => {
                let Ok(mut line) = serde_json::to_vec(message) else {
                    return false;
                };
                line.push(b'\n');
                stdin.write_all(&line).and_then(|_| stdin.flush()).is_ok()
            }
            Some(Handle::Thread { sender }) => sender.send(message.clone()).is_ok(),
            None => false,
        }
    }

    /// Stops worker `id`: closes its input (it ends after its trial) and reaps a process.
    pub fn stop(&mut self, id: usize) {
        if let Some(Handle::Process { mut child, stdin }) =
            self.handles.get_mut(id).and_then(Option::take)
        {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// How worker `id`'s process ended, once it has (for failure notes).
    pub fn exit_status(&mut self, id: usize) -> Option<String> {
        match self.handles.get_mut(id).and_then(Option::take) {
            Some(Handle::Process { mut child, .. }) => child.wait().ok().map(describe_exit),
            _ => None,
        }
    }

    /// Kills every worker process at once: the sweep cannot go on (its disk is full, say).
    pub fn kill_all(&mut self) {
        for handle in self.handles.iter_mut().filter_map(Option::take) {
            if let Handle::Process { mut child, .. } = handle {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// How a worker process ended, as a trial's note says it. A SIGKILL kiln did not send is
/// most often the kernel's out-of-memory killer, which users should hear of.
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(libc::SIGKILL) => format!(
            "{status}: killed from outside kiln, often by the kernel's out-of-memory killer (see `dmesg`); fewer workers or a smaller model need less memory"
        ),
        _ => status.to_string(),
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for id in 0..self.handles.len() {
            self.stop(id);
        }
    }
}

struct ChannelLink {
    id: usize,
    receiver: Receiver<ToWorker>,
    events: Sender<PoolEvent>,
}

impl Link for ChannelLink {
    fn receive(&mut self) -> Option<ToWorker> {
        self.receiver.recv().ok()
    }

    fn send(&mut self, message: FromWorker) -> bool {
        self.events
            .send(PoolEvent::Message(self.id, message))
            .is_ok()
    }

    fn poll(&mut self) -> Option<ToWorker> {
        self.receiver.try_recv().ok()
    }
}
