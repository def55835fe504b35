// The Wasmgate dashboard: polls the admin API and renders it. Everything shown from a record
// (route patterns, errors, backtraces come from manifests and guests) goes into the page as
// text nodes, never as markup.
"use strict";

const POLL_MS = 2000;
const INVOCATION_LIMIT = 100;
const OUTCOMES = [
  "ok", "trap", "timeout", "memory_limit", "host_call_limit", "no_response", "bad_output", "overloaded",
  "instantiate_failed", "client_gone", "denied", "rate_limited", "rejected",
];

const state = {
  paused: false,
  // Filters of the invocations table, kept in the URL (?route=&outcome=) so a view can be
  // linked to.
  route: "",
  outcome: "",
  timer: null,
  // The invocation shown in the detail view (from the URL's #invocation=ID), and the record
  // once fetched: records never change, so it is fetched once per selection.
  selected: null,
  shownDetail: null,
};

const $ = (id) => document.getElementById(id);

// An element with `className` and children; strings become text nodes.
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function cell(text, className) {
  return el("td", className, text === null || text === undefined ? "–" : String(text));
}

function formatMicros(us) {
  if (us === null || us === undefined) return "–";
  if (us < 1000) return us + " µs";
  if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + " ms";
  return (us / 1e6).toFixed(2) + " s";
}

function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  if (bytes < 1024) return bytes + " B";
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return value.toFixed(value < 10 ? 1 : 0) + " " + units[unit];
}

function formatCount(n) {
  if (n === null || n === undefined) return "–";
  if (n < 1e4) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(1) + "k";
  if (n < 1e9) return (n / 1e6).toFixed(1) + "M";
  return (n / 1e9).toFixed(2) + "G";
}

function formatRate(perSecond) {
  if (perSecond === 0) return "0/s";
  if (perSecond < 0.1) return (perSecond * 60).toFixed(1) + "/min";
  return perSecond.toFixed(perSecond < 10 ? 2 : 0) + "/s";
}

function formatAgo(ms, now) {
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
  return Math.floor(seconds / 3600) + " h ago";
}

function formatClock(ms) {
  const date = new Date(ms);
  const pad = (n, width) => String(n).padStart(width, "0");
  return pad(date.getHours(), 2) + ":" + pad(date.getMinutes(), 2) + ":" +
    pad(date.getSeconds(), 2) + "." + pad(date.getMilliseconds(), 3);
}

function outcomePill(outcome) {
  const kind = outcome === "ok" ? "ok" : outcome === "client_gone" ? "warn" : "bad";
  return el("span", "pill " + kind, outcome);
}

// With --admin-token-file the API wants a bearer token, which a page load cannot carry: the
// operator types it once; it stays in this tab's sessionStorage only (never in the URL).
const TOKEN_KEY = "wasmgate-admin-token";

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

function askForToken() {
  $("token-form").hidden = false;
  $("token").focus();
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store", headers: authHeaders() });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken();
  }
  if (!response.ok) {
    const error = new Error(url + ": HTTP " + response.status);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// ---- routes ----

function renderRoutes(summary) {
  $("app").textContent = summary.app;
  $("ring").textContent = summary.records + " / " + summary.capacity + " records kept";
  const span = summary.rate_window_s;
  let note = "over the " + summary.records + " records in the history ring";
  if (summary.records >= summary.capacity && summary.oldest_ms !== null) {
    note += " (full: the oldest is from " + formatAgo(summary.oldest_ms, summary.now_ms) + ")";
  }
  $("routes-note").textContent = note + "; rate over the last " +
    (span < 10 ? span.toFixed(1) : Math.round(span)) + " s";
  const body = $("routes").tBodies[0];
  const rows = summary.routes.map((route) => {
    const outcomes = el("td", "outcomes");
    for (const [outcome, count] of Object.entries(route.outcomes)) {
      outcomes.append(el("span", "outcome-count", outcomePill(outcome), " " + count));
    }
    const errorCell = cell((route.error_rate * 100).toFixed(1) + "%", "num");
    if (route.errors > 0) errorCell.classList.add("bad-text");
    const routeCell = el("td", "route");
    const link = el("a", null, route.route);
    link.href = "#";
    link.title = "show this route's invocations";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      setFilters(route.route, state.outcome);
      refresh();
    });
    routeCell.append(link);
    return el("tr", null,
      routeCell,
      cell(route.component),
      cell(formatCount(route.requests), "num"),
      cell(formatRate(route.rate_per_s), "num"),
      cell(formatMicros(route.wall_time_us.p50), "num"),
      cell(formatMicros(route.wall_time_us.p95), "num"),
      cell(formatMicros(route.wall_time_us.p99), "num"),
      errorCell,
      outcomes,
      cell(formatAgo(route.last_seen_ms, summary.now_ms), "num"));
  });
  body.replaceChildren(...rows);
  $("routes-empty").hidden = rows.length > 0;
  fillRouteFilter(summary.routes.map((route) => route.route));
}

// Adds the missing `values` to `select`, then selects `current` (added too if missing).
function setOptions(select, values, current) {
  const known = new Set([...select.options].map((option) => option.value));
  for (const value of [...values, current]) {
    if (known.has(value)) continue;
    known.add(value);
    const option = el("option", null, value);
    option.value = value;
    select.append(option);
  }
  select.value = current;
}

function fillRouteFilter(routes) {
  setOptions($("filter-route"), [...new Set(routes)].sort(), state.route);
}

function setFilters(route, outcome) {
  state.route = route;
  state.outcome = outcome;
  setOptions($("filter-route"), [], route);
  setOptions($("filter-outcome"), [], outcome);
  const params = new URLSearchParams();
  if (route) params.set("route", route);
  if (outcome) params.set("outcome", outcome);
  const search = params.toString();
  history.replaceState(null, "", (search ? "?" + search : location.pathname) + location.hash);
}

// ---- invocations ----

function renderInvocations(records) {
  const now = Date.now();
  const rows = records.map((record) => {
    const id = el("a", null, String(record.id));
    id.href = "#invocation=" + record.id;
    const row = el("tr", "clickable",
      el("td", "num", id),
      cell(formatClock(record.started_at_ms), "time"),
      cell(record.method),
      cell(record.route, "route"),
      cell(record.component),
      el("td", null, outcomePill(record.outcome)),
      cell(record.status || "–", "num"),
      cell(formatMicros(record.wall_time_us), "num"),
      cell(formatMicros(record.guest_cpu_time_us), "num"),
      cell(formatMicros(record.instantiate_time_us), "num"),
      cell(formatBytes(record.peak_memory_bytes), "num"),
      cell(formatCount(record.instructions), "num"),
      cell(formatCount(record.host_calls), "num"),
      cell(record.cold_start ? "cold" : "", "cold"));
    row.dataset.id = record.id;
    if (state.selected === record.id) row.classList.add("selected");
    row.title = formatAgo(record.started_at_ms, now);
    row.addEventListener("click", () => {
      location.hash = "invocation=" + record.id;
    });
    return row;
  });
  $("invocations").tBodies[0].replaceChildren(...rows);
  $("invocations-empty").hidden = rows.length > 0;
}

function invocationsUrl() {
  const params = new URLSearchParams({ limit: String(INVOCATION_LIMIT) });
  if (state.route) params.set("route", state.route);
  if (state.outcome) params.set("outcome", state.outcome);
  return "api/invocations?" + params.toString();
}

// ---- one invocation ----

function selectedFromHash() {
  const match = /^#invocation=(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function fact(list, name, value) {
  list.append(el("dt", null, name), el("dd", null, value === null || value === undefined ? "–" : String(value)));
}

// One timeline row: a bar from `start` for `length` microseconds, on a track `total` wide.
function timelineRow(label, start, length, total, kind) {
  const bar = el("div", "bar " + kind);
  const scale = total > 0 ? 100 / total : 0;
  bar.style.left = Math.min(100, start * scale) + "%";
  bar.style.width = Math.max(0.4, Math.min(100 - start * scale, length * scale)) + "%";
  return el("div", "timeline-row",
    el("span", "timeline-label", label),
    el("div", "track", bar),
    el("span", "timeline-value", formatMicros(length)));
}

function renderDetail(record) {
  $("detail").hidden = false;
  $("detail-missing").hidden = true;
  $("detail-body").hidden = false;
  $("detail-title").textContent = "Invocation " + record.id;
  $("detail-outcome").replaceChildren(outcomePill(record.outcome));

  const facts = $("detail-facts");
  facts.replaceChildren();
  fact(facts, "route", record.method + " " + record.route);
  fact(facts, "component", record.component + " (" + record.executor + ")");
  fact(facts, "status", record.status || "no response");
  fact(facts, "started", new Date(record.started_at_ms).toISOString());
  fact(facts, "trace id", record.trace_id);
  fact(facts, "cold start", record.cold_start ? "yes" : "no");
  fact(facts, "peak memory", formatBytes(record.peak_memory_bytes));
  fact(facts, "instructions", record.instructions === null ? "not metered" : formatCount(record.instructions));
  fact(facts, "bytes in / out", formatBytes(record.request_bytes) + " / " + formatBytes(record.response_bytes));
  if (record.exit_code !== null) fact(facts, "exit code", record.exit_code);

  const wall = record.wall_time_us;
  const instantiate = record.instantiate_time_us;
  const rows = [
    timelineRow("wall", 0, wall, wall, "wall"),
    timelineRow("instantiate", 0, instantiate, wall, "instantiate"),
  ];
  if (record.guest_cpu_time_us !== null) {
    rows.push(timelineRow("guest CPU", instantiate, record.guest_cpu_time_us, wall, "guest"));
  }
  if (record.host_call_time_us !== null) {
    rows.push(timelineRow("host calls ×" + formatCount(record.host_calls), instantiate,
      record.host_call_time_us, wall, "host"));
  }
  for (const capability of record.host_calls_by_capability) {
    rows.push(timelineRow("  " + capability.capability + " ×" + formatCount(capability.count),
      instantiate, capability.time_us, wall, "capability"));
  }
  // Each outbound HTTP, key-value and SQL call where it happened: the invocation's trace.
  for (const call of record.calls || []) {
    const row = timelineRow(call.operation, call.start_us, call.duration_us, wall,
      call.failed ? "call failed" : "call");
    row.classList.add("call-row");
    rows.push(row);
  }
  if (record.calls_left_out) {
    rows.push(el("div", "timeline-row call-row",
      el("span", "timeline-label", "… " + formatCount(record.calls_left_out) + " more calls"),
      el("div", "track"), el("span", "timeline-value", "")));
  }
  $("timeline").replaceChildren(...rows);

  const failed = record.error !== null || record.backtrace !== null;
  $("detail-error-box").hidden = !failed;
  $("detail-error").textContent = record.error || "";
  $("detail-backtrace").textContent = record.backtrace || "";
  $("detail-backtrace").hidden = record.backtrace === null;
  $("detail-backtrace-title").hidden = record.backtrace === null;
  const lines = (n) => n + (n === 1 ? " line" : " lines");
  $("detail-output").textContent = "stdout " + lines(record.stdout_lines) + " (" +
    formatBytes(record.stdout_bytes) + "), stderr " + lines(record.stderr_lines) + " (" +
    formatBytes(record.stderr_bytes) + ")";
  renderLog(record);
}

// The guest's first output lines and wasi:logging records, in the order it produced them.
// Text goes in as text nodes only: it is whatever the guest wrote.
function renderLog(record) {
  const kept = record.output || [];
  const leftOut = record.output_left_out || 0;
  const items = kept.map((line) => {
    const item = document.createElement("li");
    item.className = line.level ? line.source + " " + line.level : line.source;
    const source = document.createElement("span");
    source.className = "source";
    source.textContent = line.level ? line.source + " " + line.level : line.source;
    item.append(source, document.createTextNode(line.text));
    return item;
  });
  if (leftOut > 0) {
    const more = document.createElement("li");
    more.className = "left-out";
    more.textContent = "… " + formatCount(leftOut) + " more not kept in the record " +
      "(the server log has them, tagged invocation=" + record.id + ", up to its per-invocation cap)";
    items.push(more);
  }
  $("detail-log").replaceChildren(...items);
  $("detail-log").hidden = items.length === 0;
  $("detail-log-empty").hidden = items.length !== 0;
}

function renderMissing(id) {
  $("detail").hidden = false;
  $("detail-title").textContent = "Invocation " + id;
  $("detail-outcome").replaceChildren();
  $("detail-missing").hidden = false;
  $("detail-body").hidden = true;
}

async function refreshDetail() {
  state.selected = selectedFromHash();
  if (state.selected === null) {
    $("detail").hidden = true;
    state.shownDetail = null;
    return;
  }
  if (state.shownDetail === state.selected) return;
  const id = state.selected;
  try {
    renderDetail(await getJson("api/invocations/" + id));
  } catch (error) {
    if (error.status !== 404) throw error;
    renderMissing(id);
  }
  state.shownDetail = id;
  // Rows are clicked far down the table; the record shows above it.
  $("detail").scrollIntoView({ block: "nearest" });
}

// ---- polling ----

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = "status " + kind;
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    const [summary, invocations] = await Promise.all([
      getJson("api/routes"),
      getJson(invocationsUrl()),
      refreshDetail(),
    ]);
    renderRoutes(summary);
    renderInvocations(invocations.invocations);
    setStatus(state.paused ? "paused" : "live · " + formatClock(Date.now()), state.paused ? "paused" : "live");
  } catch (error) {
    const why = error.status === 401 ? "admin token required" : "cannot reach the admin API: " + error.message;
    setStatus(why, "down");
  }
  if (!state.paused) state.timer = setTimeout(refresh, POLL_MS);
}

function start() {
  const params = new URLSearchParams(location.search);
  setOptions($("filter-outcome"), OUTCOMES, "");
  setFilters(params.get("route") || "", params.get("outcome") || "");
  const onFilter = () => {
    setFilters($("filter-route").value, $("filter-outcome").value);
    refresh();
  };
  $("filter-route").addEventListener("change", onFilter);
  $("filter-outcome").addEventListener("change", onFilter);
  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("pause").textContent = state.paused ? "Resume" : "Pause";
    refresh();
  });
  $("detail-close").addEventListener("click", (event) => {
    event.preventDefault();
    history.replaceState(null, "", location.pathname + location.search);
    refresh();
  });
  window.addEventListener("hashchange", refresh);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("token-form").hidden = true;
    refresh();
  });
  refresh();
}

start();
