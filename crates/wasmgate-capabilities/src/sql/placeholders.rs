//! Rewriting the portable `?` placeholders to PostgreSQL's `$1, $2, ...`.
//!
//! Guests write `?` on every backend. A `?` inside a quoted string ('...', E'...' with
//! backslash escapes, "identifiers", $tag$ dollar-quoted $tag$) or a comment (`--`, nested
//! `/* */`) is text, not a placeholder, and is left alone. Every other `?` is a placeholder,
//! so PostgreSQL's jsonb `?` operators are not available (their function forms are).

/// `statement` with its n-th placeholder `?` replaced by `$n`.
pub fn to_numbered(statement: &str) -> String {
    let bytes = statement.as_bytes();
    let mut out = String::with_capacity(statement.len() + 8);
    let mut next = 1usize;
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'?' => {
                out.push_str(&statement[copied..i]);
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
                i += 1;
                copied = i;
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && !ident_char_before(bytes, i - 1);
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| i + p + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' if !ident_char_before(bytes, i) => i = skip_dollar_quoted(bytes, i),
            _ => i += 1,
        }
    }
    out.push_str(&statement[copied..]);
    out
}

/// Whether the byte before `i` continues an identifier (so `E'` is a prefix only when `E`
/// starts a token, and `$` after a name is part of that name).
fn ident_char_before(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] >= 0x80)
}

/// Index just past the quoted text opening at `start`. A doubled quote is an escaped quote;
/// with `backslash`, so is `\'`. An unterminated quote runs to the end.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if backslash && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// `$tag$ ... $tag$` (the tag may be empty). A `$` that does not open such a quote (e.g. the
/// `$1` of an already numbered parameter) is skipped on its own.
fn skip_dollar_quoted(bytes: &[u8], start: usize) -> usize {
    let tag_len = bytes[start + 1..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80));
    let Some(tag_len) = tag_len else {
        return bytes.len();
    };
    let close = start + 1 + tag_len;
    let tag_starts_with_digit = bytes.get(start + 1).is_some_and(u8::is_ascii_digit);
    if bytes[close] != b'$' || tag_starts_with_digit {
        return start + 1;
    }
    let delimiter = &bytes[start..=close];
    let body = close + 1;
    bytes[body..]
        .windows(delimiter.len())
        .position(|w| w == delimiter)
        .map_or(bytes.len(), |p| body + p + delimiter.len())
}

#[cfg(test)]
mod tests {
    use super::to_numbered;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            to_numbered("INSERT INTO t VALUES (?, ?, ?)"),
            "INSERT INTO t VALUES ($1, $2, $3)"
        );
    }

    #[test]
    fn question_marks_in_strings_and_comments_stay() {
        assert_eq!(
            to_numbered("SELECT '?', \"a?\", ? -- why?\n, ? /* ? /* ? */ */"),
            "SELECT '?', \"a?\", $1 -- why?\n, $2 /* ? /* ? */ */"
        );
        assert_eq!(to_numbered("SELECT 'it''s ?', ?"), "SELECT 'it''s ?', $1");
        assert_eq!(to_numbered(r"SELECT E'\'?', ?"), r"SELECT E'\'?', $1");
        assert_eq!(
            to_numbered("SELECT $$ ? $$, $q$?$q$, ?"),
            "SELECT $$ ? $$, $q$?$q$, $1"
        );
        assert_eq!(
            to_numbered("SELECT 'unterminated ?"),
            "SELECT 'unterminated ?"
        );
    }

    #[test]
    fn a_plain_backslash_does_not_escape() {
        // Standard strings treat backslash as an ordinary character.
        assert_eq!(to_numbered(r"SELECT 'a\', ?"), r"SELECT 'a\', $1");
    }
}
