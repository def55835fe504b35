//! `wasmgate logs`: invocation records from a running server's admin API, printed one per
//! line, readable by people (or as JSON with --json).

use crate::cli::{AdminClientArgs, LogsArgs};
use anyhow::{bail, Context};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: LogsArgs) -> anyhow::Result<()> {
    match show(&args) {
        // `wasmgate logs -f | head`: the reader is done, and so are we.
        Err(e) if e.downcast_ref::<StdoutClosed>().is_some() => Ok(()),
        other => other,
    }
}

/// Whoever reads our stdout closed it. Kept apart from a broken pipe to the admin listener,
/// which is a failure (e.g. the listener refused our client certificate).
#[derive(Debug)]
struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout closed")
    }
}

impl std::error::Error for StdoutClosed {}

fn show(args: &LogsArgs) -> anyhow::Result<()> {
    let filters = filters(args);
    let recent = get(
        args,
        &format!("/api/invocations?limit={}{filters}", args.limit),
    )?;
    let parsed: Value = serde_json::from_str(&recent)
        .context("the admin API answered something other than JSON")?;
    let records = parsed["invocations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The API lists newest first; a log reads oldest first.
    for record in records.iter().rev() {
        print_record(record, args.json)?;
    }
    if args.follow {
        follow(args, &filters)?;
    }
    Ok(())
}

fn filters(args: &LogsArgs) -> String {
    let mut query = String::new();
    for (key, value) in [
        ("route", &args.route),
        ("outcome", &args.outcome),
        ("component", &args.component),
    ] {
        if let Some(value) = value {
            query.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    query
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Opens `path` on the admin listener. HTTP/1.0, so the body ends when the connection does and
/// needs no de-chunking.
fn open(args: &AdminClientArgs, path: &str) -> anyhow::Result<BufReader<Box<dyn Connection>>> {
    let (code, mut reader) = send(args, "GET", path, "")?;
    if code != "200" {
        let mut body = String::new();
        let _ = reader.read_to_string(&mut body);
        let hint = match code.as_str() {
            "401" if args.admin_token_file.is_none() => " (give --admin-token-file)",
            _ => "",
        };
        bail!("{} answered {code}: {}{hint}", args.admin, body.trim());
    }
    Ok(reader)
}

/// `method path` with `body` to the admin listener: the status code and the whole body.
/// Also what `wasmgate profile` uses.
pub(crate) fn exchange(
    args: &AdminClientArgs,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(String, String)> {
    let (code, mut reader) = send(args, method, path, body)?;
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .with_context(|| format!("the answer from {} broke off", args.admin))?;
    Ok((code, text))
}

/// Sends the request and reads the head; returns the status code and the body's reader.
fn send(
    args: &AdminClientArgs,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(String, BufReader<Box<dyn Connection>>)> {
    let authorization = match &args.admin_token_file {
        Some(file) => format!(
            "Authorization: Bearer {}\r\n",
            crate::admin_access::read_token_file(file)?
        ),
        None => String::new(),
    };
    let mut stream = connect(args)?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {}\r\n{authorization}Content-Length: {}\r\n\r\n{body}",
        args.admin,
        body.len()
    );
    let sent = stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush());
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    // With TLS 1.3 a refused client certificate arrives after our handshake is done, as an
    // alert to read (the write may have failed on it already): reading names the reason.
    let answered = reader
        .read_line(&mut status)
        .with_context(|| format!("the admin listener at {} did not answer", args.admin))?;
    sent.with_context(|| format!("cannot send a request to {}", args.admin))?;
    if answered == 0 {
        bail!(
            "the admin listener at {} closed the connection without answering",
            args.admin
        );
    }
    let code = status
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    // Skip the head.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    Ok((code, reader))
}

/// A byte stream to the admin listener: plain TCP, or TLS over it.
trait Connection: Read + Write + Send {}
impl<T: Read + Write + Send> Connection for T {}

fn connect(args: &AdminClientArgs) -> anyhow::Result<Box<dyn Connection>> {
    let tcp =
        TcpStream::connect_timeout(&args.admin, Duration::from_secs(5)).with_context(|| {
            format!(
                "cannot reach the admin listener at {} (--admin)",
                args.admin
            )
        })?;
    let Some(ca) = &args.admin_ca else {
        return Ok(Box::new(tcp));
    };
    let name = match &args.admin_server_name {
        Some(name) => rustls::pki_types::ServerName::try_from(name.clone())
            .with_context(|| format!("--admin-server-name {name:?} is not a host name"))?,
        None => rustls::pki_types::ServerName::IpAddress(args.admin.ip().into()),
    };
    let connection = rustls::ClientConnection::new(tls_config(args, ca)?, name)
        .context("cannot start TLS with the admin listener")?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    // Finished here rather than on first use, so a refused certificate is reported as such;
    // bounded so a listener that never answers the handshake does not hang us.
    stream
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))?;
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).with_context(|| {
            format!(
                "TLS handshake with the admin listener at {} failed",
                args.admin
            )
        })?;
    }
    stream.sock.set_read_timeout(None)?;
    Ok(Box::new(stream))
}

/// Trusts only the CAs in `ca`; presents --admin-cert when given.
fn tls_config(args: &AdminClientArgs, ca: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("cannot read --admin-ca {}", ca.display()))?
    {
        let cert = cert.with_context(|| format!("--admin-ca {}", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("--admin-ca {}", ca.display()))?;
    }
    if roots.is_empty() {
        bail!("--admin-ca {} holds no certificate", ca.display());
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let config = match (&args.admin_cert, &args.admin_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("--admin-cert {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("--admin-key {}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("--admin-cert/--admin-key")?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn get(args: &LogsArgs, path: &str) -> anyhow::Result<String> {
    let mut body = String::new();
    open(&args.client, path)?.read_to_string(&mut body)?;
    Ok(body)
}

fn follow(args: &LogsArgs, filters: &str) -> anyhow::Result<()> {
    let path = format!(
        "/api/invocations/stream?{}",
        filters.trim_start_matches('&')
    );
    let reader = open(&args.client, &path)?;
    for line in reader.lines() {
        let line = line.context("the admin stream broke off")?;
        if line.trim().is_empty() {
            continue; // keep-alive
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(record) if record.get("skipped").is_some() => {
                eprintln!(
                    "... {} records skipped (this reader fell behind)",
                    record["skipped"]
                );
            }
            Ok(record) => print_record(&record, args.json)?,
            Err(_) => continue,
        }
    }
    Ok(())
}

fn print_record(record: &Value, json: bool) -> anyhow::Result<()> {
    let line = if json {
        format!("{record}\n")
    } else {
        format!("{}\n", human(record))
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other?),
    }
}

/// `2026-11-21T12:00:00.123Z #42 GET /api/... api 200 ok 1.24ms mem=1.1MiB cold trace=...`
fn human(r: &Value) -> String {
    let text = |key: &str| r[key].as_str().unwrap_or("-").to_string();
    let number = |key: &str| r[key].as_u64().unwrap_or(0);
    let mut line = format!(
        "{} #{} {} {} {} {} {} {}",
        timestamp(number("started_at_ms")),
        number("id"),
        text("method"),
        text("route"),
        text("component"),
        number("status"),
        text("outcome"),
        duration(number("wall_time_us")),
    );
    let memory = number("peak_memory_bytes");
    if memory > 0 {
        line.push_str(&format!(" mem={:.1}MiB", memory as f64 / (1 << 20) as f64));
    }
    if r["cold_start"].as_bool() == Some(true) {
        line.push_str(" cold");
    }
    if let Some(calls) = r["host_calls"].as_u64() {
        line.push_str(&format!(" host_calls={calls}"));
    }
    if let Some(trace) = r["trace_id"].as_str() {
        line.push_str(&format!(" trace={trace}"));
    }
    if let Some(error) = r["error"].as_str() {
        line.push_str(&format!(" error={error:?}"));
    }
    line
}

fn duration(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1000.0)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// Unix milliseconds as RFC 3339 UTC, without a date library.
fn timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a proleptic Gregorian date, by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_795_262_400_123), "2026-11-21T12:00:00.123Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_record_reads_on_one_line() {
        let record = serde_json::json!({
            "id": 7, "started_at_ms": 1_795_262_400_000u64, "method": "GET", "route": "/...",
            "component": "api", "status": 500, "outcome": "trap", "wall_time_us": 1250,
            "peak_memory_bytes": 2_097_152, "cold_start": true, "host_calls": 3,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "error": "boom"
        });
        assert_eq!(
            human(&record),
            "2026-11-21T12:00:00.000Z #7 GET /... api 500 trap 1.25ms mem=2.0MiB cold \
             host_calls=3 trace=4bf92f3577b34da6a3ce929d0e0e4736 error=\"boom\""
        );
    }
}
