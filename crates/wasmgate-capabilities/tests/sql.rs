//! `wasmgate:sql`'s host side, specified once and run against every backend: an embedded
//! SQLite file, a real MariaDB server and a real PostgreSQL server (started by
//! wasmgate-testsupport; their binaries must be installed).
//!
//! Each backend gets one test that runs the whole suite in order, because starting a server
//! per behaviour would dominate the run time; every step names the behaviour it checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use wasmgate_capabilities::sql::{Database, Grant, RowSet, Session, SqlError, Value};
use wasmgate_manifest::{SecretUrl, SqlBackend};
use wasmgate_testsupport::{mariadb::MariaDb, postgres::Postgres};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavor {
    Sqlite,
    MariaDb,
    Postgres,
}

impl Flavor {
    fn blob_type(self) -> &'static str {
        match self {
            Flavor::Sqlite => "BLOB",
            // BLOB holds only 64 KiB on MariaDB.
            Flavor::MariaDb => "LONGBLOB",
            Flavor::Postgres => "BYTEA",
        }
    }

    fn float_type(self) -> &'static str {
        match self {
            Flavor::Sqlite => "REAL",
            Flavor::MariaDb => "DOUBLE",
            Flavor::Postgres => "DOUBLE PRECISION",
        }
    }

    fn timestamp_type(self) -> &'static str {
        match self {
            Flavor::MariaDb => "DATETIME(6)",
            _ => "TIMESTAMP",
        }
    }
}

/// One backend under test: how to open it, and whatever keeps its server or file alive.
struct Target {
    flavor: Flavor,
    config: SqlBackend,
    _keep: Box<dyn std::any::Any>,
}

impl Target {
    async fn open(&self) -> Database {
        Database::open("main", &self.config)
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", self.flavor))
    }
}

fn sqlite_target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: opening must create it.
    let path: PathBuf = dir.path().join("state").join("sql-main.db");
    Target {
        flavor: Flavor::Sqlite,
        config: SqlBackend::Sqlite { path },
        _keep: Box::new(dir),
    }
}

fn mariadb_target() -> Target {
    let server = MariaDb::start();
    Target {
        flavor: Flavor::MariaDb,
        config: SqlBackend::Mysql {
            url: SecretUrl::new(server.url()),
            max_connections: 4,
        },
        _keep: Box::new(server),
    }
}

fn postgres_target() -> Target {
    let server = Postgres::start();
    Target {
        flavor: Flavor::Postgres,
        config: SqlBackend::Postgres {
            url: SecretUrl::new(server.url()),
            max_connections: 4,
        },
        _keep: Box::new(server),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backend_behaves_as_specified() {
    suite(sqlite_target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_backend_behaves_as_specified() {
    suite(mariadb_target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend_behaves_as_specified() {
    suite(postgres_target()).await;
}

async fn suite(target: Target) {
    let db = target.open().await;
    let flavor = target.flavor;
    let mut s = db.connect().await.unwrap();
    creates_a_table(&mut s, flavor).await;
    every_value_kind_round_trips(&mut s).await;
    unicode_text_round_trips(&mut s).await;
    a_four_mebibyte_blob_round_trips(&mut s).await;
    rows_affected_counts_matched_rows(&mut s).await;
    constraint_violations_are_reported_as_such(&mut s).await;
    syntax_errors_are_reported_as_such(&mut s).await;
    a_wrong_number_of_parameters_is_an_error(&mut s).await;
    question_marks_in_string_literals_are_not_placeholders(&mut s).await;
    dates_and_times_are_iso_8601_text(&mut s, flavor).await;
    if flavor != Flavor::Sqlite {
        decimals_are_exact_text(&mut s).await;
    }
    explicit_rollback_discards_changes(&db).await;
    committed_transactions_are_visible_to_other_connections(&db).await;
    dropping_a_connection_rolls_back_its_transaction(&db).await;
    drop(s);
    drop(db);
    data_persists_across_reopening(&target).await;
}

async fn creates_a_table(s: &mut Session, flavor: Flavor) {
    let sql = format!(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score {}, data {}, note TEXT)",
        flavor.float_type(),
        flavor.blob_type()
    );
    s.execute(&sql, vec![]).await.expect("create table");
}

async fn select_one(s: &mut Session, id: i64) -> Vec<Value> {
    let rows = s
        .query(
            "SELECT id, name, score, data, note FROM items WHERE id = ?",
            vec![Value::Int64(id)],
        )
        .await
        .unwrap();
    assert_eq!(rows.columns, ["id", "name", "score", "data", "note"]);
    assert_eq!(rows.rows.len(), 1, "row {id}: {rows:?}");
    rows.rows.into_iter().next().unwrap()
}

async fn insert(s: &mut Session, id: i64, name: &str) -> Result<u64, SqlError> {
    s.execute(
        "INSERT INTO items (id, name) VALUES (?, ?)",
        vec![Value::Int64(id), Value::Text(name.into())],
    )
    .await
}

async fn count(s: &mut Session, id: i64) -> i64 {
    let rows = s
        .query(
            "SELECT COUNT(*) FROM items WHERE id = ?",
            vec![Value::Int64(id)],
        )
        .await
        .unwrap();
    match rows.rows[0][0] {
        Value::Int64(n) => n,
        ref other => panic!("COUNT(*) gave {other:?}"),
    }
}

async fn every_value_kind_round_trips(s: &mut Session) {
    let values = vec![
        Value::Int64(1),
        Value::Text("plain".into()),
        Value::Float64(2.5),
        Value::Blob(vec![0, 1, 2, 254, 255]),
        Value::Null,
    ];
    let changed = s
        .execute(
            "INSERT INTO items (id, name, score, data, note) VALUES (?, ?, ?, ?, ?)",
            values.clone(),
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(select_one(s, 1).await, values);
    // Large and negative integers keep every bit.
    insert(s, i64::MIN + 1, "min").await.unwrap();
    assert_eq!(
        select_one(s, i64::MIN + 1).await[0],
        Value::Int64(i64::MIN + 1)
    );
    s.execute(
        "DELETE FROM items WHERE id = ?",
        vec![Value::Int64(i64::MIN + 1)],
    )
    .await
    .unwrap();
}

async fn unicode_text_round_trips(s: &mut Session) {
    let text = "héllo wörld ✓ 日本語 🚀 ʕ•ᴥ•ʔ".to_string();
    s.execute(
        "INSERT INTO items (id, name) VALUES (?, ?)",
        vec![Value::Int64(2), Value::Text(text.clone())],
    )
    .await
    .unwrap();
    assert_eq!(select_one(s, 2).await[1], Value::Text(text));
}

async fn a_four_mebibyte_blob_round_trips(s: &mut Session) {
    let blob: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    s.execute(
        "INSERT INTO items (id, name, data) VALUES (?, ?, ?)",
        vec![
            Value::Int64(3),
            Value::Text("big".into()),
            Value::Blob(blob.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(select_one(s, 3).await[3], Value::Blob(blob));
}

async fn rows_affected_counts_matched_rows(s: &mut Session) {
    for id in 10..13 {
        assert_eq!(insert(s, id, "batch").await.unwrap(), 1);
    }
    let update = "UPDATE items SET note = ? WHERE name = ?";
    let args = || vec![Value::Text("seen".into()), Value::Text("batch".into())];
    assert_eq!(s.execute(update, args()).await.unwrap(), 3);
    // Rows matched but left unchanged still count, on every backend.
    assert_eq!(s.execute(update, args()).await.unwrap(), 3);
    assert_eq!(
        s.execute("DELETE FROM items WHERE id >= ?", vec![Value::Int64(12)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.execute("DELETE FROM items WHERE id = ?", vec![Value::Int64(999)])
            .await
            .unwrap(),
        0
    );
}

async fn constraint_violations_are_reported_as_such(s: &mut Session) {
    match insert(s, 1, "duplicate").await {
        Err(SqlError::ConstraintViolation(_)) => {}
        other => panic!("duplicate primary key gave {other:?}"),
    }
    let null_name = s
        .execute(
            "INSERT INTO items (id, name) VALUES (?, ?)",
            vec![Value::Int64(50), Value::Null],
        )
        .await;
    assert!(
        matches!(null_name, Err(SqlError::ConstraintViolation(_))),
        "NULL in a NOT NULL column gave {null_name:?}"
    );
}

async fn syntax_errors_are_reported_as_such(s: &mut Session) {
    match s.query("SELEC id FROM items", vec![]).await {
        Err(SqlError::Syntax(message)) => assert!(!message.is_empty()),
        other => panic!("a misspelt keyword gave {other:?}"),
    }
    match s
        .execute(
            "INSERT INTO items (id, name VALUES (?, ?)",
            vec![Value::Int64(1), Value::Null],
        )
        .await
    {
        Err(SqlError::Syntax(_)) => {}
        other => panic!("a missing parenthesis gave {other:?}"),
    }
}

async fn a_wrong_number_of_parameters_is_an_error(s: &mut Session) {
    let result = s.query("SELECT name FROM items WHERE id = ?", vec![]).await;
    assert!(result.is_err(), "{result:?}");
}

async fn question_marks_in_string_literals_are_not_placeholders(s: &mut Session) {
    let rows = s
        .query(
            "SELECT name, 'why?' AS q, ? AS echo FROM items WHERE id = ? -- any?",
            vec![Value::Text("echoed".into()), Value::Int64(1)],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        RowSet {
            columns: vec!["name".into(), "q".into(), "echo".into()],
            rows: vec![vec![
                Value::Text("plain".into()),
                Value::Text("why?".into()),
                Value::Text("echoed".into())
            ]],
        }
    );
}

async fn dates_and_times_are_iso_8601_text(s: &mut Session, flavor: Flavor) {
    s.execute(
        &format!(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, day DATE, at {})",
            flavor.timestamp_type()
        ),
        vec![],
    )
    .await
    .unwrap();
    s.execute(
        "INSERT INTO events (id, day, at) VALUES (?, ?, ?)",
        vec![
            Value::Int64(1),
            Value::Text("2024-02-29".into()),
            Value::Text("2024-05-01T13:45:00.250000".into()),
        ],
    )
    .await
    .unwrap();
    let rows = s.query("SELECT day, at FROM events", vec![]).await.unwrap();
    assert_eq!(
        rows.rows,
        [[
            Value::Text("2024-02-29".into()),
            Value::Text("2024-05-01T13:45:00.250000".into())
        ]]
    );
}

async fn decimals_are_exact_text(s: &mut Session) {
    s.execute(
        "CREATE TABLE prices (id INTEGER PRIMARY KEY, amount DECIMAL(30,2))",
        vec![],
    )
    .await
    .unwrap();
    s.execute(
        "INSERT INTO prices (id, amount) VALUES (?, ?), (?, ?)",
        vec![
            Value::Int64(1),
            Value::Text("1234567890123456789012.50".into()),
            Value::Int64(2),
            Value::Int64(-7),
        ],
    )
    .await
    .unwrap();
    let rows = s
        .query("SELECT amount FROM prices ORDER BY id", vec![])
        .await
        .unwrap();
    assert_eq!(
        rows.rows,
        [
            [Value::Text("1234567890123456789012.50".into())],
            [Value::Text("-7.00".into())]
        ]
    );
}

async fn explicit_rollback_discards_changes(db: &Database) {
    let mut s = db.connect().await.unwrap();
    s.begin().await.unwrap();
    assert!(s.in_transaction());
    insert(&mut s, 100, "rolled back").await.unwrap();
    assert_eq!(
        count(&mut s, 100).await,
        1,
        "visible inside the transaction"
    );
    s.rollback().await.unwrap();
    assert!(!s.in_transaction());
    assert_eq!(count(&mut s, 100).await, 0);
    assert!(s.commit().await.is_err(), "commit without a transaction");
}

async fn committed_transactions_are_visible_to_other_connections(db: &Database) {
    let mut writer = db.connect().await.unwrap();
    let mut reader = db.connect().await.unwrap();
    writer.begin().await.unwrap();
    insert(&mut writer, 101, "committed").await.unwrap();
    assert_eq!(
        count(&mut reader, 101).await,
        0,
        "not visible before commit"
    );
    writer.commit().await.unwrap();
    assert_eq!(count(&mut reader, 101).await, 1);
}

async fn dropping_a_connection_rolls_back_its_transaction(db: &Database) {
    let mut s = db.connect().await.unwrap();
    s.begin().await.unwrap();
    insert(&mut s, 200, "abandoned").await.unwrap();
    drop(s);
    // Inserting the same key again needs the abandoned transaction's locks gone: it waits
    // for the rollback and then succeeds (a leaked transaction would make it fail or hang).
    let mut s = db.connect().await.unwrap();
    assert_eq!(count(&mut s, 200).await, 0);
    insert(&mut s, 200, "second try").await.unwrap();
    assert_eq!(
        select_one(&mut s, 200).await[1],
        Value::Text("second try".into())
    );

    // The same through SQL text rather than `begin`.
    let mut s = db.connect().await.unwrap();
    s.execute("BEGIN", vec![]).await.unwrap();
    assert!(s.in_transaction());
    insert(&mut s, 201, "abandoned").await.unwrap();
    drop(s);
    let mut s = db.connect().await.unwrap();
    insert(&mut s, 201, "second try").await.unwrap();
}

async fn data_persists_across_reopening(target: &Target) {
    let db = target.open().await;
    let mut s = db.connect().await.unwrap();
    assert_eq!(select_one(&mut s, 1).await[1], Value::Text("plain".into()));
    assert_eq!(count(&mut s, 101).await, 1);
    assert_eq!(count(&mut s, 100).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_databases_open() {
    let target = sqlite_target();
    let db = target.open().await;
    let grant = Grant::of([db]);
    assert!(grant.open("main").await.is_ok());
    assert!(matches!(
        grant.open("other").await,
        Err(SqlError::NoSuchDatabase)
    ));
    assert!(matches!(
        Grant::default().open("main").await,
        Err(SqlError::NoSuchDatabase)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_without_revealing_them() {
    let maria = MariaDb::start();
    let pg = Postgres::start();
    let secret = "Wr0ng-Secret-Value";
    let configs = BTreeMap::from([
        (
            "maria",
            SqlBackend::Mysql {
                url: SecretUrl::new(format!(
                    "mysql://wasmgate:{secret}@127.0.0.1:{}/wasmgate",
                    maria.port()
                )),
                max_connections: 1,
            },
        ),
        (
            "pg",
            SqlBackend::Postgres {
                url: SecretUrl::new(format!(
                    "postgres://wasmgate:{secret}@127.0.0.1:{}/wasmgate",
                    pg.port()
                )),
                max_connections: 1,
            },
        ),
    ]);
    for (name, config) in configs {
        let error = Database::open(name, &config).await.unwrap_err().to_string();
        assert!(error.contains(name), "{error}");
        assert!(!error.contains(secret), "{error}");
        assert!(
            !error.contains("mysql://") && !error.contains("postgres://"),
            "{error}"
        );
    }
}
