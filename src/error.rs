//! kiln's error type: what went wrong, and which exit code it deserves.
//!
//! Bad input (arguments, experiment files, data files) exits 2 so scripts can tell "you asked
//! for something wrong" from "something broke while running" (1).

use std::fmt;

/// An error that ends a kiln command.
#[derive(Debug)]
pub enum Error {
    /// The user's input is wrong: arguments, experiment file, data file. Exit code 2.
    BadInput(String),
    /// Something failed while running. Exit code 1.
    Runtime(String),
}

/// kiln's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bad-input error.
    pub fn input(message: impl Into<String>) -> Error {
        Error::BadInput(message.into())
    }

    /// A runtime error.
    pub fn runtime(message: impl Into<String>) -> Error {
        Error::Runtime(message.into())
    }

    /// The process exit code this error deserves.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadInput(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadInput(m) | Error::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Adds what was being done to an I/O error: "cannot write results/x/journal.jsonl: ...".
pub trait Context<T> {
    /// Wraps the error as a runtime error with `what` in front.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Runtime(format!("{}: {e}", what())))
    }
}
