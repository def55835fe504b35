//! `poll_oneoff` over sockets, clocks and ordinary descriptors together.
//!
//! A poll naming no socket goes to wasmtime-wasi unchanged. Otherwise the socket
//! subscriptions wait on tokio readiness and the earliest clock on a tokio timer, in one
//! future on the guest's own task. Ordinary descriptors (stdin, files) are reported ready at
//! once, which is what they are for a service: stdin is empty and output is never full.
//!
//! Hang-up and error conditions are reported as readiness with the HANGUP flag, never in
//! `event.error`: mio turns an event error into a fatal driver error, while the following
//! recv or send returns the real errno.

use super::abi::{errno, Mem};
use super::table::SocketTable;
use super::{with_memory, ServiceState};
use socket2::Socket;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::unix::AsyncFd;
use wasmtime::Caller;

const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const EVENTRWFLAGS_HANGUP: u16 = 1;
const SUBCLOCKFLAGS_ABSTIME: u16 = 1;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
/// More subscriptions than any event loop needs; bounds the work a guest can ask for.
const MAX_SUBSCRIPTIONS: u32 = 4096;

enum Wait {
    Clock(Instant),
    Socket {
        socket: Arc<AsyncFd<Socket>>,
        write: bool,
    },
    /// An ordinary descriptor, or one that does not exist (reported as BADF).
    Immediate(u16),
}

struct Subscription {
    userdata: u64,
    kind: u8,
    wait: Wait,
}

struct Event {
    userdata: u64,
    error: u16,
    kind: u8,
    flags: u16,
}

pub async fn poll_oneoff(
    caller: &mut Caller<'_, ServiceState>,
    subs: i32,
    events: i32,
    count: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let parsed = with_memory(caller, |mem, state| {
        read_subscriptions(mem, state, subs as u32, count as u32)
    })?;
    let subscriptions = match parsed {
        Ok(Some(s)) => s,
        Ok(None) => {
            let (mut guest, wasi) = super::p1_parts(caller)?;
            return wasmtime_wasi::p1::wasi_snapshot_preview1::poll_oneoff(
                wasi, &mut guest, subs, events, count, out,
            )
            .await;
        }
        Err(e) => return Ok(e),
    };
    let ready = wait(&subscriptions).await;
    with_memory(caller, |mem, _| {
        let mut at = events as u32;
        for event in &ready {
            let write = (|| {
                mem.bytes_mut(at, EVENT_SIZE)?.fill(0);
                mem.put_u64(at, event.userdata)?;
                mem.put_u16(at + 8, event.error)?;
                mem.put_u8(at + 10, event.kind)?;
                if event.kind != EVENTTYPE_CLOCK {
                    mem.put_u64(at + 16, 1)?;
                    mem.put_u16(at + 24, event.flags)?;
                }
                Ok::<(), i32>(())
            })();
            if let Err(e) = write {
                return e;
            }
            at += EVENT_SIZE;
        }
        match mem.put_u32(out as u32, ready.len() as u32) {
            Ok(()) => errno::SUCCESS,
            Err(e) => e,
        }
    })
}

/// The subscriptions, or `None` when none names a socket (wasmtime-wasi handles those).
fn read_subscriptions(
    mem: &Mem<'_>,
    state: &mut ServiceState,
    subs: u32,
    count: u32,
) -> Result<Option<Vec<Subscription>>, i32> {
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Err(errno::INVAL);
    }
    let mut parsed = Vec::with_capacity(count as usize);
    let mut any_socket = false;
    for i in 0..count {
        let at = subs + i * SUBSCRIPTION_SIZE;
        let userdata = mem.u64(at)?;
        let kind = mem.u8(at + 8)?;
        let wait = match kind {
            EVENTTYPE_CLOCK => {
                let clock = mem.u32(at + 16)?;
                let timeout = mem.u64(at + 24)?;
                let flags = u16::from(mem.u8(at + 40)?) | (u16::from(mem.u8(at + 41)?) << 8);
                Wait::Clock(deadline(
                    state,
                    clock,
                    timeout,
                    flags & SUBCLOCKFLAGS_ABSTIME != 0,
                )?)
            }
            EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => {
                let fd = mem.u32(at + 16)?;
                if SocketTable::is_socket(fd) {
                    any_socket = true;
                    match state.sockets.get_mut(fd).and_then(|e| e.registered()) {
                        Ok(socket) => Wait::Socket {
                            socket,
                            write: kind == EVENTTYPE_FD_WRITE,
                        },
                        Err(e) => Wait::Immediate(e as u16),
                    }
                } else {
                    Wait::Immediate(0)
                }
            }
            _ => return Err(errno::INVAL),
        };
        parsed.push(Subscription {
            userdata,
            kind,
            wait,
        });
    }
    Ok(any_socket.then_some(parsed))
}

fn deadline(
    state: &ServiceState,
    clock: u32,
    timeout: u64,
    absolute: bool,
) -> Result<Instant, i32> {
    let now = Instant::now();
    let wait = if !absolute {
        Duration::from_nanos(timeout)
    } else {
        match clock {
            CLOCK_MONOTONIC => {
                let target = state.clock_origin + Duration::from_nanos(timeout);
                target.saturating_duration_since(now)
            }
            CLOCK_REALTIME => {
                let since_epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Duration::from_nanos(timeout).saturating_sub(since_epoch)
            }
            _ => return Err(errno::INVAL),
        }
    };
    // A far-future deadline (tokio's timer caps at about two years) is "never" in practice.
    Ok(now + wait.min(Duration::from_secs(86_400 * 365)))
}

/// Waits until at least one subscription is ready; returns every one that is.
async fn wait(subscriptions: &[Subscription]) -> Vec<Event> {
    let earliest = subscriptions
        .iter()
        .filter_map(|s| match s.wait {
            Wait::Clock(at) => Some(at),
            _ => None,
        })
        .min();
    let mut sleep = earliest.map(|at| Box::pin(tokio::time::sleep_until(at.into())));
    std::future::poll_fn(|cx| {
        let mut ready = Vec::new();
        for sub in subscriptions {
            let flags = match &sub.wait {
                Wait::Immediate(error) => {
                    ready.push(Event {
                        userdata: sub.userdata,
                        error: *error,
                        kind: sub.kind,
                        flags: 0,
                    });
                    continue;
                }
                Wait::Clock(_) => continue,
                Wait::Socket { socket, write } => {
                    let polled = if *write {
                        socket.poll_write_ready(cx)
                    } else {
                        socket.poll_read_ready(cx)
                    };
                    match polled {
                        Poll::Pending => continue,
                        Poll::Ready(Ok(guard)) => {
                            let r = guard.ready();
                            if r.is_read_closed() || r.is_write_closed() || r.is_error() {
                                EVENTRWFLAGS_HANGUP
                            } else {
                                0
                            }
                        }
                        Poll::Ready(Err(_)) => EVENTRWFLAGS_HANGUP,
                    }
                }
            };
            ready.push(Event {
                userdata: sub.userdata,
                error: 0,
                kind: sub.kind,
                flags,
            });
        }
        let now = Instant::now();
        let timer_fired = match sleep.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
            None => false,
        };
        for sub in subscriptions {
            if let Wait::Clock(at) = sub.wait {
                if timer_fired && at <= now.max(earliest.unwrap_or(now)) || at <= now {
                    ready.push(Event {
                        userdata: sub.userdata,
                        error: 0,
                        kind: EVENTTYPE_CLOCK,
                        flags: 0,
                    });
                }
            }
        }
        if ready.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(ready)
        }
    })
    .await
}
