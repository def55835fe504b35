//! `wasmgate up`: load the manifest, load the components, serve until a stop signal.

use crate::app::{route_table, AppSource, LoadedApp, RouteLimiters};
use crate::cli::UpArgs;
use crate::reload::{self, AdminReload, Reloader};
use anyhow::Context;
use std::sync::Arc;
use wasmgate_manifest::Manifest;
use wasmgate_runtime::{CacheStatus, Runtime};
use wasmgate_server::{
    AdminAccess, AdminOptions, AdminServer, CertificateFiles, CertificateStore, LiveRouter, Server,
    ServerOptions, Shutdown,
};

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let mut source = AppSource::new(
        &args.path,
        args.runtime_config.clone(),
        if args.no_cache {
            None
        } else {
            args.cache_dir
                .clone()
                .or_else(wasmgate_runtime::default_cache_dir)
        },
        args.invocation_history,
    );
    source.telemetry_off = args.no_telemetry;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasmgate-worker")
        .build()
        .context("cannot start the async runtime")?;
    let app = source.load(tokio.handle(), &RouteLimiters::default())?;
    tokio.block_on(serve(args, source, app))
}

async fn serve(args: UpArgs, source: AppSource, app: LoadedApp) -> anyhow::Result<()> {
    let LoadedApp {
        manifest,
        runtime,
        router,
        limiters,
    } = app;
    let routes = route_table(&router);
    let telemetry = runtime.telemetry().clone();
    let profiles = runtime.profiles().clone();
    let (spans, access_log) = if telemetry.enabled() {
        telemetry
            .start_publisher()
            .context("cannot start the telemetry publisher")?;
        let access_log =
            crate::access_log::start(&telemetry, crate::logging::is_json(args.log_format))
                .context("cannot start the access log writer")?;
        (
            crate::otel::start(&telemetry, &manifest.app.name)?,
            Some(access_log),
        )
    } else {
        tracing::info!("telemetry is off (--no-telemetry): no records, metrics or spans");
        (None, None)
    };
    let tls = tls_store(&args)?;
    let options = ServerOptions {
        shutdown_grace: args.shutdown_grace,
        telemetry: telemetry.enabled().then(|| telemetry.clone()),
        tls: tls.clone(),
        max_connections: args.max_connections,
        header_read_timeout: args.header_read_timeout,
        ..ServerOptions::default()
    };
    let live_router = LiveRouter::new(router);
    let server = Server::bind(args.listen, live_router.clone(), options)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = server.local_addr()?;
    print_banner(&manifest, &runtime, &routes, addr, tls.as_deref());
    let reloader = Reloader::new(
        source,
        live_router,
        (manifest, runtime, limiters),
        tokio::runtime::Handle::current(),
    );
    let admin = if args.no_admin {
        None
    } else {
        let admin = AdminServer::bind(
            args.admin_listen,
            AdminOptions {
                telemetry: telemetry.clone(),
                reload: Some(Arc::new(AdminReload(reloader.clone()))),
                profiles: Some(profiles),
            },
            crate::admin_access::from_args(&args)?,
        )
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (admin; --admin-listen or --no-admin)",
                args.admin_listen
            )
        })?
        .max_connections(args.admin_max_connections);
        let _ = crate::output::print_stdout(&format!(
            "Admin on {} (/metrics, /api/invocations, /api/profiles, /api/reload, /healthz, /readyz)\n",
            admin.url()
        ));
        Some(admin)
    };
    tracing::info!(%addr, "serving");

    let shutdown = Shutdown::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    tokio::spawn(reload_on_hangup(
        reloader.clone(),
        admin.as_ref().map(AdminServer::access),
    ));
    if args.watch {
        tokio::spawn(reload::watch_files(reloader.clone(), shutdown.clone()));
    }
    let admin_shutdown = shutdown.clone();
    let admin_task = async move {
        if let Some(admin) = admin {
            admin.run(admin_shutdown).await;
        }
    };
    tokio::join!(server.run(shutdown), admin_task);
    telemetry.settle();
    if let Some(access_log) = access_log {
        access_log.finish();
    }
    crate::otel::flush(spans).await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP reloads the app and re-reads the admin credentials, as daemons conventionally do.
async fn reload_on_hangup(reloader: Arc<Reloader>, admin_access: Option<Arc<AdminAccess>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; reload through the admin API");
        return;
    };
    while hangup.recv().await.is_some() {
        if let Some(access) = &admin_access {
            access.reload("SIGHUP").await;
        }
        let _ = reloader.reload("SIGHUP").await;
    }
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
    routes: &[(String, String)],
    addr: std::net::SocketAddr,
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
        let width = routes.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        for (route, component) in routes {
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
    // A closed stdout (e.g. piped into `head`) must not stop the server.
    let _ = crate::output::print_stdout(&text);
}
