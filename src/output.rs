//! What commands show. Data (tables, lists of files) goes to stdout with [`say!`]; what is
//! for the person watching (progress, where the results are) goes to stderr with [`tell!`], so
//! `kiln run X > out.txt` still shows progress on the screen. Showing is a view of state kept
//! elsewhere, so a reader that went away (`kiln run X | head`) or a full stdout (`> /dev/full`)
//! never fails a command or stops a sweep: such lines are dropped. (CSV and predictions
//! written to stdout are data, and say so when they cannot be written: [`crate::commands`].)

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

/// Prints a formatted line to stderr; a write error is ignored.
pub fn note(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|_| err.write_all(b"\n"));
}

/// `path` as a shell reads it back: as it is when every character is plain, else in single
/// quotes (a quote inside written `'\''`), so that a printed command can be pasted.
pub fn pasteable(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text;
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The program as it was run (its `argv[0]`, pasteable), for the commands kiln prints: a
/// program of your own built on kiln is told to run itself, and `./kiln` stays `./kiln`.
pub fn program() -> String {
    let name = std::env::args_os().next().unwrap_or_else(|| "kiln".into());
    pasteable(std::path::Path::new(&name))
}

/// `eprintln!` that never panics, for people: a write error is ignored.
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::output::note(format_args!($($arg)*))
    };
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_with_spaces_or_quotes_is_quoted_for_the_shell() {
        let shown = |p: &str| super::pasteable(std::path::Path::new(p));
        assert_eq!(shown("results/digits-1"), "results/digits-1");
        assert_eq!(shown("my results/b"), "'my results/b'");
        assert_eq!(shown("it's"), "'it'\\''s'");
    }
}
