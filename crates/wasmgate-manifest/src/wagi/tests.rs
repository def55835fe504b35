use super::*;
use std::fs;
use std::time::Duration;

/// A temporary directory `my shop/` laid out like a WAGI app: `hello.wat`, `bin/hello.wasm`,
/// `bin/file server.wasm` and the volume directories `public/` and `data/`.
struct WagiDir {
    _root: tempfile::TempDir,
    dir: PathBuf,
}

impl WagiDir {
    fn new() -> WagiDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("my shop");
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("hello.wat"), "(module)").unwrap();
        fs::write(dir.join("bin/hello.wasm"), b"\0asm").unwrap();
        fs::write(dir.join("bin/file server.wasm"), b"\0asm").unwrap();
        fs::create_dir(dir.join("public")).unwrap();
        fs::create_dir(dir.join("data")).unwrap();
        WagiDir { _root: root, dir }
    }

    /// Writes `text` to `name` in the app directory and loads it with [`Manifest::load`].
    fn load(&self, name: &str, text: &str) -> Result<Manifest, ManifestError> {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap();
        Manifest::load(&path)
    }

    fn error(&self, text: &str) -> ManifestError {
        self.load("modules.toml", text).unwrap_err()
    }

    /// `GOOD`, with its absolute `file://` URL pointing into this directory.
    fn good(&self) -> String {
        let abs = self.dir.join("bin/hello.wasm").display().to_string();
        GOOD.replace(
            "ABSOLUTE_URL",
            &format!("file://{}", abs.replace(' ', "%20")),
        )
    }
}

const GOOD: &str = r#"# A WAGI app, as WAGI's documentation writes them.
default_host = "localhost:3000"

[[module]]
# WebAssembly text is compiled at load time.
route = "/"
module = "hello.wat"

[[module]]
route = "/hello/..."
module = "bin/hello.wasm"
entrypoint = "hello"
argv = "ruby index.rb ${SCRIPT_NAME} ${ARGS}"
environment.TEST_NAME = "test value"

[[module]]
route = "/static/..."
module = "file:bin/file%20server.wasm"
volumes = { "/assets" = "public", "/data" = "data" }
environment = { LOG = "debug", GREETING = "hi there" }

[[module]]
route = "/goodbye"
module = "ABSOLUTE_URL"
entrypoint = "goodbye"
allowed_hosts = ["https://api.example.com", "http://localhost:8080"]
http_max_concurrency = 4
"#;

#[test]
fn a_realistic_modules_toml_parses() {
    let app = WagiDir::new();
    let manifest = app.load("modules.toml", &app.good()).unwrap();
    assert_eq!(manifest.path, app.dir.join("modules.toml"));
    assert_eq!(manifest.app.name, "my-shop");
    assert!(manifest.app.wagi_compat);

    let routes: Vec<(String, &str, usize)> = manifest
        .routes
        .iter()
        .map(|r| (r.path.to_string(), r.component.as_str(), r.line))
        .collect();
    assert_eq!(
        routes,
        [
            ("/".to_string(), "hello", 6),
            ("/hello/...".to_string(), "hello-2", 10),
            ("/static/...".to_string(), "file-server", 17),
            ("/goodbye".to_string(), "hello-3", 23),
        ]
    );
    assert_eq!(manifest.routes[1].path, RoutePath::Prefix("/hello".into()));
    assert!(manifest
        .routes
        .iter()
        .all(|r| r.host.is_none() && !r.pass_authorization));

    let names: Vec<&str> = manifest.components.keys().map(String::as_str).collect();
    assert_eq!(names, ["file-server", "hello", "hello-2", "hello-3"]);
    for component in manifest.components.values() {
        assert_eq!(component.executor, Executor::Wagi);
        assert!(component.source.is_absolute(), "{:?}", component.source);
    }

    let wat = &manifest.components["hello"];
    assert_eq!(wat.source, app.dir.join("hello.wat"));
    assert_eq!(wat.wagi, Some(WagiOptions::default()));
    assert_eq!(wat.limits, Limits::default());
    assert!(wat.environment.is_empty() && wat.files.is_empty());
    assert!(wat.allowed_outbound_hosts.is_empty());

    let hello = &manifest.components["hello-2"];
    assert_eq!(hello.source, app.dir.join("bin/hello.wasm"));
    let options = hello.wagi.as_ref().unwrap();
    assert_eq!(options.entrypoint, "hello");
    assert_eq!(options.argv, "ruby index.rb ${SCRIPT_NAME} ${ARGS}");
    assert_eq!(hello.environment["TEST_NAME"], "test value");

    let files = &manifest.components["file-server"];
    assert_eq!(files.source, app.dir.join("bin/file server.wasm"));
    assert_eq!(files.environment.len(), 2);
    assert_eq!(files.environment["GREETING"], "hi there");
    let mounts: Vec<(&str, PathBuf, bool)> = files
        .files
        .iter()
        .map(|m| (m.destination.as_str(), m.source.clone(), m.writable))
        .collect();
    assert_eq!(
        mounts,
        [
            ("/assets", app.dir.join("public"), false),
            ("/data", app.dir.join("data"), false),
        ]
    );

    let goodbye = &manifest.components["hello-3"];
    assert_eq!(goodbye.source, app.dir.join("bin/hello.wasm"));
    assert_eq!(goodbye.wagi.as_ref().unwrap().entrypoint, "goodbye");
    assert_eq!(
        goodbye.wagi.as_ref().unwrap().argv,
        WagiOptions::DEFAULT_ARGV
    );
    let hosts: Vec<&str> = goodbye
        .allowed_outbound_hosts
        .iter()
        .map(|h| h.text.as_str())
        .collect();
    assert_eq!(hosts, ["https://api.example.com", "http://localhost:8080"]);
    assert_eq!(goodbye.max_outbound_concurrency, Some(4));
    assert_eq!(
        goodbye.limits.max_concurrency,
        Limits::DEFAULT_MAX_CONCURRENCY
    );
    assert_eq!(goodbye.limits.timeout, Duration::from_secs(30));
}

#[test]
fn load_detects_a_module_map_by_its_content_under_any_name() {
    let app = WagiDir::new();
    let manifest = app.load("routes.toml", &app.good()).unwrap();
    assert!(manifest.app.wagi_compat);
    assert_eq!(manifest.routes.len(), 4);
    // load_wagi reads it whatever its name, too.
    let explicit = Manifest::load_wagi(app.dir.join("routes.toml")).unwrap();
    assert_eq!(explicit.components.len(), 4);
}

#[test]
fn a_wasmgate_toml_is_still_a_wasmgate_toml() {
    let app = WagiDir::new();
    let text = "[app]\nname = \"shop\"\n[[route]]\npath = \"/\"\ncomponent = \"web\"\n\
                [component.web]\nsource = \"bin/hello.wasm\"\n";
    // Even when it is called modules.toml: the [app] table decides.
    for name in ["wasmgate.toml", "modules.toml"] {
        let manifest = app.load(name, text).unwrap();
        assert_eq!(manifest.app.name, "shop");
        assert!(!manifest.app.wagi_compat);
        assert!(manifest.components["web"].allowed_outbound_hosts.is_empty());
    }
}

#[test]
fn an_empty_modules_toml_asks_for_a_module() {
    let err = WagiDir::new().error("# nothing yet\n");
    assert_eq!(err.field(), Some("module"));
    assert!(err.to_string().contains("no [[module]] entries"), "{err}");
}

#[test]
fn app_table_and_modules_together_is_an_error_naming_the_lines() {
    let app = WagiDir::new();
    let text = format!("[app]\nname = \"shop\"\n\n{}", app.good());
    let err = app.load("wasmgate.toml", &text).unwrap_err();
    assert_eq!(err.field(), Some("module"));
    assert_eq!(err.line(), Some(7), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("wasmgate.toml:7:1: module:"), "{shown}");
    assert!(shown.contains("[app] table (line 1)"), "{shown}");
    assert!(shown.contains("7 | [[module]]"), "{shown}");
    // Asking for WAGI explicitly does not change the verdict.
    let err = Manifest::load_wagi(app.dir.join("wasmgate.toml")).unwrap_err();
    assert!(err.to_string().contains("[app] table (line 1)"), "{err}");
}

#[test]
fn unknown_key_names_line_column_and_module() {
    let app = WagiDir::new();
    let err = app.error(
        &app.good()
            .replace("entrypoint = \"hello\"", "entry_point = \"hello\""),
    );
    let shown = err.to_string();
    assert_eq!(err.line(), Some(12), "{shown}");
    assert_eq!(err.field(), Some("module[1].entry_point"), "{shown}");
    assert!(shown.contains("modules.toml:12:1:"), "{shown}");
    assert!(shown.contains("unknown field `entry_point`"), "{shown}");
    assert!(shown.contains("`entrypoint`"), "{shown}");
}

#[test]
fn unknown_top_level_key_is_rejected() {
    let app = WagiDir::new();
    let err = app.error(&format!("listen = \"0.0.0.0:3000\"\n{}", app.good()));
    assert_eq!(err.line(), Some(1), "{err}");
    assert!(err.to_string().contains("unknown field `listen`"), "{err}");
}

#[test]
fn oci_and_bindle_references_are_refused() {
    let app = WagiDir::new();
    let err = app.error(
        &app.good()
            .replace("\"hello.wat\"", "\"oci:example.com/hello:1.0\""),
    );
    assert_eq!(err.field(), Some("module[0].module"));
    assert_eq!(err.line(), Some(7));
    assert!(
        err.to_string().contains(
            "module[0].module: oci: module references are not supported yet; use a file path"
        ),
        "{err}"
    );
    let err = app.error(
        &app.good()
            .replace("\"hello.wat\"", "\"bindle:example.com/hello/1.0\""),
    );
    assert!(
        err.to_string().contains("bindle: module references"),
        "{err}"
    );
}

#[test]
fn duplicate_routes_name_both_lines() {
    let app = WagiDir::new();
    let err = app.error(
        &app.good()
            .replace("route = \"/goodbye\"", "route = \"/hello/...\""),
    );
    assert_eq!(err.field(), Some("module[3].route"));
    assert_eq!(err.line(), Some(23));
    assert!(
        err.to_string()
            .contains("route /hello/... is defined twice (first at line 10)"),
        "{err}"
    );
}

#[test]
fn malformed_routes_are_rejected_like_wasmgate_routes() {
    let app = WagiDir::new();
    let err = app.error(
        &app.good()
            .replace("route = \"/goodbye\"", "route = \"goodbye\""),
    );
    assert_eq!(err.field(), Some("module[3].route"));
    assert!(err.to_string().contains("must start with '/'"), "{err}");
}

#[test]
fn missing_module_file_is_reported_where_it_is_written() {
    let app = WagiDir::new();
    let err = app.error(
        &app.good()
            .replace("\"bin/hello.wasm\"", "\"bin/missing.wasm\""),
    );
    assert_eq!(err.field(), Some("module[1].module"));
    assert_eq!(err.line(), Some(11));
    let shown = err.to_string();
    assert!(shown.contains("modules.toml:11:10:"), "{shown}");
    assert!(shown.contains("bin/missing.wasm not found"), "{shown}");
}

#[test]
fn missing_file_url_target_is_reported() {
    let app = WagiDir::new();
    let err = app.error(&app.good().replace("file%20server", "file%20client"));
    assert_eq!(err.field(), Some("module[2].module"));
    assert!(
        err.to_string().contains("bin/file client.wasm not found"),
        "{err}"
    );
}

#[test]
fn a_path_wagi_would_find_from_its_working_directory_gets_a_hint() {
    // Tests run in the crate directory, which has a Cargo.toml; the app directory has not.
    let app = WagiDir::new();
    let err = app.error(&app.good().replace("\"hello.wat\"", "\"Cargo.toml\""));
    assert_eq!(err.field(), Some("module[0].module"));
    let shown = err.to_string();
    assert!(
        shown.contains("but where WAGI resolved relative paths"),
        "{shown}"
    );
}

#[test]
fn missing_volume_directory_names_the_guest_path() {
    let app = WagiDir::new();
    let err = app.error(
        &app.good()
            .replace("\"/data\" = \"data\"", "\"/data\" = \"nope\""),
    );
    assert_eq!(err.field(), Some("module[2].volumes./data"));
    assert_eq!(err.line(), Some(19));
    assert!(err.to_string().contains("directory"), "{err}");
    assert!(err.to_string().contains("nope not found"), "{err}");
}

#[test]
fn volume_guest_paths_must_be_absolute() {
    let app = WagiDir::new();
    let err = app.error(&app.good().replace("\"/assets\" =", "\"assets\" ="));
    assert_eq!(err.field(), Some("module[2].volumes.assets"));
    assert_eq!(err.line(), Some(19));
    assert!(
        err.to_string().contains("is absolute, like \"/data\""),
        "{err}"
    );
}

#[test]
fn out_of_range_concurrency_and_empty_values_are_rejected() {
    let app = WagiDir::new();
    let err = app.error(
        &app.good()
            .replace("http_max_concurrency = 4", "http_max_concurrency = 0"),
    );
    assert_eq!(err.field(), Some("module[3].http_max_concurrency"));
    let err = app.error(
        &app.good()
            .replace("entrypoint = \"goodbye\"", "entrypoint = \" \""),
    );
    assert_eq!(err.field(), Some("module[3].entrypoint"));
    let err = app.error(&app.good().replace("\"http://localhost:8080\"", "\"\""));
    assert_eq!(err.field(), Some("module[3].allowed_hosts[1]"));
    let err = app.error(
        &app.good()
            .replace("http_max_concurrency = 4", "http_max_concurrency = \"4\""),
    );
    assert_eq!(err.field(), Some("module[3].http_max_concurrency"));
    assert!(err.to_string().contains("invalid type"), "{err}");
}

#[test]
fn names_are_sanitised_and_fall_back_for_the_app() {
    let app = WagiDir::new();
    fs::write(app.dir.join("bin/my app@v2.wasm"), b"\0asm").unwrap();
    let text = "[[module]]\nroute = \"/\"\nmodule = \"bin/my app@v2.wasm\"\n\
                bindle_server = \"http://localhost:8080/v1\"\n";
    let manifest = app.load("modules.toml", text).unwrap();
    assert_eq!(manifest.routes[0].component, "my-app-v2");
    // The root directory has no name: the app is called "wagi".
    assert_eq!(app_name(Path::new("/")), "wagi");
}
