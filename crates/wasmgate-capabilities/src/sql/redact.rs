//! Keeping credentials out of messages. Driver errors may quote the connection URL or the
//! password; every message a backend produces passes through [`Redactor::clean`] before it
//! reaches a guest or a log.

/// The secrets of one connection URL.
#[derive(Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

const MASK: &str = "***";

impl Redactor {
    pub fn for_url(url: &str) -> Redactor {
        let mut secrets = vec![url.to_string()];
        if let Some(password) = password(url) {
            let decoded = percent_decode(password);
            secrets.push(password.to_string());
            if decoded != password {
                secrets.push(decoded);
            }
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so the URL is masked whole before the password inside it.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub fn clean(&self, message: impl Into<String>) -> String {
        let mut message = message.into();
        for secret in &self.secrets {
            if message.contains(secret.as_str()) {
                message = message.replace(secret.as_str(), MASK);
            }
        }
        message
    }
}

/// The password of `scheme://user:password@host/...`, still percent-encoded.
fn password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Redactor;

    #[test]
    fn url_and_password_are_masked() {
        let r = Redactor::for_url("postgres://app:s%40cret@db:5432/x");
        assert_eq!(
            r.clean("cannot reach postgres://app:s%40cret@db:5432/x"),
            "cannot reach ***"
        );
        assert_eq!(r.clean("bad password s@cret"), "bad password ***");
        assert_eq!(r.clean("bad password s%40cret"), "bad password ***");
    }
}
