//! A throwaway `redis-server`: no persistence, loopback only, its own port and directory.

use crate::{find_binary, free_port, log_to, wait_for_port, ChildGuard};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// A running Redis server, stopped when dropped.
pub struct Redis {
    port: u16,
    // Field order matters: the server is stopped before its directory is removed.
    _child: ChildGuard,
    _dir: TempDir,
}

impl Redis {
    /// Starts a server and waits until it accepts connections. Panics (naming the Debian
    /// package) when `redis-server` is not installed.
    pub fn start() -> Redis {
        let binary = find_binary(&["redis-server", "/usr/bin/redis-server"], "redis-server");
        let dir = tempfile::tempdir().expect("temporary directory for redis-server");
        let port = free_port();
        let log_path = dir.path().join("redis.log");
        let child = log_to(
            Command::new(&binary)
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                // No snapshots and no append-only file: tests want a clean, fast server.
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null()),
            &log_path,
        )
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut child = ChildGuard(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(addr, Duration::from_secs(20), &mut child.0, &log_path);
        Redis {
            port,
            _child: child,
            _dir: dir,
        }
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}
