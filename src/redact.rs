//! Database URLs as kiln shows them: a password never reaches a message, a log or a file.

/// `url` with any password replaced by `***`: in the user information (all of it up to the
/// last `@`, so a raw `/` or `#` in a password is masked too), in a query key that decodes to
/// `password` (`?pass%77ord=...`), and in a key=value connection string.
pub fn redact(url: &str) -> String {
    let url = mask_password_values(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let rest = mask_encoded_query_keys(rest);
    let Some((user_info, host)) = rest.rsplit_once('@') else {
        return format!("{scheme}://{rest}");
    };
    match user_info.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://{rest}"),
    }
}

/// The query's `KEY=VALUE` pairs with a value masked where the key, percent-decoded, is
/// `password` in any case.
fn mask_encoded_query_keys(rest: &str) -> String {
    let Some((before, query)) = rest.split_once('?') else {
        return rest.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if percent_decoded(key).eq_ignore_ascii_case("password") => {
                format!("{key}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{before}?{}", pairs.join("&"))
}

/// `text` with its `%XX` escapes decoded (an invalid one is kept as it is).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        // Decided on what the URL means, not on its text.
        let encoded = redact("postgres://kiln@db/x?sslmode=disable&pass%77ord=SECRET");
        assert!(!encoded.contains("SECRET"), "{encoded}");
        assert!(has_password("postgres://kiln@db/x?PASS%57ORD=s"));
        let slash = redact("postgres://kiln2:Sl/ash#Pw9@host/db");
        assert_eq!(slash, "postgres://kiln2:***@host/db");
        assert_eq!(redact("postgres://kiln@db/x"), "postgres://kiln@db/x");
    }
}
