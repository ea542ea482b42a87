//! Database URLs as kiln shows them: a password never reaches a message, a log or a file.

/// `url` with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let url = mask_password_values(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some((user_info, host)) = authority.rsplit_once('@') else {
        return url;
    };
    match user_info.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}/{path}"),
        None => url,
    }
}

/// `password=VALUE` masked wherever it appears: a URL's query (`?password=...&...`) or a
/// key=value connection string (`host=db password='...' dbname=x`), the key in any case.
fn mask_password_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find("password") {
        let key_end = at + found + "password".len();
        let after = &text[key_end..];
        let spaces = after.len() - after.trim_start().len();
        if !after[spaces..].starts_with('=') {
            out.push_str(&text[at..key_end]);
            at = key_end;
            continue;
        }
        let value_start = key_end + spaces + 1;
        let rest = &text[value_start..];
        let skipped = rest.len() - rest.trim_start().len();
        let value = &rest[skipped..];
        let length = if let Some(quoted) = value.strip_prefix('\'') {
            // Up to the closing quote; `\'` inside is an escaped quote.
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            1 + end
        } else {
            value
                .find(|c: char| c.is_whitespace() || c == '&')
                .unwrap_or(value.len())
        };
        out.push_str(&text[at..key_end]);
        out.push_str("=***");
        at = value_start + skipped + length;
    }
    out.push_str(&text[at..]);
    out
}

/// Whether a URL carries a password (refused in experiment files).
pub fn has_password(url: &str) -> bool {
    redact(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://kiln:secret@db:5432/sweeps"),
            "postgres://kiln:***@db:5432/sweeps"
        );
        assert_eq!(
            redact("postgres://kiln@db/sweeps"),
            "postgres://kiln@db/sweeps"
        );
        assert!(has_password("postgresql://a:b@h/d"));
        assert!(!has_password("postgresql://a@h/d"));
        assert_eq!(
            redact("postgres://kiln@db/x?sslmode=require&PassWord=s3cret&application_name=k"),
            "postgres://kiln@db/x?sslmode=require&PassWord=***&application_name=k"
        );
        assert_eq!(
            redact("host=db user=kiln password = 'se c\\'ret' dbname=x"),
            "host=db user=kiln password=*** dbname=x"
        );
        assert_eq!(redact("host=db password=s3cret"), "host=db password=***");
        assert!(has_password("postgres://kiln@db/x?password=s3cret"));
        assert!(!has_password("host=db user=kiln dbname=password"));
    }
}
