//! `wasmgate up`: load the manifest, load the components, serve until a stop signal.

use crate::cli::UpArgs;
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmgate_capabilities::Capabilities;
use wasmgate_manifest::{Manifest, RoutePath, RuntimeConfig, MANIFEST_FILE_NAME};
use wasmgate_runtime::{CacheStatus, Executor, RouteInfo, Runtime, RuntimeOptions};
use wasmgate_server::{
    AdminOptions, AdminServer, AuthPolicies, CertificateFiles, CertificateStore, Healthz,
    RouteLimiter, RouteTarget, Router, Server, ServerOptions, Shutdown,
};
use wasmgate_telemetry::Telemetry;

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let manifest_path = manifest_path(&args.path);
    let manifest = Manifest::load(&manifest_path)?;
    let runtime_config = match &args.runtime_config {
        Some(path) => RuntimeConfig::load(path)?,
        None => RuntimeConfig::defaults(&manifest.path),
    };
    // Checked before anything is compiled: a route naming a missing scheme stops startup.
    let auth = AuthPolicies::load(&manifest, &runtime_config)?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasmgate-worker")
        .build()
        .context("cannot start the async runtime")?;
    let capabilities = tokio.block_on(Capabilities::open(&manifest, runtime_config))?;
    let telemetry = Arc::new(Telemetry::new(&manifest.app.name, args.invocation_history));
    let options = RuntimeOptions {
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir
                .clone()
                .or_else(wasmgate_runtime::default_cache_dir)
        },
        telemetry: Some(telemetry),
        capabilities: Some(Arc::new(capabilities)),
    };
    // Loading compiles; it runs inside the async runtime because capabilities' backends
    // (connection pools) belong to it.
    let runtime = tokio.block_on(async { Runtime::load(&manifest, &options) })?;
    let router = build_router(&manifest, &runtime, &auth)?;
    tokio.block_on(serve(args, manifest, runtime, router))
}

async fn serve(
    args: UpArgs,
    manifest: Manifest,
    runtime: Runtime,
    router: Router<Arc<dyn Executor>>,
) -> anyhow::Result<()> {
    let mut routes: Vec<(String, String, Option<String>)> = router
        .routes()
        .iter()
        .map(|r| {
            (
                r.info.pattern.to_string(),
                r.component.clone(),
                r.host.clone(),
            )
        })
        .collect();
    routes.sort();
    let telemetry = runtime.telemetry().clone();
    let tls = tls_store(&args)?;
    let options = ServerOptions {
        shutdown_grace: args.shutdown_grace,
        telemetry: Some(telemetry.clone()),
        tls: tls.clone(),
        max_connections: args.max_connections,
        ..ServerOptions::default()
    };
    let server = Server::bind(args.listen, router, options)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let admin = if args.no_admin {
        None
    } else {
        let admin = AdminServer::bind(args.admin_listen, AdminOptions { telemetry })
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (admin; --admin-listen or --no-admin)",
                    args.admin_listen
                )
            })?;
        Some(admin)
    };
    let addr = server.local_addr()?;
    print_banner(
        &manifest,
        &runtime,
        &routes,
        addr,
        admin.as_ref().map(AdminServer::local_addr),
        tls.as_deref(),
    );
    tracing::info!(app = %manifest.app.name, %addr, "serving");

    let shutdown = Shutdown::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    let admin_shutdown = shutdown.clone();
    let admin_task = async move {
        if let Some(admin) = admin {
            admin.run(admin_shutdown).await;
        }
    };
    tokio::join!(server.run(shutdown), admin_task);
    tracing::info!("stopped");
    Ok(())
}

/// First SIGINT/SIGTERM: graceful shutdown. A second one: exit at once.
async fn watch_signals(shutdown: Shutdown) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("stop signal received; finishing in-flight requests (signal again to exit now)");
    shutdown.trigger();
    tokio::select! {
        _ = interrupt.recv() => {},
        _ = terminate.recv() => {},
    }
    tracing::warn!("second stop signal: exiting without draining");
    std::process::exit(130);
}

fn manifest_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MANIFEST_FILE_NAME)
    } else {
        path.to_path_buf()
    }
}

/// Routes from the manifest, the sub-routes components add below them (WAGI `_routes`), and
/// WAGI's built-in `/healthz` for apps read from modules.toml.
fn build_router(
    manifest: &Manifest,
    runtime: &Runtime,
    auth: &AuthPolicies,
) -> anyhow::Result<Router<Arc<dyn Executor>>> {
    let mut routes = Vec::with_capacity(manifest.routes.len());
    let mut taken: HashMap<(Option<String>, RoutePath), String> = HashMap::new();
    // One limiter per [[route]]: its sub-routes share the route's limits.
    let limiters: Vec<Arc<RouteLimiter>> = manifest
        .routes
        .iter()
        .map(|r| RouteLimiter::new(&r.component, &r.limits, Some(runtime.telemetry().clone())))
        .collect();
    for (route, limiter) in manifest.routes.iter().zip(&limiters) {
        let executor = runtime.executor(&route.component).with_context(|| {
            format!(
                "route {} names unknown component {}",
                route.path, route.component
            )
        })?;
        taken.insert(
            (route.host.clone(), route.path.clone()),
            format!("the route at line {}", route.line),
        );
        routes.push(target(
            route.host.clone(),
            route.path.clone(),
            route,
            auth.guard(route, limiter.guard(executor), runtime.telemetry())?,
        ));
    }
    for (route, limiter) in manifest.routes.iter().zip(&limiters) {
        for sub in runtime.sub_routes(&route.component) {
            let path = sub.route.under(&route.path);
            let key = (route.host.clone(), path.clone());
            if let Some(owner) = taken.get(&key) {
                anyhow::bail!(
                    "component `{}` adds route {path} (`_routes` entry {} {}), which {owner} already serves",
                    route.component,
                    sub.route.relative,
                    sub.route.entrypoint
                );
            }
            taken.insert(key, format!("component `{}`'s `_routes`", route.component));
            routes.push(target(
                route.host.clone(),
                path,
                route,
                auth.guard(
                    route,
                    limiter.guard(sub.executor.clone()),
                    runtime.telemetry(),
                )?,
            ));
        }
    }
    let healthz = RoutePath::Exact("/healthz".into());
    if manifest.app.wagi_compat && !taken.contains_key(&(None, healthz.clone())) {
        routes.push(RouteTarget {
            host: None,
            info: Arc::new(RouteInfo {
                pattern: healthz.to_string().into(),
                path: healthz.clone(),
                pass_authorization: false,
            }),
            path: healthz,
            component: "(built-in health check)".into(),
            target: Arc::new(Healthz),
        });
    }
    Ok(Router::new(routes))
}

fn target(
    host: Option<String>,
    path: RoutePath,
    route: &wasmgate_manifest::Route,
    executor: Arc<dyn Executor>,
) -> RouteTarget<Arc<dyn Executor>> {
    RouteTarget {
        host,
        info: Arc::new(RouteInfo {
            pattern: path.to_string().into(),
            path: path.clone(),
            pass_authorization: route.pass_authorization,
        }),
        path,
        component: route.component.clone(),
        target: executor,
    }
}

/// What a person starting the server wants to see: where, what, and how the load went.
/// The certificates given with --tls-cert/--tls-key, loaded and checked.
fn tls_store(args: &UpArgs) -> anyhow::Result<Option<Arc<CertificateStore>>> {
    if args.tls_cert.is_empty() {
        return Ok(None);
    }
    if args.tls_cert.len() != args.tls_key.len() {
        anyhow::bail!(
            "{} --tls-cert but {} --tls-key: give one key per certificate, in the same order",
            args.tls_cert.len(),
            args.tls_key.len()
        );
    }
    let files = args
        .tls_cert
        .iter()
        .zip(&args.tls_key)
        .map(|(cert, key)| CertificateFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
        .collect();
    Ok(Some(
        CertificateStore::load(files).context("cannot load TLS certificates")?,
    ))
}

fn print_banner(
    manifest: &Manifest,
    runtime: &Runtime,
    routes: &[(String, String, Option<String>)],
    addr: std::net::SocketAddr,
    admin: Option<std::net::SocketAddr>,
    tls: Option<&CertificateStore>,
) {
    use std::fmt::Write;
    let mut text = String::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let _ = writeln!(
        text,
        "Serving app \"{}\" on {scheme}://{addr} (HTTP/1.1 and HTTP/2)",
        manifest.app.name
    );
    if let Some(tls) = tls {
        let _ = writeln!(text, "TLS names: {}", tls.names().join(", "));
    }
    if routes.is_empty() {
        text.push_str("No routes: every request gets 404.\n");
    } else {
        text.push_str("Routes:\n");
        let shown: Vec<(String, &str)> = routes
            .iter()
            .map(|(path, component, host)| match host {
                Some(host) => (format!("{host}{path}"), component.as_str()),
                None => (path.clone(), component.as_str()),
            })
            .collect();
        let width = shown.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        for (route, component) in shown {
            let _ = writeln!(text, "  {route:<width$}  -> {component}");
        }
    }
    text.push_str("Components:\n");
    for loaded in runtime.loaded() {
        let cache = match &loaded.cache {
            CacheStatus::Hit => "from cache",
            CacheStatus::Miss => "compiled, cached",
            CacheStatus::Rebuilt(_) => "compiled, cache entry was invalid and replaced",
            CacheStatus::Disabled => "compiled, cache off",
        };
        let _ = writeln!(
            text,
            "  {}  {} executor, {:.1} KiB, ready in {} ms ({cache})",
            loaded.name,
            loaded.executor,
            loaded.size as f64 / 1024.0,
            loaded.load_time.as_millis()
        );
    }
    if let Some(admin) = admin {
        let _ = writeln!(
            text,
            "Admin on http://{admin} (/metrics, /api/invocations, /healthz, /readyz)"
        );
    }
    // A closed stdout (e.g. piped into `head`) must not stop the server.
    let _ = crate::output::print_stdout(&text);
}
