//! `wasmgate:sql` seen from outside: the sql-guest fixture (tests/fixtures/sql-guest) runs
//! the SQL it is sent, served by the real `wasmgate` binary, on the embedded SQLite default
//! and on real MariaDB and PostgreSQL servers configured by the operator. The backends
//! themselves are specified in crates/wasmgate-capabilities/tests/sql.rs.

mod support;

use serde_json::{json, Value as Json};
use std::path::PathBuf;
use support::{start_with_config as start, Client, Protocol, Server};
use wasmgate_testsupport::{mariadb::MariaDb, postgres::Postgres};

fn sql_guest_wasm() -> PathBuf {
    support::built_guest("tests/fixtures/sql-guest/target/wasm32-wasip2/release/sql_guest.wasm")
}

/// The sql guest routed at `/...`, granted `databases`.
fn manifest(databases: &[&str]) -> String {
    let databases: Vec<String> = databases.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[app]\nname = \"sql\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"sql\"\n\n\
         [component.sql]\nsource = {:?}\nsql_databases = [{}]\n",
        sql_guest_wasm().display().to_string(),
        databases.join(", ")
    )
}

/// POSTs `{"sql": sql, "params": params}` to `/sql/{db}/{action}`.
async fn sql(server: &Server, db: &str, action: &str, sql: &str, params: Json) -> support::Reply {
    let body = json!({ "sql": sql, "params": params }).to_string();
    Client::connect(server.addr, Protocol::Http1)
        .await
        .send("POST", &format!("/sql/{db}/{action}"), body)
        .await
}

async fn ok_json(reply: support::Reply) -> Json {
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

/// The same conversation on any backend: create, insert every kind of value, read back.
async fn round_trip(server: &Server, db: &str, blob_type: &str) {
    let create = format!(
        "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, score DOUBLE PRECISION, data {blob_type})"
    );
    ok_json(sql(server, db, "execute", &create, json!([])).await).await;
    let inserted = ok_json(
        sql(
            server,
            db,
            "execute",
            "INSERT INTO notes (id, body, score, data) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
            json!([1, "héllo ✓", 1.5, {"hex": "00ff10"}, 2, "second", null, null]),
        )
        .await,
    )
    .await;
    assert_eq!(inserted, json!({ "rows_affected": 2 }));
    let rows = ok_json(
        sql(
            server,
            db,
            "query",
            "SELECT id, body, score, data, 'why?' AS q FROM notes WHERE id >= ? ORDER BY id",
            json!([1]),
        )
        .await,
    )
    .await;
    assert_eq!(
        rows,
        json!({
            "columns": ["id", "body", "score", "data", "q"],
            "rows": [
                [1, "héllo ✓", 1.5, {"hex": "00ff10"}, "why?"],
                [2, "second", null, null, "why?"],
            ],
        })
    );
}

#[tokio::test]
async fn a_guest_uses_the_embedded_default_database() {
    let server = Server::start(&manifest(&["default"]));
    round_trip(&server, "default", "BLOB").await;
}

#[tokio::test]
async fn sql_errors_become_http_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    let config = format!(
        "[sql_database.other]\ntype = \"sqlite\"\npath = {:?}\n",
        other.display().to_string()
    );
    let server = start(&manifest(&["default"]), &config);
    ok_json(
        sql(
            &server,
            "default",
            "execute",
            "CREATE TABLE t (id INTEGER PRIMARY KEY)",
            json!([]),
        )
        .await,
    )
    .await;
    ok_json(
        sql(
            &server,
            "default",
            "execute",
            "INSERT INTO t VALUES (?)",
            json!([1]),
        )
        .await,
    )
    .await;

    let reply = sql(
        &server,
        "default",
        "execute",
        "INSERT INTO t VALUES (?)",
        json!([1]),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().starts_with("constraint-violation:"),
        "{}",
        reply.text()
    );

    let reply = sql(&server, "default", "query", "SELEC 1", json!([])).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().starts_with("syntax:"), "{}", reply.text());

    let reply = sql(
        &server,
        "default",
        "query",
        "SELECT * FROM missing",
        json!([]),
    )
    .await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(reply.text().starts_with("other:"), "{}", reply.text());

    // Configured by the operator but not granted to this component.
    let reply = sql(&server, "other", "query", "SELECT 1", json!([])).await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (403, "access-denied")
    );
    // Neither granted nor configured.
    let reply = sql(&server, "nowhere", "query", "SELECT 1", json!([])).await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (404, "no-such-database")
    );
    // Not granted, so never opened.
    assert!(!other.exists(), "an ungranted database was opened");
}

#[tokio::test]
async fn a_trap_inside_a_transaction_rolls_it_back() {
    let server = Server::start(&manifest(&["default"]));
    ok_json(
        sql(
            &server,
            "default",
            "execute",
            "CREATE TABLE t (id INTEGER PRIMARY KEY)",
            json!([]),
        )
        .await,
    )
    .await;
    let reply = sql(
        &server,
        "default",
        "trap-in-transaction",
        "INSERT INTO t VALUES (?)",
        json!([7]),
    )
    .await;
    assert_eq!(reply.status, 500, "the guest traps: {}", reply.text());
    let rows = ok_json(
        sql(
            &server,
            "default",
            "query",
            "SELECT COUNT(*) AS n FROM t",
            json!([]),
        )
        .await,
    )
    .await;
    assert_eq!(rows["rows"], json!([[0]]));
    // The write lock went with the rollback: the same row can be written now.
    let reply = sql(
        &server,
        "default",
        "execute",
        "INSERT INTO t VALUES (?)",
        json!([7]),
    )
    .await;
    assert_eq!(ok_json(reply).await, json!({ "rows_affected": 1 }));
}

#[tokio::test]
async fn a_guest_uses_mariadb_configured_by_the_operator() {
    let db = MariaDb::start();
    let config = format!(
        "[sql_database.default]\ntype = \"mysql\"\nurl = {:?}\n",
        db.url()
    );
    let server = start(&manifest(&["default"]), &config);
    round_trip(&server, "default", "LONGBLOB").await;
    let logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(
        !logs.contains(wasmgate_testsupport::mariadb::PASSWORD),
        "{logs}"
    );
}

#[tokio::test]
async fn a_guest_uses_postgres_configured_by_the_operator() {
    let db = Postgres::start();
    let config = format!(
        "[sql_database.default]\ntype = \"postgres\"\nurl = {:?}\n",
        db.url()
    );
    let server = start(&manifest(&["default"]), &config);
    round_trip(&server, "default", "BYTEA").await;
    let logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(
        !logs.contains(wasmgate_testsupport::postgres::PASSWORD),
        "{logs}"
    );
}

#[test]
fn an_unreachable_database_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = wasmgate_testsupport::free_port();
    let secret = "Not-Shown-Anywhere";
    let config = format!(
        "[sql_database.default]\ntype = \"postgres\"\nurl = \"postgres://app:{secret}@127.0.0.1:{port}/app\"\n"
    );
    let config_path = dir.path().join("runtime.toml");
    std::fs::write(&config_path, config).unwrap();
    std::fs::write(dir.path().join("wasmgate.toml"), manifest(&["default"])).unwrap();
    let (code, stdout, stderr) = support::run_wasmgate(&[
        "up",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--no-admin",
        "--runtime-config",
        config_path.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("\"default\""), "{stderr}");
    assert!(
        !stderr.contains(secret) && !stdout.contains(secret),
        "{stdout}{stderr}"
    );
}
