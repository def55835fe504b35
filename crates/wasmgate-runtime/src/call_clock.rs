//! Where an instance's time goes: running guest code, or inside host calls (WASI and
//! capabilities), counted from wasmtime's call hooks on every transition between the two.
//!
//! Guest time is wall time spent executing guest code: on a busy machine it includes time the
//! thread was preempted, but never time the guest spent waiting in the host (I/O, sleeps,
//! outbound calls).
//!
//! A request crosses between guest and host about 40 times, so the clock read on each
//! crossing is quanta's (a TSC read, calibrated against the OS clock once per process) rather
//! than `clock_gettime`; quanta falls back to the OS clock on machines whose TSC is not
//! invariant.

use quanta::Instant;
use std::time::Duration;
use wasmtime::{CallHook, StoreContextMut};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Place {
    #[default]
    Outside,
    Guest,
    Host,
}

#[derive(Debug)]
pub struct CallClock {
    place: Place,
    since: Option<Instant>,
    pub guest: Duration,
    pub host: Duration,
    pub host_calls: u64,
    /// Host calls allowed before the guest is stopped (`limits.max_host_calls`).
    limit: u64,
}

impl Default for CallClock {
    fn default() -> Self {
        CallClock {
            place: Place::Outside,
            since: None,
            guest: Duration::ZERO,
            host: Duration::ZERO,
            host_calls: 0,
            limit: u64::MAX,
        }
    }
}

/// Why a guest was stopped in the middle of a call into the host: it made more host calls
/// than its component's `limits.max_host_calls`.
#[derive(Debug, thiserror::Error)]
#[error("the guest made more than {limit} host calls (limits.max_host_calls)")]
pub struct HostCallLimitExceeded {
    pub limit: u64,
}

impl CallClock {
    /// Counts the transition; a host call past the limit is refused (the guest traps).
    pub fn on(&mut self, hook: CallHook) -> Result<(), HostCallLimitExceeded> {
        let now = Instant::now();
        if let Some(since) = self.since {
            let spent = now.saturating_duration_since(since);
            match self.place {
                Place::Guest => self.guest += spent,
                Place::Host => self.host += spent,
                Place::Outside => {}
            }
        }
        self.place = match hook {
            CallHook::CallingWasm | CallHook::ReturningFromHost => Place::Guest,
            CallHook::CallingHost => {
                self.host_calls += 1;
                Place::Host
            }
            CallHook::ReturningFromWasm => Place::Outside,
        };
        self.since = Some(now);
        if self.host_calls > self.limit {
            return Err(HostCallLimitExceeded { limit: self.limit });
        }
        Ok(())
    }
}

impl CallClock {
    /// The clock with the segment still running (a guest stopped by its deadline mid-code)
    /// counted up to now.
    pub fn settled(mut self) -> CallClock {
        if let Some(since) = self.since.take() {
            let spent = since.elapsed();
            match self.place {
                Place::Guest => self.guest += spent,
                Place::Host => self.host += spent,
                Place::Outside => {}
            }
        }
        self.place = Place::Outside;
        self
    }
}

/// Something a store's data keeps a [`CallClock`] in.
pub trait HasCallClock {
    fn call_clock(&mut self) -> &mut CallClock;
}

/// Starts timing `store`'s guest and host time into its data's clock, and stops the guest
/// at its host call number `max_host_calls + 1`.
pub fn install<T: HasCallClock + 'static>(
    store: &mut wasmtime::Store<T>,
    max_host_calls: Option<u64>,
) {
    store.data_mut().call_clock().limit = max_host_calls.unwrap_or(u64::MAX);
    store.call_hook(|mut context: StoreContextMut<'_, T>, hook| {
        context
            .data_mut()
            .call_clock()
            .on(hook)
            .map_err(wasmtime::Error::new)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_split_between_guest_and_host() {
        let mut clock = CallClock::default();
        clock.on(CallHook::CallingWasm).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        clock.on(CallHook::CallingHost).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        clock.on(CallHook::ReturningFromHost).unwrap();
        clock.on(CallHook::CallingHost).unwrap();
        clock.on(CallHook::ReturningFromHost).unwrap();
        clock.on(CallHook::ReturningFromWasm).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.host_calls, 2);
        assert!(
            clock.guest >= Duration::from_millis(20),
            "{:?}",
            clock.guest
        );
        assert!(clock.guest < Duration::from_millis(30), "{:?}", clock.guest);
        assert!(clock.host >= Duration::from_millis(30), "{:?}", clock.host);
        assert!(clock.host < Duration::from_millis(45), "{:?}", clock.host);
    }

    #[test]
    fn the_host_call_past_the_limit_is_refused() {
        let mut clock = CallClock {
            limit: 2,
            ..CallClock::default()
        };
        clock.on(CallHook::CallingWasm).unwrap();
        for _ in 0..2 {
            clock.on(CallHook::CallingHost).unwrap();
            clock.on(CallHook::ReturningFromHost).unwrap();
        }
        let refused = clock.on(CallHook::CallingHost).unwrap_err();
        assert_eq!(refused.limit, 2);
        assert_eq!(clock.host_calls, 3);
    }
}
