//! Route selection: the most specific matching route wins, whatever the order in the manifest.
//!
//! Specificity, from most to least: an exact path beats a wildcard; a longer wildcard prefix
//! beats a shorter one; for the same path, a route bound to the request's host beats one for
//! any host. The manifest forbids two identical routes, so the order is total.

use arc_swap::ArcSwap;
use std::sync::Arc;
use wasmgate_manifest::RoutePath;
use wasmgate_runtime::{Executor, RouteInfo};

/// A route ready to match, carrying whatever the server dispatches to (`T`).
#[derive(Debug)]
pub struct RouteTarget<T> {
    pub host: Option<String>,
    pub path: RoutePath,
    /// What executors and logs see of the route (its pattern as written, options).
    pub info: Arc<RouteInfo>,
    pub component: String,
    pub target: T,
}

#[derive(Debug)]
pub struct Router<T> {
    /// Sorted most specific first; the first match is the answer.
    routes: Vec<RouteTarget<T>>,
}

impl<T> Router<T> {
    pub fn new(mut routes: Vec<RouteTarget<T>>) -> Router<T> {
        routes.sort_by_key(|route| std::cmp::Reverse(specificity(route)));
        Router { routes }
    }

    /// The route for a request to `host` (as sent; port and case do not matter) and `path`.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&RouteTarget<T>> {
        let host = host.map(host_name);
        self.routes.iter().find(|route| {
            let host_matches = match (&route.host, host) {
                (None, _) => true,
                (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
                (Some(_), None) => false,
            };
            host_matches && path_matches(&route.path, path)
        })
    }

    /// Routes in match order, most specific first.
    pub fn routes(&self) -> &[RouteTarget<T>] {
        &self.routes
    }
}

/// The routing table being served, replaceable while serving (hot reload).
///
/// Each request takes the table current when it arrives and keeps the executor it routed to
/// until its response is done, so a replaced table's requests finish on the old version while
/// new ones see the new table at once. Readers never block on a reload.
#[derive(Clone)]
pub struct LiveRouter(Arc<ArcSwap<Router<Arc<dyn Executor>>>>);

impl LiveRouter {
    pub fn new(router: Router<Arc<dyn Executor>>) -> LiveRouter {
        LiveRouter(Arc::new(ArcSwap::from_pointee(router)))
    }

    /// Serves `router` from now on; returns the table it replaced.
    pub fn replace(&self, router: Router<Arc<dyn Executor>>) -> Arc<Router<Arc<dyn Executor>>> {
        self.0.swap(Arc::new(router))
    }

    pub fn current(&self) -> Arc<Router<Arc<dyn Executor>>> {
        self.0.load_full()
    }

    /// The current table without touching its reference count (the per-request path).
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Router<Arc<dyn Executor>>>> {
        self.0.load()
    }
}

fn specificity<T>(route: &RouteTarget<T>) -> (bool, usize, bool) {
    match &route.path {
        RoutePath::Exact(path) => (true, path.len(), route.host.is_some()),
        RoutePath::Prefix(prefix) => (false, prefix.len(), route.host.is_some()),
    }
}

fn path_matches(pattern: &RoutePath, path: &str) -> bool {
    match pattern {
        RoutePath::Exact(exact) => path == exact,
        RoutePath::Prefix(prefix) => match path.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        },
    }
}

/// The name in a `Host`: `Example.COM:8080` is `Example.COM`, `example.com.` is `example.com`
/// (compared without case; no copy on the request path).
fn host_name(host: &str) -> &str {
    let without_port = if host.starts_with('[') {
        // An IPv6 literal: keep the brackets' content, drop any port.
        host.split(']')
            .next()
            .unwrap_or(host)
            .trim_start_matches('[')
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    without_port.trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: Option<&str>, path: &str, target: &'static str) -> RouteTarget<&'static str> {
        let parsed = match path.strip_suffix("/...") {
            Some(prefix) => RoutePath::Prefix(prefix.to_string()),
            None => RoutePath::Exact(path.to_string()),
        };
        RouteTarget {
            host: host.map(str::to_string),
            info: Arc::new(RouteInfo {
                pattern: path.into(),
                path: parsed.clone(),
                pass_authorization: false,
            }),
            path: parsed,
            component: target.to_string(),
            target,
        }
    }

    fn pick(router: &Router<&'static str>, host: Option<&str>, path: &str) -> Option<&'static str> {
        router.route(host, path).map(|r| r.target)
    }

    #[test]
    fn wildcard_matches_itself_with_and_without_slash_and_below() {
        let router = Router::new(vec![route(None, "/api/...", "api")]);
        for path in ["/api", "/api/", "/api/users", "/api/users/7"] {
            assert_eq!(pick(&router, None, path), Some("api"), "{path}");
        }
        for path in ["/apix", "/ap", "/", "/other/api"] {
            assert_eq!(pick(&router, None, path), None, "{path}");
        }
    }

    #[test]
    fn exact_beats_wildcard_regardless_of_order() {
        let router = Router::new(vec![
            route(None, "/api/...", "wild"),
            route(None, "/api/health", "exact"),
        ]);
        assert_eq!(pick(&router, None, "/api/health"), Some("exact"));
        assert_eq!(pick(&router, None, "/api/healthz"), Some("wild"));
    }

    #[test]
    fn longer_prefix_beats_shorter_regardless_of_order() {
        let router = Router::new(vec![
            route(None, "/...", "root"),
            route(None, "/api/...", "api"),
            route(None, "/api/v2/...", "v2"),
        ]);
        assert_eq!(pick(&router, None, "/api/v2/x"), Some("v2"));
        assert_eq!(pick(&router, None, "/api/v1/x"), Some("api"));
        assert_eq!(pick(&router, None, "/index.html"), Some("root"));
        assert_eq!(pick(&router, None, "/"), Some("root"));
    }

    #[test]
    fn exact_route_does_not_match_a_trailing_slash() {
        let router = Router::new(vec![route(None, "/hello", "hello")]);
        assert_eq!(pick(&router, None, "/hello"), Some("hello"));
        assert_eq!(pick(&router, None, "/hello/"), None);
    }

    #[test]
    fn host_routes_match_only_their_host_ignoring_port_and_case() {
        let router = Router::new(vec![
            route(Some("example.com"), "/...", "example"),
            route(None, "/...", "any"),
        ]);
        assert_eq!(
            pick(&router, Some("Example.COM:8080"), "/x"),
            Some("example")
        );
        assert_eq!(pick(&router, Some("example.com."), "/x"), Some("example"));
        assert_eq!(pick(&router, Some("other.org"), "/x"), Some("any"));
        assert_eq!(pick(&router, None, "/x"), Some("any"));
    }

    #[test]
    fn path_specificity_outranks_host() {
        let router = Router::new(vec![
            route(Some("example.com"), "/...", "host-wild"),
            route(None, "/api/...", "api"),
        ]);
        assert_eq!(pick(&router, Some("example.com"), "/api/x"), Some("api"));
        assert_eq!(pick(&router, Some("example.com"), "/x"), Some("host-wild"));
    }

    #[test]
    fn ipv6_hosts_are_normalized() {
        assert_eq!(host_name("[::1]:3000"), "::1");
        assert_eq!(host_name("localhost:3000"), "localhost");
        assert_eq!(host_name("Example.COM.:8080"), "Example.COM");
    }
}
