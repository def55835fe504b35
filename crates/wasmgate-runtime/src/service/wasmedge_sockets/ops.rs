//! The socket functions themselves, one per WasmEdge import, plus the descriptor functions
//! that must know about sockets. Each returns the guest's errno; a trap (`Err`) only when the
//! module has no memory to talk through.

use super::abi::{self, errno, Mem};
use super::table::{register, Entry, Kind, SocketTable};
use super::{errno_of, with_memory, ServiceState};
use socket2::{Domain, Socket, Type};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::task::{Context, Poll, Waker};
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;
use wasmtime::Caller;

type Result = wasmtime::Result<i32>;

/// Largest single recv or send; the guest loops for more, as with a real socket buffer.
pub(super) const MAX_IO: usize = 256 << 10;
const LISTEN_BACKLOG_MAX: i32 = 1024;
/// `fdflags::NONBLOCK` in preview 1.
const FDFLAGS_NONBLOCK: u16 = 1 << 2;
/// `filetype` values of preview 1.
const FILETYPE_SOCKET_DGRAM: u8 = 5;
const FILETYPE_SOCKET_STREAM: u8 = 6;

pub async fn sock_open(
    caller: &mut Caller<'_, ServiceState>,
    af: i32,
    ty: i32,
    out: i32,
) -> Result {
    with_memory(caller, |mem, state| {
        errno_of((|| {
            mem.bytes_mut(out as u32, 4)?;
            let (domain, ipv6) = match af {
                abi::AF_INET4 => (Domain::IPV4, false),
                abi::AF_INET6 => (Domain::IPV6, true),
                _ => return Err(errno::AFNOSUPPORT),
            };
            let (ty, kind) = match ty {
                abi::SOCK_STREAM => (Type::STREAM, Kind::Stream),
                abi::SOCK_DGRAM => (Type::DGRAM, Kind::Datagram),
                _ => return Err(errno::INVAL),
            };
            let socket = Socket::new(domain, ty, None).map_err(|e| abi::from_io(&e))?;
            socket.set_nonblocking(true).map_err(|e| abi::from_io(&e))?;
            let fd = state.sockets.insert(Entry::new(socket, kind, ipv6))?;
            mem.put_u32(out as u32, fd)
        })())
    })
}

fn loopback(ipv6: bool) -> SocketAddr {
    if ipv6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    }
}

pub async fn sock_bind(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    addr: i32,
    port: i32,
) -> Result {
    with_memory(caller, |mem, state| {
        errno_of((|| {
            let guest = mem.address(addr as u32, port as u32)?;
            let net = state.net.clone();
            let entry = state.sockets.get_mut(fd as u32)?;
            if entry.guest_local.is_some() {
                return Err(errno::INVAL);
            }
            let guest_port = guest.port();
            if guest_port != 0 {
                if !net.ports.is_declared(guest_port) {
                    tracing::warn!(
                        component = %net.policy.component,
                        address = %guest,
                        "service guest tried to bind a port not declared in `ports`; refused (EACCES)"
                    );
                    return Err(errno::ACCES);
                }
                if !net.ports.claim(guest_port) {
                    return Err(errno::ADDRINUSE);
                }
            }
            // The guest's address is remembered; the host binds loopback on a port of its own.
            if let Err(e) = entry.sock()?.bind(&loopback(entry.ipv6).into()) {
                if guest_port != 0 {
                    net.ports.release(guest_port);
                }
                return Err(abi::from_io(&e));
            }
            entry.guest_local = Some(guest);
            entry.claimed_port = (guest_port != 0).then_some(guest_port);
            Ok(())
        })())
    })
}

pub async fn sock_listen(caller: &mut Caller<'_, ServiceState>, fd: i32, backlog: i32) -> Result {
    with_memory(caller, |_, state| {
        errno_of((|| {
            let net = state.net.clone();
            let entry = state.sockets.get_mut(fd as u32)?;
            if entry.kind != Kind::Stream {
                return Err(errno::NOTSUP);
            }
            if entry.guest_local.is_none() {
                // Listening unbound makes the OS pick a port on every interface: never that.
                entry
                    .sock()?
                    .bind(&loopback(entry.ipv6).into())
                    .map_err(|e| abi::from_io(&e))?;
                entry.guest_local = Some(loopback(entry.ipv6));
            }
            entry
                .sock()?
                .listen(backlog.clamp(1, LISTEN_BACKLOG_MAX))
                .map_err(|e| abi::from_io(&e))?;
            entry.registered()?;
            entry.listening = true;
            if let Some(port) = entry.claimed_port {
                let host = entry
                    .sock()?
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .ok_or(errno::IO)?;
                net.ports.publish(port, host);
            }
            Ok(())
        })())
    })
}

#[derive(Clone, Copy)]
pub(super) enum Direction {
    Read,
    Write,
}

/// Runs a non-blocking socket call the way the guest asked for: once (AGAIN if not ready) for
/// a non-blocking descriptor, or until it completes, awaiting tokio readiness in between.
pub(super) async fn io_op<R>(
    socket: &AsyncFd<Socket>,
    direction: Direction,
    nonblocking: bool,
    mut op: impl FnMut(&Socket) -> io::Result<R>,
) -> io::Result<R> {
    loop {
        let mut guard: AsyncFdReadyGuard<'_, Socket> = if nonblocking {
            let mut cx = Context::from_waker(Waker::noop());
            let polled = match direction {
                Direction::Read => socket.poll_read_ready(&mut cx),
                Direction::Write => socket.poll_write_ready(&mut cx),
            };
            match polled {
                Poll::Ready(guard) => guard?,
                Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
            }
        } else {
            let interest = match direction {
                Direction::Read => Interest::READABLE,
                Direction::Write => Interest::WRITABLE,
            };
            socket.ready(interest).await?
        };
        // try_io clears tokio's readiness only when the call would block, with the readiness
        // tick it saw, so an event arriving meanwhile is not lost.
        match guard.try_io(|inner| op(inner.get_ref())) {
            Ok(result) => return result,
            Err(_would_block) if nonblocking => return Err(io::ErrorKind::WouldBlock.into()),
            Err(_would_block) => continue,
        }
    }
}

/// Accept failures that concern one aborted connection, not the listener: retried, never
/// reported, so a client resetting early cannot fail the guest's accept loop.
fn transient_accept_error(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(103 | 71 | 1 | 104))
}

pub async fn sock_accept(caller: &mut Caller<'_, ServiceState>, fd: i32, out: i32) -> Result {
    let listener = with_memory(caller, |mem, state| {
        mem.bytes_mut(out as u32, 4)?;
        let entry = state.sockets.get_mut(fd as u32)?;
        if !entry.listening {
            return Err(errno::INVAL);
        }
        Ok((
            entry.registered()?,
            entry.nonblocking,
            entry.guest_local.map_or(0, |a| a.port()),
            entry.ipv6,
        ))
    })?;
    let (socket, nonblocking, guest_port, ipv6) = match listener {
        Ok(found) => found,
        Err(e) => return Ok(e),
    };
    let (accepted, peer) = loop {
        match io_op(&socket, Direction::Read, nonblocking, |s| s.accept()).await {
            Ok(pair) => break pair,
            Err(e) if transient_accept_error(&e) => continue,
            Err(e) => return Ok(abi::from_io(&e)),
        }
    };
    // Responses are written in several sends and the guest cannot ask for TCP_NODELAY:
    // without it every keep-alive response would wait ~40 ms for Nagle's algorithm.
    let _ = accepted.set_tcp_nodelay(true);
    let local = accepted.local_addr().ok().and_then(|a| a.as_socket());
    // Recorded now: once the client resets, the OS can no longer say who it was.
    let peer = peer.as_socket();
    let socket = match accepted.set_nonblocking(true).map(|()| register(accepted)) {
        Ok(Ok(socket)) => socket,
        Ok(Err((_, e))) | Err(e) => return Ok(abi::from_io(&e)),
    };
    with_memory(caller, |mem, state| {
        errno_of((|| {
            let mut entry = Entry::accepted(socket, ipv6);
            // The guest sees the port it bound, not the host's mapped one.
            entry.guest_local = local.map(|a| SocketAddr::new(a.ip(), guest_port));
            entry.peer = peer;
            let fd = state.sockets.insert(entry)?;
            mem.put_u32(out as u32, fd)
        })())
    })
}

pub async fn sock_connect(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    addr: i32,
    port: i32,
) -> Result {
    let prepared = with_memory(caller, |mem, state| {
        let target = mem.address(addr as u32, port as u32)?;
        allow_destination(state, target)?;
        let entry = state.sockets.get_mut(fd as u32)?;
        if entry.listening {
            return Err(errno::INVAL);
        }
        if entry.peer.is_some() {
            return Err(errno::ISCONN);
        }
        if entry.kind == Kind::Stream {
            let _ = entry.sock()?.set_tcp_nodelay(true);
        }
        let connecting = match entry.sock()?.connect(&target.into()) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(115) => true,
            Err(e) => return Err(abi::from_io(&e)),
        };
        entry.peer = Some(target);
        Ok((entry.registered()?, entry.nonblocking, connecting))
    })?;
    let (socket, nonblocking, connecting) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    if !connecting {
        return Ok(errno::SUCCESS);
    }
    if nonblocking {
        // The guest waits for writability, then reads SO_ERROR, as on any OS.
        return Ok(errno::INPROGRESS);
    }
    let outcome = match socket.writable().await {
        Ok(_guard) => match socket.get_ref().take_error() {
            Ok(None) => errno::SUCCESS,
            Ok(Some(e)) | Err(e) => abi::from_io(&e),
        },
        Err(e) => abi::from_io(&e),
    };
    if outcome != errno::SUCCESS {
        with_memory(caller, |_, state| {
            if let Ok(entry) = state.sockets.get_mut(fd as u32) {
                entry.peer = None;
            }
        })?;
    }
    Ok(outcome)
}

/// Whether the guest may connect or send to `target`; a refusal is logged and is `EACCES`.
pub(super) fn allow_destination(
    state: &ServiceState,
    target: SocketAddr,
) -> std::result::Result<(), i32> {
    let names = state.resolved.names(target.ip()).to_vec();
    if let Err(denial) = state.net.policy.check_connect(target, &names) {
        tracing::warn!(
            component = %state.net.policy.component,
            destination = %target,
            names = ?names,
            reason = ?denial,
            "service guest connection refused (EACCES): destination not allowed by \
             allowed_outbound_hosts, or a non-public address the pattern does not name"
        );
        return Err(errno::ACCES);
    }
    Ok(())
}

pub async fn sock_recv(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    flags: i32,
    out_len: i32,
    out_flags: i32,
) -> Result {
    const RECV_PEEK: i32 = 1;
    let checked = with_memory(caller, |mem, _| {
        mem.bytes_mut(out_flags as u32, 2)?;
        if flags & RECV_PEEK != 0 {
            return Err(errno::NOTSUP);
        }
        Ok(())
    })?;
    if let Err(e) = checked {
        return Ok(e);
    }
    match recv(caller, fd, iovs, iovs_len, out_len).await? {
        errno::SUCCESS => with_memory(caller, |mem, _| errno_of(mem.put_u16(out_flags as u32, 0))),
        e => Ok(e),
    }
}

/// Reads from a socket into the guest's iovecs, writing the count to `out_len`.
async fn recv(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
) -> Result {
    let prepared = with_memory(caller, |mem, state| {
        let iovecs = mem.iovecs(iovs as u32, iovs_len as u32)?;
        mem.bytes_mut(out_len as u32, 4)?;
        let entry = state.sockets.get_mut(fd as u32)?;
        let total: usize = iovecs.iter().map(|(_, len)| *len as usize).sum();
        let socket = entry.registered()?;
        let nonblocking = entry.nonblocking;
        Ok((
            socket,
            nonblocking,
            iovecs,
            total.min(MAX_IO),
            std::mem::take(&mut state.recv_buffer),
        ))
    })?;
    let (socket, nonblocking, iovecs, size, mut buffer) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    if buffer.len() < size {
        buffer.resize(size, 0);
    }
    let received = if size == 0 {
        Ok(0)
    } else {
        io_op(&socket, Direction::Read, nonblocking, |s| {
            let mut reader: &Socket = s;
            reader.read(&mut buffer[..size])
        })
        .await
    };
    with_memory(caller, |mem, state| {
        let code = match received {
            Ok(n) => errno_of((|| {
                scatter(mem, &iovecs, &buffer[..n])?;
                mem.put_u32(out_len as u32, n as u32)
            })()),
            Err(e) => abi::from_io(&e),
        };
        state.recv_buffer = buffer;
        code
    })
}

pub(super) fn scatter(
    mem: &mut Mem<'_>,
    iovecs: &[(u32, u32)],
    mut data: &[u8],
) -> std::result::Result<(), i32> {
    for (ptr, len) in iovecs {
        if data.is_empty() {
            break;
        }
        let take = data.len().min(*len as usize);
        mem.put(*ptr, &data[..take])?;
        data = &data[take..];
    }
    Ok(())
}

pub async fn sock_send(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    _flags: i32,
    out_len: i32,
) -> Result {
    send(caller, fd, iovs, iovs_len, out_len).await
}

/// Up to [`MAX_IO`] bytes of the guest's iovecs, in order.
pub(super) fn gather(mem: &Mem<'_>, iovs: i32, iovs_len: i32) -> std::result::Result<Vec<u8>, i32> {
    let mut data = Vec::new();
    for (ptr, len) in mem.iovecs(iovs as u32, iovs_len as u32)? {
        let room = MAX_IO - data.len();
        if room == 0 {
            break;
        }
        data.extend_from_slice(mem.bytes(ptr, len.min(room as u32))?);
    }
    Ok(data)
}

/// Writes the guest's iovecs to a connected socket, the count to `out_len`.
async fn send(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
) -> Result {
    let prepared = with_memory(caller, |mem, state| {
        let data = gather(mem, iovs, iovs_len)?;
        mem.bytes_mut(out_len as u32, 4)?;
        let entry = state.sockets.get_mut(fd as u32)?;
        Ok((entry.registered()?, entry.nonblocking, data))
    })?;
    let (socket, nonblocking, data) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    let sent = if data.is_empty() {
        Ok(0)
    } else {
        io_op(&socket, Direction::Write, nonblocking, |s| s.send(&data)).await
    };
    let n = match sent {
        Ok(n) => n,
        Err(e) => return Ok(abi::from_io(&e)),
    };
    with_memory(caller, |mem, _| {
        errno_of(mem.put_u32(out_len as u32, n as u32))
    })
}

pub async fn sock_shutdown(caller: &mut Caller<'_, ServiceState>, fd: i32, how: i32) -> Result {
    with_memory(caller, |_, state| {
        errno_of((|| {
            let how = match how {
                1 => Shutdown::Read,
                2 => Shutdown::Write,
                3 => Shutdown::Both,
                _ => return Err(errno::INVAL),
            };
            let entry = state.sockets.get(fd as u32)?;
            entry.sock()?.shutdown(how).map_err(|e| abi::from_io(&e))
        })())
    })
}

/// `SOL_SOCKET` option names of WasmEdge's ABI (its only level, 0).
mod opt {
    pub const REUSEADDR: i32 = 0;
    pub const TYPE: i32 = 1;
    pub const ERROR: i32 = 2;
    pub const BROADCAST: i32 = 4;
    pub const SNDBUF: i32 = 5;
    pub const RCVBUF: i32 = 6;
    pub const KEEPALIVE: i32 = 7;
    pub const RCVTIMEO: i32 = 11;
    pub const SNDTIMEO: i32 = 12;
    pub const ACCEPTCONN: i32 = 13;
}

pub async fn sock_setsockopt(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    level: i32,
    name: i32,
    value: i32,
    size: i32,
) -> Result {
    with_memory(caller, |mem, state| {
        errno_of((|| {
            if level != 0 {
                return Err(errno::NOPROTOOPT);
            }
            let entry = state.sockets.get(fd as u32)?;
            let socket = entry.sock()?;
            let int = || -> std::result::Result<i32, i32> {
                if size < 4 {
                    return Err(errno::INVAL);
                }
                Ok(mem.u32(value as u32)? as i32)
            };
            let applied = match name {
                opt::REUSEADDR => socket.set_reuse_address(int()? != 0),
                opt::BROADCAST => socket.set_broadcast(int()? != 0),
                opt::KEEPALIVE => socket.set_keepalive(int()? != 0),
                opt::SNDBUF => socket.set_send_buffer_size(int()?.max(0) as usize),
                opt::RCVBUF => socket.set_recv_buffer_size(int()?.max(0) as usize),
                // Timeouts would bound blocking calls; here a blocking call is an await the
                // request deadline and shutdown already bound. Accepted, without effect.
                opt::RCVTIMEO | opt::SNDTIMEO => Ok(()),
                _ => return Err(errno::NOPROTOOPT),
            };
            applied.map_err(|e| abi::from_io(&e))
        })())
    })
}

pub async fn sock_getsockopt(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    level: i32,
    name: i32,
    value: i32,
    size: i32,
) -> Result {
    with_memory(caller, |mem, state| {
        errno_of((|| {
            if level != 0 {
                return Err(errno::NOPROTOOPT);
            }
            let entry = state.sockets.get(fd as u32)?;
            let socket = entry.sock()?;
            let io = |e: io::Error| abi::from_io(&e);
            let result: i32 = match name {
                opt::TYPE => match entry.kind {
                    Kind::Datagram => 1,
                    Kind::Stream => 2,
                },
                // The pending error as the guest's libc numbers it.
                opt::ERROR => match socket.take_error().map_err(io)? {
                    Some(e) => abi::from_io(&e),
                    None => 0,
                },
                opt::ACCEPTCONN => i32::from(entry.listening),
                opt::REUSEADDR => i32::from(socket.reuse_address().map_err(io)?),
                opt::BROADCAST => i32::from(socket.broadcast().map_err(io)?),
                opt::KEEPALIVE => i32::from(socket.keepalive().map_err(io)?),
                opt::SNDBUF => socket.send_buffer_size().map_err(io)? as i32,
                opt::RCVBUF => socket.recv_buffer_size().map_err(io)? as i32,
                _ => return Err(errno::NOPROTOOPT),
            };
            if mem.u32(size as u32)? < 4 {
                return Err(errno::INVAL);
            }
            mem.put_u32(value as u32, result as u32)?;
            mem.put_u32(size as u32, 4)
        })())
    })
}

pub async fn sock_getlocaladdr(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    addr: i32,
    kind: i32,
    port: i32,
) -> Result {
    with_memory(caller, |mem, state| {
        errno_of((|| {
            let entry = state.sockets.get(fd as u32)?;
            // The guest's own view: the port it bound, not the host's mapped one.
            let local = entry
                .guest_local
                .or_else(|| entry.sock().ok()?.local_addr().ok()?.as_socket())
                .ok_or(errno::INVAL)?;
            mem.put_address(local, addr as u32, kind as u32, port as u32)
        })())
    })
}

pub async fn sock_getpeeraddr(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    addr: i32,
    kind: i32,
    port: i32,
) -> Result {
    with_memory(caller, |mem, state| {
        errno_of((|| {
            let peer = state.sockets.get(fd as u32)?.peer.ok_or(errno::NOTCONN)?;
            mem.put_address(peer, addr as u32, kind as u32, port as u32)
        })())
    })
}

/// `fd_read`: a socket reads as `sock_recv` without flags (programs that treat a socket as a
/// file); everything else goes to wasmtime-wasi.
pub async fn fd_read(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
) -> Result {
    if SocketTable::is_socket(fd as u32) {
        return recv(caller, fd, iovs, iovs_len, out_len).await;
    }
    let (mut guest, wasi) = super::p1_parts(caller)?;
    wasmtime_wasi::p1::wasi_snapshot_preview1::fd_read(
        wasi, &mut guest, fd, iovs, iovs_len, out_len,
    )
    .await
}

/// `fd_write`: a socket writes as `sock_send`; everything else (stdout first) to wasmtime-wasi.
pub async fn fd_write(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
) -> Result {
    if SocketTable::is_socket(fd as u32) {
        return send(caller, fd, iovs, iovs_len, out_len).await;
    }
    let (mut guest, wasi) = super::p1_parts(caller)?;
    wasmtime_wasi::p1::wasi_snapshot_preview1::fd_write(
        wasi, &mut guest, fd, iovs, iovs_len, out_len,
    )
    .await
}

/// `fd_close`: sockets here, everything else to wasmtime-wasi.
pub async fn fd_close(caller: &mut Caller<'_, ServiceState>, fd: i32) -> Result {
    if !SocketTable::is_socket(fd as u32) {
        let (mut guest, wasi) = super::p1_parts(caller)?;
        return wasmtime_wasi::p1::wasi_snapshot_preview1::fd_close(wasi, &mut guest, fd).await;
    }
    with_memory(caller, |_, state| match state.sockets.remove(fd as u32) {
        Some(entry) => {
            if let Some(port) = entry.claimed_port {
                state.net.ports.release(port);
            }
            errno::SUCCESS
        }
        None => errno::BADF,
    })
}

/// `fd_fdstat_get`: a socket is filetype 5 or 6 with the guest's NONBLOCK flag.
pub async fn fd_fdstat_get(caller: &mut Caller<'_, ServiceState>, fd: i32, out: i32) -> Result {
    if !SocketTable::is_socket(fd as u32) {
        let (mut guest, wasi) = super::p1_parts(caller)?;
        return wasmtime_wasi::p1::wasi_snapshot_preview1::fd_fdstat_get(wasi, &mut guest, fd, out)
            .await;
    }
    with_memory(caller, |mem, state| {
        errno_of((|| {
            let entry = state.sockets.get(fd as u32)?;
            let filetype = match entry.kind {
                Kind::Stream => FILETYPE_SOCKET_STREAM,
                Kind::Datagram => FILETYPE_SOCKET_DGRAM,
            };
            let flags = if entry.nonblocking {
                FDFLAGS_NONBLOCK
            } else {
                0
            };
            let out = out as u32;
            mem.bytes_mut(out, 24)?.fill(0);
            mem.put_u8(out, filetype)?;
            mem.put_u16(out + 2, flags)?;
            // Rights are not how sockets are restricted here (the policy is): grant all.
            mem.put_u64(out + 8, u64::MAX >> 35)?;
            mem.put_u64(out + 16, u64::MAX >> 35)
        })())
    })
}

/// `fd_fdstat_set_flags`: how the guest switches a socket to non-blocking (fcntl O_NONBLOCK).
pub async fn fd_fdstat_set_flags(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    flags: i32,
) -> Result {
    if !SocketTable::is_socket(fd as u32) {
        let (mut guest, wasi) = super::p1_parts(caller)?;
        return wasmtime_wasi::p1::wasi_snapshot_preview1::fd_fdstat_set_flags(
            wasi, &mut guest, fd, flags,
        );
    }
    with_memory(caller, |_, state| {
        errno_of((|| {
            let entry = state.sockets.get_mut(fd as u32)?;
            entry.nonblocking = (flags as u16) & FDFLAGS_NONBLOCK != 0;
            Ok(())
        })())
    })
}
