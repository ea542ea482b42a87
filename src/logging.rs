//! Logging: `RUST_LOG` filters what reaches stderr (warnings by default), and once a sweep's
//! folder is known, everything at info level and above is also appended to its `kiln.log`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};

static LOG_FILE: Mutex<Option<File>> = Mutex::new(None);

struct LogFile;

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LOG_FILE.lock().ok().as_mut().and_then(|f| f.as_mut()) {
            Some(file) => file.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogFile;
    fn make_writer(&'a self) -> LogFile {
        LogFile
    }
}

/// Installs the subscriber (once per process).
pub fn init() {
    // Colour only for a person at a terminal: a log redirected to a file or pipe stays text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
    let file = tracing_subscriber::fmt::layer()
        .with_writer(LogFile)
        .with_ansi(false)
        .with_target(false)
        .with_filter(LevelFilter::INFO);
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

/// Appends the log to `dir/kiln.log` from now on.
pub fn attach(dir: &Path) {
    let path = crate::layout::log(dir);
    let opened =
        crate::files::open_own(std::fs::OpenOptions::new().create(true).append(true), &path);
    match opened {
        Ok(file) => {
            if let Ok(mut slot) = LOG_FILE.lock() {
                *slot = Some(file);
            }
        }
        Err(e) => tracing::warn!("no log file: {e}"),
    }
}
