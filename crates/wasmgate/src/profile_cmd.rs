//! `wasmgate profile`: asks a running server's admin API to profile the next invocations of a
//! route or component, waits for them, and writes the Firefox-profiler file.

use crate::cli::ProfileArgs;
use anyhow::{bail, Context};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How often the session's progress is asked for.
const POLL: Duration = Duration::from_millis(250);

pub fn run(args: ProfileArgs) -> anyhow::Result<()> {
    let admin = &args.client;
    let (code, body) = crate::logs_cmd::exchange(admin, "POST", "/api/profiles", &request(&args))?;
    if code != "201" {
        bail!("{} answered {code}: {}", admin.admin, error_text(&body));
    }
    let session: Value =
        serde_json::from_str(&body).context("the admin API answered something other than JSON")?;
    let id = session["id"]
        .as_u64()
        .context("the admin API's answer has no session id")?;
    let what = describe(&args);
    eprintln!(
        "profiling the next {} invocations of {what} (session {id})",
        args.count
    );

    // The server closes the session at its deadline; allow for that answer to arrive.
    let give_up = Instant::now()
        + Duration::from_secs_f64(args.timeout_s.unwrap_or(60.0).clamp(1.0, 3600.0))
        + Duration::from_secs(10);
    let path = format!("/api/profiles/{id}");
    let mut shown = None;
    loop {
        let (code, body) = crate::logs_cmd::exchange(admin, "GET", &path, "")?;
        match code.as_str() {
            "200" => {
                std::fs::write(&args.output, body.as_bytes())
                    .with_context(|| format!("cannot write {}", args.output.display()))?;
                eprintln!(
                    "wrote {} (open it at https://profiler.firefox.com)",
                    args.output.display()
                );
                return Ok(());
            }
            "202" => {
                let progress: Value = serde_json::from_str(&body).unwrap_or_default();
                let profiled = progress["profiled"].as_u64().unwrap_or(0);
                if shown != Some(profiled) {
                    eprintln!("  {profiled} of {} profiled", args.count);
                    shown = Some(profiled);
                }
            }
            _ => bail!("{} answered {code}: {}", admin.admin, error_text(&body)),
        }
        if Instant::now() > give_up {
            bail!("session {id} still collecting after its deadline; the server did not close it");
        }
        std::thread::sleep(POLL);
    }
}

/// The JSON body of `POST /api/profiles`.
fn request(args: &ProfileArgs) -> String {
    let mut body = serde_json::json!({ "count": args.count });
    if let Some(route) = &args.route {
        body["route"] = route.as_str().into();
    }
    if let Some(component) = &args.component {
        body["component"] = component.as_str().into();
    }
    if let Some(interval) = args.interval_ms {
        body["interval_ms"] = interval.into();
    }
    if let Some(timeout) = args.timeout_s {
        body["timeout_s"] = timeout.into();
    }
    body.to_string()
}

fn describe(args: &ProfileArgs) -> String {
    match (&args.route, &args.component) {
        (Some(route), _) => format!("route {route}"),
        (None, Some(component)) => format!("component {component}"),
        (None, None) => "nothing".to_string(),
    }
}

/// The admin API's `{"error": ...}`, or the body as it came.
fn error_text(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> ProfileArgs {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        match cli.command {
            crate::cli::Command::Profile(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_request_names_only_what_was_given() {
        let args = parse(&["wasmgate", "profile", "--route", "/api/...", "-n", "3"]);
        let body: Value = serde_json::from_str(&request(&args)).unwrap();
        assert_eq!(body, serde_json::json!({ "route": "/api/...", "count": 3 }));
        let args = parse(&[
            "wasmgate",
            "profile",
            "--component",
            "api",
            "--interval-ms",
            "0.5",
            "--timeout-s",
            "5",
        ]);
        let body: Value = serde_json::from_str(&request(&args)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "component": "api", "count": 10, "interval_ms": 0.5, "timeout_s": 5.0 })
        );
    }

    #[test]
    fn a_route_or_a_component_is_required() {
        assert!(crate::cli::Cli::try_parse_from(["wasmgate", "profile"]).is_err());
        assert!(crate::cli::Cli::try_parse_from([
            "wasmgate",
            "profile",
            "--route",
            "/x",
            "--component",
            "y"
        ])
        .is_err());
    }
}
