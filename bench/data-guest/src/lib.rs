//! The data benchmark's guest: every request reads one key from the `default` key-value store
//! and runs one indexed SQL query on the `default` database, then answers with both values.
//! The first request finds the key missing and creates the key and a 100-row table first.

use wasmgate_sdk::http::{text, Request, Response, StatusCode};
use wasmgate_sdk::kv::Store;
use wasmgate_sdk::sql::Database;
use wasmgate_sdk::{params, Error};

wasmgate_sdk::http_handler!(handle);

fn handle(_request: Request) -> Result<Response, Error> {
    let store = Store::open("default")?;
    let greeting = match store.get("greeting")? {
        Some(greeting) => greeting,
        None => {
            setup(&store)?;
            b"Hello".to_vec()
        }
    };
    let rows = Database::open("default")?.query(
        "SELECT title FROM items WHERE id = ?",
        params![7_i64],
    )?;
    let title: String = rows
        .iter()
        .next()
        .ok_or_else(|| Error::new(StatusCode::NOT_FOUND, "item 7 is missing"))?
        .get("title")?;
    let mut body = greeting;
    body.extend_from_slice(b", ");
    body.extend_from_slice(title.as_bytes());
    Ok(text(StatusCode::OK, String::from_utf8_lossy(&body).into_owned()))
}

fn setup(store: &Store) -> Result<(), Error> {
    let db = Database::open("default")?;
    db.execute(
        "CREATE TABLE IF NOT EXISTS items (id BIGINT NOT NULL PRIMARY KEY, title VARCHAR(100) NOT NULL)",
        params![],
    )?;
    db.execute("DELETE FROM items", params![])?;
    for id in 1..=100_i64 {
        db.execute(
            "INSERT INTO items (id, title) VALUES (?, ?)",
            params![id, format!("item {id}")],
        )?;
    }
    // Last, so a failed setup is redone by the next request.
    store.set("greeting", b"Hello")?;
    Ok(())
}
