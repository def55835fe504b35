//! Outbound destination patterns (`allowed_outbound_hosts`): which `scheme://host:port` a
//! component may call.
//!
//! A pattern is `SCHEME://HOST[:PORT]`:
//! - `SCHEME` is `http`, `https` or `*` (either); any other scheme (`mysql`, `redis`...) is
//!   accepted with an explicit port, for the TCP connections of `service` components, and never
//!   matches an HTTP request;
//! - `HOST` is a DNS name (`api.example.com`), a wildcard over subdomains (`*.example.com`
//!   matches `a.example.com` and `a.b.example.com`, not `example.com`), `*` (any host), an IPv4
//!   address, or an IPv6 address in brackets (`[::1]`);
//! - `PORT` is a number or `*`; without one, the scheme's default port (80, 443) is meant.
//!
//! Nothing after the authority is allowed: a path in a pattern would suggest a path restriction
//! that the policy does not enforce.

use std::fmt;
use std::net::IpAddr;

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundHost {
    pub scheme: SchemePattern,
    pub host: HostPattern,
    pub port: PortPattern,
    /// The pattern as written, for messages.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemePattern {
    Http,
    Https,
    Any,
    /// A non-HTTP scheme (kept in the pattern's text); always has an explicit port.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this DNS name (lower case).
    Name(String),
    /// Any name strictly below this suffix (lower case, without the leading `*.`).
    Subdomains(String),
    /// Exactly this address.
    Ip(IpAddr),
    /// Any host.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// The scheme's default port (80 for http, 443 for https).
    Default,
    Port(u16),
    Any,
}

impl OutboundHost {
    /// Parses one pattern; the error explains what is wrong in words a manifest author knows.
    pub fn parse(text: &str) -> Result<OutboundHost, String> {
        let trimmed = text.trim();
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| {
            format!("{trimmed:?} has no scheme; write it like \"https://api.example.com\"")
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => SchemePattern::Http,
            "https" => SchemePattern::Https,
            "*" => SchemePattern::Any,
            other if is_scheme(other) => SchemePattern::Other,
            other => {
                return Err(format!(
                    "unsupported scheme {other:?}; use \"http\", \"https\" or \"*\""
                ))
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "{trimmed:?}: only scheme://host[:port] is allowed (no path, query or user)"
            ));
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(port) => PortPattern::Port(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("invalid port {port:?}; use 1-65535 or \"*\""))?,
            ),
        };
        if scheme == SchemePattern::Any && port == PortPattern::Default {
            return Err(format!(
                "{trimmed:?}: with scheme \"*\" there is no default port; add \":PORT\" or \":*\""
            ));
        }
        if scheme == SchemePattern::Other && port == PortPattern::Default {
            return Err(format!(
                "{trimmed:?}: unsupported scheme without a port; use \"http\", \"https\" or \"*\", \
                 or add \":PORT\" for a service component's TCP connections"
            ));
        }
        Ok(OutboundHost {
            scheme,
            host: parse_host(host)?,
            port,
            text: trimmed.to_string(),
        })
    }

    /// Whether a request to `scheme://host:port` matches. `scheme` is `"http"` or `"https"`;
    /// `host` is a DNS name or an IP literal (IPv6 without brackets).
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            SchemePattern::Http => scheme.eq_ignore_ascii_case("http"),
            SchemePattern::Https => scheme.eq_ignore_ascii_case("https"),
            SchemePattern::Any => true,
            SchemePattern::Other => self
                .text
                .split_once("://")
                .is_some_and(|(written, _)| written.eq_ignore_ascii_case(scheme)),
        };
        scheme_ok && self.matches_socket(host, port)
    }

    /// Whether a TCP connection to `host:port` matches, whatever the scheme: a socket does not
    /// say which protocol it will speak. `http://x` still means port 80 only.
    pub fn matches_socket(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Port(p) => p == port,
            PortPattern::Default => match self.scheme {
                SchemePattern::Http => port == 80,
                SchemePattern::Https => port == 443,
                SchemePattern::Any | SchemePattern::Other => false,
            },
        };
        port_ok && self.host.matches(host)
    }

    /// Whether this pattern is for HTTP at all (`http`, `https` or `*`).
    pub fn is_http(&self) -> bool {
        self.scheme != SchemePattern::Other
    }

    /// Whether this pattern names its destination explicitly enough to allow a private,
    /// loopback or link-local address: an IP literal or `localhost`. Wildcards and ordinary
    /// names never do, so a DNS answer cannot steer a guest into the operator's network.
    pub fn names_private_destination(&self) -> bool {
        match &self.host {
            HostPattern::Ip(_) => true,
            HostPattern::Name(name) => name == "localhost",
            HostPattern::Subdomains(_) | HostPattern::Any => false,
        }
    }
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match self {
            HostPattern::Any => true,
            HostPattern::Name(name) => host.eq_ignore_ascii_case(name),
            HostPattern::Subdomains(suffix) => {
                // Compared as bytes: the host is guest-controlled and may end in a multi-byte
                // character, where slicing the str at the suffix's length would panic.
                let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host[host.len() - suffix.len() - 1] == b'.'
            }
            HostPattern::Ip(ip) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|addr| addr == *ip),
        }
    }
}

/// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{authority:?}: unclosed '[' in an IPv6 address"))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("{authority:?}: expected ':PORT' after ']'")),
            },
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(suffix) => (true, suffix),
        None => (false, host),
    };
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(format!(
            "invalid host {host:?}; use a DNS name, \"*.example.com\", \"*\" or an IP address"
        ));
    }
    let name = name.to_ascii_lowercase();
    Ok(if wildcard {
        HostPattern::Subdomains(name)
    } else {
        HostPattern::Name(name)
    })
}

impl fmt::Display for OutboundHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, scheme: &str, host: &str, port: u16) -> bool {
        OutboundHost::parse(pattern)
            .unwrap()
            .matches(scheme, host, port)
    }

    #[test]
    fn exact_host_with_default_port() {
        assert!(allows(
            "https://api.example.com",
            "https",
            "api.example.com",
            443
        ));
        assert!(allows(
            "https://API.example.com/",
            "https",
            "api.EXAMPLE.com",
            443
        ));
        assert!(!allows(
            "https://api.example.com",
            "http",
            "api.example.com",
            80
        ));
        assert!(!allows(
            "https://api.example.com",
            "https",
            "api.example.com",
            8443
        ));
        assert!(!allows("https://api.example.com", "https", "evil.com", 443));
        assert!(!allows(
            "https://api.example.com",
            "https",
            "api.example.com.evil.com",
            443
        ));
    }

    #[test]
    fn subdomain_wildcard_excludes_the_apex_and_lookalikes() {
        let p = "https://*.example.com";
        assert!(allows(p, "https", "a.example.com", 443));
        assert!(allows(p, "https", "a.b.example.com", 443));
        assert!(!allows(p, "https", "example.com", 443));
        assert!(!allows(p, "https", "badexample.com", 443));
    }

    #[test]
    fn port_and_scheme_wildcards() {
        assert!(allows("http://127.0.0.1:*", "http", "127.0.0.1", 31337));
        assert!(allows("*://svc.local:8080", "https", "svc.local", 8080));
        assert!(allows("*://svc.local:8080", "http", "svc.local", 8080));
        assert!(!allows("*://svc.local:8080", "http", "svc.local", 8081));
        assert!(allows("http://*:*", "http", "anything.example", 1));
    }

    #[test]
    fn ip_literals() {
        assert!(allows("http://[::1]:8080", "http", "::1", 8080));
        assert!(allows("http://[::1]:8080", "http", "[::1]", 8080));
        assert!(allows("http://10.0.0.5", "http", "10.0.0.5", 80));
        assert!(!allows("http://10.0.0.5", "http", "10.0.0.6", 80));
        assert!(OutboundHost::parse("http://10.0.0.5")
            .unwrap()
            .names_private_destination());
        assert!(OutboundHost::parse("http://localhost:3000")
            .unwrap()
            .names_private_destination());
        assert!(!OutboundHost::parse("http://*:*")
            .unwrap()
            .names_private_destination());
    }

    #[test]
    fn other_schemes_need_a_port_and_match_sockets_only() {
        let mysql = OutboundHost::parse("mysql://db.internal:3306").unwrap();
        assert_eq!(mysql.scheme, SchemePattern::Other);
        assert!(!mysql.is_http());
        assert!(mysql.matches_socket("db.internal", 3306));
        assert!(!mysql.matches_socket("db.internal", 3307));
        assert!(mysql.matches("mysql", "db.internal", 3306));
        assert!(!mysql.matches("http", "db.internal", 3306));
        let err = OutboundHost::parse("mysql://db.internal").unwrap_err();
        assert!(err.contains("without a port"), "{err}");
        assert!(OutboundHost::parse("my sql://x:1").is_err());
        assert!(OutboundHost::parse("http://x")
            .unwrap()
            .matches_socket("x", 80));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (pattern, needle) in [
            ("api.example.com", "no scheme"),
            ("ftp://x.com", "unsupported scheme"),
            ("https://x.com/path", "no path"),
            ("https://user@x.com", "no path, query or user"),
            ("https://x.com:0", "invalid port"),
            ("https://x.com:http", "invalid port"),
            ("*://x.com", "no default port"),
            ("https://", "host is empty"),
            ("https://a..b", "invalid host"),
            ("https://*x.com", "invalid host"),
            ("http://[::1", "unclosed"),
        ] {
            let err = OutboundHost::parse(pattern).unwrap_err();
            assert!(err.contains(needle), "{pattern}: {err}");
        }
    }

    // Found by the `units_and_hosts` fuzz target: a host whose suffix-length tail starts inside
    // a multi-byte character panicked instead of not matching.
    #[test]
    fn subdomain_wildcard_does_not_match_a_host_ending_in_non_ascii() {
        let pattern = OutboundHost::parse("https://*.exaemoc").unwrap();
        assert!(!pattern.matches("https", "w.exampl\u{fffd}e.bom", 443));
        assert!(!pattern.matches("https", "a.\u{e9}xaemoc", 443));
        let pattern = OutboundHost::parse("https://*.example.com").unwrap();
        assert!(!pattern.matches("https", "\u{e9}\u{e9}xample.com", 443));
    }
}
