//! A WASI 0.2 component that is its own HTTP/1.1 server, written with nothing but Rust std:
//! `TcpListener` on `wasm32-wasip2` is `wasi:sockets`. Wasmgate's `service` executor runs it,
//! maps the port it binds to a loopback port of its own, and proxies routes to it.
//!
//! There are no threads on wasm32-wasip2 and std has no `poll`, so one loop serves every
//! connection: all sockets are non-blocking, and the loop naps when no socket had anything to
//! do (1 ms, growing to 10 ms while nothing happens). That keeps idle keep-alive connections
//! (the gateway pools them) from blocking new ones. With no connection open at all, the loop
//! waits in a blocking `accept` instead, which costs no CPU.
//!
//! Paths:
//! - `GET /` a greeting; `GET /whoami` the address the listener really got (one per replica);
//! - `POST /echo` the request body back;
//! - `GET /bind?port=N` tries to bind another port, `GET /connect?addr=IP:PORT` tries to
//!   connect out, `GET /udp?addr=IP:PORT` sends a datagram `ping` there: each answers
//!   `ok ...` or `error <kind>: <message>` (what the sandbox allowed);
//! - `GET /sleep?ms=N` answers after N ms (holding up every connection: a slow request);
//! - `GET /exit?code=N` answers, then exits with that code (to see the supervisor restart it).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// What the program binds, as written in its code; the manifest declares port 8080.
const LISTEN: &str = "0.0.0.0:8080";
/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 << 10;
/// Largest request body accepted.
const MAX_BODY: usize = 8 << 20;
/// How long the loop naps when no socket was ready, at first and at most.
const IDLE_NAP: Duration = Duration::from_millis(1);
const MAX_NAP: Duration = Duration::from_millis(10);

fn main() {
    let listener = match TcpListener::bind(LISTEN) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot bind {LISTEN}: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("cannot make the listener non-blocking: {e}");
        std::process::exit(1);
    }
    let local = listener
        .local_addr()
        .map_or_else(|e| format!("unknown ({e})"), |a| a.to_string());
    println!("listening on {LISTEN} (the socket reports {local})");

    let mut connections: Vec<Connection> = Vec::new();
    let mut nap = IDLE_NAP;
    loop {
        let mut busy = false;
        if connections.is_empty() {
            // Nothing to serve: block in accept rather than spin.
            if let Some(connection) = accept_blocking(&listener) {
                connections.push(connection);
            }
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    busy = true;
                    match stream.set_nonblocking(true) {
                        Ok(()) => connections.push(Connection::new(stream)),
                        Err(e) => eprintln!("dropping a connection: {e}"),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    break;
                }
            }
        }
        connections.retain_mut(|connection| match connection.step(&local) {
            Step::Idle => true,
            Step::Progress => {
                busy = true;
                true
            }
            Step::Closed => {
                busy = true;
                false
            }
        });
        if busy {
            nap = IDLE_NAP;
        } else {
            std::thread::sleep(nap);
            nap = (nap * 2).min(MAX_NAP);
        }
    }
}

/// Waits for one connection with the listener in blocking mode.
fn accept_blocking(listener: &TcpListener) -> Option<Connection> {
    let accepted = listener
        .set_nonblocking(false)
        .and_then(|()| listener.accept());
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("cannot make the listener non-blocking again: {e}");
        std::process::exit(1);
    }
    match accepted.and_then(|(stream, _)| stream.set_nonblocking(true).map(|()| stream)) {
        Ok(stream) => Some(Connection::new(stream)),
        Err(e) => {
            eprintln!("accept failed: {e}");
            None
        }
    }
}

enum Step {
    Idle,
    Progress,
    Closed,
}

struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed by a complete request.
    pending: Vec<u8>,
}

struct Request {
    method: String,
    target: String,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Connection {
    fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            pending: Vec::new(),
        }
    }

    /// Reads what is there, answers every complete request, and says whether anything happened.
    fn step(&mut self, local: &str) -> Step {
        let mut progress = false;
        let mut chunk = [0u8; 16 << 10];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Step::Closed,
                Ok(n) => {
                    progress = true;
                    self.pending.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Step::Closed,
            }
        }
        loop {
            let request = match self.take_request() {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(status) => {
                    let _ = self.respond(status, b"bad request\n", false);
                    return Step::Closed;
                }
            };
            progress = true;
            let (status, body, exit) = handle(&request, local);
            if self.respond(status, &body, request.keep_alive).is_err() {
                return Step::Closed;
            }
            if let Some(code) = exit {
                println!("exiting with code {code}, as asked");
                std::process::exit(code);
            }
            if !request.keep_alive {
                return Step::Closed;
            }
        }
        if progress {
            Step::Progress
        } else {
            Step::Idle
        }
    }

    /// The next complete request in `pending`, if one has fully arrived.
    fn take_request(&mut self) -> Result<Option<Request>, &'static str> {
        let Some(head_end) = find(&self.pending, b"\r\n\r\n") else {
            return if self.pending.len() > MAX_HEAD {
                Err("431 Request Header Fields Too Large")
            } else {
                Ok(None)
            };
        };
        let head = std::str::from_utf8(&self.pending[..head_end])
            .map_err(|_| "400 Bad Request")?
            .to_string();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_string();
        let target = request_line.next().unwrap_or_default().to_string();
        let version = request_line.next().unwrap_or_default();
        if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
            return Err("400 Bad Request");
        }
        let mut length = 0usize;
        let mut keep_alive = version == "HTTP/1.1";
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err("400 Bad Request");
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(|_| "400 Bad Request")?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked bodies are not needed by this example; refuse rather than misread.
                return Err("501 Not Implemented");
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            }
        }
        if length > MAX_BODY {
            return Err("413 Content Too Large");
        }
        let body_start = head_end + 4;
        if self.pending.len() < body_start + length {
            return Ok(None);
        }
        let body = self.pending[body_start..body_start + length].to_vec();
        self.pending.drain(..body_start + length);
        Ok(Some(Request {
            method,
            target,
            body,
            keep_alive,
        }))
    }

    fn respond(&mut self, status: &str, body: &[u8], keep_alive: bool) -> std::io::Result<()> {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let mut message = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: {connection}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        message.extend_from_slice(body);
        write_all(&mut self.stream, &message)
    }
}

/// `write_all` for a non-blocking socket: waits out `WouldBlock` instead of failing.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(IDLE_NAP),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of `key` in the target's query string.
fn query<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// Status, body, and an exit code when the request asked the program to exit.
fn handle(request: &Request, local: &str) -> (&'static str, Vec<u8>, Option<i32>) {
    let path = request.target.split('?').next().unwrap_or_default();
    match (request.method.as_str(), path) {
        ("GET", "/") => (
            "200 OK",
            b"hello from a WASI 0.2 component with its own server\n".to_vec(),
            None,
        ),
        ("GET", "/whoami") => ("200 OK", format!("{local}\n").into_bytes(), None),
        ("POST", "/echo") => ("200 OK", request.body.clone(), None),
        ("GET", "/bind") => {
            let port = query(&request.target, "port").and_then(|p| p.parse::<u16>().ok());
            let Some(port) = port else {
                return ("400 Bad Request", b"bind needs ?port=N\n".to_vec(), None);
            };
            let outcome = TcpListener::bind(("0.0.0.0", port)).map(|l| l.local_addr());
            ("200 OK", report(outcome.and_then(|a| a)), None)
        }
        ("GET", "/connect") => {
            let Some(addr) = query(&request.target, "addr") else {
                return (
                    "400 Bad Request",
                    b"connect needs ?addr=IP:PORT\n".to_vec(),
                    None,
                );
            };
            let outcome = TcpStream::connect(addr).and_then(|s| s.peer_addr());
            ("200 OK", report(outcome), None)
        }
        ("GET", "/udp") => {
            let Some(addr) = query(&request.target, "addr") else {
                return (
                    "400 Bad Request",
                    b"udp needs ?addr=IP:PORT\n".to_vec(),
                    None,
                );
            };
            let outcome = UdpSocket::bind("0.0.0.0:0").and_then(|socket| {
                socket
                    .send_to(b"ping", addr)
                    .and_then(|_| socket.local_addr())
            });
            ("200 OK", report(outcome), None)
        }
        ("GET", "/sleep") => {
            let ms = query(&request.target, "ms")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0u64)
                .min(60_000);
            std::thread::sleep(Duration::from_millis(ms));
            ("200 OK", format!("slept {ms} ms\n").into_bytes(), None)
        }
        ("GET", "/exit") => {
            let code = query(&request.target, "code")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            (
                "200 OK",
                format!("exiting with {code}\n").into_bytes(),
                Some(code),
            )
        }
        (_, "/" | "/whoami" | "/echo" | "/bind" | "/connect" | "/udp" | "/sleep" | "/exit") => (
            "405 Method Not Allowed",
            b"method not allowed\n".to_vec(),
            None,
        ),
        _ => ("404 Not Found", b"not found\n".to_vec(), None),
    }
}

fn report(outcome: std::io::Result<std::net::SocketAddr>) -> Vec<u8> {
    match outcome {
        Ok(addr) => format!("ok {addr}\n").into_bytes(),
        Err(e) => format!("error {:?}: {e}\n", e.kind()).into_bytes(),
    }
}
