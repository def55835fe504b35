//! Real backing services for tests, each started from its Debian package on a free loopback
//! port in a temporary directory and stopped when dropped.
//!
//! A missing server binary is a test failure, not a skip: the message names the Debian
//! package to install (scripts/install-deps.sh installs them all).

pub mod chromium;
pub mod mariadb;
pub mod otlp;
pub mod postgres;
pub mod prometheus;
pub mod redis;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

/// The first of `candidates` that exists, or a panic naming the package that provides it.
pub fn find_binary(candidates: &[&str], package: &str) -> PathBuf {
    for candidate in candidates {
        let path = Path::new(candidate);
        if path.is_absolute() {
            if path.exists() {
                return path.to_path_buf();
            }
        } else if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(candidate))
                .find(|p| p.exists())
        }) {
            return found;
        }
    }
    panic!(
        "none of {candidates:?} found: install the Debian package {package} \
         (scripts/install-deps.sh does)"
    );
}

/// Waits until `addr` accepts TCP connections, or panics after `timeout` showing `log`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited ({status}) before listening on {addr}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "server did not listen on {addr} within {timeout:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a set-up step (initdb, mariadb-install-db...) to completion; a failure panics with
/// the step's own output.
pub fn run_setup(command: &mut Command, program: &Path) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} failed:\n{}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sends a server's stdout and stderr to the file at `path`, which startup failures show.
pub fn log_to<'c>(command: &'c mut Command, path: &Path) -> &'c mut Command {
    let log = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let log_err = log
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot reopen {}: {e}", path.display()));
    command.stdout(log).stderr(log_err)
}

/// A child process killed (and reaped) on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
