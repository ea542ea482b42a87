//! A run of a trial's script as a process: its pipes, the threads that read them, and its cold
//! start (fork and exec, as for any program). The warm start ([`super::warm`]) hands the same
//! pipes to a Python server instead. Either way the script runs in a process group of its own,
//! and everything the follower needs arrives as [`Event`]s on one channel: report lines (from
//! stdout or the report descriptor), the end of those streams, and the script's exit.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// The prefix of a report line on the script's stdout.
pub const REPORT_PREFIX: &str = "kiln-report ";

/// The descriptor a script may write its reports to, one JSON object a line, unprefixed
/// (`KILN_REPORT_FD`): written with `os.write` or a line-buffered file, nothing waits in a buffer.
pub const REPORT_FD: i32 = 3;

/// Lines of stderr kept for a failed trial's note.
const STDERR_LINES: usize = 5;

/// What the follower of a run hears.
#[derive(Debug)]
pub enum Event {
    /// A report's JSON, or why a report line cannot be read.
    Report(Result<String, String>),
    /// One of the two streams that carry reports (stdout, the report descriptor) has ended.
    Closed,
    /// The script has exited (its process group may live on).
    Exited(ExitStatus),
}

/// The script's ends of its three output pipes.
pub struct Streams {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub reports: OwnedFd,
}

/// kiln's ends of them.
pub struct Readers {
    stdout: File,
    stderr: File,
    reports: File,
}

/// A pipe: (read end, write end), both closed on exec.
fn pipe() -> std::io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array, which this process then owns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nothing else.
    unsafe { Ok((File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// The pipes of one run.
pub fn pipes() -> std::io::Result<(Streams, Readers)> {
    let (stdout, out) = pipe()?;
    let (stderr, err) = pipe()?;
    let (reports, rep) = pipe()?;
    Ok((
        Streams {
            stdout: out,
            stderr: err,
            reports: rep,
        },
        Readers {
            stdout,
            stderr,
            reports,
        },
    ))
}

/// The script's log file and the last lines of its stderr.
#[derive(Clone)]
pub struct Log {
    file: Arc<Mutex<File>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Log {
    /// Appends to `log.txt` in the trial's folder.
    pub fn open(dir: &Path) -> std::io::Result<Log> {
        let file = crate::files::open_own(
            std::fs::OpenOptions::new().create(true).append(true),
            &dir.join("log.txt"),
        )?;
        Ok(Log {
            file: Arc::new(Mutex::new(file)),
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
        })
    }

    /// A line of kiln's own.
    pub fn note(&self, line: &str) {
        self.write(line.as_bytes(), true);
    }

    /// Output of the script's, as it printed it (bytes need not be UTF-8), ending a line or not.
    fn write(&self, bytes: &[u8], ends_line: bool) {
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(bytes);
            if ends_line {
                let _ = file.write_all(b"\n");
            }
        }
    }

    /// A piece of stderr: logged, and a line's first piece kept among the last lines.
    fn stderr(&self, piece: Piece<'_>) {
        self.write(piece.bytes, piece.last);
        if !piece.first {
            return;
        }
        if let Ok(mut tail) = self.stderr_tail.lock() {
            if tail.len() == STDERR_LINES {
                tail.pop_front();
            }
            let mut line = String::from_utf8_lossy(piece.bytes).into_owned();
            if !piece.last {
                line.push_str(" ...");
            }
            tail.push_back(line);
        }
    }

    /// "; stderr: LAST | LINES", or nothing when stderr was empty.
    pub fn tail(&self) -> String {
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

/// The most of one line held in memory: a longer line reaches the log in pieces of this size,
/// and cannot be a report.
const LINE_LIMIT: usize = 64 * 1024;

/// A piece of a line: the whole line, or (for a line past [`LINE_LIMIT`]) one of its parts.
struct Piece<'a> {
    bytes: &'a [u8],
    /// It begins the line.
    first: bool,
    /// It ends the line.
    last: bool,
}

/// Calls `each` with every line of `from` (without its newline), in pieces of at most
/// [`LINE_LIMIT`] bytes, until it ends.
fn lines(from: File, mut each: impl FnMut(Piece<'_>)) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        match (&mut reader)
            .take(LINE_LIMIT as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => {
                if !first {
                    each(Piece {
                        bytes: &[],
                        first,
                        last: true,
                    });
                }
                return;
            }
            Ok(_) => {
                let newline = line.last() == Some(&b'\n');
                if newline {
                    line.pop();
                }
                // Short of the limit without a newline: the stream ended the line.
                let last = newline || line.len() < LINE_LIMIT;
                each(Piece {
                    bytes: &line,
                    first,
                    last,
                });
                first = last;
            }
        }
    }
}

/// Reads the three pipes on threads of their own: reports to `events`, everything else to the
/// log. The receiver hears when stderr has ended.
pub fn follow(readers: Readers, log: &Log, events: &Sender<Event>) -> Receiver<()> {
    let (out_log, out_events) = (log.clone(), events.clone());
    std::thread::spawn(move || {
        let mut in_report = false;
        lines(readers.stdout, |piece| {
            if piece.first {
                in_report = piece.bytes.starts_with(REPORT_PREFIX.as_bytes());
            }
            if !in_report {
                out_log.write(piece.bytes, piece.last);
            } else if piece.first {
                let json = &piece.bytes[REPORT_PREFIX.len()..];
                let _ = out_events.send(Event::Report(report(json, piece.last)));
            }
        });
        let _ = out_events.send(Event::Closed);
    });
    let report_events = events.clone();
    std::thread::spawn(move || {
        lines(readers.reports, |piece| {
            if !piece.first {
                return;
            }
            let json = piece
                .bytes
                .strip_prefix(REPORT_PREFIX.as_bytes())
                .unwrap_or(piece.bytes);
            if !json.trim_ascii().is_empty() || !piece.last {
                let _ = report_events.send(Event::Report(report(json, piece.last)));
            }
        });
        let _ = report_events.send(Event::Closed);
    });
    let err_log = log.clone();
    let (closed, stderr_closed) = channel();
    std::thread::spawn(move || {
        lines(readers.stderr, |piece| err_log.stderr(piece));
        let _ = closed.send(());
    });
    stderr_closed
}

/// A report line's JSON, or why it cannot be one (it goes on past [`LINE_LIMIT`]).
fn report(json: &[u8], whole: bool) -> Result<String, String> {
    if whole {
        Ok(String::from_utf8_lossy(json).trim().to_string())
    } else {
        Err(format!(
            "a report line longer than {} KiB (a report is one short JSON object)",
            LINE_LIMIT / 1024
        ))
    }
}

/// Starts `argv` as a new process (a process group of its own, dying with this thread) with
/// the trial's `env` added to this process's, its output on `streams`; its exit goes to `events`.
/// Returns its process id.
pub fn cold(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    streams: Streams,
    events: Sender<Event>,
) -> std::io::Result<i32> {
    let parent = std::process::id();
    let reports = streams.reports.as_raw_fd();
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(streams.stdout))
        .stderr(Stdio::from(streams.stderr));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // Its own process group: a terminal's Ctrl-C reaches kiln, which stops the
            // script by the protocol, and a stop reaches the script's own children.
            libc::setpgid(0, 0);
            // A worker ignores both (its orchestrator handles them); the script must not.
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            // The report descriptor at its documented number, kept across exec.
            if reports == REPORT_FD {
                libc::fcntl(REPORT_FD, libc::F_SETFD, 0);
            } else if libc::dup2(reports, REPORT_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The worker may have died before the line above took effect.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // The parent's copies of the script's ends close with the command, so the readers see
    // the streams end when the script's side closes them.
    drop(command);
    drop(streams.reports);
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = events.send(Event::Exited(status));
        }
    });
    Ok(pid)
}

/// Sends `signal` to the script's process group.
pub fn signal_group(group: i32, signal: i32) {
    // SAFETY: signals a process group this worker created (the script's); no memory is touched.
    unsafe { libc::kill(-group, signal) };
}

/// What the guard runs: it waits for one line on stdin, and unless the line says the run is
/// over, kills the process group `$1`.
const GUARD: &str = r#"read -r line; [ "$line" = over ] || kill -s KILL -- "-$1" 2>/dev/null"#;

/// A watcher of a run's process group that outlives the worker: should the worker die before
/// the run is over (SIGKILL, the OOM killer, kiln killed), the guard kills what is left of the
/// group, the script's own children included (the script itself dies with its parent, its
/// children would not). It runs in a process group of its own, out of reach of a terminal's
/// signals. A process that leaves the group (`setsid`, a daemon) escapes it.
pub struct Guard {
    child: std::process::Child,
}

impl Guard {
    /// Starts guarding `group`.
    pub fn start(group: i32) -> std::io::Result<Guard> {
        let child = Command::new("/bin/sh")
            .args(["-c", GUARD, "kiln-guard", &group.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Guard { child })
    }
}

impl Drop for Guard {
    /// The run is over (its group was killed already): the guard leaves without killing, so a
    /// group number used again later is never touched.
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"over\n");
        }
        let _ = self.child.wait();
    }
}
