//! The key-value backends, specified once and run against each: the embedded SQLite file and a
//! real Redis (started per test; `redis-server` must be installed).
//!
//! Then how an app's stores are opened from the manifest and runtime config.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;
use wasmgate_capabilities::key_value::{Backend, DiskStore, RedisStore, Stores, LIST_PAGE_KEYS};
use wasmgate_capabilities::CapabilityError;
use wasmgate_manifest::{Manifest, RuntimeConfig, SecretUrl};
use wasmgate_testsupport::redis::Redis;

/// Where one test's stores live. Stores opened with the same name see the same data, also
/// after the earlier handle is gone.
enum Env {
    /// Every store in one file, so isolation is tested at its hardest.
    Disk(TempDir),
    /// Every store in one Redis database.
    Redis(Redis),
}

impl Env {
    fn disk() -> Env {
        Env::Disk(tempfile::tempdir().unwrap())
    }

    fn redis() -> Env {
        Env::Redis(Redis::start())
    }

    async fn open(&self, store: &str) -> Arc<dyn Backend> {
        match self {
            Env::Disk(dir) => Arc::new(
                DiskStore::open(store, &dir.path().join("state/kv.db"))
                    .await
                    .unwrap(),
            ),
            Env::Redis(server) => Arc::new(
                RedisStore::open(store, &SecretUrl::new(server.url()))
                    .await
                    .unwrap(),
            ),
        }
    }
}

/// Every key of `store`, following cursors to the end; checks no page is oversized.
async fn all_keys(store: &dyn Backend) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = store.list_keys(cursor).await.unwrap();
        assert!(
            page.keys.len() <= 2 * LIST_PAGE_KEYS,
            "a page of {} keys",
            page.keys.len()
        );
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
    panic!("list-keys never ended");
}

async fn set_then_get_returns_the_value(env: Env) {
    let store = env.open("default").await;
    store
        .set("greeting".into(), b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.get("greeting".into()).await.unwrap(),
        Some(b"hello".to_vec())
    );
    assert!(store.exists("greeting".into()).await.unwrap());
    store.set("empty".into(), Vec::new()).await.unwrap();
    assert_eq!(store.get("empty".into()).await.unwrap(), Some(Vec::new()));
}

async fn set_overwrites_the_previous_value(env: Env) {
    let store = env.open("default").await;
    store.set("k".into(), b"one".to_vec()).await.unwrap();
    store.set("k".into(), b"two".to_vec()).await.unwrap();
    assert_eq!(store.get("k".into()).await.unwrap(), Some(b"two".to_vec()));
    assert_eq!(all_keys(&*store).await.len(), 1);
}

async fn missing_keys_read_as_none(env: Env) {
    let store = env.open("default").await;
    assert_eq!(store.get("nope".into()).await.unwrap(), None);
    assert!(!store.exists("nope".into()).await.unwrap());
}

async fn delete_removes_the_key_and_ignores_missing_ones(env: Env) {
    let store = env.open("default").await;
    store.set("k".into(), b"v".to_vec()).await.unwrap();
    store.delete("k".into()).await.unwrap();
    assert_eq!(store.get("k".into()).await.unwrap(), None);
    assert!(!store.exists("k".into()).await.unwrap());
    store.delete("k".into()).await.unwrap();
    store.delete("never-there".into()).await.unwrap();
}

async fn list_keys_of_an_empty_store_is_one_empty_page(env: Env) {
    let store = env.open("default").await;
    let page = store.list_keys(None).await.unwrap();
    assert!(page.keys.is_empty());
    assert_eq!(page.cursor, None);
}

async fn list_keys_pages_through_every_key(env: Env) {
    let store = env.open("default").await;
    let expected: BTreeSet<String> = (0..250).map(|i| format!("key-{i:03}")).collect();
    for key in &expected {
        store.set(key.clone(), b"x".to_vec()).await.unwrap();
    }
    let first = store.list_keys(None).await.unwrap();
    assert!(first.cursor.is_some(), "250 keys fit in one page");
    assert_eq!(all_keys(&*store).await, expected);
}

async fn concurrent_increments_add_up_exactly(env: Env) {
    let store = env.open("default").await;
    let tasks: Vec<_> = (1..=8u64)
        .map(|delta| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    store.increment("hits".into(), delta).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = 50 * (1..=8u64).sum::<u64>();
    assert_eq!(store.increment("hits".into(), 0).await.unwrap(), total);
    assert_eq!(
        store.get("hits".into()).await.unwrap(),
        Some(total.to_string().into_bytes())
    );
}

async fn increment_keeps_counters_as_decimal_text(env: Env) {
    let store = env.open("default").await;
    assert_eq!(store.increment("new".into(), 5).await.unwrap(), 5);
    assert_eq!(store.get("new".into()).await.unwrap(), Some(b"5".to_vec()));

    store.set("set".into(), b"41".to_vec()).await.unwrap();
    assert_eq!(store.increment("set".into(), 1).await.unwrap(), 42);
    assert_eq!(store.get("set".into()).await.unwrap(), Some(b"42".to_vec()));
}

async fn increment_refuses_what_is_not_a_counter(env: Env) {
    let store = env.open("default").await;
    for value in [&b"abc"[..], b"-3", b"1.5", b"007", b"\xff"] {
        store.set("k".into(), value.to_vec()).await.unwrap();
        let error = store.increment("k".into(), 1).await.unwrap_err();
        assert!(
            error.message().contains("not a decimal integer"),
            "{value:?}: {error}"
        );
        assert_eq!(store.get("k".into()).await.unwrap(), Some(value.to_vec()));
    }
}

async fn increment_refuses_to_overflow(env: Env) {
    let store = env.open("default").await;
    let max = i64::MAX.to_string().into_bytes();
    store.set("k".into(), max.clone()).await.unwrap();
    let error = store.increment("k".into(), 1).await.unwrap_err();
    assert!(error.message().contains("exceed"), "{error}");
    assert_eq!(store.get("k".into()).await.unwrap(), Some(max));

    let error = store.increment("fresh".into(), u64::MAX).await.unwrap_err();
    assert!(error.message().contains("exceed"), "{error}");
    assert!(!store.exists("fresh".into()).await.unwrap());
}

async fn batch_operations_act_on_every_key(env: Env) {
    let store = env.open("default").await;
    store
        .set_many(vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
            ("c".into(), b"3".to_vec()),
        ])
        .await
        .unwrap();
    let found = store
        .get_many(vec!["c".into(), "missing".into(), "a".into()])
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![
            Some(("c".to_string(), b"3".to_vec())),
            None,
            Some(("a".to_string(), b"1".to_vec())),
        ]
    );
    store
        .delete_many(vec!["a".into(), "c".into(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(all_keys(&*store).await, BTreeSet::from(["b".to_string()]));

    assert_eq!(store.get_many(Vec::new()).await.unwrap(), Vec::new());
    store.set_many(Vec::new()).await.unwrap();
    store.delete_many(Vec::new()).await.unwrap();
}

async fn unicode_and_special_keys_round_trip(env: Env) {
    let store = env.open("default").await;
    let keys = [
        "héllo wörld",
        "日本語のキー",
        "emoji 🦀🔑",
        "colons:and*glob?[chars]\\",
        "",
    ];
    for (i, key) in keys.iter().enumerate() {
        store.set(key.to_string(), vec![i as u8]).await.unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(key.to_string()).await.unwrap(),
            Some(vec![i as u8])
        );
    }
    let expected: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(all_keys(&*store).await, expected);
}

async fn a_four_mib_value_round_trips(env: Env) {
    let store = env.open("default").await;
    let value: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    store.set("big".into(), value.clone()).await.unwrap();
    let read = store.get("big".into()).await.unwrap().unwrap();
    assert_eq!(read.len(), value.len());
    assert!(read == value, "the value came back changed");
}

async fn data_survives_reopening_the_store(env: Env) {
    {
        let store = env.open("default").await;
        store.set("kept".into(), b"yes".to_vec()).await.unwrap();
        store.increment("count".into(), 3).await.unwrap();
    }
    let store = env.open("default").await;
    assert_eq!(
        store.get("kept".into()).await.unwrap(),
        Some(b"yes".to_vec())
    );
    assert_eq!(store.increment("count".into(), 1).await.unwrap(), 4);
}

async fn stores_do_not_see_each_others_keys(env: Env) {
    let a = env.open("a").await;
    let b = env.open("b").await;
    a.set("shared-name".into(), b"from a".to_vec())
        .await
        .unwrap();
    b.set("shared-name".into(), b"from b".to_vec())
        .await
        .unwrap();
    a.set("only-a".into(), b"1".to_vec()).await.unwrap();
    a.increment("n".into(), 1).await.unwrap();
    b.increment("n".into(), 10).await.unwrap();

    assert_eq!(
        a.get("shared-name".into()).await.unwrap(),
        Some(b"from a".to_vec())
    );
    assert_eq!(
        b.get("shared-name".into()).await.unwrap(),
        Some(b"from b".to_vec())
    );
    assert!(!b.exists("only-a".into()).await.unwrap());
    assert_eq!(b.get("n".into()).await.unwrap(), Some(b"10".to_vec()));
    assert_eq!(
        all_keys(&*b).await,
        BTreeSet::from(["shared-name".to_string(), "n".to_string()])
    );
    b.delete_many(vec!["only-a".into(), "shared-name".into()])
        .await
        .unwrap();
    assert!(a.exists("shared-name".into()).await.unwrap());
    assert!(a.exists("only-a".into()).await.unwrap());
}

/// Runs every behaviour above against one backend, one `#[tokio::test]` each.
macro_rules! backend_suite {
    ($backend:ident, $env:expr) => {
        mod $backend {
            use super::*;

            backend_suite!(@tests $env;
                set_then_get_returns_the_value,
                set_overwrites_the_previous_value,
                missing_keys_read_as_none,
                delete_removes_the_key_and_ignores_missing_ones,
                list_keys_of_an_empty_store_is_one_empty_page,
                list_keys_pages_through_every_key,
                concurrent_increments_add_up_exactly,
                increment_keeps_counters_as_decimal_text,
                increment_refuses_what_is_not_a_counter,
                increment_refuses_to_overflow,
                batch_operations_act_on_every_key,
                unicode_and_special_keys_round_trip,
                a_four_mib_value_round_trips,
                data_survives_reopening_the_store,
                stores_do_not_see_each_others_keys,
            );
        }
    };
    (@tests $env:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                super::$test($env).await
            }
        )*
    };
}

backend_suite!(disk, Env::disk());
backend_suite!(redis, Env::redis());

// How an app's stores are opened.

/// A manifest in `dir` whose components are granted `grants` (component name, store names).
fn manifest(dir: &Path, grants: &[(&str, &[&str])]) -> Manifest {
    std::fs::write(dir.join("app.wasm"), b"").unwrap();
    let mut text = String::from("[app]\nname = \"kv\"\n");
    for (i, (component, stores)) in grants.iter().enumerate() {
        let stores: Vec<String> = stores.iter().map(|s| format!("{s:?}")).collect();
        text += &format!(
            "[[route]]\npath = \"/{i}/...\"\ncomponent = \"{component}\"\n\
             [component.{component}]\nsource = \"app.wasm\"\nkey_value_stores = [{}]\n",
            stores.join(", ")
        );
    }
    Manifest::parse(&text, &dir.join("wasmgate.toml")).unwrap()
}

fn runtime_config(dir: &Path, text: &str) -> RuntimeConfig {
    RuntimeConfig::parse(text, &dir.join("runtime.toml"), |_| None).unwrap()
}

#[tokio::test]
async fn the_default_store_is_a_file_under_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &[("app", &["default"])]);
    let config = RuntimeConfig::defaults(&dir.path().join("wasmgate.toml"));
    let stores = Stores::open(&manifest, &config).await.unwrap();
    stores.grant(&manifest.components["app"]).unwrap();
    assert!(dir.path().join(".wasmgate/key-value-default.db").exists());
}

#[tokio::test]
async fn stores_no_component_is_granted_are_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &[("app", &["default"])]);
    // Nothing listens on this port: opening the store would fail.
    let port = wasmgate_testsupport::free_port();
    let config = runtime_config(
        dir.path(),
        &format!("[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\""),
    );
    Stores::open(&manifest, &config).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_fails_naming_the_store_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &[("app", &["cache"])]);
    let port = wasmgate_testsupport::free_port();
    let config = runtime_config(
        dir.path(),
        &format!(
            "[key_value_store.cache]\ntype = \"redis\"\n\
             url = \"redis://app:hunter2@127.0.0.1:{port}/0\""
        ),
    );
    let error = Stores::open(&manifest, &config)
        .await
        .err()
        .expect("opening must fail");
    assert!(
        matches!(&error, CapabilityError::Open { name, backend: "redis", .. } if name == "cache"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("\"cache\""), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_wrong_redis_password_is_not_echoed() {
    let server = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &[("app", &["cache"])]);
    // The server has no password, so AUTH with one fails.
    let config = runtime_config(
        dir.path(),
        &format!(
            "[key_value_store.cache]\ntype = \"redis\"\n\
             url = \"redis://app:hunter2@127.0.0.1:{}/0\"",
            server.port()
        ),
    );
    let error = Stores::open(&manifest, &config)
        .await
        .err()
        .expect("opening must fail");
    let message = error.to_string();
    assert!(message.contains("\"cache\""), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_redis_store_opens_and_is_granted() {
    let server = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &[("a", &["cache", "default"]), ("b", &[])]);
    let config = runtime_config(
        dir.path(),
        &format!(
            "[key_value_store.cache]\ntype = \"redis\"\nurl = \"{}\"",
            server.url()
        ),
    );
    let stores = Stores::open(&manifest, &config).await.unwrap();
    stores.grant(&manifest.components["a"]).unwrap();
    stores.grant(&manifest.components["b"]).unwrap();
}

#[tokio::test]
async fn a_granted_store_the_config_does_not_define_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &[("app", &["default", "sessions"])]);
    let config = runtime_config(dir.path(), "");
    let error = Stores::open(&manifest, &config)
        .await
        .err()
        .expect("opening must fail");
    match &error {
        CapabilityError::UnknownBackend {
            component, name, ..
        } => {
            assert_eq!(component, "app");
            assert_eq!(name, "sessions");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("[key_value_store.sessions]"));
}

#[tokio::test]
async fn a_disk_store_that_cannot_be_created_fails_naming_the_store() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the store's directory should be.
    std::fs::write(dir.path().join("blocked"), b"").unwrap();
    let manifest = manifest(dir.path(), &[("app", &["default"])]);
    let config = runtime_config(
        dir.path(),
        "[key_value_store.default]\ntype = \"disk\"\npath = \"blocked/kv.db\"",
    );
    let error = Stores::open(&manifest, &config)
        .await
        .err()
        .expect("opening must fail");
    assert!(
        matches!(&error, CapabilityError::Open { name, backend: "disk", .. } if name == "default"),
        "{error:?}"
    );
}
