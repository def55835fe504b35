//! A notes API written the way programs for WasmEdge are: hyper on tokio serving
//! 0.0.0.0:8080, and mysql_async talking to MySQL or MariaDB over the same socket extension.
//! Wasmgate runs it unchanged with `executor = "service"`.
//!
//! Endpoints:
//! - `GET /health` answers 200 when a pooled connection answers `SELECT 1`, else 503 with
//!   the client's error;
//! - `POST /notes` stores the request body (UTF-8 text) as a note and answers 201 with
//!   `{"id": N}`;
//! - `GET /notes` lists every note as a JSON array of `{"id": N, "body": "..."}`, oldest first.
//!
//! The database comes from `DATABASE_URL` (`mysql://user:password@host:port/database`), set by
//! the manifest's `environment` table. The program listens before it reaches the database and
//! reports database failures per request (503 when no connection can be made, 500 when a
//! query fails), so a wrong password or an unreachable server never stops it serving.

use hyper::server::conn::Http;
use hyper::service::service_fn;
use hyper::{Body, Method, Request, Response, StatusCode};
use mysql_async::prelude::{Query, Queryable, WithParams};
use mysql_async::{Opts, Pool};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Notes longer than this are refused with 413: the column is a TEXT (64 KiB).
const MAX_NOTE: usize = 60 << 10;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS notes (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    body TEXT NOT NULL
) CHARACTER SET utf8mb4";

/// Why a request could not be served from the database.
enum DbError {
    /// No connection: wrong credentials, refused or unreachable server.
    Unavailable(mysql_async::Error),
    /// Connected, but a statement failed.
    Query(mysql_async::Error),
}

impl DbError {
    fn response(&self) -> Response<Body> {
        match self {
            DbError::Unavailable(e) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database unavailable: {e}\n"),
            ),
            DbError::Query(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("database error: {e}\n"),
            ),
        }
    }
}

struct Notes {
    pool: Pool,
}

impl Notes {
    async fn connection(&self) -> Result<mysql_async::Conn, DbError> {
        let mut conn = self.pool.get_conn().await.map_err(DbError::Unavailable)?;
        // Idempotent and cheap; running it per connection means a database created or
        // emptied after start-up still works, without start-up ordering between the two.
        conn.query_drop(SCHEMA).await.map_err(DbError::Query)?;
        Ok(conn)
    }

    async fn health(&self) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await.map_err(DbError::Unavailable)?;
        let one: Option<u8> = conn.query_first("SELECT 1").await.map_err(DbError::Query)?;
        match one {
            Some(1) => Ok(()),
            _ => Err(DbError::Query(mysql_async::Error::Other(
                "SELECT 1 did not answer 1".into(),
            ))),
        }
    }

    async fn insert(&self, body: String) -> Result<u64, DbError> {
        let mut conn = self.connection().await?;
        "INSERT INTO notes (body) VALUES (?)"
            .with((body,))
            .ignore(&mut conn)
            .await
            .map_err(DbError::Query)?;
        Ok(conn.last_insert_id().unwrap_or(0))
    }

    async fn list(&self) -> Result<Vec<(u64, String)>, DbError> {
        let mut conn = self.connection().await?;
        conn.query("SELECT id, body FROM notes ORDER BY id")
            .await
            .map_err(DbError::Query)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "DATABASE_URL is not set (mysql://user:password@host:port/database)")?;
    let opts = Opts::from_url(&url).map_err(|e| format!("DATABASE_URL is not valid: {e}"))?;
    let notes = Arc::new(Notes {
        pool: Pool::new(opts),
    });

    let addr = SocketAddr::from(([0, 0, 0, 0], 8080));
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {addr}");
    loop {
        let (stream, _peer) = listener.accept().await?;
        let notes = notes.clone();
        tokio::task::spawn(async move {
            let service = service_fn(move |request| handle(notes.clone(), request));
            if let Err(error) = Http::new().serve_connection(stream, service).await {
                eprintln!("connection error: {error}");
            }
        });
    }
}

async fn handle(notes: Arc<Notes>, request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => match notes.health().await {
            Ok(()) => text(StatusCode::OK, "ok\n".to_string()),
            Err(e) => e.response(),
        },
        (&Method::POST, "/notes") => match read_note(request).await {
            Err(response) => response,
            Ok(body) => match notes.insert(body).await {
                Ok(id) => json(StatusCode::CREATED, serde_json::json!({ "id": id })),
                Err(e) => e.response(),
            },
        },
        (&Method::GET, "/notes") => match notes.list().await {
            Ok(rows) => {
                let list: Vec<_> = rows
                    .into_iter()
                    .map(|(id, body)| serde_json::json!({ "id": id, "body": body }))
                    .collect();
                json(StatusCode::OK, serde_json::Value::Array(list))
            }
            Err(e) => e.response(),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    Ok(response)
}

/// The request body as a note, or the response refusing it.
async fn read_note(request: Request<Body>) -> Result<String, Response<Body>> {
    let bytes = hyper::body::to_bytes(request.into_body())
        .await
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("body error: {e}\n")))?;
    if bytes.len() > MAX_NOTE {
        return Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a note is at most {MAX_NOTE} bytes\n"),
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        text(
            StatusCode::BAD_REQUEST,
            "a note must be UTF-8 text\n".into(),
        )
    })
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}
