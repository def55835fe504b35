//! Where an instance's time goes: running guest code, or inside host calls (WASI and
//! capabilities), counted from wasmtime's call hooks on every transition between the two.
//!
//! Guest time is wall time spent executing guest code: on a busy machine it includes time the
//! thread was preempted, but never time the guest spent waiting in the host (I/O, sleeps,
//! outbound calls).
//!
//! A request crosses between guest and host about 40 times, so each crossing reads quanta's
//! raw counter (the TSC, calibrated against the OS clock once per process; the OS clock on
//! machines whose TSC is not invariant) and adds raw ticks; they are scaled to time once, when
//! the invocation is settled. Scaling and `Duration` arithmetic on every crossing cost about
//! 1.5% of a hello request's instructions. Where quanta's counter is the TSC, the hook reads
//! it itself ([`read_tsc`]): through quanta's clock, a branch on the clock's kind and the OS
//! clock's call behind it gave the hook a stack frame, 9 of its 37 instructions.

use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{CallHook, StoreContextMut};

/// The process's calibrated counter.
fn counter() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Whether quanta's counter is the TSC, so that [`read_tsc`] gives the raw ticks its
/// calibration scales. quanta does not say which source it chose; its reading falls between
/// two TSC readings only if it is one (the OS clock's nanoseconds since boot are far fewer
/// than the TSC's ticks since reset).
fn counter_is_tsc() -> bool {
    static TSC: OnceLock<bool> = OnceLock::new();
    *TSC.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let before = read_tsc();
            let theirs = counter().raw();
            let after = read_tsc();
            before <= theirs && theirs <= after
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC reads a counter; it has no preconditions and every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Where an instance is; the value indexes [`CallClock::raw`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Place {
    #[default]
    Outside = 0,
    Guest = 1,
    Host = 2,
}

#[derive(Debug)]
pub struct CallClock {
    clock: &'static quanta::Clock,
    /// Read the TSC directly ([`counter_is_tsc`]).
    tsc: bool,
    place: Place,
    /// Raw counter value at the last crossing; 0 before the first.
    since: u64,
    /// Raw ticks spent in each [`Place`]. Outside time is added like the others (it keeps the
    /// crossing free of branches) and never read.
    raw: [u64; 3],
    /// Guest and host time, filled in by [`CallClock::settled`].
    pub guest: Duration,
    pub host: Duration,
    pub host_calls: u64,
    /// Host calls allowed before the guest is stopped (`limits.max_host_calls`).
    limit: u64,
}

impl Default for CallClock {
    fn default() -> Self {
        CallClock {
            clock: counter(),
            tsc: counter_is_tsc(),
            place: Place::Outside,
            since: 0,
            raw: [0; 3],
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
    ///
    /// Runs about 40 times per request, so it is kept to straight-line code: the ticks go to
    /// the slot of where the instance was, and a counter that went backwards (a thread moved
    /// to a core whose TSC lags) adds nothing.
    #[inline]
    pub fn on(&mut self, hook: CallHook) -> Result<(), HostCallLimitExceeded> {
        let now = self.now();
        self.on_at(now, hook)
    }

    /// [`CallClock::on`] with the counter already read.
    #[inline(always)]
    fn on_at(&mut self, now: u64, hook: CallHook) -> Result<(), HostCallLimitExceeded> {
        self.add_until(now);
        let calling_host = matches!(hook, CallHook::CallingHost);
        self.place = match hook {
            CallHook::CallingWasm | CallHook::ReturningFromHost => Place::Guest,
            CallHook::CallingHost => Place::Host,
            CallHook::ReturningFromWasm => Place::Outside,
        };
        self.host_calls += u64::from(calling_host);
        self.since = now;
        if self.host_calls > self.limit {
            return Err(HostCallLimitExceeded { limit: self.limit });
        }
        Ok(())
    }

    /// The clock with the segment still running (a guest stopped by its deadline mid-code)
    /// counted up to now.
    pub fn settled(mut self) -> CallClock {
        self.add_until(self.now());
        self.place = Place::Outside;
        self.since = 0;
        self.guest = self.clock.delta(0, self.raw[Place::Guest as usize]);
        self.host = self.clock.delta(0, self.raw[Place::Host as usize]);
        self
    }

    /// The counter, from the source the crossings read.
    fn now(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.tsc {
            return read_tsc();
        }
        self.clock.raw()
    }

    /// Adds the ticks since the last crossing to where the instance was. Before the first
    /// crossing the instance is outside, so the ticks since 0 land in the unread slot.
    #[inline(always)]
    fn add_until(&mut self, now: u64) {
        let slot = &mut self.raw[self.place as usize];
        *slot = slot.wrapping_add(now.saturating_sub(self.since));
    }
}

/// Something a store's data keeps a [`CallClock`] in.
pub trait HasCallClock {
    fn call_clock(&mut self) -> &mut CallClock;
}

/// Starts timing `store`'s guest and host time into its data's clock (when `timed`: telemetry
/// is on), and stops the guest at its host call number `max_host_calls + 1`. With neither,
/// no hook is installed and transitions cost nothing.
pub fn install<T: HasCallClock + 'static>(
    store: &mut wasmtime::Store<T>,
    max_host_calls: Option<u64>,
    timed: bool,
) {
    if !timed && max_host_calls.is_none() {
        return;
    }
    let clock = store.data_mut().call_clock();
    clock.limit = max_host_calls.unwrap_or(u64::MAX);
    #[cfg(target_arch = "x86_64")]
    if clock.tsc {
        store.call_hook(|mut context: StoreContextMut<'_, T>, hook| {
            context
                .data_mut()
                .call_clock()
                .on_at(read_tsc(), hook)
                .map_err(wasmtime::Error::new)
        });
        return;
    }
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
        let clock = clock.settled();
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
