//! The warm start of Python command trials: a server per worker process (`warm.py`) imports
//! the script's modules once and forks a fresh child per trial, so a trial after the first of
//! its worker starts in milliseconds instead of paying the interpreter and `import torch`.
//!
//! What stays true of the cold start: each trial is its own process, in its own process group
//! (stopped by the same signals), with the same argv, environment, folder and streams; it dies
//! with the server, which dies with its worker, however the worker dies.

use super::launch::{Event, Streams};
use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server's source, run with `python -c`.
const SERVER: &str = include_str!("warm.py");

/// How long the server may take to import the modules before the trial starts cold.
const READY_WITHIN: Duration = Duration::from_secs(300);

/// What a warm command runs in its child.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `python3 script.py ...`: the script's path, as given.
    Script(String),
    /// `python3 -m module ...`.
    Module(String),
}

/// A command of the form the warm start serves: a Python interpreter (optionally `-u`), then
/// a script or `-m module`, then the script's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Python {
    /// The interpreter as the command names it.
    pub interpreter: String,
    /// `-u` was given.
    pub unbuffered: bool,
    /// The script or module.
    pub target: Target,
    /// The arguments after it.
    pub args: Vec<String>,
}

impl Python {
    /// The command's Python form, or `None` when it has another (not Python, or other options
    /// for the interpreter, which only a fresh interpreter honours).
    pub fn of(argv: &[String]) -> Option<Python> {
        let (interpreter, rest) = argv.split_first()?;
        let name = Path::new(interpreter).file_name()?.to_str()?;
        let version = name.strip_prefix("python")?;
        if !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        let unbuffered = rest.first().is_some_and(|a| a == "-u");
        let rest = &rest[usize::from(unbuffered)..];
        let (target, args) = match rest {
            [m, module, args @ ..] if m == "-m" => (Target::Module(module.clone()), args),
            [script, args @ ..] if !script.starts_with('-') => {
                (Target::Script(script.clone()), args)
            }
            _ => return None,
        };
        Some(Python {
            interpreter: interpreter.clone(),
            unbuffered,
            target,
            args: args.to_vec(),
        })
    }
}

/// The server's first line.
#[derive(Debug, Deserialize)]
struct Ready {
    ready: Vec<String>,
    failed: Vec<String>,
}

/// The server's lines after it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Said {
    Exit { status: i32 },
    Pid { pid: i32 },
}

/// A running server.
pub struct Server {
    process: Child,
    socket: UnixStream,
    pids: Receiver<i32>,
    /// Where the running trial's exit goes.
    trial: Arc<Mutex<Option<Sender<Event>>>>,
    alive: Arc<AtomicBool>,
    /// The modules it imported, and those that failed to import.
    pub imported: Vec<String>,
    pub failed: Vec<String>,
}

impl Server {
    /// Starts a server for `python` in `cwd` and waits until it has imported `preload` (or,
    /// when `None`, the script's own top-level imports from outside its folder).
    pub fn start(
        python: &Python,
        cwd: &Path,
        preload: Option<&[String]>,
    ) -> Result<Server, String> {
        let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
        let mut config = serde_json::Map::new();
        match &python.target {
            Target::Script(s) => config.insert("script".into(), s.clone().into()),
            Target::Module(m) => config.insert("module".into(), m.clone().into()),
        };
        config.insert("unbuffered".into(), python.unbuffered.into());
        if let Some(names) = preload {
            config.insert("preload".into(), names.to_vec().into());
        }
        let fd = theirs.as_raw_fd();
        let mut command = Command::new(&python.interpreter);
        command
            .arg("-c")
            .arg(SERVER)
            .arg(serde_json::Value::Object(config).to_string())
            .current_dir(cwd)
            .env("KILN_WARM_FD", fd.to_string())
            .env("KILN_WARM_PARENT", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: fcntl is async-signal-safe; it keeps the server's end of the socket open
        // across exec (every other descriptor of the worker stays closed on exec).
        unsafe {
            command.pre_exec(move || {
                libc::fcntl(fd, libc::F_SETFD, 0);
                Ok(())
            });
        }
        let process = command
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", python.interpreter))?;
        drop(theirs);
        let mut reader = BufReader::new(ours.try_clone().map_err(|e| e.to_string())?);
        ours.set_read_timeout(Some(READY_WITHIN)).ok();
        let mut first = String::new();
        let ready: Ready = match reader.read_line(&mut first) {
            Ok(n) if n > 0 => serde_json::from_str(&first).map_err(|e| e.to_string())?,
            Ok(_) => {
                return Err("it exited before importing (Python 3.9 or later is needed)".into());
            }
            Err(e) => return Err(format!("it did not import within {READY_WITHIN:?}: {e}")),
        };
        ours.set_read_timeout(None).ok();
        let (pid_tx, pids) = channel();
        let trial: Arc<Mutex<Option<Sender<Event>>>> = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (to_trial, still) = (Arc::clone(&trial), Arc::clone(&alive));
        std::thread::spawn(move || listen(reader, pid_tx, to_trial, still));
        Ok(Server {
            process,
            socket: ours,
            pids,
            trial,
            alive,
            imported: ready.ready,
            failed: ready.failed,
        })
    }

    /// Whether it can take a trial.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Forks a trial with `env` (added to the server's), in `cwd`, its output on `streams` and
    /// its exit to `events`. Returns its process id.
    pub fn launch(
        &mut self,
        env: &[(String, String)],
        cwd: &Path,
        args: &[String],
        streams: Streams,
        events: Sender<Event>,
    ) -> std::io::Result<i32> {
        let env: serde_json::Map<String, serde_json::Value> = env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        let request = serde_json::json!({"env": env, "cwd": cwd, "args": args}).to_string();
        *self.trial.lock().unwrap_or_else(|p| p.into_inner()) = Some(events);
        let fds = [
            streams.stdout.as_raw_fd(),
            streams.stderr.as_raw_fd(),
            streams.reports.as_raw_fd(),
        ];
        let mut frame = (request.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(request.as_bytes());
        send_with_fds(&self.socket, &frame, &fds)?;
        // Once the server holds its copies, ours close: the readers see the child's ends.
        drop(streams);
        self.pids
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| std::io::Error::other("the warm Python server did not fork the trial"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Forwards the server's lines: process ids to `pids`, exits to the running trial. When the
/// server is gone its child is too (it dies with the server): the trial hears a SIGKILL.
fn listen(
    reader: BufReader<UnixStream>,
    pids: Sender<i32>,
    trial: Arc<Mutex<Option<Sender<Event>>>>,
    alive: Arc<AtomicBool>,
) {
    let exit = |status: ExitStatus| {
        if let Some(events) = trial.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = events.send(Event::Exited(status));
        }
    };
    for line in reader.lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str(&line) {
            Ok(Said::Pid { pid }) => {
                let _ = pids.send(pid);
            }
            Ok(Said::Exit { status, .. }) => exit(ExitStatus::from_raw(status)),
            Err(_) => break,
        }
    }
    alive.store(false, Ordering::SeqCst);
    exit(ExitStatus::from_raw(libc::SIGKILL));
}

/// Writes `bytes` to `socket` with `fds` attached (SCM_RIGHTS) to the first of them.
fn send_with_fds(socket: &UnixStream, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE computes a size; no memory is touched.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: a zeroed msghdr is a valid empty message; every pointer set below points into
    // `iov` and `control`, which outlive the sendmsg call, and the control buffer is sized by
    // CMSG_SPACE for the header and `fds`.
    let sent = unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        message.msg_controllen = space as _;
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(header), payload);
        libc::sendmsg(socket.as_raw_fd(), &message, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // A stream socket may take part of the frame; the rest follows without descriptors.
    (&*socket).write_all(&bytes[sent as usize..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn python_commands_are_recognised_and_others_start_cold() {
        let python = Python::of(&argv(&["python3", "train.py", "--epochs", "3"])).unwrap();
        assert_eq!(python.target, Target::Script("train.py".into()));
        assert_eq!(python.args, argv(&["--epochs", "3"]));
        let module = Python::of(&argv(&["/venv/bin/python3.11", "-u", "-m", "pkg.train"])).unwrap();
        assert_eq!(module.target, Target::Module("pkg.train".into()));
        assert!(module.unbuffered);
        for cold in [
            &["bash", "-c", "python3 w.py"][..],
            &["python3", "-c", "print(1)"],
            &["python3", "-X", "dev", "train.py"],
            &["pythonista", "train.py"],
            &["python3"],
        ] {
            assert_eq!(Python::of(&argv(cold)), None, "{cold:?}");
        }
    }
}
