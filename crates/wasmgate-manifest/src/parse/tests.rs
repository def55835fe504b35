use super::*;
use std::fs;

/// A temporary app directory with an `api.wasm` and a `static/` directory, so paths resolve.
struct AppDir {
    dir: tempfile::TempDir,
}

impl AppDir {
    fn new() -> AppDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("api.wasm"), b"\0asm").unwrap();
        fs::create_dir(dir.path().join("static")).unwrap();
        AppDir { dir }
    }

    fn parse(&self, text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, &self.dir.path().join("wasmgate.toml"))
    }
}

const GOOD: &str = r#"
[app]
name = "hello"

[[route]]
path = "/api/..."
component = "api"

[[route]]
path = "/health"
component = "api"
host = "Example.COM"

[component.api]
source = "api.wasm"
environment = { GREETING = "hi" }
files = [{ source = "static", destination = "/static" }]

[component.api.limits]
memory = "64MiB"
timeout = "10s"
max_concurrency = 7
"#;

#[test]
fn a_full_manifest_parses() {
    let app = AppDir::new();
    let manifest = app.parse(GOOD).unwrap();
    assert_eq!(manifest.app.name, "hello");
    assert_eq!(manifest.routes.len(), 2);
    assert_eq!(manifest.routes[0].path, RoutePath::Prefix("/api".into()));
    assert_eq!(manifest.routes[0].line, 6);
    assert_eq!(manifest.routes[1].path, RoutePath::Exact("/health".into()));
    assert_eq!(manifest.routes[1].host.as_deref(), Some("example.com"));
    let api = &manifest.components["api"];
    assert_eq!(api.source, app.dir.path().join("api.wasm"));
    assert_eq!(api.environment["GREETING"], "hi");
    assert_eq!(api.files[0].destination, "/static");
    assert!(!api.files[0].writable);
    assert_eq!(api.limits.memory, 64 << 20);
    assert_eq!(api.limits.timeout, std::time::Duration::from_secs(10));
    assert_eq!(api.limits.max_concurrency, 7);
}

#[test]
fn limits_default_when_omitted() {
    let app = AppDir::new();
    let text = "[app]\nname = \"a\"\n[component.api]\nsource = \"api.wasm\"\n";
    let manifest = app.parse(text).unwrap();
    assert_eq!(manifest.components["api"].limits, Limits::default());
    assert_eq!(manifest.components["api"].executor, Executor::Http);
}

fn error_of(text: &str) -> ManifestError {
    AppDir::new().parse(text).unwrap_err()
}

#[test]
fn unknown_key_names_line_column_and_table() {
    let err = error_of("[app]\nname = \"a\"\n[component.api]\nsource = \"api.wasm\"\nsorce = 1\n");
    let text = err.to_string();
    assert_eq!(err.line(), Some(5), "{text}");
    assert!(text.contains("wasmgate.toml:5:1:"), "{text}");
    assert!(text.contains("component.api"), "{text}");
    assert!(text.contains("unknown field `sorce`"), "{text}");
}

#[test]
fn bad_duration_names_the_field() {
    let text = GOOD.replace("\"10s\"", "\"10 parsecs\"");
    let err = error_of(&text);
    assert_eq!(err.field(), Some("component.api.limits.timeout"));
    assert_eq!(err.line(), Some(21));
    assert!(err.to_string().contains("unknown unit"), "{err}");
}

#[test]
fn bad_size_names_the_field() {
    let err = error_of(&GOOD.replace("\"64MiB\"", "\"lots\""));
    assert_eq!(err.field(), Some("component.api.limits.memory"));
    assert_eq!(err.line(), Some(20));
}

#[test]
fn missing_source_file_is_reported_where_it_is_written() {
    let err = error_of(&GOOD.replace("\"api.wasm\"", "\"missing.wasm\""));
    assert_eq!(err.field(), Some("component.api.source"));
    assert_eq!(err.line(), Some(15));
    assert!(err.to_string().contains("missing.wasm"), "{err}");
}

#[test]
fn missing_files_directory_is_reported() {
    let err = error_of(&GOOD.replace("source = \"static\"", "source = \"nope\""));
    assert_eq!(err.field(), Some("component.api.files[0].source"));
}

#[test]
fn identical_routes_are_an_error_naming_both_lines() {
    let text = GOOD
        .replace("path = \"/health\"", "path = \"/api/...\"")
        .replace("host = \"Example.COM\"\n", "");
    let err = error_of(&text);
    assert_eq!(err.field(), Some("route[1].path"));
    assert!(err.to_string().contains("first at line 6"), "{err}");
}

#[test]
fn same_path_on_different_hosts_is_allowed() {
    let text = GOOD.replace("path = \"/health\"", "path = \"/api/...\"");
    assert!(AppDir::new().parse(&text).is_ok());
}

// Found by the `router` fuzz target: a route host written with a trailing dot (or only dots)
// was accepted but never matched, since the router drops the dot from the request's host.
#[test]
fn route_hosts_are_matched_without_their_trailing_dot() {
    let manifest = AppDir::new()
        .parse(&GOOD.replace("\"Example.COM\"", "\"Example.COM.\""))
        .unwrap();
    assert_eq!(manifest.routes[1].host.as_deref(), Some("example.com"));
    for bad in [".", "..."] {
        let err = error_of(&GOOD.replace("\"Example.COM\"", &format!("{bad:?}")));
        assert_eq!(err.field(), Some("route[1].host"), "{bad}: {err}");
    }
}

#[test]
fn route_to_an_unknown_component_lists_the_known_ones() {
    let err = error_of(&GOOD.replace("component = \"api\"\nhost", "component = \"web\"\nhost"));
    assert_eq!(err.field(), Some("route[1].component"));
    assert!(err.to_string().contains("defined: api"), "{err}");
}

#[test]
fn malformed_route_paths_are_rejected() {
    for bad in ["api", "/a/.../b", "/a//b", "/a?x=1"] {
        let err = error_of(&GOOD.replace("\"/health\"", &format!("{bad:?}")));
        assert_eq!(err.field(), Some("route[1].path"), "{bad}: {err}");
    }
}

#[test]
fn root_wildcard_is_an_empty_prefix() {
    let manifest = AppDir::new()
        .parse(&GOOD.replace("\"/health\"", "\"/...\""))
        .unwrap();
    assert_eq!(manifest.routes[1].path, RoutePath::Prefix(String::new()));
    assert_eq!(manifest.routes[1].path.to_string(), "/...");
}

#[test]
fn wagi_components_take_entrypoint_argv_and_max_output() {
    let text = GOOD
        .replace("source = \"api.wasm\"", "source = \"api.wasm\"\nexecutor = \"wagi\"\nentrypoint = \"serve\"\nargv = \"${SCRIPT_NAME} extra\"")
        .replace("max_concurrency = 7", "max_concurrency = 7\nmax_output = \"1MiB\"")
        .replace("host = \"Example.COM\"", "host = \"Example.COM\"\npass_authorization = true");
    let manifest = AppDir::new().parse(&text).unwrap();
    let api = &manifest.components["api"];
    assert_eq!(api.executor, Executor::Wagi);
    let wagi = api.wagi.as_ref().unwrap();
    assert_eq!(wagi.entrypoint, "serve");
    assert_eq!(wagi.argv, "${SCRIPT_NAME} extra");
    assert_eq!(api.limits.max_output, 1 << 20);
    assert!(manifest.routes[1].pass_authorization);
    assert!(!manifest.routes[0].pass_authorization);
}

#[test]
fn max_host_calls_is_optional_positive_and_not_for_services() {
    let manifest = AppDir::new().parse(GOOD).unwrap();
    assert_eq!(manifest.components["api"].limits.max_host_calls, None);
    let text = GOOD.replace(
        "max_concurrency = 7",
        "max_concurrency = 7\nmax_host_calls = 500",
    );
    let manifest = AppDir::new().parse(&text).unwrap();
    assert_eq!(manifest.components["api"].limits.max_host_calls, Some(500));
    let err = error_of(&GOOD.replace(
        "max_concurrency = 7",
        "max_concurrency = 7\nmax_host_calls = 0",
    ));
    assert_eq!(
        err.field(),
        Some("component.api.limits.max_host_calls"),
        "{err}"
    );
}

#[test]
fn fuel_is_optional_positive_and_not_for_services() {
    let manifest = AppDir::new().parse(GOOD).unwrap();
    assert_eq!(manifest.components["api"].limits.fuel, None);
    let text = GOOD.replace(
        "max_concurrency = 7",
        "max_concurrency = 7\nfuel = 5_000_000",
    );
    let manifest = AppDir::new().parse(&text).unwrap();
    assert_eq!(manifest.components["api"].limits.fuel, Some(5_000_000));
    let err = error_of(&GOOD.replace("max_concurrency = 7", "max_concurrency = 7\nfuel = 0"));
    assert_eq!(err.field(), Some("component.api.limits.fuel"), "{err}");
    let err = error_of(&GOOD.replace(
        "max_concurrency = 7",
        "max_concurrency = 7\nfuel = \"lots\"",
    ));
    assert_eq!(err.field(), Some("component.api.limits.fuel"), "{err}");
}

#[test]
fn wagi_defaults() {
    let text = "[app]\nname = \"a\"\n[component.api]\nsource = \"api.wasm\"\nexecutor = \"wagi\"\n";
    let manifest = AppDir::new().parse(text).unwrap();
    assert_eq!(
        manifest.components["api"].wagi,
        Some(WagiOptions::default())
    );
    assert_eq!(manifest.components["api"].limits.max_output, 16 << 20);
}

#[test]
fn wagi_keys_on_an_http_component_are_rejected() {
    let err = error_of(&GOOD.replace(
        "source = \"api.wasm\"",
        "source = \"api.wasm\"\nentrypoint = \"main\"",
    ));
    assert_eq!(err.field(), Some("component.api.entrypoint"));
    let err = error_of(&GOOD.replace(
        "max_concurrency = 7",
        "max_concurrency = 7\nmax_output = \"1MiB\"",
    ));
    assert_eq!(err.field(), Some("component.api.limits.max_output"));
}

#[test]
fn unknown_executor_is_rejected() {
    let err = error_of(&GOOD.replace(
        "source = \"api.wasm\"",
        "source = \"api.wasm\"\nexecutor = \"cgi\"",
    ));
    assert_eq!(err.field(), Some("component.api.executor"));
    assert!(err.to_string().contains("cgi"), "{err}");
}

#[test]
fn toml_syntax_errors_carry_a_position() {
    let err = error_of("[app]\nname = \"a\n");
    assert!(err.line().is_some(), "{err}");
}

#[test]
fn missing_app_table_is_reported() {
    let err = error_of("[component.api]\nsource = \"api.wasm\"\n");
    assert!(err.to_string().contains("missing field `app`"), "{err}");
}

#[test]
fn out_of_range_limits_are_rejected() {
    let err = error_of(&GOOD.replace("max_concurrency = 7", "max_concurrency = 0"));
    assert_eq!(err.field(), Some("component.api.limits.max_concurrency"));
    let err = error_of(&GOOD.replace("\"64MiB\"", "\"8GiB\""));
    assert_eq!(err.field(), Some("component.api.limits.memory"));
    let err = error_of(&GOOD.replace("\"10s\"", "\"0s\""));
    assert_eq!(err.field(), Some("component.api.limits.timeout"));
}

#[test]
fn load_reports_an_unreadable_file() {
    let err = Manifest::load("/nonexistent/wasmgate.toml").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/wasmgate.toml"),
        "{err}"
    );
}

const GRANTS: &str = r#"
[app]
name = "grants"

[variables]
greeting = { default = "hello" }
token = { secret = true }

[[route]]
path = "/..."
component = "api"

[component.api]
source = "api.wasm"
allowed_outbound_hosts = ["https://*.example.com", "http://127.0.0.1:*"]
key_value_stores = ["default", "cache"]
sql_databases = ["default"]

[component.api.variables]
message = "{{ greeting }}, world"
auth = "Bearer {{token}}"

[component.api.limits]
max_outbound_concurrency = 4
"#;

#[test]
fn grants_and_variables_parse() {
    let app = AppDir::new();
    let manifest = app.parse(GRANTS).unwrap();
    assert!(manifest.variables["token"].secret);
    assert_eq!(
        manifest.variables["greeting"].default.as_deref(),
        Some("hello")
    );
    let api = &manifest.components["api"];
    assert_eq!(api.allowed_outbound_hosts.len(), 2);
    assert!(api.allowed_outbound_hosts[0].matches("https", "a.example.com", 443));
    assert_eq!(api.key_value_stores, ["default", "cache"]);
    assert_eq!(api.sql_databases, ["default"]);
    assert_eq!(api.max_outbound_concurrency, Some(4));
    let message = api.variables["message"]
        .render(|name| (name == "greeting").then(|| "hi".to_string()))
        .unwrap();
    assert_eq!(message, "hi, world");
}

#[test]
fn bad_grants_name_the_field_and_line() {
    let app = AppDir::new();
    for (from, to, field, line) in [
        (
            "\"https://*.example.com\"",
            "\"example.com\"",
            "component.api.allowed_outbound_hosts[0]",
            15,
        ),
        (
            "[\"default\", \"cache\"]",
            "[\"default\", \"default\"]",
            "component.api.key_value_stores[1]",
            16,
        ),
        (
            "[\"default\"]\n",
            "[\"no spaces\"]\n",
            "component.api.sql_databases[0]",
            17,
        ),
        (
            "{{ greeting }}, world",
            "{{ nope }}",
            "component.api.variables.message",
            20,
        ),
        (
            "token = { secret = true }",
            "token = { secret = true, default = \"x\" }",
            "variables.token.default",
            7,
        ),
        (
            "greeting = { default",
            "Greeting = { default",
            "variables.Greeting",
            6,
        ),
        (
            "max_outbound_concurrency = 4",
            "max_outbound_concurrency = 0",
            "component.api.limits.max_outbound_concurrency",
            24,
        ),
    ] {
        let text = GRANTS.replacen(from, to, 1);
        assert_ne!(text, GRANTS, "{from} not found");
        let err = app.parse(&text).unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
        assert_eq!(err.line(), Some(line), "{err}");
    }
}
