//! `executor = "service"` with a real database client: `examples/service-mysql-wasmedge`
//! (hyper_wasi + tokio_wasi + mysql_async_wasi, built for WasmEdge's sockets) run unchanged by
//! `wasmgate up` against a MariaDB server the harness starts, with a password-authenticated
//! user and grant tables on.
//!
//! MariaDB comes from the Debian package `mariadb-server` (scripts/test-service-packages.txt);
//! without it these tests fail, naming the package.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{built_guest, get, Client, Protocol, Server};
use wasmgate_testsupport::mariadb::{self, MariaDb};

fn service_wasm() -> PathBuf {
    let relative =
        "examples/service-mysql-wasmedge/target/wasm32-wasip1/release/service-mysql-wasmedge.wasm";
    support::fixture_wasm();
    // scripts/build-guests.sh skips this guest without a C toolchain for wasm32-wasi.
    assert!(
        support::repo_root().join(relative).exists(),
        "{relative} was not built: it needs the packages in scripts/c-guest-packages.txt \
         (see the messages of scripts/build-guests.sh)"
    );
    built_guest(relative)
}

/// Serves the notes service at `/...`, allowed to connect to `allowed` and configured with
/// `url`, and waits until it listens.
fn start_notes(allowed: &str, url: &str) -> Server {
    let manifest = format!(
        "[app]\nname = \"notes-app\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"notes\"\n\n\
         [component.notes]\nsource = {:?}\nexecutor = \"service\"\nports = [8080]\n\
         allowed_outbound_hosts = [{allowed:?}]\nenvironment = {{ DATABASE_URL = {url:?} }}\n",
        service_wasm().display().to_string()
    );
    let server = Server::start(&manifest);
    server.wait_for_log(&["service ready"], Duration::from_secs(60));
    server
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The service's own view of the database, so failures show what the guest said.
async fn notes(server: &Server) -> Vec<(u64, String)> {
    let reply = get(server.addr, "/notes").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let list: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    list.as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {}", reply.text()))
        .iter()
        .map(|note| {
            (
                note["id"].as_u64().unwrap(),
                note["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn notes_posted_through_wasmgate_are_stored_in_mariadb_and_listed() {
    let db = MariaDb::start();
    // A name, not an address: the guest resolves it through sock_getaddrinfo, and the
    // policy allows the addresses it resolved to.
    let url = db.url().replace("127.0.0.1", "localhost");
    let server = start_notes(&format!("mysql://localhost:{}", db.port()), &url);
    let texts = [
        "first note".to_string(),
        "quotes ' \" and a backslash \\ survive; so does ünïcödé ✓".to_string(),
        "x".repeat(50_000),
    ];
    runtime().block_on(async {
        let health = get(server.addr, "/health").await;
        assert_eq!(health.status, 200, "{}", health.text());

        let mut client = Client::connect(server.addr, Protocol::Http1).await;
        let mut ids = Vec::new();
        for text in &texts {
            let reply = client.send("POST", "/notes", text.clone()).await;
            assert_eq!(reply.status, 201, "{}", reply.text());
            let created: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            ids.push(created["id"].as_u64().unwrap());
        }
        let expected: Vec<(u64, String)> = ids.into_iter().zip(texts.iter().cloned()).collect();
        assert_eq!(notes(&server).await, expected);
    });
    // The rows are really in MariaDB, written by the guest's user.
    let rows = db.query("SELECT COUNT(*), SUM(LENGTH(body)) FROM notes");
    let total: usize = texts.iter().map(String::len).sum();
    assert!(rows.contains(&format!("3\t{total}")), "{rows}");
}

#[test]
fn parallel_clients_share_the_guests_connection_pool() {
    let db = MariaDb::start();
    let server = start_notes(&format!("mysql://127.0.0.1:{}", db.port()), &db.url());
    let started = Instant::now();
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for client_index in 0..20 {
            let addr = server.addr;
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr, Protocol::Http1).await;
                for i in 0..5 {
                    let reply = client
                        .send("POST", "/notes", format!("client {client_index} note {i}"))
                        .await;
                    assert_eq!(reply.status, 201, "{}", reply.text());
                }
            }));
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("a client did not finish in 60 s")
                .expect("a client failed");
        }
        let stored = notes(&server).await;
        assert_eq!(stored.len(), 100);
        for client_index in 0..20 {
            for i in 0..5 {
                let text = format!("client {client_index} note {i}");
                assert!(stored.iter().any(|(_, body)| *body == text), "{text} lost");
            }
        }
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "100 inserts took {took:?}");
}

#[test]
fn a_wrong_password_gives_a_5xx_from_the_guest_and_the_service_keeps_serving() {
    let db = MariaDb::start();
    let url = db.url().replace(mariadb::PASSWORD, "not-the-password");
    let server = start_notes(&format!("mysql://127.0.0.1:{}", db.port()), &url);
    runtime().block_on(async {
        for path in ["/health", "/notes", "/health"] {
            let reply = get(server.addr, path).await;
            assert_eq!(reply.status, 503, "{path}: {}", reply.text());
            // MariaDB's own refusal (error 1045), as the client reported it to the guest.
            assert!(
                reply.text().contains("Access denied for user"),
                "{path}: {}",
                reply.text()
            );
        }
        let mut client = Client::connect(server.addr, Protocol::Http1).await;
        let post = client.send("POST", "/notes", "never stored").await;
        assert_eq!(post.status, 503, "{}", post.text());
        let missing = client.send("GET", "/nope", "").await;
        assert_eq!(missing.status, 404, "the guest stopped answering");
    });
    let logs = server.stderr();
    assert!(
        !logs.contains("service trapped") && !logs.contains("service exited"),
        "the guest went down:\n{logs}"
    );
}

#[test]
fn a_database_outside_allowed_outbound_hosts_is_refused_with_eacces_and_logged() {
    let db = MariaDb::start();
    // The manifest allows another port on the same host; the guest's URL names the real one.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed = format!("mysql://127.0.0.1:{}", other.local_addr().unwrap().port());
    let server = start_notes(&allowed, &db.url());
    runtime().block_on(async {
        let reply = get(server.addr, "/health").await;
        assert_eq!(reply.status, 503, "{}", reply.text());
        // WASI's EACCES (2), as std reports it.
        assert!(reply.text().contains("os error 2"), "{}", reply.text());
    });
    server.wait_for_log(
        &[
            "connection refused (EACCES)",
            &format!("127.0.0.1:{}", db.port()),
        ],
        Duration::from_secs(5),
    );
    let logs = server.stderr();
    assert!(
        !logs.contains("service trapped") && !logs.contains("service exited"),
        "the guest went down:\n{logs}"
    );
}
