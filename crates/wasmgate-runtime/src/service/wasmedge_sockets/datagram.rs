//! UDP datagrams with addresses: WasmEdge's `sock_send_to` and `sock_recv_from`, under the
//! same policy as `sock_connect`. A datagram goes out only to a destination
//! `allowed_outbound_hosts` allows (else `EACCES`, logged); one arriving from anywhere else is
//! dropped unseen, as a firewall would, and silently: anyone can send datagrams, and logging
//! each would let them flood the log.
//!
//! Encodings (from the `wasmedge_wasi_socket` crate's imports): `sock_send_to(fd, iovs,
//! iovs_len, addr, port, flags, *sent)` takes an address like `sock_connect`'s;
//! `sock_recv_from(fd, iovs, iovs_len, addr, flags, *port, *received, *out_flags)` fills the
//! `{buf, size}` at `addr` with the family as a little-endian u16 (1 = IPv4, 2 = IPv6) followed
//! by the address bytes, and the port as a u32.

use super::abi::{self, errno};
use super::ops::{allow_destination, gather, io_op, scatter, Direction, MAX_IO};
use super::table::Kind;
use super::{errno_of, with_memory, ServiceState};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use wasmtime::Caller;

type Result = wasmtime::Result<i32>;

/// Family codes `sock_recv_from` writes in front of the address bytes.
const FAMILY_INET4: u16 = 1;
const FAMILY_INET6: u16 = 2;

#[allow(clippy::too_many_arguments)]
pub async fn sock_send_to(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    addr: i32,
    port: i32,
    _flags: i32,
    out_len: i32,
) -> Result {
    let prepared = with_memory(caller, |mem, state| {
        let target = mem.address(addr as u32, port as u32)?;
        let data = gather(mem, iovs, iovs_len)?;
        mem.bytes_mut(out_len as u32, 4)?;
        if state.sockets.get(fd as u32)?.kind != Kind::Datagram {
            return Err(errno::NOTSUP);
        }
        allow_destination(state, target)?;
        let entry = state.sockets.get_mut(fd as u32)?;
        Ok((entry.registered()?, entry.nonblocking, data, target))
    })?;
    let (socket, nonblocking, data, target) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    let target = socket2::SockAddr::from(target);
    let sent = io_op(&socket, Direction::Write, nonblocking, |s| {
        s.send_to(&data, &target)
    })
    .await;
    match sent {
        Ok(n) => with_memory(caller, |mem, _| {
            errno_of(mem.put_u32(out_len as u32, n as u32))
        }),
        Err(e) => Ok(abi::from_io(&e)),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn sock_recv_from(
    caller: &mut Caller<'_, ServiceState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    addr: i32,
    flags: i32,
    out_port: i32,
    out_len: i32,
    out_flags: i32,
) -> Result {
    if flags != 0 {
        // MSG_PEEK and friends: not provided.
        return Ok(errno::NOTSUP);
    }
    let prepared = with_memory(caller, |mem, state| {
        let iovecs = mem.iovecs(iovs as u32, iovs_len as u32)?;
        let addr_buf = mem.u32(addr as u32)?;
        let addr_size = mem.u32(addr as u32 + 4)?;
        mem.bytes_mut(out_port as u32, 4)?;
        mem.bytes_mut(out_len as u32, 4)?;
        mem.bytes_mut(out_flags as u32, 4)?;
        let entry = state.sockets.get_mut(fd as u32)?;
        if entry.kind != Kind::Datagram {
            return Err(errno::NOTSUP);
        }
        let total: usize = iovecs.iter().map(|(_, len)| *len as usize).sum();
        Ok((
            entry.registered()?,
            entry.nonblocking,
            iovecs,
            total.min(MAX_IO),
            addr_buf,
            addr_size,
        ))
    })?;
    let (socket, nonblocking, iovecs, size, addr_buf, addr_size) = match prepared {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    let mut buffer = vec![0u8; size];
    loop {
        // Peeking at the sender first keeps this free of uninitialised buffers: the read then
        // takes that same datagram (this task is the socket's only reader).
        let received = io_op(&socket, Direction::Read, nonblocking, |s| {
            let from = s.peek_sender()?;
            let mut reader: &socket2::Socket = s;
            let n = reader.read(&mut buffer)?;
            Ok((n, from.as_socket()))
        })
        .await;
        let (n, from) = match received {
            Ok((n, Some(from))) => (n, from),
            Ok((_, None)) => continue,
            Err(e) => return Ok(abi::from_io(&e)),
        };
        let delivered = with_memory(caller, |mem, state| {
            let names = state.resolved.names(from.ip());
            if state.net.policy.check_connect(from, names).is_err() {
                return None;
            }
            Some(errno_of((|| {
                put_source(mem, addr_buf, addr_size, from)?;
                scatter(mem, &iovecs, &buffer[..n])?;
                mem.put_u32(out_port as u32, u32::from(from.port()))?;
                mem.put_u32(out_len as u32, n as u32)?;
                mem.put_u32(out_flags as u32, 0)
            })()))
        })?;
        match delivered {
            Some(code) => return Ok(code),
            // Dropped: a non-blocking guest is told there is nothing (yet), as if it never came.
            None if nonblocking => return Ok(errno::AGAIN),
            None => continue,
        }
    }
}

/// The sender's family and address bytes into the guest's `{buf, size}`.
fn put_source(
    mem: &mut abi::Mem<'_>,
    buf: u32,
    size: u32,
    from: SocketAddr,
) -> std::result::Result<(), i32> {
    let (family, octets): (u16, Vec<u8>) = match from.ip() {
        IpAddr::V4(ip) => (FAMILY_INET4, ip.octets().to_vec()),
        IpAddr::V6(ip) => (FAMILY_INET6, ip.octets().to_vec()),
    };
    if (size as usize) < 2 + octets.len() {
        return Err(errno::INVAL);
    }
    mem.put_u16(buf, family)?;
    mem.put(buf + 2, &octets)
}
