//! Where an experiment came from, and how its errors point into it: the source text, the
//! TOML path to file:line:col map, serde's messages made readable, and the rules every part
//! shares (sweep names, durations, the experiment's fingerprint and the differences of two).

use crate::error::{Error, Result};
use crate::names::Named;
use crate::space::ParamValue;
use crate::text::{hint, quote_list};
use std::path::PathBuf;
use std::time::Duration;

/// Where the experiment came from: its text, kept for error positions and for freezing.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The path as the user gave it (shown in errors).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// The folder relative paths in the file are resolved against.
    pub base_dir: PathBuf,
}

impl Source {
    /// A bad-input error located at a TOML path (`["space", "learning_rate"]`), or at the file
    /// when the path has no position.
    pub fn error_at(&self, path: &[&str], message: impl AsRef<str>) -> Error {
        let position = locate(&self.text, path)
            .map(|offset| {
                let (line, column) = line_column(&self.text, offset);
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        Error::input(format!(
            "{}{position}: {}",
            self.path.display(),
            message.as_ref()
        ))
    }
}

/// The longest sweep name: it names a folder, a database row and a scratch folder.
pub const MAX_NAME: usize = 100;

/// The one rule for a sweep's name, wherever it comes from (the file's `name`, `--sweep-name`,
/// `--sweep`): letters, digits, `-`, `_` and `.`, not starting with `.`, at most
/// [`MAX_NAME`] characters. A name can then never leave its folder (`..`, `/`) or be empty.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(format!(
            "invalid name `{name}`: use letters, digits, `-`, `_` and `.`, not starting with `.` (it names the results folder)"
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "the name is {} characters long; at most {MAX_NAME} are allowed (it names the results folder)",
            name.len()
        ));
    }
    Ok(())
}

pub(crate) fn scalar(value: &toml::Value) -> Option<ParamValue> {
    match value {
        toml::Value::Integer(i) => Some(ParamValue::Int(*i)),
        toml::Value::Float(f) => Some(ParamValue::Float(*f)),
        toml::Value::String(s) => Some(ParamValue::Str(s.clone())),
        toml::Value::Boolean(b) => Some(ParamValue::Bool(*b)),
        _ => None,
    }
}

/// "90s", "30m", "2h", "1h30m" or a number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// Turns serde's error into ours, with position and a "did you mean" for unknown keys.
pub(crate) fn serde_error(source: &Source, error: &toml::de::Error) -> Error {
    let message = error.message().trim().to_string();
    let message = match unknown_field(&message) {
        Some((field, expected)) => {
            let hint = hint(&field, expected.iter().map(String::as_str));
            let list: Vec<&str> = expected.iter().map(String::as_str).collect();
            format!(
                "unknown key `{field}`.{hint} Allowed here: {}",
                quote_list(&list)
            )
        }
        None => message,
    };
    let position = error
        .span()
        .map(|span| {
            let (line, column) = line_column(&source.text, span.start);
            format!(":{line}:{column}")
        })
        .unwrap_or_default();
    Error::input(format!("{}{position}: {message}", source.path.display()))
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
pub(crate) fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((field.to_string(), expected))
}

/// Byte offsets of the keys of table `table`, from one parse of the text (parsing once per key
/// made files of thousands of dimensions take minutes).
pub(crate) fn key_offsets(text: &str, table: &str) -> std::collections::HashMap<String, usize> {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return Default::default();
    };
    let Some(table) = doc.get(table).and_then(|t| t.as_table_like()) else {
        return Default::default();
    };
    table
        .iter()
        .filter_map(|(key, _)| {
            let (key, _) = table.get_key_value(key)?;
            Some((key.get().to_string(), key.span()?.start))
        })
        .collect()
}

/// Byte offset of the key (or, for an array index, the element) at `path`.
pub(crate) fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut offset = None;
    let mut segments = path.iter();
    while let Some(segment) = segments.next() {
        if let Some(array) = item.as_array() {
            let value = array.get(segment.parse().ok()?)?;
            return value.span().map(|s| s.start).or(offset);
        }
        let (table, key): (&dyn toml_edit::TableLike, &str) = match item.as_array_of_tables() {
            // `[[enqueue]]`: the segment is the table's index, the next one a key in it.
            Some(tables) => {
                let table = tables.get(segment.parse().ok()?)?;
                offset = table.span().map(|s| s.start).or(offset);
                match segments.next() {
                    Some(key) => (table, key),
                    None => return offset,
                }
            }
            None => (item.as_table_like()?, segment),
        };
        let (key, next) = table.get_key_value(key)?;
        offset = key
            .span()
            .or_else(|| next.span())
            .map(|s| s.start)
            .or(offset);
        item = next;
    }
    if path.is_empty() { None } else { offset }
}

pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A fingerprint of what makes a sweep itself: everything but `[budget]` (more trials or
/// workers continue the same sweep). Whitespace, comments and key order do not count.
pub fn fingerprint(text: &str) -> String {
    let mut table: toml::Table = toml::from_str(text).unwrap_or_default();
    // How many trials, and where the sweep is kept, do not change what a trial computes.
    table.remove("budget");
    table.remove("storage");
    let canonical = toml::to_string(&table).unwrap_or_default();
    format!("{:016x}", crate::files::fnv64(canonical.as_bytes()))
}

/// The keys whose values differ between two experiment texts (ignoring `[budget]`), as
/// "`train.epochs`: 30 -> 20" lines.
pub fn differences(old: &str, new: &str) -> Vec<String> {
    fn walk(
        prefix: &str,
        old: Option<&toml::Value>,
        new: Option<&toml::Value>,
        out: &mut Vec<String>,
    ) {
        match (old, new) {
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    if prefix.is_empty() && (key == "budget" || key == "storage") {
                        continue;
                    }
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, a.get(key), b.get(key), out);
                }
            }
            (a, b) if a != b => {
                let show =
                    |v: Option<&toml::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
                out.push(format!("`{prefix}`: {} -> {}", show(a), show(b)));
            }
            _ => {}
        }
    }
    let parse = |t: &str| {
        toml::from_str::<toml::Table>(t)
            .map(toml::Value::Table)
            .ok()
    };
    let mut out = Vec::new();
    walk("", parse(old).as_ref(), parse(new).as_ref(), &mut out);
    out
}

/// Parses the sections of one experiment file: each part of kiln parses its own section in an
/// `impl Builder` of its own module, and every error points into this source.
pub(crate) struct Builder {
    pub(crate) source: Source,
}

impl Builder {
    /// A bad-input error at a TOML path of the file.
    pub(crate) fn err(&self, path: &[&str], message: impl AsRef<str>) -> Error {
        self.source.error_at(path, message)
    }

    /// The variant `name` spells (the first variant when absent), or an error listing them.
    pub(crate) fn named<T: Named>(
        &self,
        path: &[&str],
        what: &str,
        name: Option<&str>,
    ) -> Result<T> {
        let Some(name) = name else {
            return Ok(T::ALL[0]);
        };
        T::from_name(name).ok_or_else(|| {
            let hint = hint(name, T::NAMES.iter().copied());
            self.err(
                path,
                format!(
                    "unknown {what} `{name}`: use {}.{hint}",
                    quote_list(T::NAMES)
                ),
            )
        })
    }
}
