//! The words of error messages, for every part: quoting names, and "did you mean" for a
//! misspelt one.

use crate::space::ParamValue;

/// `a`, `b` and `c` as "`a`, `b`, `c`".
pub fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as an error message shows it: a name in backticks, else its type and value.
pub(crate) fn quoted(value: &ParamValue) -> String {
    match value {
        ParamValue::Str(s) => format!("`{s}`"),
        other => format!("{} ({other})", other.type_name()),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // An abbreviation (`val_acc`) is as clear a sign as a typo.
    if word.len() >= 3
        && let Some(c) = candidates.iter().find(|c| c.starts_with(word))
    {
        return Some(c);
    }
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// " Did you mean `x`?" when a candidate is close to `word` ([`did_you_mean`]), else nothing:
/// the tail of an error message about a misspelt name.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|m| format!(" Did you mean `{m}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["learning_rate", "batch_size", "weight_decay"];
        assert_eq!(
            did_you_mean("learnin_rate", names.iter().copied()),
            Some("learning_rate")
        );
        assert_eq!(
            did_you_mean("val_acc", ["val_accuracy"]),
            Some("val_accuracy")
        );
        assert_eq!(did_you_mean("zzz", names.iter().copied()), None);
    }
}
