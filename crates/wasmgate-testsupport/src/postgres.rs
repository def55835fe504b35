//! A throwaway PostgreSQL 15 cluster: `initdb` in a temporary directory, loopback TCP on a
//! free port, and a database owned by a password-authenticated (SCRAM) user.
//!
//! PostgreSQL refuses to run as root. When the tests run as root, the cluster's directory is
//! handed to the `postgres` system user (created by the Debian package) and `initdb` and
//! the server run as that user.

use crate::{find_binary, free_port, log_to, run_setup, wait_for_port, ChildGuard};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const PACKAGE: &str = "postgresql";
const BIN: &str = "/usr/lib/postgresql/15/bin";
pub const DATABASE: &str = "wasmgate";
pub const USER: &str = "wasmgate";
pub const PASSWORD: &str = "s3cret-Pa55word";

/// A running PostgreSQL server, stopped when dropped.
pub struct Postgres {
    port: u16,
    // Field order matters: the server is stopped before its directory is removed.
    child: ChildGuard,
    _dir: TempDir,
}

impl Postgres {
    /// Creates a cluster, starts the server and creates [`DATABASE`] owned by [`USER`].
    /// Panics (naming the Debian package) when PostgreSQL is not installed.
    pub fn start() -> Postgres {
        let initdb = find_binary(&[&format!("{BIN}/initdb"), "initdb"], PACKAGE);
        let server = find_binary(&[&format!("{BIN}/postgres"), "postgres"], PACKAGE);
        let psql = find_binary(&[&format!("{BIN}/psql"), "psql"], PACKAGE);
        let dir = tempfile::tempdir().expect("temporary directory for postgres");
        let data = dir.path().join("data");
        let log_path = dir.path().join("postgres.log");
        let owner = cluster_owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("hand the cluster directory to the postgres user");
        }
        let as_owner = |program: &Path| {
            let mut command = Command::new(program);
            command.current_dir(dir.path()).stdin(Stdio::null());
            if let Some((uid, gid)) = owner {
                command.uid(uid).gid(gid);
            }
            command
        };

        run_setup(
            as_owner(&initdb)
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .args(["--encoding=UTF8", "--locale=C", "--no-sync"]),
            &initdb,
        );

        let port = free_port();
        let child = log_to(
            as_owner(&server)
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string()])
                .args(["-h", "127.0.0.1"])
                .arg("-k")
                .arg(dir.path())
                // Throwaway data: skip the fsyncs.
                .args(["-c", "fsync=off", "-c", "full_page_writes=off"]),
            &log_path,
        )
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        let mut child = ChildGuard(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(addr, Duration::from_secs(60), &mut child.0, &log_path);

        let psql_run = |sql: &str| {
            // The port opens before recovery ends; until then connections are refused with
            // "the database system is starting up". Retry that, bounded.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let output = Command::new(&psql)
                    .arg("-h")
                    .arg(dir.path())
                    .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
                    .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
                    .stdin(Stdio::null())
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {}: {e}", psql.display()));
                if output.status.success() {
                    return;
                }
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(
                    stderr.contains("starting up") && std::time::Instant::now() < deadline,
                    "psql failed:\n{stderr}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        psql_run(&format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"));
        psql_run(&format!("CREATE DATABASE {DATABASE} OWNER {USER}"));
        Postgres {
            port,
            child,
            _dir: dir,
        }
    }

    /// `postgres://USER:PASSWORD@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown: the postmaster stops and reaps its backends. ChildGuard's SIGKILL,
        // the fallback, would leave them to exit on their own.
        let pid = self.child.0.id().to_string();
        if Command::new("kill").args(["-INT", &pid]).status().is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The (uid, gid) to run the cluster as when running as root; `None` otherwise.
fn cluster_owner() -> Option<(u32, u32)> {
    if id(&["-u"]) != 0 {
        return None;
    }
    Some((id(&["-u", "postgres"]), id(&["-g", "postgres"])))
}

fn id(args: &[&str]) -> u32 {
    let output = Command::new("id").args(args).output().expect("run `id`");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "`id {}` failed: running as root needs the postgres system user, which the \
                 Debian package {PACKAGE} creates",
                args.join(" ")
            )
        })
}
