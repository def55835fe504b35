//! `wasi:keyvalue` seen from outside: the kv-guest fixture (tests/fixtures/kv-guest) serves
//! each key-value operation as a route, run by the real `wasmgate` binary on the embedded
//! disk store. The backends themselves are specified in
//! crates/wasmgate-capabilities/tests/key_value.rs.

mod support;

use bytes::Bytes;
use std::path::{Path, PathBuf};
use support::{get, start_with_config as start, Client, Protocol, Server};

fn kv_guest_wasm() -> PathBuf {
    support::built_guest("tests/fixtures/kv-guest/target/wasm32-wasip2/release/kv_guest.wasm")
}

/// The kv guest routed at `/...`, granted `stores`.
fn manifest(stores: &[&str]) -> String {
    let stores: Vec<String> = stores.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[app]\nname = \"kv\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"kv\"\n\n\
         [component.kv]\nsource = {:?}\nkey_value_stores = [{}]\n",
        kv_guest_wasm().display().to_string(),
        stores.join(", ")
    )
}

/// A runtime config putting the `default` store in `file`.
fn default_store_at(file: &Path) -> String {
    format!(
        "[key_value_store.default]\ntype = \"disk\"\npath = {:?}\n",
        file.display().to_string()
    )
}

async fn send(server: &Server, method: &str, path: &str, body: impl Into<Bytes>) -> support::Reply {
    Client::connect(server.addr, Protocol::Http1)
        .await
        .send(method, path, body)
        .await
}

#[tokio::test]
async fn a_guest_sets_reads_and_deletes_keys() {
    let server = Server::start(&manifest(&["default"]));
    let reply = send(&server, "PUT", "/kv/default/greeting", "hello").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = get(server.addr, "/kv/default/greeting").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello"));
    let reply = get(server.addr, "/kv/default/greeting?exists").await;
    assert_eq!(reply.text(), "true");

    let reply = send(&server, "DELETE", "/kv/default/greeting", "").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = get(server.addr, "/kv/default/greeting").await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    let reply = get(server.addr, "/kv/default/greeting?exists").await;
    assert_eq!(reply.text(), "false");
}

#[tokio::test]
async fn a_store_not_granted_is_denied_and_an_unknown_one_does_not_exist() {
    let state = tempfile::tempdir().unwrap();
    let config = format!(
        "[key_value_store.private]\ntype = \"disk\"\npath = {:?}\n",
        state.path().join("private.db").display().to_string()
    );
    let server = start(&manifest(&["default"]), &config);
    let reply = get(server.addr, "/kv/private/k").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (403, "access-denied")
    );
    let reply = get(server.addr, "/kv/nowhere/k").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (404, "no-such-store")
    );
    // Stores nobody is granted are not even opened.
    assert!(!state.path().join("private.db").exists());
}

#[tokio::test]
async fn counters_lists_and_batches_work_through_the_guest() {
    let server = Server::start(&manifest(&["default"]));
    for (by, expected) in [(5, "5"), (1, "6"), (10, "16")] {
        let reply = send(
            &server,
            "POST",
            &format!("/kv/default/hits/incr?by={by}"),
            "",
        )
        .await;
        assert_eq!((reply.status, reply.text().as_str()), (200, expected));
    }
    let reply = get(server.addr, "/kv/default/hits").await;
    assert_eq!(reply.text(), "16", "counters read back as decimal text");

    let reply = send(&server, "POST", "/kv/default?set-many", "a=1\nb=2\nc/d=3\n").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = send(&server, "POST", "/kv/default?get-many", "a\nmissing\nc/d\n").await;
    assert_eq!(reply.text(), "a=1\nmissing!\nc/d=3\n");
    let reply = get(server.addr, "/kv/default/c%2Fd").await;
    assert_eq!(reply.text(), "3");

    let reply = get(server.addr, "/kv/default?keys").await;
    assert_eq!(reply.text(), "a\nb\nc/d\nhits\n");
    let reply = send(&server, "POST", "/kv/default?delete-many", "a\nb\n").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = get(server.addr, "/kv/default?keys").await;
    assert_eq!(reply.text(), "c/d\nhits\n");
}

#[tokio::test]
async fn incrementing_text_that_is_not_a_number_fails_with_the_reason() {
    let server = Server::start(&manifest(&["default"]));
    send(&server, "PUT", "/kv/default/name", "alice").await;
    let reply = send(&server, "POST", "/kv/default/name/incr", "").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(
        reply.text().contains("not a decimal integer"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn a_key_over_the_limit_is_refused() {
    let server = Server::start(&manifest(&["default"]));
    let key = "k".repeat(1025);
    let reply = send(&server, "PUT", &format!("/kv/default/{key}"), "v").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(reply.text().contains("limit"), "{}", reply.text());
}

#[tokio::test]
async fn a_four_mib_value_and_unicode_keys_round_trip() {
    let server = Server::start(&manifest(&["default"]));
    let value: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let reply = send(&server, "PUT", "/kv/default/big", value.clone()).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = get(server.addr, "/kv/default/big").await;
    assert_eq!(reply.status, 200);
    assert!(reply.body == value, "the value came back changed");

    // "héllo 🦀", percent-encoded in the path.
    let path = "/kv/default/h%C3%A9llo%20%F0%9F%A6%80";
    send(&server, "PUT", path, "unicode").await;
    assert_eq!(get(server.addr, path).await.text(), "unicode");
    let keys = get(server.addr, "/kv/default?keys").await.text();
    assert!(keys.lines().any(|k| k == "héllo 🦀"), "{keys}");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let config = default_store_at(&state.path().join("kv.db"));
    let server = start(&manifest(&["default"]), &config);
    let reply = send(&server, "PUT", "/kv/default/kept", "still here").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    drop(server);

    let server = start(&manifest(&["default"]), &config);
    let reply = get(server.addr, "/kv/default/kept").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "still here"));
}

#[tokio::test]
async fn the_same_guest_runs_on_redis_by_runtime_config_alone() {
    let redis = wasmgate_testsupport::redis::Redis::start();
    let config = format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = {:?}\n",
        redis.url()
    );
    let server = start(&manifest(&["default"]), &config);
    let reply = send(&server, "PUT", "/kv/default/greeting", "hello redis").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    for (by, expected) in [(5, "5"), (2, "7")] {
        let path = format!("/kv/default/hits/incr?by={by}");
        let reply = send(&server, "POST", &path, "").await;
        assert_eq!((reply.status, reply.text().as_str()), (200, expected));
    }
    let mut keys: Vec<String> = get(server.addr, "/kv/default?keys")
        .await
        .text()
        .lines()
        .map(String::from)
        .collect();
    keys.sort();
    assert_eq!(keys, ["greeting", "hits"]);
    drop(server);

    // Another Wasmgate process (a second node, or a restart) sees the same data.
    let server = start(&manifest(&["default"]), &config);
    let reply = get(server.addr, "/kv/default/greeting").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello redis"));
    assert_eq!(get(server.addr, "/kv/default/hits").await.text(), "7");
}
