//! Route selection against a naive reference of the documented rules.
//!
//! Route tables are built as a manifest delivers them (paths that pass its checks, hosts lower
//! case, no two identical routes); requests carry hosts as clients send them (any case, a
//! port, a trailing dot). The reference keeps every matching route, then applies the rules in
//! words: an exact path beats a wildcard, a longer wildcard prefix beats a shorter one, and for
//! the same path a host-bound route beats an any-host one. Both must pick the same route.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::sync::Arc;
use wasmgate_manifest::RoutePath;
use wasmgate_runtime::RouteInfo;
use wasmgate_server::{RouteTarget, Router};

/// Words drawn from a small set so that routes and requests share prefixes and hosts often.
const WORDS: &[&str] = &[
    "api", "v1", "v2", "a", "ab", "static", "x.y", "-", "..", "é", "",
];
const HOSTS: &[&str] = &[
    "example.com",
    "api.example.com",
    "other.org",
    "a",
    "localhost",
];

#[derive(Arbitrary, Debug)]
enum Word {
    Known(u8),
    Raw(String),
}

impl Word {
    fn text(&self) -> &str {
        match self {
            Word::Known(i) => WORDS[*i as usize % WORDS.len()],
            Word::Raw(text) => text,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum HostName {
    Known(u8),
    Raw(String),
}

impl HostName {
    fn text(&self) -> &str {
        match self {
            HostName::Known(i) => HOSTS[*i as usize % HOSTS.len()],
            HostName::Raw(text) => text,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct RawRoute {
    host: Option<HostName>,
    segments: Vec<Word>,
    wildcard: bool,
}

#[derive(Arbitrary, Debug)]
struct RawRequest {
    host: Option<RequestHost>,
    segments: Vec<Word>,
    trailing_slash: bool,
}

#[derive(Arbitrary, Debug)]
struct RequestHost {
    name: HostName,
    upper_case: bool,
    trailing_dot: bool,
    port: Option<u16>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    routes: Vec<RawRoute>,
    requests: Vec<RawRequest>,
}

/// A route as the reference sees it.
#[derive(Debug)]
struct Spec {
    /// The DNS name it is bound to.
    host: Option<String>,
    path: RoutePath,
}

/// The host as the manifest accepts it (`route_host`): a DNS name, kept in lower case and
/// without a trailing dot.
fn manifest_host(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.');
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then(|| name.to_ascii_lowercase())
}

/// The path as the manifest accepts it (`route_path`), or `None` for one it rejects.
fn manifest_path(route: &RawRoute) -> Option<RoutePath> {
    let joined: String = route
        .segments
        .iter()
        .map(|word| format!("/{}", word.text()))
        .collect();
    if joined.contains(['?', '#']) || joined.contains("...") || joined.contains("//") {
        return None;
    }
    Some(if route.wildcard {
        RoutePath::Prefix(joined)
    } else if joined.is_empty() {
        RoutePath::Exact("/".to_string())
    } else {
        RoutePath::Exact(joined)
    })
}

fn pattern(path: &RoutePath) -> String {
    path.to_string()
}

fn reference_matches(spec: &Spec, host: Option<&str>, path: &str) -> bool {
    let host_ok = match (&spec.host, host) {
        (None, _) => true,
        (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
        (Some(_), None) => false,
    };
    let path_ok = match &spec.path {
        RoutePath::Exact(exact) => path == exact,
        // `/api/...` covers `/api` itself and everything under `/api/`; `/...` covers all.
        RoutePath::Prefix(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")),
    };
    host_ok && path_ok
}

/// Keeps the routes that match, then narrows them rule by rule.
fn reference(specs: &[Spec], host: Option<&str>, path: &str) -> Option<usize> {
    let mut left: Vec<usize> = (0..specs.len())
        .filter(|&i| reference_matches(&specs[i], host, path))
        .collect();
    // Rule 1: an exact path beats any wildcard.
    if left
        .iter()
        .any(|&i| matches!(specs[i].path, RoutePath::Exact(_)))
    {
        left.retain(|&i| matches!(specs[i].path, RoutePath::Exact(_)));
    }
    // Rule 2: among wildcards, the longest prefix (exact survivors all equal `path`).
    let longest = left
        .iter()
        .map(|&i| match &specs[i].path {
            RoutePath::Exact(p) | RoutePath::Prefix(p) => p.len(),
        })
        .max();
    left.retain(|&i| match &specs[i].path {
        RoutePath::Exact(p) | RoutePath::Prefix(p) => Some(p.len()) == longest,
    });
    // Rule 3: for the same path, the route bound to the host.
    if left.iter().any(|&i| specs[i].host.is_some()) {
        left.retain(|&i| specs[i].host.is_some());
    }
    assert!(
        left.len() <= 1,
        "the rules leave a tie: {left:?} of {specs:?}"
    );
    left.first().copied()
}

fuzz_target!(|input: Input| {
    let mut specs = Vec::new();
    let mut targets = Vec::new();
    let mut seen = HashSet::new();
    for raw in &input.routes {
        let Some(path) = manifest_path(raw) else {
            continue;
        };
        let host = match &raw.host {
            Some(name) => match manifest_host(name.text()) {
                Some(host) => Some(host),
                None => continue,
            },
            None => None,
        };
        if !seen.insert((host.clone(), path.clone())) {
            continue;
        }
        let index = specs.len();
        targets.push(RouteTarget {
            host: host.clone(),
            info: Arc::new(RouteInfo {
                pattern: pattern(&path).into(),
                path: path.clone(),
                pass_authorization: false,
            }),
            path: path.clone(),
            component: format!("c{index}"),
            target: index,
        });
        specs.push(Spec { host, path });
    }
    let router = Router::new(targets);
    for request in &input.requests {
        let mut path: String = request
            .segments
            .iter()
            .map(|word| format!("/{}", word.text()))
            .collect();
        if path.is_empty() || request.trailing_slash {
            path.push('/');
        }
        // Hosts the way a client sends them; the reference gets the name they stand for.
        let (sent, name) = match &request.host {
            Some(h) => {
                let Some(name) = manifest_host(h.name.text()) else {
                    continue;
                };
                let mut sent = if h.upper_case {
                    name.to_ascii_uppercase()
                } else {
                    name.clone()
                };
                if h.trailing_dot {
                    sent.push('.');
                }
                if let Some(port) = h.port {
                    sent.push_str(&format!(":{port}"));
                }
                (Some(sent), Some(name))
            }
            None => (None, None),
        };
        let got = router
            .route(sent.as_deref(), &path)
            .map(|route| route.target);
        let want = reference(&specs, name.as_deref(), &path);
        assert_eq!(
            got,
            want,
            "request host {sent:?} path {path:?}: router picked {:?}, reference {:?}",
            got.map(|i| &specs[i]),
            want.map(|i| &specs[i]),
        );
    }
});
