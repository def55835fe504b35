//! A WAGI program: an ordinary command-line program that Wasmgate runs once per HTTP
//! request, the way a web server runs a CGI script.
//!
//! The CGI contract, as WAGI uses it:
//!
//! * **Input.** The request body is on stdin. Everything else about the request is in
//!   environment variables: `REQUEST_METHOD`, `PATH_INFO`, `QUERY_STRING`, `CONTENT_TYPE`,
//!   `CONTENT_LENGTH`, ... and one `HTTP_*` variable per request header (`User-Agent`
//!   becomes `HTTP_USER_AGENT`). The arguments are the script path followed by the query
//!   string's `&`-separated items.
//! * **Output.** Whatever the program prints on stdout IS the HTTP response: first the
//!   response headers, one `Name: value` per line, then an empty line, then the body. The
//!   empty line is required: it is the only way the server can tell where the headers end
//!   and the body begins (the body may itself contain lines that look like headers).
//! * **Status.** There is no status line. The pseudo-header `Status: 404 Not Found` sets
//!   the status; without it the status is 200, or 302 if the only header given is
//!   `Location`.
//! * **Logging.** stderr goes to the server's log, never to the client.
//!
//! This program answers:
//!
//! * `GET /anything?name=Ada` with an HTML greeting for "Ada" (percent-decoded), plus the
//!   request method and path;
//! * `POST` with the length (and type) of the body it received;
//! * any other method with `405 Method Not Allowed`.

use std::env;
use std::io::{self, Read, Write};

fn main() {
    let method = env::var("REQUEST_METHOD").unwrap_or_default();

    // Build the whole response first, then write it in one go (see `send`).
    let response = match method.as_str() {
        "GET" | "HEAD" => greet(&method),
        "POST" => count_body(),
        _ => Response {
            // A `Status` header is how a CGI program picks the HTTP status code.
            headers: vec![
                "Status: 405 Method Not Allowed".to_string(),
                "Allow: GET, HEAD, POST".to_string(),
                "Content-Type: text/plain; charset=utf-8".to_string(),
            ],
            body: format!("{method} is not supported here\n"),
        },
    };

    if let Err(error) = send(&response) {
        // stderr ends up in the server's log. The client may simply have gone away.
        eprintln!("wagi-hello: could not write the response: {error}");
        std::process::exit(1);
    }
}

/// A CGI response: header lines and a body.
struct Response {
    headers: Vec<String>,
    body: String,
}

/// `GET`: greets the `name` from the query string and shows what the server told us.
fn greet(method: &str) -> Response {
    // The query string arrives raw, e.g. `name=Ada%20Lovelace&lang=en`.
    let query = env::var("QUERY_STRING").unwrap_or_default();
    let name = form_value(&query, "name").unwrap_or_else(|| "world".to_string());

    // SCRIPT_NAME is the part of the URL path that selected this program (the route),
    // PATH_INFO is the rest. With the route `/...` they are "" and the whole path.
    let script_name = env::var("SCRIPT_NAME").unwrap_or_default();
    let path_info = env::var("PATH_INFO").unwrap_or_default();
    let user_agent = env::var("HTTP_USER_AGENT").unwrap_or_else(|_| "(none)".to_string());

    // Everything that came from the request is HTML-escaped before it goes into the page.
    let body = format!(
        "<!DOCTYPE html>\n\
         <html>\n\
         <head><meta charset=\"utf-8\"><title>Hello from WAGI</title></head>\n\
         <body>\n\
         <h1>Hello, {name}!</h1>\n\
         <p>This page was written to stdout by a WebAssembly program.</p>\n\
         <ul>\n\
         <li>method: <code>{method}</code></li>\n\
         <li>path: <code>{script_name}{path_info}</code></li>\n\
         <li>user agent: <code>{user_agent}</code></li>\n\
         </ul>\n\
         <p>Try <code>?name=Your+Name</code> at the end of the URL.</p>\n\
         </body>\n\
         </html>\n",
        name = html_escape(&name),
        method = html_escape(method),
        script_name = html_escape(&script_name),
        path_info = html_escape(&path_info),
        user_agent = html_escape(&user_agent),
    );

    Response {
        // No Status header: the server answers 200 OK.
        headers: vec!["Content-Type: text/html; charset=utf-8".to_string()],
        body,
    }
}

/// `POST`: reads the whole request body from stdin and reports how big it was.
fn count_body() -> Response {
    let mut body = Vec::new();
    if let Err(error) = io::stdin().read_to_end(&mut body) {
        return Response {
            headers: vec![
                "Status: 500 Internal Server Error".to_string(),
                "Content-Type: text/plain; charset=utf-8".to_string(),
            ],
            body: format!("could not read the request body: {error}\n"),
        };
    }

    let content_type = env::var("CONTENT_TYPE").unwrap_or_else(|_| "(none)".to_string());
    let mut text = format!("Received {} bytes of {content_type}.\n", body.len());
    // A submitted HTML form (`application/x-www-form-urlencoded`) has the same
    // `a=1&b=2` format as a query string.
    if content_type.starts_with("application/x-www-form-urlencoded") {
        if let Some(name) = form_value(&String::from_utf8_lossy(&body), "name") {
            text.push_str(&format!("Hello, {name}!\n"));
        }
    }

    Response {
        headers: vec!["Content-Type: text/plain; charset=utf-8".to_string()],
        body: text,
    }
}

/// Writes the response to stdout: the headers, the empty line that ends them, the body.
fn send(response: &Response) -> io::Result<()> {
    // Rust's stdout flushes at every newline; each flush is a separate write to the host. A
    // BufWriter gathers the whole response into one write, which is noticeably cheaper.
    let mut out = io::BufWriter::new(io::stdout().lock());
    for header in &response.headers {
        // `\n` is enough; `\r\n` is accepted too.
        writeln!(out, "{header}")?;
    }
    // The empty line: everything after it is the body, sent to the client as-is.
    writeln!(out)?;
    out.write_all(response.body.as_bytes())?;
    // Flush before returning so that nothing is left in std's buffer.
    out.flush()
}

/// The value of `key` in an `application/x-www-form-urlencoded` string such as a query
/// string: `name=Ada+Lovelace&x=1` gives `Ada Lovelace` for `name`.
fn form_value(encoded: &str, key: &str) -> Option<String> {
    encoded.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (url_decode(k) == key).then(|| url_decode(v))
    })
}

/// Decodes `+` as a space and `%XX` as the byte XX. Invalid escapes are kept as they are,
/// and bytes that are not valid UTF-8 become U+FFFD.
fn url_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                out.push(hex_value(bytes[i + 1]) * 16 + hex_value(bytes[i + 2]));
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hexadecimal digit (already checked with `is_ascii_hexdigit`).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Makes text safe to put inside HTML.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
