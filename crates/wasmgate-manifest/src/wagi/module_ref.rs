//! WAGI module references (`module = "..."`): plain paths and `file:` URLs are read from disk;
//! registry references (`oci:`, `bindle:` and any other scheme) are refused for now.

use std::path::PathBuf;

/// The file a module reference names, as written: a relative result is still to be resolved
/// against the `modules.toml` directory. Errors are messages for the user.
pub(crate) fn module_path(reference: &str) -> Result<PathBuf, String> {
    if reference.trim().is_empty() {
        return Err("module must name a .wasm or .wat file".to_string());
    }
    match url_scheme(reference) {
        None => Ok(PathBuf::from(reference)),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("file") => file_url_path(rest),
        Some((scheme, _)) => Err(format!(
            "{}: module references are not supported yet; use a file path",
            scheme.to_ascii_lowercase()
        )),
    }
}

/// Splits `scheme:rest` when the text starts with a URL scheme. One-letter schemes are left
/// alone: `C:\app.wasm` is a Windows path, not a URL.
fn url_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = scheme.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// The path of a `file:` URL, given what follows `file:`: `///abs/path`, `//localhost/abs/path`,
/// `/abs/path` or `relative/path`, percent-decoded.
fn file_url_path(rest: &str) -> Result<PathBuf, String> {
    let path = match rest.strip_prefix("//") {
        Some(after_slashes) => {
            let (host, path) = after_slashes
                .find('/')
                .map_or((after_slashes, ""), |i| after_slashes.split_at(i));
            if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                return Err(format!(
                    "\"file://{host}\" names a host, which is not supported; write \
                     file:///absolute/path.wasm or file:relative/path.wasm"
                ));
            }
            path
        }
        None => rest,
    };
    if path.contains(['?', '#']) {
        return Err(
            "a file: URL cannot have a query ('?') or fragment ('#'); percent-encode those \
             characters as %3F and %23"
                .to_string(),
        );
    }
    let decoded = percent_decode(path)?;
    if decoded.is_empty() {
        return Err("the file: URL has no path; write file:///absolute/path.wasm".to_string());
    }
    // `file:///C:/app.wasm` is `C:/app.wasm` on Windows.
    if cfg!(windows) {
        let bytes = decoded.as_bytes();
        if bytes.len() >= 3
            && bytes[0] == b'/'
            && bytes[1].is_ascii_alphabetic()
            && bytes[2] == b':'
        {
            return Ok(PathBuf::from(&decoded[1..]));
        }
    }
    Ok(PathBuf::from(decoded))
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escape = text
                .get(i + 1..i + 3)
                .filter(|hex| hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
            let Some(hex) = escape else {
                let shown: String = text[i..].chars().take(3).collect();
                return Err(format!(
                    "invalid percent-escape {shown:?} in file: URL (expected '%' and two hex \
                     digits, e.g. %20)"
                ));
            };
            decoded.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded)
        .map_err(|_| "the file: URL's percent-escapes do not decode to UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_kept_as_written() {
        assert_eq!(module_path("hello.wasm"), Ok(PathBuf::from("hello.wasm")));
        assert_eq!(module_path("bin/a b.wat"), Ok(PathBuf::from("bin/a b.wat")));
        assert_eq!(module_path("/abs/x.wasm"), Ok(PathBuf::from("/abs/x.wasm")));
        assert_eq!(
            module_path("C:\\app.wasm"),
            Ok(PathBuf::from("C:\\app.wasm"))
        );
    }

    #[test]
    fn file_urls_absolute_localhost_and_relative() {
        assert_eq!(
            module_path("file:///srv/app%20one.wasm"),
            Ok(PathBuf::from("/srv/app one.wasm"))
        );
        assert_eq!(
            module_path("FILE://localhost/srv/app.wasm"),
            Ok(PathBuf::from("/srv/app.wasm"))
        );
        assert_eq!(
            module_path("file:/srv/app.wasm"),
            Ok(PathBuf::from("/srv/app.wasm"))
        );
        assert_eq!(
            module_path("file:bin/caf%C3%A9.wasm"),
            Ok(PathBuf::from("bin/café.wasm"))
        );
    }

    #[test]
    fn bad_file_urls_say_why() {
        assert!(module_path("file://app.wasm")
            .unwrap_err()
            .contains("names a host"));
        assert!(module_path("file:").unwrap_err().contains("has no path"));
        assert!(module_path("file:///a%2.wasm")
            .unwrap_err()
            .contains("invalid percent-escape \"%2.\""));
        assert!(module_path("file:///a%ff.wasm")
            .unwrap_err()
            .contains("UTF-8"));
        assert!(module_path("file:///a.wasm?x")
            .unwrap_err()
            .contains("query"));
    }

    #[test]
    fn registry_references_are_refused() {
        assert_eq!(
            module_path("oci:example.com/hello:1.0"),
            Err("oci: module references are not supported yet; use a file path".to_string())
        );
        assert!(module_path("bindle:example.com/hello/1.0.0")
            .unwrap_err()
            .starts_with("bindle: module references are not supported yet"));
        assert!(module_path("").is_err());
    }
}
