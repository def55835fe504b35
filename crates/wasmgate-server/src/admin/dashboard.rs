//! The operator's dashboard at the admin listener's `/`: one page, its script and its
//! stylesheet, compiled into the binary so it works offline and always matches the API it reads.
//!
//! The page renders route patterns, errors and backtraces that come from manifests and guests,
//! so the headers lock it down: scripts and styles only from these paths (no inline script for
//! an injected string to become), no framing, no content sniffing. The script reads the admin
//! API (`/api/routes`, `/api/invocations`, `/api/invocations/{id}`) and nothing else.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmgate_runtime::ResponseBody;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");

/// `img-src data:` is the empty favicon (without it the browser asks for `/favicon.ico`).
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The dashboard file at `path`, or `None` if `path` is not one of them.
pub(super) fn asset(path: &str) -> Option<http::Response<ResponseBody>> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/dashboard.js" => ("text/javascript; charset=utf-8", DASHBOARD_JS),
        "/dashboard.css" => ("text/css; charset=utf-8", DASHBOARD_CSS),
        _ => return None,
    };
    let mut response = http::Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    let headers = response.headers_mut();
    let mut set = |name, value| {
        headers.insert(name, http::HeaderValue::from_static(value));
    };
    set(http::header::CONTENT_TYPE, content_type);
    set(
        http::header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(http::header::X_FRAME_OPTIONS, "DENY");
    set(http::header::REFERRER_POLICY, "no-referrer");
    // Revalidate every time: after an upgrade the page and its script must not come from two
    // different binaries. They are a few kilobytes on a loopback listener.
    set(http::header::CACHE_CONTROL, "no-cache");
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_script_and_style_from_their_own_paths() {
        assert!(INDEX_HTML.contains("<script src=\"dashboard.js\""));
        assert!(INDEX_HTML.contains("href=\"dashboard.css\""));
        // CSP forbids inline script and style: the page must not carry any.
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains("style=\""));
        assert!(!INDEX_HTML.contains("onclick"));
    }

    #[test]
    fn the_script_never_parses_markup() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!DASHBOARD_JS.contains(sink), "dashboard.js uses {sink}");
        }
    }

    #[test]
    fn assets_carry_security_headers() {
        let response = asset("/dashboard.js").unwrap();
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        assert!(asset("/nope").is_none());
    }
}
