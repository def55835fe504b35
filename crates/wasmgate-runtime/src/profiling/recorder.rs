//! The profiler on one selected invocation's store: a [`Ticket`] puts it there, the store's
//! epoch callback and call hook feed it samples, and dropping [`Profiling`] hands the finished
//! profile to the session.

use super::{limits, Profiles};
use crate::call_clock::HasCallClock;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use wasmtime::{AsContext, CallHook, GuestProfiler, StoreContextMut};

/// An invocation chosen for a session; [`Ticket::attach_component`] or
/// [`Ticket::attach_module`] puts the profiler on its store.
pub(crate) struct Ticket {
    profiles: Arc<Profiles>,
    session: u64,
    invocation: u64,
    interval: Duration,
    label: String,
    /// Set once the session has been told how this invocation ended.
    reported: bool,
}

impl Ticket {
    pub(super) fn new(
        profiles: Arc<Profiles>,
        session: u64,
        invocation: u64,
        interval: Duration,
        label: String,
    ) -> Ticket {
        Ticket {
            profiles,
            session,
            invocation,
            interval,
            label,
            reported: false,
        }
    }

    /// Tells the session this invocation is over, with its profile if there is one.
    fn end(mut self, profile: Option<Vec<u8>>) {
        self.reported = true;
        self.profiles.ended(self.session, self.invocation, profile);
    }
    /// Profiles a component instance's store (`http` executor, WAGI `wasi:cli/run`).
    pub(crate) fn attach_component<T: HasCallClock + 'static>(
        self,
        store: &mut wasmtime::Store<T>,
        component: &wasmtime::component::Component,
    ) -> Option<Profiling> {
        let profiler = GuestProfiler::new_component(
            store.engine(),
            &self.label,
            self.interval,
            component.clone(),
            [],
        );
        self.attach(store, profiler)
    }

    /// Profiles a core module instance's store (WAGI modules).
    pub(crate) fn attach_module<T: HasCallClock + 'static>(
        self,
        store: &mut wasmtime::Store<T>,
        module: &wasmtime::Module,
    ) -> Option<Profiling> {
        let name = module.name().unwrap_or("module").to_string();
        let profiler = GuestProfiler::new(
            store.engine(),
            &self.label,
            self.interval,
            [(name, module.clone())],
        );
        self.attach(store, profiler)
    }

    /// Replaces the store's epoch callback and call hook with ones that also sample. Must
    /// come after `call_clock::install` and `engine::yield_every_tick`, whose work the
    /// replacements keep doing.
    fn attach<T: HasCallClock + 'static>(
        self,
        store: &mut wasmtime::Store<T>,
        profiler: wasmtime::Result<GuestProfiler>,
    ) -> Option<Profiling> {
        let profiler = match profiler {
            Ok(profiler) => profiler,
            Err(e) => {
                tracing::warn!(session = self.session, invocation = self.invocation,
                    error = %format!("{e:#}"), "cannot profile this invocation");
                self.end(None);
                return None;
            }
        };
        let recorder = Arc::new(Mutex::new(Recorder {
            profiler: Some(profiler),
            last: Instant::now(),
            samples: 0,
        }));
        let ticks = recorder.clone();
        store.epoch_deadline_callback(move |context| {
            lock(&ticks).sample(&context);
            Ok(crate::engine::yield_at_tick())
        });
        let calls = recorder.clone();
        store.call_hook(move |mut context: StoreContextMut<'_, T>, hook| {
            context
                .data_mut()
                .call_clock()
                .on(hook)
                .map_err(wasmtime::Error::new)?;
            lock(&calls).call(&context, hook);
            Ok(())
        });
        Some(Profiling {
            ticket: Some(self),
            recorder,
        })
    }
}

/// A profiled invocation in progress: keep it alive until the guest is done with its store;
/// dropping it finishes the profile and hands it to the session.
pub(crate) struct Profiling {
    ticket: Option<Ticket>,
    recorder: Arc<Mutex<Recorder>>,
}

impl Drop for Profiling {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        // The store's hooks may outlive this (they hold the recorder) but find it empty.
        let profiler = lock(&self.recorder).profiler.take();
        let profile = profiler.and_then(|profiler| {
            let mut json = Vec::new();
            match profiler.finish(&mut json) {
                Ok(()) => Some(json),
                Err(e) => {
                    tracing::warn!(invocation = ticket.invocation, error = %format!("{e:#}"),
                        "cannot write the guest profile");
                    None
                }
            }
        });
        ticket.end(profile);
    }
}

impl Drop for Ticket {
    /// A ticket dropped unused (the request ended before its guest started) still counts
    /// as one of the session's invocations, so the session does not wait for it forever.
    fn drop(&mut self) {
        if !self.reported {
            self.profiles.ended(self.session, self.invocation, None);
        }
    }
}

struct Recorder {
    profiler: Option<GuestProfiler>,
    /// When the last sample was taken: the next sample's CPU delta starts here.
    last: Instant,
    samples: u32,
}

impl Recorder {
    fn sample(&mut self, store: impl AsContext) {
        let now = Instant::now();
        let since_last = now.saturating_duration_since(self.last);
        let Some(profiler) = self.budget() else {
            return;
        };
        profiler.sample(store, since_last);
        self.last = now;
    }

    fn call(&mut self, store: impl AsContext, hook: CallHook) {
        match hook {
            CallHook::CallingHost => {
                self.sample(&store);
                if let Some(profiler) = self.budget() {
                    profiler.call_hook(&store, hook);
                }
            }
            // Ends the marker `CallingHost` opened, even past the budget, so none dangles.
            CallHook::ReturningFromHost => {
                if let Some(profiler) = self.profiler.as_mut() {
                    profiler.call_hook(&store, hook);
                }
            }
            CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
        }
    }

    /// The profiler, if this invocation may still add to its profile.
    fn budget(&mut self) -> Option<&mut GuestProfiler> {
        if self.samples >= limits::MAX_SAMPLES {
            return None;
        }
        self.samples += 1;
        self.profiler.as_mut()
    }
}

fn lock(recorder: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    recorder
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
