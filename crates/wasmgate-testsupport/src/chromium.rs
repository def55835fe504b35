//! Headless Chromium (Debian's `chromium`) for browser tests: load a page, let its scripts run,
//! then read the DOM they built or a screenshot of it.
//!
//! Every run gets a fresh profile directory, no network features of its own (sync, updates,
//! QUIC), a deadline, and its own process group, which is killed on drop: Chromium starts
//! renderer and GPU helper processes that would outlive a killed parent.

use crate::log_to;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one page load may take before the test fails (Chromium's own start-up included).
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Chromium {
    binary: PathBuf,
}

impl Chromium {
    /// The installed browser. Missing, it fails the test under CI (`CI=true`); elsewhere it
    /// returns `None` after saying how to install it, and the caller skips.
    pub fn find() -> Option<Chromium> {
        let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
        if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.exists()) {
            return Some(Chromium { binary: found });
        }
        let message = "chromium not found: install the Debian package chromium \
                       (scripts/install-deps.sh --test-services does)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("skipping the browser test: {message}");
        None
    }

    /// The DOM of `url` after its scripts ran for `budget` of virtual time (timers fire
    /// without waiting; the clock stops while requests are in flight).
    pub fn dump_dom(&self, url: &str, budget: Duration) -> String {
        let run = self.run(
            &[
                "--dump-dom".to_string(),
                format!("--virtual-time-budget={}", budget.as_millis()),
            ],
            url,
        );
        String::from_utf8_lossy(&run).into_owned()
    }

    /// A PNG screenshot of `url` at `width`x`height` after `budget` of virtual time.
    pub fn screenshot(&self, url: &str, width: u32, height: u32, budget: Duration) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("screenshot.png");
        self.run(
            &[
                format!("--screenshot={}", file.display()),
                format!("--window-size={width},{height}"),
                "--hide-scrollbars".to_string(),
                format!("--virtual-time-budget={}", budget.as_millis()),
            ],
            url,
        );
        std::fs::read(&file)
            .unwrap_or_else(|e| panic!("chromium wrote no screenshot at {}: {e}", file.display()))
    }

    /// Runs Chromium on `url` with `extra` flags to completion and returns what it wrote to
    /// stdout, or panics with its log.
    pub fn run(&self, extra: &[String], url: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let profile = dir.path().join("profile");
        let log = dir.path().join("chromium.log");
        let mut command = Command::new(&self.binary);
        command
            .args([
                "--headless",
                // Tests run as root in containers, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .process_group(0);
        log_to(&mut command, &log);
        // --dump-dom writes the DOM to stdout: it goes to its own file, read once done.
        let stdout_path = dir.path().join("stdout");
        let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
        command.stdout(stdout);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let mut group = ProcessGroup(child);
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            match group.0.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => panic!(
                    "chromium did not finish {url} within {RUN_TIMEOUT:?}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
                Err(e) => panic!("waiting for chromium: {e}"),
            }
        };
        assert!(
            status.success(),
            "chromium failed ({status}) on {url}:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        drop(group);
        std::fs::read(&stdout_path).unwrap_or_default()
    }
}

/// Chromium and its helpers, started in their own process group and killed together on drop.
struct ProcessGroup(Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // The group id is the leader's pid (`process_group(0)`); the leader itself may already
        // have exited while helpers linger.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
