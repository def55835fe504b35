//! The todo example (examples/todo, built on wasmgate-sdk) served by the real `wasmgate`
//! binary from its own wasmgate.toml: the REST API on the embedded SQLite and key-value
//! defaults, data surviving a restart, the outbound call `/health/deep` makes, and the same
//! scenario with each backend the runtime config can choose (Redis, PostgreSQL, MariaDB).

mod support;

use bytes::Bytes;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use support::{Client, Protocol, Reply, Server};

/// The example's component, built by scripts/build-guests.sh with the other guests.
fn todo_wasm() -> PathBuf {
    support::fixture_wasm();
    let path = support::repo_root().join("examples/todo/target/wasm32-wasip2/release/todo.wasm");
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// examples/todo/wasmgate.toml as shipped, with the component's path made absolute so it can
/// be served from a temporary directory.
fn manifest() -> String {
    let shipped = std::fs::read_to_string(support::repo_root().join("examples/todo/wasmgate.toml"))
        .expect("read examples/todo/wasmgate.toml");
    let relative = "source = \"target/wasm32-wasip2/release/todo.wasm\"";
    assert!(
        shipped.contains(relative),
        "the example's source line changed"
    );
    shipped.replace(
        relative,
        &format!("source = {:?}", todo_wasm().display().to_string()),
    )
}

fn shared_cache() -> String {
    support::repo_root()
        .join("target/wasmgate-test-cache")
        .display()
        .to_string()
}

/// Serves the example from `dir` (its embedded data lives in `dir/.wasmgate`), with an
/// optional runtime config and extra environment variables.
fn start_in(dir: tempfile::TempDir, runtime_config: Option<&str>, env: &[(&str, &str)]) -> Server {
    let cache = shared_cache();
    let mut args = vec!["--cache-dir", cache.as_str()];
    let config_path = dir.path().join("runtime-config.toml");
    let config_arg = config_path.display().to_string();
    if let Some(config) = runtime_config {
        std::fs::write(&config_path, config).unwrap();
        args.extend(["--runtime-config", config_arg.as_str()]);
    }
    Server::start_with_env(dir, &manifest(), &args, env)
}

fn start() -> Server {
    start_in(tempfile::tempdir().unwrap(), None, &[])
}

async fn send(server: &Server, method: &str, path: &str, body: impl Into<Bytes>) -> Reply {
    send_to(server.addr, method, path, body.into()).await
}

async fn send_to(addr: SocketAddr, method: &str, path: &str, body: impl Into<Bytes>) -> Reply {
    Client::connect(addr, Protocol::Http1)
        .await
        .send(method, path, body)
        .await
}

fn body_json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", reply.text()))
}

/// `POST /todos` with `title`; returns the created todo after checking the 201 and Location.
async fn create(server: &Server, title: &str) -> Value {
    let reply = send(
        server,
        "POST",
        "/todos",
        json!({ "title": title }).to_string(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let todo = body_json(&reply);
    assert_eq!(todo["title"], title);
    assert_eq!(todo["done"], false);
    let id = todo["id"].as_i64().expect("numeric id");
    assert_eq!(reply.headers["location"], format!("/todos/{id}").as_str());
    todo
}

/// Create, list, read (cache miss then hit), update, delete, and the 404s after it: the whole
/// API once, on whatever backends `server` was given.
async fn crud_scenario(server: &Server) {
    let milk = create(server, "buy milk").await;
    let bread = create(server, "bake bread").await;
    let (milk_id, bread_id) = (milk["id"].as_i64().unwrap(), bread["id"].as_i64().unwrap());
    assert_ne!(milk_id, bread_id);

    let list = send(server, "GET", "/todos", "").await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(body_json(&list), json!([milk, bread]));

    // Freshly created todos are cached; after an update the next read comes from SQL.
    let one = send(server, "GET", &format!("/todos/{milk_id}"), "").await;
    assert_eq!((one.status, body_json(&one)), (200, milk.clone()));
    assert_eq!(one.headers["x-cache"], "hit");

    let patched = send(
        server,
        "PATCH",
        &format!("/todos/{milk_id}"),
        r#"{"done": true}"#,
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(
        body_json(&patched),
        json!({ "id": milk_id, "title": "buy milk", "done": true })
    );
    let reread = send(server, "GET", &format!("/todos/{milk_id}"), "").await;
    assert_eq!(reread.headers["x-cache"], "miss");
    assert_eq!(body_json(&reread)["done"], true);
    let again = send(server, "GET", &format!("/todos/{milk_id}"), "").await;
    assert_eq!(again.headers["x-cache"], "hit");
    assert_eq!(body_json(&again)["done"], true);

    let done = send(server, "GET", "/todos?done=true", "").await;
    assert_eq!(
        body_json(&done),
        json!([{ "id": milk_id, "title": "buy milk", "done": true }])
    );

    let deleted = send(server, "DELETE", &format!("/todos/{bread_id}"), "").await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    for (method, body) in [("GET", ""), ("PATCH", r#"{"done": true}"#), ("DELETE", "")] {
        let reply = send(server, method, &format!("/todos/{bread_id}"), body).await;
        assert_eq!(reply.status, 404, "{method} after delete: {}", reply.text());
    }
    let list = send(server, "GET", "/todos", "").await;
    assert_eq!(body_json(&list).as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn todos_are_created_listed_read_updated_and_deleted() {
    let server = start();
    crud_scenario(&server).await;
    server.wait_for_log(
        &["\"message\":\"created todo 1\"", "\"context\":\"todo\""],
        std::time::Duration::from_secs(5),
    );
    server.wait_for_log(
        &["\"message\":\"deleted todo 2\""],
        std::time::Duration::from_secs(5),
    );
}

#[tokio::test]
async fn unknown_or_malformed_ids_and_routes_are_404() {
    let server = start();
    for path in ["/todos/999", "/todos/abc", "/todos/0", "/todos/-1", "/nope"] {
        let reply = send(&server, "GET", path, "").await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
    }
    let reply = send(&server, "PUT", "/todos", "").await;
    assert_eq!(reply.status, 405, "{}", reply.text());
}

#[tokio::test]
async fn invalid_bodies_are_400_with_the_reason() {
    let server = start();
    for (method, path, body, reason) in [
        ("POST", "/todos", "not json", "invalid JSON body"),
        (
            "POST",
            "/todos",
            r#"{"titel": "x"}"#,
            "unknown field `titel`",
        ),
        (
            "POST",
            "/todos",
            r#"{"title": "   "}"#,
            "title must not be empty",
        ),
        ("PATCH", "/todos/1", "{}", "nothing to change"),
    ] {
        let reply = send(&server, method, path, body).await;
        assert_eq!(
            reply.status,
            400,
            "{method} {path} {body}: {}",
            reply.text()
        );
        assert!(reply.text().contains(reason), "{body}: {}", reply.text());
    }
    let long = "x".repeat(201);
    let reply = send(
        &server,
        "POST",
        "/todos",
        json!({ "title": long }).to_string(),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
}

#[tokio::test]
async fn concurrent_creates_get_distinct_ids_and_are_all_counted() {
    let server = start();
    let creates: Vec<_> = (0..16)
        .map(|i| {
            let body = json!({ "title": format!("task {i}") }).to_string();
            tokio::spawn(send_to(server.addr, "POST", "/todos", body))
        })
        .collect();
    let mut ids = Vec::new();
    for create in creates {
        let reply = create.await.unwrap();
        assert_eq!(reply.status, 201, "{}", reply.text());
        ids.push(body_json(&reply)["id"].as_i64().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=16).collect::<Vec<_>>());

    let stats = body_json(&send(&server, "GET", "/stats", "").await);
    // 16 creates and this request.
    assert_eq!(
        stats,
        json!({ "requests": 17, "created": 16, "deleted": 0 })
    );
}

#[tokio::test]
async fn todos_and_counters_survive_a_restart() {
    let mut server = start();
    let kept = create(&server, "keep me").await;
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    drop(server);

    let server = start_in(dir, None, &[]);
    let list = send(&server, "GET", "/todos", "").await;
    assert_eq!(body_json(&list), json!([kept]));
    // The id counter lives in the key-value store and survived too.
    let next = create(&server, "after restart").await;
    assert_eq!(next["id"], 2);
}

#[tokio::test]
async fn deep_health_calls_the_url_in_self_url_over_outbound_http() {
    let upstream = start();
    let base = format!("http://{}", upstream.addr);
    let server = start_in(
        tempfile::tempdir().unwrap(),
        None,
        &[("WASMGATE_VAR_SELF_URL", base.as_str())],
    );
    let reply = send(&server, "GET", "/health/deep", "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        body_json(&reply),
        json!({
            "healthy": true,
            "upstream": { "url": format!("{base}/health"), "status": 200 },
            "database": "ok",
            "key_value": "ok",
        })
    );
}

#[tokio::test]
async fn deep_health_reports_an_upstream_outside_the_grant_as_denied() {
    // The manifest allows http://127.0.0.1:* only; `localhost` is another host to the policy.
    let server = start_in(
        tempfile::tempdir().unwrap(),
        None,
        &[("WASMGATE_VAR_SELF_URL", "http://localhost:1")],
    );
    let reply = send(&server, "GET", "/health/deep", "").await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    let body = body_json(&reply);
    assert_eq!(body["healthy"], false);
    let error = body["upstream"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("allowed_outbound_hosts"), "{body}");
}

#[tokio::test]
async fn the_same_service_runs_on_redis() {
    let redis = wasmgate_testsupport::redis::Redis::start();
    let config = "[key_value_store.default]\ntype = \"redis\"\nurl_env = \"TODO_REDIS_URL\"\n";
    let url = redis.url();
    let server = start_in(
        tempfile::tempdir().unwrap(),
        Some(config),
        &[("TODO_REDIS_URL", url.as_str())],
    );
    crud_scenario(&server).await;
}

#[tokio::test]
async fn the_same_service_runs_on_postgres() {
    let postgres = wasmgate_testsupport::postgres::Postgres::start();
    let config = "[sql_database.default]\ntype = \"postgres\"\nurl_env = \"TODO_DATABASE_URL\"\n";
    let url = postgres.url();
    let server = start_in(
        tempfile::tempdir().unwrap(),
        Some(config),
        &[("TODO_DATABASE_URL", url.as_str())],
    );
    crud_scenario(&server).await;
}

#[tokio::test]
async fn the_same_service_runs_on_mariadb() {
    let mariadb = wasmgate_testsupport::mariadb::MariaDb::start();
    let config = "[sql_database.default]\ntype = \"mysql\"\nurl_env = \"TODO_DATABASE_URL\"\n";
    let url = mariadb.url();
    let server = start_in(
        tempfile::tempdir().unwrap(),
        Some(config),
        &[("TODO_DATABASE_URL", url.as_str())],
    );
    crud_scenario(&server).await;
}
