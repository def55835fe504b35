//! The two text formats Prometheus scrapes. prometheus-client writes OpenMetrics 1.0; older
//! scrapers, `promtool check metrics` and many tools expect the classic Prometheus text format
//! (0.0.4). The differences that matter for our metrics are few, so the classic text is
//! derived from the OpenMetrics text:
//! - a counter family is named with its `_total` suffix in `# HELP` / `# TYPE`;
//! - `# UNIT` lines, `_created` samples and the `# EOF` terminator do not exist;
//! - `info` and `stateset` families are written as gauges.

/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text format.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` header asks for OpenMetrics (Prometheus sends it first when
/// it supports it); anything else gets the classic format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
    })
}

/// Converts OpenMetrics text (as prometheus-client encodes it) to the classic text format.
pub fn openmetrics_to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counters: Vec<&str> = Vec::new();
    // Families are declared before their samples; collect counter names first.
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, "counter")) = rest.split_once(' ') {
                counters.push(name);
            }
        }
    }
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" | "stateset" => (name.to_string(), "gauge"),
                "gaugehistogram" => (name.to_string(), "histogram"),
                "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(&name) {
                out.push_str(&format!("# HELP {name}_total {help}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
        if let Some(family) = sample_name.strip_suffix("_created") {
            if counters.contains(&family) || counters.contains(&family.trim_end_matches("_total")) {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# HELP wasm_invocations Component invocations.\n\
# TYPE wasm_invocations counter\n\
wasm_invocations_total{component=\"a\",outcome=\"ok\"} 3\n\
wasm_invocations_created{component=\"a\",outcome=\"ok\"} 1700000000.0\n\
# HELP req_seconds Duration.\n\
# TYPE req_seconds histogram\n\
# UNIT req_seconds seconds\n\
req_seconds_sum 0.5\n\
req_seconds_count 2\n\
req_seconds_bucket{le=\"+Inf\"} 2\n\
# HELP up Up.\n\
# TYPE up gauge\n\
up 1\n\
# EOF\n";

    #[test]
    fn counters_get_their_total_suffix_and_openmetrics_only_lines_go() {
        let classic = openmetrics_to_classic(SAMPLE);
        assert_eq!(
            classic,
            "# HELP wasm_invocations_total Component invocations.\n\
# TYPE wasm_invocations_total counter\n\
wasm_invocations_total{component=\"a\",outcome=\"ok\"} 3\n\
# HELP req_seconds Duration.\n\
# TYPE req_seconds histogram\n\
req_seconds_sum 0.5\n\
req_seconds_count 2\n\
req_seconds_bucket{le=\"+Inf\"} 2\n\
# HELP up Up.\n\
# TYPE up gauge\n\
up 1\n"
        );
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text; q=0"
        )));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
    }
}
