//! A throwaway MariaDB server: a fresh data directory, loopback TCP on a free port, and a
//! database with a password-authenticated user (grant tables on, as in production).

use crate::{find_binary, free_port, log_to, run_setup, wait_for_port, ChildGuard};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

const PACKAGE: &str = "mariadb-server";
pub const DATABASE: &str = "wasmgate";
pub const USER: &str = "wasmgate";
/// Has characters that need care in URLs and logs, but none that need percent-encoding.
pub const PASSWORD: &str = "s3cret-Pa55word";

/// A running MariaDB server, stopped when dropped.
pub struct MariaDb {
    port: u16,
    client: PathBuf,
    socket: PathBuf,
    // Field order matters: the server is stopped before its directory is removed.
    _child: ChildGuard,
    _dir: TempDir,
}

impl MariaDb {
    /// Initialises a data directory, starts the server and creates [`DATABASE`] and
    /// [`USER`]. Panics (naming the Debian package) when MariaDB is not installed.
    pub fn start() -> MariaDb {
        let install_db = find_binary(
            &[
                "mariadb-install-db",
                "/usr/bin/mariadb-install-db",
                "mysql_install_db",
            ],
            PACKAGE,
        );
        let server = find_binary(
            &["/usr/sbin/mariadbd", "mariadbd", "/usr/sbin/mysqld"],
            PACKAGE,
        );
        let client = find_binary(&["mariadb", "/usr/bin/mariadb", "mysql"], PACKAGE);
        let dir = tempfile::tempdir().expect("temporary directory for mariadb");
        let data = dir.path().join("data");
        let socket = dir.path().join("mariadb.sock");
        let log_path = dir.path().join("mariadb.log");
        let user = current_user();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("mariadb temporary directory");

        run_setup(
            Command::new(&install_db)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}"))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db")
                // Bootstrap temp tables go to TMPDIR under fixed names: two servers set up at
                // once in a shared /tmp trip over each other's files.
                .env("TMPDIR", &tmp)
                .stdin(Stdio::null()),
            &install_db,
        );

        let port = free_port();
        let child = log_to(
            Command::new(&server)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!(
                    "--pid-file={}",
                    dir.path().join("mariadb.pid").display()
                ))
                .arg(format!("--port={port}"))
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg("--bind-address=127.0.0.1")
                .arg("--skip-networking=0")
                // Users are matched by address: no DNS lookups of 127.0.0.1.
                .arg("--skip-name-resolve")
                .arg("--skip-log-bin")
                .arg("--innodb-buffer-pool-size=32M")
                .arg("--max-allowed-packet=64M")
                .arg(format!("--user={user}"))
                .stdin(Stdio::null()),
            &log_path,
        )
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        let mut child = ChildGuard(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(addr, Duration::from_secs(60), &mut child.0, &log_path);

        run_sql(
            &client,
            &socket,
            &format!(
                "CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4;
                 CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
                 GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{USER}'@'127.0.0.1';"
            ),
        );
        MariaDb {
            port,
            client,
            socket,
            _child: child,
            _dir: dir,
        }
    }

    /// `mysql://USER:PASSWORD@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self) -> String {
        format!(
            "mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` as root in [`DATABASE`] and returns what it printed (tab-separated rows
    /// after a header line): how tests look at the data behind a guest's back.
    pub fn query(&self, sql: &str) -> String {
        run_sql(
            &self.client,
            &self.socket,
            &format!("USE {DATABASE}; {sql}"),
        )
    }
}

/// Runs `sql` as root over the Unix socket (root authenticates without a password there) and
/// returns its standard output.
fn run_sql(client: &Path, socket: &Path, sql: &str) -> String {
    let output = Command::new(client)
        .arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args(["--user=root", "--batch", "-e", sql])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", client.display()));
    assert!(
        output.status.success(),
        "mariadb client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The server must run as the user owning the data directory: whoever runs the tests.
fn current_user() -> String {
    let output = Command::new("id")
        .arg("-un")
        .output()
        .expect("run `id -un`");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
