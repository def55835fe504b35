//! On-demand guest profiles: an operator asks for the next N invocations of a route (or of a
//! component) to be profiled, and gets one Firefox-profiler document back.
//!
//! [`Profiles`] is the registry of profile sessions, shared by the executors and the admin API.
//! The request path asks it for a [`Ticket`] on every invocation; while no session collects,
//! that is one relaxed atomic load and nothing else. A selected invocation gets a wasmtime
//! `GuestProfiler` on its store, sampled
//! - at every epoch tick while guest code runs: the ticker ticks at the session's interval
//!   (1 ms by default) instead of every 10 ms for as long as a session collects, and
//! - at every call from the guest into the host, with a host-call marker spanning the call:
//!   a request that runs for microseconds never sees a tick, but its host calls show where
//!   the guest was when it asked the host for something.
//!
//! Each invocation is one profile (a process track named after it); when the session's N
//! invocations are done, or its deadline passes, they are merged into one document.

pub(crate) mod fine_tick;
mod merge;
mod recorder;

use merge::merge;
pub(crate) use recorder::Ticket;

use crate::executor::RequestContext;
use crate::runtime::SubRouteExecutor;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmgate_manifest::{Executor as ExecutorKind, Manifest};

/// Bounds on what an operator may ask for, so a profile session cannot exhaust the server.
pub mod limits {
    use std::time::Duration;

    /// Invocations one session may profile.
    pub const MAX_COUNT: u32 = 100;
    /// Sessions collecting at once.
    pub const MAX_COLLECTING: usize = 4;
    /// Sessions remembered (collecting or done); the oldest done one is forgotten first.
    pub const MAX_KEPT: usize = 16;
    /// Sampling interval when the request names none.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(1);
    /// Finest interval: the epoch ticker sleeps this long between ticks.
    pub const MIN_INTERVAL: Duration = Duration::from_micros(100);
    /// Coarsest interval: the normal epoch tick.
    pub const MAX_INTERVAL: Duration = crate::engine::EPOCH_TICK;
    /// How long a session waits for its invocations when the request names no deadline.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Samples and markers kept per invocation: a guest making millions of host calls
    /// would otherwise grow its profile without bound.
    pub const MAX_SAMPLES: u32 = 100_000;
}

/// What to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileTarget {
    /// Invocations through this route pattern, as written in the manifest (`/api/...`).
    Route(String),
    /// Every invocation of this component, whatever the route.
    Component(String),
}

/// An operator's request for a profile session.
#[derive(Debug, Clone)]
pub struct ProfileRequest {
    pub target: ProfileTarget,
    /// Invocations to profile.
    pub count: u32,
    /// Sampling interval; `None`: [`limits::DEFAULT_INTERVAL`].
    pub interval: Option<Duration>,
    /// When to give up waiting and return what was profiled; `None`: [`limits::DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
}

/// Why a profile session was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProfileError {
    #[error("the app has no route {0:?} (GET /api/routes lists the route patterns)")]
    UnknownRoute(String),
    #[error("the app has no component {0:?}")]
    UnknownComponent(String),
    #[error(
        "component {0:?} is a service (executor = \"service\"): it runs as a long-lived server, \
         not one invocation per request, so it cannot be profiled per invocation"
    )]
    Service(String),
    #[error("count must be between 1 and {max}, got {got}")]
    Count { got: u32, max: u32 },
    #[error("interval_ms must be between {min_ms} and {max_ms}, got {got_ms}")]
    Interval {
        got_ms: f64,
        min_ms: f64,
        max_ms: f64,
    },
    #[error("timeout_s must be between 1 and {max_s}, got {got_s}")]
    Timeout { got_s: f64, max_s: u64 },
    #[error("{max} profile sessions are already collecting; wait for one to finish")]
    TooMany { max: usize },
}

/// Routes and components of the loaded app that sessions may name.
#[derive(Debug, Default, Clone)]
pub struct Targets {
    /// Route pattern -> component.
    routes: BTreeMap<String, String>,
    components: BTreeMap<String, ExecutorKind>,
}

impl Targets {
    /// The manifest's routes and the sub-routes components add below them (WAGI `_routes`).
    pub(crate) fn of(
        manifest: &Manifest,
        sub_routes: &BTreeMap<String, Vec<SubRouteExecutor>>,
    ) -> Targets {
        let mut targets = Targets::default();
        for route in &manifest.routes {
            targets
                .routes
                .insert(route.path.to_string(), route.component.clone());
            for sub in sub_routes.get(&route.component).into_iter().flatten() {
                let pattern = sub.route.under(&route.path).to_string();
                targets.routes.insert(pattern, route.component.clone());
            }
        }
        for (name, component) in &manifest.components {
            targets.components.insert(name.clone(), component.executor);
        }
        targets
    }

    /// The component `target` names, if it can be profiled.
    fn resolve(&self, target: &ProfileTarget) -> Result<String, ProfileError> {
        let component = match target {
            ProfileTarget::Route(pattern) => self
                .routes
                .get(pattern)
                .ok_or_else(|| ProfileError::UnknownRoute(pattern.clone()))?,
            ProfileTarget::Component(name) => name,
        };
        match self.components.get(component) {
            None => Err(ProfileError::UnknownComponent(component.clone())),
            Some(ExecutorKind::Service) => Err(ProfileError::Service(component.clone())),
            Some(_) => Ok(component.clone()),
        }
    }
}

/// Where a session stands, as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Copy)]
pub enum SessionState {
    /// Waiting for invocations, or for claimed ones to finish.
    Collecting,
    /// All `count` invocations were profiled.
    Complete,
    /// The deadline passed first: the profile holds the invocations done by then.
    Expired,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Collecting => "collecting",
            SessionState::Complete => "complete",
            SessionState::Expired => "expired",
        }
    }
}

/// A session's progress, for `GET /api/profiles` and a 202 answer.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: u64,
    pub target: ProfileTarget,
    pub component: String,
    pub count: u32,
    pub interval: Duration,
    pub state: SessionState,
    /// Invocations selected so far (some may still run).
    pub started: u32,
    /// Invocations whose profile is in.
    pub profiled: u32,
    pub created: SystemTime,
    pub deadline: SystemTime,
}

impl SessionSummary {
    /// The JSON the admin API shows.
    pub fn to_json(&self) -> Value {
        let (kind, name) = match &self.target {
            ProfileTarget::Route(route) => ("route", route),
            ProfileTarget::Component(component) => ("component", component),
        };
        serde_json::json!({
            "id": self.id,
            kind: name,
            "component": self.component,
            "count": self.count,
            "interval_ms": self.interval.as_secs_f64() * 1000.0,
            "state": self.state.as_str(),
            "started": self.started,
            "profiled": self.profiled,
            "created_unix_ms": unix_ms(self.created),
            "deadline_unix_ms": unix_ms(self.deadline),
        })
    }
}

/// What `GET /api/profiles/{id}` finds.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// No such session (never made, or forgotten).
    Missing,
    Collecting(SessionSummary),
    /// Done: the merged Firefox-profiler JSON; `None` when the deadline passed before any
    /// invocation was profiled.
    Done(SessionSummary, Option<Arc<[u8]>>),
}

struct Session {
    id: u64,
    target: ProfileTarget,
    component: String,
    count: u32,
    interval: Duration,
    created: SystemTime,
    deadline: Instant,
    /// `deadline` on the wall clock, for the admin API.
    deadline_wall: SystemTime,
    started: u32,
    /// Invocations that ended, with their profile (`None`: the profiler could not be set up).
    ended: Vec<(u64, Option<Vec<u8>>)>,
    /// Invocations whose profile is in the session's profile.
    profiled: u32,
    state: SessionState,
    profile: Option<Arc<[u8]>>,
}

impl Session {
    fn summary(&self) -> SessionSummary {
        SessionSummary {
            id: self.id,
            target: self.target.clone(),
            component: self.component.clone(),
            count: self.count,
            interval: self.interval,
            state: self.state,
            started: self.started,
            profiled: self.profiled,
            created: self.created,
            deadline: self.deadline_wall,
        }
    }

    fn wants(&self, route: &str, component: &str) -> bool {
        self.state == SessionState::Collecting
            && self.started < self.count
            && match &self.target {
                ProfileTarget::Route(pattern) => pattern == route,
                ProfileTarget::Component(name) => name == component,
            }
    }

    /// Merges what was profiled and stops collecting.
    fn close(&mut self, state: SessionState) {
        self.state = state;
        let parts: Vec<(u64, &[u8])> = self
            .ended
            .iter()
            .filter_map(|(invocation, part)| Some((*invocation, part.as_deref()?)))
            .collect();
        self.profile = if parts.is_empty() {
            None
        } else {
            match merge(&parts) {
                Ok(merged) => Some(merged.into()),
                Err(e) => {
                    tracing::error!(session = self.id, error = %e, "cannot merge guest profiles");
                    None
                }
            }
        };
        self.ended = Vec::new();
    }
}

#[derive(Default)]
struct Inner {
    targets: Targets,
    /// Oldest first.
    sessions: VecDeque<Session>,
}

/// The registry of profile sessions (see the module docs).
#[derive(Default)]
pub struct Profiles {
    /// Sessions collecting: the only thing the request path reads while it is zero.
    collecting: AtomicUsize,
    next_id: AtomicU64,
    inner: Mutex<Inner>,
}

impl Profiles {
    pub fn new() -> Profiles {
        Profiles::default()
    }

    /// The routes and components sessions may name from now on (set at each app load).
    pub(crate) fn set_targets(&self, targets: Targets) {
        self.lock().targets = targets;
    }

    /// Opens a session; it collects from the next invocation on.
    pub fn start(&self, request: ProfileRequest) -> Result<SessionSummary, ProfileError> {
        let max = limits::MAX_COUNT;
        if request.count == 0 || request.count > max {
            return Err(ProfileError::Count {
                got: request.count,
                max,
            });
        }
        let interval = request.interval.unwrap_or(limits::DEFAULT_INTERVAL);
        if !(limits::MIN_INTERVAL..=limits::MAX_INTERVAL).contains(&interval) {
            return Err(ProfileError::Interval {
                got_ms: interval.as_secs_f64() * 1000.0,
                min_ms: limits::MIN_INTERVAL.as_secs_f64() * 1000.0,
                max_ms: limits::MAX_INTERVAL.as_secs_f64() * 1000.0,
            });
        }
        let timeout = request.timeout.unwrap_or(limits::DEFAULT_TIMEOUT);
        if !(Duration::from_secs(1)..=limits::MAX_TIMEOUT).contains(&timeout) {
            return Err(ProfileError::Timeout {
                got_s: timeout.as_secs_f64(),
                max_s: limits::MAX_TIMEOUT.as_secs(),
            });
        }
        let mut inner = self.lock();
        self.expire(&mut inner);
        let component = inner.targets.resolve(&request.target)?;
        let collecting = inner
            .sessions
            .iter()
            .filter(|s| s.state == SessionState::Collecting)
            .count();
        if collecting >= limits::MAX_COLLECTING {
            return Err(ProfileError::TooMany {
                max: limits::MAX_COLLECTING,
            });
        }
        let session = Session {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            target: request.target,
            component,
            count: request.count,
            interval,
            created: SystemTime::now(),
            deadline: Instant::now() + timeout,
            deadline_wall: SystemTime::now() + timeout,
            started: 0,
            ended: Vec::new(),
            profiled: 0,
            state: SessionState::Collecting,
            profile: None,
        };
        let summary = session.summary();
        inner.sessions.push_back(session);
        forget_old(&mut inner.sessions);
        self.collecting.fetch_add(1, Ordering::Relaxed);
        fine_tick::demand(&inner.sessions);
        Ok(summary)
    }

    /// Every session remembered, oldest first.
    pub fn list(&self) -> Vec<SessionSummary> {
        let mut inner = self.lock();
        self.expire(&mut inner);
        inner.sessions.iter().map(Session::summary).collect()
    }

    pub fn lookup(&self, id: u64) -> Lookup {
        let mut inner = self.lock();
        self.expire(&mut inner);
        match inner.sessions.iter().find(|s| s.id == id) {
            None => Lookup::Missing,
            Some(s) if s.state == SessionState::Collecting => Lookup::Collecting(s.summary()),
            Some(s) => Lookup::Done(s.summary(), s.profile.clone()),
        }
    }

    /// Whether this invocation is to be profiled. While no session collects this costs one
    /// relaxed atomic load: every request pays it.
    #[inline]
    pub(crate) fn select(
        self: &Arc<Self>,
        context: &RequestContext,
        component: &str,
    ) -> Option<Ticket> {
        if self.collecting.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.select_slow(&context.route.pattern, component, context.invocation_id)
    }

    #[cold]
    fn select_slow(
        self: &Arc<Self>,
        route: &str,
        component: &str,
        invocation: u64,
    ) -> Option<Ticket> {
        let mut inner = self.lock();
        self.expire(&mut inner);
        let session = inner
            .sessions
            .iter_mut()
            .find(|s| s.wants(route, component))?;
        session.started += 1;
        Some(Ticket::new(
            self.clone(),
            session.id,
            invocation,
            session.interval,
            format!("{component} {route} invocation {invocation}"),
        ))
    }

    /// An invocation's profile is in (or could not be made).
    fn ended(&self, session: u64, invocation: u64, profile: Option<Vec<u8>>) {
        let mut inner = self.lock();
        let Some(s) = inner.sessions.iter_mut().find(|s| s.id == session) else {
            return;
        };
        // A session closed by its deadline keeps the profile it had then.
        if s.state != SessionState::Collecting {
            return;
        }
        s.profiled += u32::from(profile.is_some());
        s.ended.push((invocation, profile));
        if s.ended.len() as u32 >= s.count {
            s.close(SessionState::Complete);
            self.collecting.fetch_sub(1, Ordering::Relaxed);
            fine_tick::demand(&inner.sessions);
        }
    }

    /// Closes the sessions whose deadline passed.
    fn expire(&self, inner: &mut Inner) {
        let now = Instant::now();
        let mut closed = false;
        for session in &mut inner.sessions {
            if session.state == SessionState::Collecting && session.deadline <= now {
                session.close(SessionState::Expired);
                self.collecting.fetch_sub(1, Ordering::Relaxed);
                closed = true;
            }
        }
        if closed {
            fine_tick::demand(&inner.sessions);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing under this lock leaves the registry inconsistent if it panics.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Forgets the oldest finished sessions beyond [`limits::MAX_KEPT`].
fn forget_old(sessions: &mut VecDeque<Session>) {
    while sessions.len() > limits::MAX_KEPT {
        match sessions
            .iter()
            .position(|s| s.state != SessionState::Collecting)
        {
            Some(oldest_done) => {
                sessions.remove(oldest_done);
            }
            // At most MAX_COLLECTING collect, which is below MAX_KEPT.
            None => break,
        }
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call_clock::{CallClock, HasCallClock};

    fn registry() -> Arc<Profiles> {
        let profiles = Arc::new(Profiles::new());
        let mut targets = Targets::default();
        for (route, component) in [("/api/...", "api"), ("/cgi", "cgi"), ("/svc", "svc")] {
            targets.routes.insert(route.into(), component.into());
        }
        targets.components.insert("api".into(), ExecutorKind::Http);
        targets.components.insert("cgi".into(), ExecutorKind::Wagi);
        targets
            .components
            .insert("svc".into(), ExecutorKind::Service);
        profiles.set_targets(targets);
        profiles
    }

    fn route(pattern: &str, count: u32) -> ProfileRequest {
        ProfileRequest {
            target: ProfileTarget::Route(pattern.into()),
            count,
            interval: None,
            timeout: None,
        }
    }

    #[test]
    fn requests_outside_the_bounds_are_refused() {
        let profiles = registry();
        let max = limits::MAX_COUNT;
        assert_eq!(
            profiles.start(route("/api/...", 0)).unwrap_err(),
            ProfileError::Count { got: 0, max }
        );
        assert!(matches!(
            profiles.start(route("/api/...", max + 1)),
            Err(ProfileError::Count { .. })
        ));
        let too_fine = ProfileRequest {
            interval: Some(Duration::from_micros(10)),
            ..route("/api/...", 1)
        };
        assert!(matches!(
            profiles.start(too_fine),
            Err(ProfileError::Interval { .. })
        ));
        let too_long = ProfileRequest {
            timeout: Some(Duration::from_secs(100_000)),
            ..route("/api/...", 1)
        };
        assert!(matches!(
            profiles.start(too_long),
            Err(ProfileError::Timeout { .. })
        ));
        assert!(profiles.list().is_empty());
    }

    #[test]
    fn unknown_targets_and_services_are_refused() {
        let profiles = registry();
        assert_eq!(
            profiles.start(route("/nope", 1)).unwrap_err(),
            ProfileError::UnknownRoute("/nope".into())
        );
        let component = |name: &str| ProfileRequest {
            target: ProfileTarget::Component(name.into()),
            ..route("", 1)
        };
        assert_eq!(
            profiles.start(component("ghost")).unwrap_err(),
            ProfileError::UnknownComponent("ghost".into())
        );
        assert_eq!(
            profiles.start(route("/svc", 1)).unwrap_err(),
            ProfileError::Service("svc".into())
        );
        assert_eq!(profiles.start(component("cgi")).unwrap().component, "cgi");
    }

    #[test]
    fn collecting_sessions_are_bounded() {
        let profiles = registry();
        for _ in 0..limits::MAX_COLLECTING {
            profiles.start(route("/api/...", 1)).unwrap();
        }
        assert_eq!(
            profiles.start(route("/cgi", 1)).unwrap_err(),
            ProfileError::TooMany {
                max: limits::MAX_COLLECTING
            }
        );
    }

    #[test]
    fn only_the_named_route_is_selected_and_only_count_times() {
        let profiles = registry();
        assert!(profiles.select_slow("/api/...", "api", 1).is_none());
        let session = profiles.start(route("/api/...", 2)).unwrap();
        assert_eq!(profiles.collecting.load(Ordering::Relaxed), 1);
        assert!(profiles.select_slow("/cgi", "cgi", 2).is_none());
        let first = profiles.select_slow("/api/...", "api", 3).unwrap();
        let second = profiles.select_slow("/api/...", "api", 4).unwrap();
        assert!(profiles.select_slow("/api/...", "api", 5).is_none());
        match profiles.lookup(session.id) {
            Lookup::Collecting(summary) => assert_eq!(summary.started, 2),
            other => panic!("{other:?}"),
        }
        // Tickets that never reached a guest still end their invocation.
        drop(first);
        drop(second);
        match profiles.lookup(session.id) {
            Lookup::Done(summary, None) => {
                assert_eq!(summary.state, SessionState::Complete);
                assert_eq!(summary.profiled, 0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(profiles.collecting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_session_past_its_deadline_stops_collecting() {
        let profiles = registry();
        let session = profiles.start(route("/api/...", 5)).unwrap();
        let _running = profiles.select_slow("/api/...", "api", 1).unwrap();
        profiles.lock().sessions[0].deadline = Instant::now();
        assert!(profiles.select_slow("/api/...", "api", 2).is_none());
        match profiles.lookup(session.id) {
            Lookup::Done(summary, None) => assert_eq!(summary.state, SessionState::Expired),
            other => panic!("{other:?}"),
        }
        assert_eq!(profiles.collecting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn finished_sessions_beyond_the_bound_are_forgotten() {
        let profiles = registry();
        let mut ids = Vec::new();
        for invocation in 0..limits::MAX_KEPT as u64 + 3 {
            ids.push(profiles.start(route("/api/...", 1)).unwrap().id);
            drop(profiles.select_slow("/api/...", "api", invocation).unwrap());
        }
        assert_eq!(profiles.list().len(), limits::MAX_KEPT);
        assert!(matches!(profiles.lookup(ids[0]), Lookup::Missing));
        assert!(matches!(
            profiles.lookup(*ids.last().unwrap()),
            Lookup::Done(..)
        ));
    }

    struct Data {
        clock: CallClock,
    }

    impl HasCallClock for Data {
        fn call_clock(&mut self) -> &mut CallClock {
            &mut self.clock
        }
    }

    /// A module whose `run` calls the host five times from `$inner_work`.
    const GUEST: &str = r#"
        (module
          (import "host" "poke" (func $poke))
          (func $inner_work (call $poke))
          (func (export "run") (local $i i32)
            (loop
              (call $inner_work)
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if 0 (i32.lt_u (local.get $i) (i32.const 5))))))
    "#;

    fn run_profiled(profiles: &Arc<Profiles>, invocation: u64) {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, GUEST).unwrap();
        let mut linker = wasmtime::Linker::new(&engine);
        linker.func_wrap("host", "poke", || {}).unwrap();
        let mut store = wasmtime::Store::new(
            &engine,
            Data {
                clock: CallClock::default(),
            },
        );
        let ticket = profiles.select_slow("/cgi", "cgi", invocation).unwrap();
        let profiling = ticket.attach_module(&mut store, &module).unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let run = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .unwrap();
        run.call(&mut store, ()).unwrap();
        // The hook kept counting host calls for the invocation record.
        assert_eq!(store.data().clock.host_calls, 5);
        drop(profiling);
    }

    #[test]
    fn profiled_invocations_merge_into_one_firefox_profile() {
        let profiles = registry();
        let session = profiles.start(route("/cgi", 2)).unwrap();
        run_profiled(&profiles, 41);
        run_profiled(&profiles, 42);
        let Lookup::Done(summary, Some(json)) = profiles.lookup(session.id) else {
            panic!("session not done");
        };
        assert_eq!(summary.profiled, 2);
        let profile: Value = serde_json::from_slice(&json).unwrap();
        assert!(profile["meta"]["preprocessedProfileVersion"]
            .as_u64()
            .is_some());
        let threads = profile["threads"].as_array().unwrap();
        assert_eq!(threads.len(), 2);
        assert_eq!(threads[0]["pid"], "41");
        assert_eq!(threads[1]["pid"], "42");
        assert_eq!(profile["libs"].as_array().unwrap().len(), 1);
        // On one timeline: the second invocation starts after the first.
        let registered = |t: &Value| t["registerTime"].as_f64().unwrap();
        assert!(registered(&threads[1]) > registered(&threads[0]));
        for thread in threads {
            // One sample per host call, each with a stack through the guest's functions.
            assert_eq!(thread["samples"]["length"], 5);
            let strings = thread["stringArray"].as_array().unwrap();
            assert!(
                strings.iter().any(|s| s == "inner_work"),
                "no guest function name in {strings:?}"
            );
            assert_eq!(
                thread["markers"]["length"], 10,
                "a start and end per host call"
            );
        }
    }
}
