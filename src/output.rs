//! What commands show on stdout. Showing is a view of state kept elsewhere, so a reader that
//! went away (`kiln run X | head`) or a full stdout (`> /dev/full`) never fails a command or
//! stops a sweep: such lines are dropped. (CSV and predictions written to stdout are data, and
//! say so when they cannot be written: [`crate::commands`].)

use std::io::Write;

/// Prints `text` as it is; a write error is ignored.
pub fn text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// Prints a formatted line; a write error is ignored.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_fmt(args)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
}

/// `println!` that never panics: see [`line`].
#[macro_export]
macro_rules! say {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
