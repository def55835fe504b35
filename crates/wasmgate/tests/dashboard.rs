//! The admin dashboard: its two API endpoints (`/api/routes`, `/api/invocations/{id}`), the
//! page's security headers, and the page itself rendered by headless Chromium after a known
//! mix of requests.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{fixture_manifest, get, invocations, Server};
use wasmgate_testsupport::chromium::Chromium;

/// The fixture on every path, plus an exact route for its trapping path (so the mix spans two
/// route patterns), and one whose pattern is markup the page must show as text.
fn manifest() -> String {
    fixture_manifest(
        "[component.fixture.limits]\nmemory = \"32MiB\"\ntimeout = \"1s\"\n\n\
         [[route]]\npath = \"/trap\"\ncomponent = \"fixture\"\n\n\
         [[route]]\npath = \"/a&amp;b\"\ncomponent = \"fixture\"\n",
    )
}

/// 4 ok and 1 no_response on `/...`, 2 traps on `/trap`, and 1 request on `/a&amp;b` (the
/// fixture answers 404 there: outcome ok). Returns once all 8 records are in the history.
async fn known_mix(server: &Server) {
    for path in [
        "/ok",
        "/trap",
        "/ok",
        "/no-response",
        "/ok",
        "/trap",
        "/ok",
        "/a&amp;b",
    ] {
        get(server.addr, path).await;
    }
    invocations(server.admin, "", 8).await;
}

async fn json(admin: SocketAddr, path: &str) -> Value {
    let reply = get(admin, path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    assert_eq!(reply.headers["content-type"], "application/json", "{path}");
    serde_json::from_slice(&reply.body).unwrap()
}

fn route<'a>(summary: &'a Value, pattern: &str) -> &'a Value {
    summary["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == pattern)
        .unwrap_or_else(|| panic!("no route {pattern} in {summary}"))
}

#[tokio::test]
async fn routes_api_gives_rate_percentiles_and_error_rate_per_route() {
    let server = Server::start(&manifest());
    known_mix(&server).await;
    let summary = json(server.admin, "/api/routes").await;
    assert_eq!(summary["app"], "test");
    assert_eq!(summary["records"], 8);
    assert_eq!(summary["capacity"], 1024);
    assert_eq!(summary["rate_window_s"], 60.0);
    let patterns: Vec<&str> = summary["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(patterns, ["/...", "/a&amp;b", "/trap"], "sorted by pattern");

    let all = route(&summary, "/...");
    assert_eq!(all["component"], "fixture");
    assert_eq!(all["executor"], "http");
    assert_eq!(all["requests"], 5);
    assert_eq!(all["errors"], 1);
    assert_eq!(all["error_rate"], 0.2);
    assert_eq!(
        all["outcomes"],
        serde_json::json!({"ok": 4, "no_response": 1})
    );
    // Five requests in the last minute.
    assert_eq!(all["rate_per_s"], 5.0 / 60.0);
    let wall = &all["wall_time_us"];
    let (p50, p95, p99, max) = (
        wall["p50"].as_u64().unwrap(),
        wall["p95"].as_u64().unwrap(),
        wall["p99"].as_u64().unwrap(),
        wall["max"].as_u64().unwrap(),
    );
    assert!(0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max, "{wall}");
    // Nearest rank over 5 values: p95 and p99 are the slowest request.
    assert_eq!(p99, max, "{wall}");
    assert!(all["guest_cpu_time_us"]["p50"].is_u64(), "{all}");

    let trap = route(&summary, "/trap");
    assert_eq!(trap["requests"], 2);
    assert_eq!(trap["errors"], 2);
    assert_eq!(trap["error_rate"], 1.0);
    assert_eq!(trap["outcomes"], serde_json::json!({"trap": 2}));

    let now = summary["now_ms"].as_u64().unwrap();
    let last_seen = trap["last_seen_ms"].as_u64().unwrap();
    assert!(last_seen <= now && now - last_seen < 30_000, "{trap}");
    // One component, loaded once: one cold start across its routes.
    let cold: u64 = summary["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cold_starts"].as_u64().unwrap())
        .sum();
    assert_eq!(cold, 1, "{summary}");
}

#[tokio::test]
async fn route_figures_cover_only_the_history_ring() {
    let dir = tempfile::tempdir().unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &manifest(),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--invocation-history",
            "3",
        ],
    );
    get(server.addr, "/trap").await;
    get(server.addr, "/trap").await;
    for _ in 0..3 {
        get(server.addr, "/ok").await;
    }
    // Wait for the last /ok record: the ring then holds exactly the three /ok requests.
    let started = Instant::now();
    let summary = loop {
        let summary = json(server.admin, "/api/routes").await;
        let ok = summary["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == "/...")
            .map_or(0, |r| r["requests"].as_u64().unwrap());
        if ok == 3 || started.elapsed() > Duration::from_secs(5) {
            break summary;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(summary["records"], 3, "{summary}");
    assert_eq!(summary["capacity"], 3, "{summary}");
    assert_eq!(summary["routes"].as_array().unwrap().len(), 1, "{summary}");
    // The ring filled within the minute: the rate is over the time it covers, not 60 s.
    assert!(
        summary["rate_window_s"].as_f64().unwrap() < 60.0,
        "{summary}"
    );
}

#[tokio::test]
async fn one_invocation_by_id_until_the_ring_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &manifest(),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--invocation-history",
            "2",
        ],
    );
    get(server.addr, "/trap").await;
    let listed = invocations(server.admin, "outcome=trap", 1).await;
    let id = listed[0]["id"].as_u64().unwrap();

    let record = json(server.admin, &format!("/api/invocations/{id}")).await;
    assert_eq!(record, listed[0], "the same record as in the list");
    assert_eq!(record["outcome"], "trap");
    assert_eq!(record["route"], "/trap");
    assert!(
        record["backtrace"]
            .as_str()
            .unwrap()
            .contains("deliberately_trap"),
        "{record}"
    );
    let trace_id = record["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32, "{record}");

    let bad = get(server.admin, "/api/invocations/x1").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let unknown = get(server.admin, &format!("/api/invocations/{}", id + 1000)).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());

    // Two newer records push it out of a ring of two.
    get(server.addr, "/ok").await;
    get(server.addr, "/ok").await;
    invocations(server.admin, "outcome=ok", 2).await;
    let gone = get(server.admin, &format!("/api/invocations/{id}")).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert!(
        gone.text().contains("not in the history"),
        "{}",
        gone.text()
    );
}

#[tokio::test]
async fn the_page_is_served_with_security_headers() {
    let server = Server::start(&manifest());
    let page = get(server.admin, "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["cache-control"], "no-cache");
    let html = page.text();
    assert!(html.contains("<script src=\"dashboard.js\""), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");

    for (path, content_type) in [
        ("/dashboard.js", "text/javascript; charset=utf-8"),
        ("/dashboard.css", "text/css; charset=utf-8"),
    ] {
        let asset = get(server.admin, path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.headers["content-type"], content_type, "{path}");
        assert_eq!(asset.headers["x-content-type-options"], "nosniff", "{path}");
        assert!(!asset.body.is_empty(), "{path}");
    }
    // The page is on the admin listener only.
    let public = get(server.addr, "/dashboard.js").await;
    assert_eq!(public.status, 404);
}

/// The cells of each body row of the table with `id` in a dumped DOM, tags stripped (entities
/// left as serialized, so escaped text stays visibly escaped).
fn table_rows(dom: &str, id: &str) -> Vec<Vec<String>> {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id} in:\n{dom}"));
    let table = &dom[start..];
    let table = &table[..table.find("</table>").unwrap()];
    let body = &table[table.find("<tbody>").unwrap()..];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| strip_tags(&cell[cell.find('>').unwrap() + 1..]))
                .collect()
        })
        .collect()
}

fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_string()
}

fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().is_some_and(|c| c == first))
        .unwrap_or_else(|| panic!("no row starting {first:?} in {rows:?}"))
}

const BUDGET: Duration = Duration::from_millis(4000);

#[tokio::test]
async fn chromium_renders_routes_and_recent_invocations() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let server = Server::start(&manifest());
    known_mix(&server).await;
    let url = format!("http://{}/", server.admin);
    let dom = tokio::task::spawn_blocking(move || chromium.dump_dom(&url, BUDGET))
        .await
        .unwrap();
    assert!(
        dom.contains("<span id=\"app\" class=\"app\">test</span>"),
        "{dom}"
    );
    assert!(dom.contains("8 / 1024 records kept"), "{dom}");

    // Route, component, requests, rate, p50, p95, p99, errors, outcomes, last seen.
    let routes = table_rows(&dom, "routes");
    assert_eq!(routes.len(), 3, "{routes:?}");
    let all = row(&routes, "/...");
    assert_eq!(all[1], "fixture");
    assert_eq!(all[2], "5");
    assert_eq!(all[3], "5.0/min");
    assert!(all[4].ends_with("µs") || all[4].ends_with("ms"), "{all:?}");
    assert_eq!(all[7], "20.0%");
    assert_eq!(all[8], "no_response 1ok 4");
    let trap = row(&routes, "/trap");
    assert_eq!(trap[2], "2");
    assert_eq!(trap[7], "100.0%");
    assert_eq!(trap[8], "trap 2");
    // A route pattern is text, never markup: "&amp;" in the manifest shows as "&amp;".
    row(&routes, "/a&amp;amp;b");

    // Id, time, method, route, component, outcome, status, wall, guest CPU, ...
    let invocations = table_rows(&dom, "invocations");
    assert_eq!(invocations.len(), 8, "{invocations:?}");
    let outcomes: Vec<&str> = invocations.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(
        outcomes,
        ["ok", "ok", "trap", "ok", "no_response", "ok", "trap", "ok"],
        "newest first"
    );
    let statuses: Vec<&str> = invocations.iter().map(|r| r[6].as_str()).collect();
    assert_eq!(
        statuses,
        ["404", "200", "500", "200", "500", "200", "500", "200"]
    );
    assert_eq!(invocations[2][3], "/trap");
    assert_eq!(invocations[0][3], "/a&amp;amp;b");
    assert_eq!(
        invocations[7][13], "cold",
        "the first request started the component"
    );
}

#[tokio::test]
async fn chromium_filters_invocations_from_the_url() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let server = Server::start(&manifest());
    known_mix(&server).await;
    let url = format!("http://{}/?outcome=trap", server.admin);
    let dom = tokio::task::spawn_blocking(move || chromium.dump_dom(&url, BUDGET))
        .await
        .unwrap();
    let invocations = table_rows(&dom, "invocations");
    assert_eq!(invocations.len(), 2, "{invocations:?}");
    assert!(
        invocations.iter().all(|r| r[5] == "trap"),
        "{invocations:?}"
    );
    assert!(
        dom.contains("<option value=\"trap\">trap</option>")
            && dom.contains("<select id=\"filter-outcome\">"),
        "{dom}"
    );
}

#[tokio::test]
async fn chromium_shows_one_invocation_with_its_trap_and_a_screenshot() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let server = Server::start(&manifest());
    known_mix(&server).await;
    let trap = &invocations(server.admin, "outcome=trap&limit=1", 1).await[0];
    let id = trap["id"].as_u64().unwrap();
    let trace_id = trap["trace_id"].as_str().unwrap().to_string();
    let url = format!("http://{}/#invocation={id}", server.admin);

    let (dom, png) = tokio::task::spawn_blocking(move || {
        let dom = chromium.dump_dom(&url, BUDGET);
        let png = chromium.screenshot(&url, 1280, 1024, BUDGET);
        (dom, png)
    })
    .await
    .unwrap();
    assert!(!dom.contains("<section id=\"detail\" hidden"), "{dom}");
    assert!(
        dom.contains(&format!("<span id=\"detail-title\">Invocation {id}</span>")),
        "{dom}"
    );
    assert!(dom.contains(&format!("<dd>{trace_id}</dd>")), "{dom}");
    assert!(dom.contains("<dd>GET /trap</dd>"), "{dom}");
    assert!(dom.contains("unreachable"), "the trap message: {dom}");
    assert!(dom.contains("deliberately_trap"), "the backtrace: {dom}");
    let stderr_lines = trap["stderr_lines"].as_u64().unwrap();
    assert!(
        dom.contains(&format!("stderr {stderr_lines} line")),
        "output counts: {dom}"
    );
    // The log view: the guest's own panic message, from its stderr, in the record.
    assert!(
        dom.contains("<li class=\"stderr\"><span class=\"source\">stderr</span>"),
        "the guest's stderr lines: {dom}"
    );
    assert!(
        dom.contains("fixture trap requested"),
        "the panic message: {dom}"
    );
    assert!(
        dom.contains("<span class=\"timeline-label\">guest CPU</span>"),
        "{dom}"
    );

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&shot, &png).unwrap();
    let image = decode(&png);
    assert_eq!(
        (image.width, image.height),
        (1280, 1024),
        "{}",
        shot.display()
    );
    // Not blank: the page background covers most of it, but text, tables and pills do not.
    let background = image.most_common();
    let other = image.pixels().filter(|&p| p != background).count();
    let share = other as f64 / (1280.0 * 1024.0);
    assert!(
        share > 0.05,
        "only {share:.3} non-background ({})",
        shot.display()
    );
    // The header bar carries the title text: dark pixels in its left part.
    let title_ink = (0..40)
        .flat_map(|y| (0..200).map(move |x| (x, y)))
        .filter(|&(x, y)| image.at(x, y).iter().all(|&c| c < 100))
        .count();
    assert!(
        title_ink > 50,
        "no title text in the header ({})",
        shot.display()
    );
    // The error box's tint (--bad-bg) is on screen: the trap details were drawn.
    let tinted = image
        .pixels()
        .filter(|p| close_to(*p, [0xfd, 0xe8, 0xe6]))
        .count();
    assert!(
        tinted > 10_000,
        "no error box ({tinted} px, {})",
        shot.display()
    );
}

#[tokio::test]
async fn chromium_page_updates_live_as_requests_arrive() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let server = Server::start(&manifest());
    let (proxy, polls) = gated_proxy(server.admin, server.addr).await;
    let url = format!("http://{proxy}/");
    // The page's clock stops while a request is in flight, so its second poll (2 s of
    // virtual time in) waits for the traffic the proxy makes before forwarding it.
    let dom = tokio::task::spawn_blocking(move || chromium.dump_dom(&url, BUDGET))
        .await
        .unwrap();
    assert!(
        polls.load(Ordering::SeqCst) >= 2,
        "the page polled once only"
    );
    let invocations = table_rows(&dom, "invocations");
    let outcomes: Vec<&str> = invocations.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(outcomes, ["trap", "ok"], "{dom}");
    let routes = table_rows(&dom, "routes");
    assert_eq!(row(&routes, "/trap")[2], "1", "{routes:?}");
}

/// A reverse proxy to the admin listener that counts the page's polls (of
/// `/api/invocations`) and, before it forwards any request of the second poll, sends one
/// `/ok` and one `/trap` request to `public` and waits for their records. The page's first
/// poll therefore sees an empty history: rows it shows at the end came from polling.
async fn gated_proxy(admin: SocketAddr, public: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let traffic_sent = Arc::new(tokio::sync::Mutex::new(false));
    let route_polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (polls, route_polls, traffic_sent) =
                (counted.clone(), route_polls.clone(), traffic_sent.clone());
            let service = hyper::service::service_fn(move |request: http::Request<_>| {
                let (polls, route_polls, traffic_sent) =
                    (polls.clone(), route_polls.clone(), traffic_sent.clone());
                async move {
                    let path = request.uri().path().to_string();
                    let target = request
                        .uri()
                        .path_and_query()
                        .map_or("/".to_string(), |p| p.to_string());
                    // A poll fetches both, in either order: the first of the two arriving a
                    // second time starts the second poll.
                    let second_poll = match path.as_str() {
                        "/api/invocations" => polls.fetch_add(1, Ordering::SeqCst) >= 1,
                        "/api/routes" => route_polls.fetch_add(1, Ordering::SeqCst) >= 1,
                        _ => false,
                    };
                    let second_poll = second_poll
                        || polls.load(Ordering::SeqCst) >= 2
                        || route_polls.load(Ordering::SeqCst) >= 2;
                    if second_poll && path.starts_with("/api/") {
                        let mut sent = traffic_sent.lock().await;
                        if !*sent {
                            get(public, "/ok").await;
                            get(public, "/trap").await;
                            invocations(admin, "", 2).await;
                            *sent = true;
                        }
                    }
                    let reply = get(admin, &target).await;
                    let mut response = http::Response::new(http_body_util::Full::new(reply.body));
                    *response.status_mut() = http::StatusCode::from_u16(reply.status).unwrap();
                    *response.headers_mut() = reply.headers;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, polls)
}

struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn pixels(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]])
    }

    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    fn most_common(&self) -> [u8; 3] {
        let mut counts = std::collections::HashMap::new();
        for p in self.pixels() {
            *counts.entry(p).or_insert(0u32) += 1;
        }
        counts.into_iter().max_by_key(|&(_, n)| n).unwrap().0
    }
}

fn close_to(p: [u8; 3], want: [u8; 3]) -> bool {
    p.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 3)
}

/// Decodes a PNG to 8-bit RGB.
fn decode(png_bytes: &[u8]) -> Image {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buffer).expect("PNG frame");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let rgb = buffer[..info.buffer_size()]
        .chunks_exact(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width,
        height: info.height,
        rgb,
    }
}

#[tokio::test]
async fn chromium_asks_for_the_admin_token_when_the_api_wants_one() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "s3cret-admin-token\n").unwrap();
    let mut perms = std::fs::metadata(&token).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&token, perms).unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &manifest(),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--admin-token-file",
            token.to_str().unwrap(),
        ],
    );
    let url = format!("http://{}/", server.admin);
    let dom = tokio::task::spawn_blocking(move || chromium.dump_dom(&url, BUDGET))
        .await
        .unwrap();
    // The page loads (static files are open), its API calls get 401, and it shows the
    // sign-in form instead of data.
    assert!(dom.contains("admin token required"), "{dom}");
    assert!(
        dom.contains("<form id=\"token-form\" class=\"token-form\">"),
        "the token form must be shown (no hidden attribute): {dom}"
    );
}

#[tokio::test]
async fn chromium_shows_an_invocations_calls_where_they_happened() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let server = Server::start(&support::kv_guest_manifest());
    let mut client = support::Client::connect(server.addr, support::Protocol::Http1).await;
    let reply = client.send("PUT", "/kv/default/hidden-key", "v").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let record = &invocations(server.admin, "", 1).await[0];
    let id = record["id"].as_u64().unwrap();
    let url = format!("http://{}/#invocation={id}", server.admin);
    let dom = tokio::task::spawn_blocking(move || chromium.dump_dom(&url, BUDGET))
        .await
        .unwrap();
    // One timeline row per call, named by its operation, after the totals.
    for operation in ["open default", "set default"] {
        assert!(
            dom.contains(&format!(
                "<div class=\"timeline-row call-row\"><span class=\"timeline-label\">{operation}</span>"
            )),
            "no row for {operation}: {dom}"
        );
    }
    assert!(dom.contains("<div class=\"bar call\""), "{dom}");
    assert!(
        !dom.contains("hidden-key"),
        "keys never reach the page: {dom}"
    );
}
