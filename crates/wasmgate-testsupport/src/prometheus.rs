//! A real Prometheus server (Debian's `prometheus`) scraping one target every second.

use crate::{find_binary, free_port, wait_for_port, ChildGuard};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Prometheus {
    addr: SocketAddr,
    _child: ChildGuard,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics` every second (job `wasmgate`).
    pub fn start(target: SocketAddr) -> Prometheus {
        let binary = find_binary(&["prometheus", "/usr/bin/prometheus"], "prometheus");
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: wasmgate\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start prometheus");
        wait_for_port(addr, Duration::from_secs(30), &mut child, &log);
        Prometheus {
            addr,
            _child: ChildGuard(child),
            dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JSON body of an instant query (`/api/v1/query`), PromQL percent-encoded here.
    pub fn query(&self, promql: &str) -> String {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        // Prometheus accepts connections a moment before it answers them all (a query right
        // after start has been reset); a failed exchange is tried again, for a bounded time.
        let mut attempts = 0;
        loop {
            match self.exchange(&encoded) {
                Ok(response) => {
                    return response
                        .split_once("\r\n\r\n")
                        .map(|(_, body)| body.to_string())
                        .unwrap_or(response)
                }
                Err(_) if attempts < 40 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(error) => {
                    let log = std::fs::read_to_string(self.dir.path().join("prometheus.log"))
                        .unwrap_or_default();
                    panic!(
                        "query Prometheus at {}: {error}\nits log:\n{log}",
                        self.addr
                    )
                }
            }
        }
    }

    fn exchange(&self, encoded: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }
}
