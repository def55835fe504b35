//! A todo API on Wasmgate, written with `wasmgate-sdk`. See README.md for the routes.
//!
//! Where each capability is used:
//! - SQL (`sql_databases = ["default"]`): the todos themselves, in one table that works
//!   unchanged on SQLite, MariaDB/MySQL and PostgreSQL;
//! - key-value (`key_value_stores = ["default"]`): the id counter, a cache of rendered todos,
//!   and request counters, all with atomic `increment`;
//! - variables (`self_url`) and outbound HTTP (`allowed_outbound_hosts`): `/health/deep`
//!   calls this app's own `/health` over the network;
//! - logging: one record per created or deleted todo.

use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use wasmgate_sdk::http::{
    empty, header, json, json_with_status, text, HeaderValue, Method, Request, RequestExt,
    Response, StatusCode,
};
use wasmgate_sdk::kv::Store;
use wasmgate_sdk::outbound::{self, Options};
use wasmgate_sdk::sql::{Database, Row, SqlError};
use wasmgate_sdk::{config, log, params, Error};

wasmgate_sdk::http_handler!(handle);

/// The store and database names granted in wasmgate.toml.
const STORE: &str = "default";
const DATABASE: &str = "default";

/// Key-value keys. Counters are only ever read with `increment(key, 0)`.
const NEXT_ID: &str = "todos:next-id";
const REQUESTS: &str = "stats:requests";
const CREATED: &str = "stats:created";
const DELETED: &str = "stats:deleted";

fn cache_key(id: i64) -> String {
    format!("todo:{id}")
}

/// The longest title, in characters (the column is VARCHAR(200)).
const MAX_TITLE: usize = 200;

/// The one table, in SQL that SQLite, MariaDB/MySQL and PostgreSQL all accept: no
/// AUTOINCREMENT/SERIAL (ids come from a key-value counter), no BOOLEAN (`done` is 0 or 1 in
/// an INTEGER, which reads back the same everywhere), and VARCHAR with a length (MySQL needs
/// one).
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS todos (\
     id BIGINT NOT NULL PRIMARY KEY, \
     title VARCHAR(200) NOT NULL, \
     done INTEGER NOT NULL)";

#[derive(Debug, Serialize)]
struct Todo {
    id: i64,
    title: String,
    done: bool,
}

impl Todo {
    fn from_row(row: &Row) -> Result<Todo, SqlError> {
        Ok(Todo {
            id: row.get("id")?,
            title: row.get("title")?,
            done: row.get("done")?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTodo {
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TodoPatch {
    title: Option<String>,
    done: Option<bool>,
}

fn handle(request: Request) -> Result<Response, Error> {
    let segments = request.path_segments();
    // Liveness answers without touching any backend, so it stays up when they are down.
    if segments == ["health"] {
        return Ok(text(StatusCode::OK, "ok"));
    }
    let store = Store::open(STORE)?;
    store.increment(REQUESTS, 1)?;
    match (request.method(), segments.as_slice()) {
        (&Method::GET, ["health", "deep"]) => deep_health(&store),
        (&Method::GET, ["stats"]) => stats(&store),
        (&Method::GET, ["todos"]) => list(&request),
        (&Method::POST, ["todos"]) => create(&store, &request),
        (method, ["todos", id]) => {
            let id = parse_id(id)?;
            match *method {
                Method::GET => get(&store, id),
                Method::PATCH => update(&store, id, &request),
                Method::DELETE => delete(&store, id),
                _ => Err(Error::method_not_allowed()),
            }
        }
        (_, ["health", "deep"] | ["stats"] | ["todos"]) => Err(Error::method_not_allowed()),
        _ => Err(Error::not_found("no such route")),
    }
}

/// Opens the database and makes sure the table exists. Instances live for one request, so
/// this runs per request; `CREATE TABLE IF NOT EXISTS` on an existing table is cheap.
fn database() -> Result<Database, Error> {
    let db = Database::open(DATABASE)?;
    db.execute(SCHEMA, &[])?;
    Ok(db)
}

/// Ids are positive integers; anything else cannot name a todo.
fn parse_id(text: &str) -> Result<i64, Error> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::not_found(format!("no todo {text:?}")))
}

fn no_such_todo(id: i64) -> Error {
    Error::not_found(format!("no todo {id}"))
}

fn valid_title(title: &str) -> Result<String, Error> {
    let title = title.trim();
    if title.is_empty() {
        return Err(Error::bad_request("title must not be empty"));
    }
    if title.chars().count() > MAX_TITLE {
        return Err(Error::bad_request(format!(
            "title must be at most {MAX_TITLE} characters"
        )));
    }
    Ok(title.to_string())
}

/// `GET /todos[?done=true|false]`
fn list(request: &Request) -> Result<Response, Error> {
    let db = database()?;
    let rows = match request.query_param("done").as_deref() {
        None => db.query("SELECT id, title, done FROM todos ORDER BY id", &[])?,
        Some(flag @ ("true" | "false")) => db.query(
            "SELECT id, title, done FROM todos WHERE done = ? ORDER BY id",
            params![flag == "true"],
        )?,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "done must be true or false, not {other:?}"
            )))
        }
    };
    let todos = rows
        .iter()
        .map(|row| Todo::from_row(&row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json(&todos))
}

/// `POST /todos {"title": "..."}`
fn create(store: &Store, request: &Request) -> Result<Response, Error> {
    let new: NewTodo = request.json()?;
    let title = valid_title(&new.title)?;
    let db = database()?;
    let id = insert(&db, store, &title)?;
    let todo = Todo {
        id,
        title,
        done: false,
    };
    store.set(&cache_key(id), render(&todo)?)?;
    store.increment(CREATED, 1)?;
    log::info!("created todo {id}");
    let mut response = json_with_status(StatusCode::CREATED, &todo);
    if let Ok(location) = HeaderValue::from_str(&format!("/todos/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Inserts a todo with the next id from the key-value counter. If that id is taken, the
/// counter is behind the table (the key-value store was reset, or points at a fresh backend
/// while the database does not): it is moved past the largest id and the insert tried once
/// more.
fn insert(db: &Database, store: &Store, title: &str) -> Result<i64, Error> {
    const INSERT: &str = "INSERT INTO todos (id, title, done) VALUES (?, ?, ?)";
    let id = next_id(store, 1)?;
    match db.execute(INSERT, params![id, title, false]) {
        Ok(_) => Ok(id),
        Err(SqlError::ConstraintViolation(_)) => {
            let rows = db.query("SELECT COALESCE(MAX(id), 0) AS max_id FROM todos", &[])?;
            let max: i64 = match rows.first() {
                Some(row) => row.get("max_id")?,
                None => 0,
            };
            let behind = u64::try_from(max.saturating_sub(id)).unwrap_or(0);
            let id = next_id(store, behind + 1)?;
            log::warn!("id counter was behind the table; moved it to {id}");
            db.execute(INSERT, params![id, title, false])?;
            Ok(id)
        }
        Err(error) => Err(error.into()),
    }
}

fn next_id(store: &Store, step: u64) -> Result<i64, Error> {
    let id = store.increment(NEXT_ID, step)?;
    i64::try_from(id).map_err(|_| Error::internal(format!("id counter overflow at {id}")))
}

/// `GET /todos/{id}`: from the key-value cache when it has the todo (`x-cache: hit`), else
/// from the database, then cached (`x-cache: miss`).
fn get(store: &Store, id: i64) -> Result<Response, Error> {
    let key = cache_key(id);
    if let Some(cached) = store.get(&key)? {
        return Ok(rendered(cached, "hit"));
    }
    let db = database()?;
    let todo = load(&db, id)?.ok_or_else(|| no_such_todo(id))?;
    let body = render(&todo)?;
    store.set(&key, &body)?;
    Ok(rendered(body, "miss"))
}

fn load(db: &Database, id: i64) -> Result<Option<Todo>, Error> {
    let rows = db.query(
        "SELECT id, title, done FROM todos WHERE id = ?",
        params![id],
    )?;
    Ok(rows.first().map(|row| Todo::from_row(&row)).transpose()?)
}

fn render(todo: &Todo) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(todo).map_err(|error| Error::internal(format!("rendering: {error}")))
}

/// A JSON body rendered earlier, with where it came from.
fn rendered(body: Vec<u8>, cache: &'static str) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-cache", HeaderValue::from_static(cache));
    response
}

/// `PATCH /todos/{id} {"done": true, "title": "..."}` (either or both).
fn update(store: &Store, id: i64, request: &Request) -> Result<Response, Error> {
    let patch: TodoPatch = request.json()?;
    let title = patch.title.as_deref().map(valid_title).transpose()?;
    let db = database()?;
    // The update and the read of the result in one transaction, so the response shows
    // exactly this change even if another request changes the todo at the same time.
    let tx = db.transaction()?;
    let matched = match (&title, patch.done) {
        (Some(title), Some(done)) => tx.execute(
            "UPDATE todos SET title = ?, done = ? WHERE id = ?",
            params![title, done, id],
        )?,
        (Some(title), None) => tx.execute(
            "UPDATE todos SET title = ? WHERE id = ?",
            params![title, id],
        )?,
        (None, Some(done)) => {
            tx.execute("UPDATE todos SET done = ? WHERE id = ?", params![done, id])?
        }
        (None, None) => {
            return Err(Error::bad_request(
                "nothing to change: send \"title\" and/or \"done\"",
            ))
        }
    };
    if matched == 0 {
        return Err(no_such_todo(id));
    }
    let todo = load(&tx, id)?.ok_or_else(|| no_such_todo(id))?;
    tx.commit()?;
    store.delete(&cache_key(id))?;
    Ok(json(&todo))
}

/// `DELETE /todos/{id}`
fn delete(store: &Store, id: i64) -> Result<Response, Error> {
    let db = database()?;
    let deleted = db.execute("DELETE FROM todos WHERE id = ?", params![id])?;
    if deleted == 0 {
        return Err(no_such_todo(id));
    }
    store.delete(&cache_key(id))?;
    store.increment(DELETED, 1)?;
    log::info!("deleted todo {id}");
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `GET /stats`: request and change counters (this request included).
fn stats(store: &Store) -> Result<Response, Error> {
    Ok(json(&json!({
        "requests": store.increment(REQUESTS, 0)?,
        "created": store.increment(CREATED, 0)?,
        "deleted": store.increment(DELETED, 0)?,
    })))
}

/// `GET /health/deep`: this app's `/health` fetched over outbound HTTP from the `self_url`
/// variable, plus a query on each backend. 200 when all are fine, else 503; the body says
/// what each check found.
fn deep_health(store: &Store) -> Result<Response, Error> {
    let base = config::require("self_url")?;
    let url = format!("{}/health", base.trim_end_matches('/'));
    let options = Options::new()
        .connect_timeout(Duration::from_secs(2))
        .first_byte_timeout(Duration::from_secs(5));
    let (upstream_ok, upstream) = match outbound::get_with(&url, &options) {
        Ok(response) => (
            response.status().is_success(),
            json!({ "url": url, "status": response.status().as_u16() }),
        ),
        Err(error) => (false, json!({ "url": url, "error": error.to_string() })),
    };
    let database = database().and_then(|db| Ok(db.query("SELECT 1 AS one", &[])?));
    let key_value = store.increment(REQUESTS, 0);
    let healthy = upstream_ok && database.is_ok() && key_value.is_ok();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_with_status(
        status,
        &json!({
            "healthy": healthy,
            "upstream": upstream,
            "database": check(database.map(drop).map_err(|error| error.message().to_string())),
            "key_value": check(key_value.map(drop).map_err(|error| error.to_string())),
        }),
    ))
}

fn check(result: Result<(), String>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(error) => error,
    }
}
