//! Hot reload: load the app again beside the running one, switch to it only when every part
//! of it loaded and its services are up, and keep the running version when anything fails.
//!
//! Triggers: SIGHUP, `POST /api/reload` on the admin listener, and with `--watch` a change to
//! the manifest, the runtime config or a component's Wasm file. Reloads run one at a time.
//! Requests in flight finish on the version they started on: they hold their executor, and
//! the old engine (with its epoch ticks) lives until the last of them is done.

use crate::app::{route_table, AppSource, LoadedApp, RouteLimiters};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wasmgate_manifest::Manifest;
use wasmgate_runtime::{cache_result, Runtime};
use wasmgate_server::{LiveRouter, ReloadApp, Shutdown};
use wasmgate_telemetry::Telemetry;

/// How long a new version's services may take to come up before the reload is refused.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often `--watch` looks at the files.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub struct Reloader {
    source: AppSource,
    router: LiveRouter,
    telemetry: Arc<Telemetry>,
    tokio: tokio::runtime::Handle,
    /// The version serving; the lock also makes reloads take turns.
    current: tokio::sync::Mutex<Serving>,
}

/// What is kept of the version serving: its manifest (for the files to watch), runtime
/// (its engine and backends; requests hold the executors themselves) and route limiters
/// (for the next version to keep where a route's limits are unchanged).
struct Serving {
    generation: u64,
    manifest: Manifest,
    _runtime: Runtime,
    limiters: RouteLimiters,
}

impl Reloader {
    /// `first` is the version the server started with, already in `router`.
    pub fn new(
        source: AppSource,
        router: LiveRouter,
        first: (Manifest, Runtime, RouteLimiters),
        tokio: tokio::runtime::Handle,
    ) -> Arc<Reloader> {
        let telemetry = first.1.telemetry().clone();
        telemetry.metrics.generation_serving(1);
        Arc::new(Reloader {
            source,
            router,
            telemetry,
            tokio,
            current: tokio::sync::Mutex::new(Serving {
                generation: 1,
                manifest: first.0,
                _runtime: first.1,
                limiters: first.2,
            }),
        })
    }

    /// Loads the app again and switches to it. On failure the running version keeps
    /// serving and the error says why (file, line and field for a bad manifest).
    pub async fn reload(
        self: &Arc<Self>,
        trigger: &'static str,
    ) -> Result<serde_json::Value, String> {
        let mut serving = self.current.lock().await;
        let started = Instant::now();
        tracing::info!(trigger, "reloading the app");
        let this = self.clone();
        let limiters = serving.limiters.clone();
        let loaded =
            tokio::task::spawn_blocking(move || this.source.load(&this.tokio, &limiters)).await;
        let loaded = match loaded {
            Ok(Ok(app)) => wait_until_ready(app).await,
            Ok(Err(error)) => Err(format!("{error:#}")),
            Err(join) => Err(format!("loading the new version failed: {join}")),
        };
        let app = match loaded {
            Ok(app) => app,
            Err(error) => {
                self.telemetry.metrics.reload_finished(false);
                tracing::error!(trigger, %error, "reload refused; the running version keeps serving");
                return Err(error);
            }
        };
        if app.manifest.app.name != serving.manifest.app.name {
            tracing::warn!(
                old = %serving.manifest.app.name,
                new = %app.manifest.app.name,
                "the app was renamed; metrics and records keep the old name until a restart"
            );
        }
        let report = Report::new(&app, serving.generation + 1, started.elapsed());
        let LoadedApp {
            manifest,
            runtime,
            router,
            limiters,
        } = app;
        // From here on new requests see the new version; the old one's last references
        // are its requests in flight.
        drop(self.router.replace(router));
        let generation = serving.generation + 1;
        let old = std::mem::replace(
            &mut *serving,
            Serving {
                generation,
                manifest,
                _runtime: runtime,
                limiters,
            },
        );
        drop(old);
        self.telemetry.metrics.reload_finished(true);
        self.telemetry
            .metrics
            .generation_serving(serving.generation);
        tracing::info!(
            trigger,
            generation = serving.generation,
            routes = report.routes.len(),
            components = report.components.len(),
            took_ms = report.took_ms,
            "reloaded; new requests go to the new version"
        );
        Ok(report.to_json())
    }

    async fn watched_files(&self) -> Vec<PathBuf> {
        let serving = self.current.lock().await;
        self.source.watched_files(&serving.manifest)
    }
}

/// The admin API's handle on the reloader (`POST /api/reload`).
pub struct AdminReload(pub Arc<Reloader>);

impl ReloadApp for AdminReload {
    fn reload(
        &self,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value, String>> + Send + '_>>
    {
        Box::pin(self.0.reload("admin API"))
    }
}

/// Services of the new version must be up before it takes requests, or the switch would
/// answer 503 until they are.
async fn wait_until_ready(app: LoadedApp) -> Result<LoadedApp, String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let waiting = app.runtime.not_ready();
        if waiting.is_empty() {
            return Ok(app);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "component(s) {} did not become ready within {}s",
                waiting.join(", "),
                READY_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a reload did, for the admin API's answer and the log.
struct Report {
    generation: u64,
    took_ms: u64,
    routes: Vec<(String, String)>,
    components: Vec<serde_json::Value>,
}

impl Report {
    fn new(app: &LoadedApp, generation: u64, took: Duration) -> Report {
        let components = app
            .runtime
            .loaded()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "executor": c.executor.to_string(),
                    "cache": cache_result(&c.cache).as_str(),
                    "load_ms": c.load_time.as_millis() as u64,
                })
            })
            .collect();
        Report {
            generation,
            took_ms: took.as_millis() as u64,
            routes: route_table(&app.router),
            components,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "generation": self.generation,
            "took_ms": self.took_ms,
            "routes": self.routes.iter().map(|(route, component)| {
                serde_json::json!({ "route": route, "component": component })
            }).collect::<Vec<_>>(),
            "components": self.components,
        })
    }
}

/// `--watch`: reloads when a watched file changed and then stayed the same for one more
/// look (so a file being written is not read half-way). A refused version is not retried
/// until the files change again.
pub async fn watch_files(reloader: Arc<Reloader>, shutdown: Shutdown) {
    let mut files = reloader.watched_files().await;
    let mut loaded = fingerprint(&files);
    let mut candidate: Option<Vec<Stamp>> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
            () = shutdown.triggered() => return,
        }
        let now = fingerprint(&files);
        if now == loaded {
            candidate = None;
            continue;
        }
        if candidate.as_ref() != Some(&now) {
            candidate = Some(now);
            continue;
        }
        // Unchanged since the last look: the writer is done.
        let _ = reloader.reload("file change").await;
        files = reloader.watched_files().await;
        loaded = fingerprint(&files);
        candidate = None;
    }
}

/// A file's modification time and size; `None` while it does not exist.
type Stamp = Option<(SystemTime, u64)>;

fn fingerprint(files: &[PathBuf]) -> Vec<Stamp> {
    files
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}
