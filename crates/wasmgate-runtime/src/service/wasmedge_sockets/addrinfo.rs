//! `sock_getaddrinfo`: name resolution for the guest, under the socket policy.
//!
//! The guest pre-links `max` addrinfo records (28 bytes, packed to 4: flags u16, family u8,
//! socktype u8, protocol u8, addrlen u32 at 8, addr pointer at 12, canonname pointer at 16,
//! canonname length at 20, next pointer at 24), each pointing at a 12-byte sockaddr (family u8,
//! data length u32 at 4, data pointer at 8) whose data is the port, big-endian, then the
//! address bytes. Results are written in order, IPv4 first (the crates decode only IPv4), then
//! IPv6 where the guest's data buffer can hold 18 bytes.

use super::abi::{errno, Mem};
use super::{errno_of, with_memory, ServiceState};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use wasmtime::Caller;

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_NAME: u32 = 1024;

#[allow(clippy::too_many_arguments)]
pub async fn sock_getaddrinfo(
    caller: &mut Caller<'_, ServiceState>,
    node: i32,
    node_len: i32,
    service: i32,
    service_len: i32,
    hints: i32,
    res: i32,
    max: i32,
    res_len: i32,
) -> wasmtime::Result<i32> {
    let request = with_memory(caller, |mem, state| {
        if node_len as u32 > MAX_NAME || service_len as u32 > MAX_NAME {
            return Err(errno::INVAL);
        }
        let node = c_string(mem.bytes(node as u32, node_len as u32)?)?;
        let service = c_string(mem.bytes(service as u32, service_len as u32)?)?;
        // ai_family of the hints: 0 any, 1 IPv4, 2 IPv6.
        let family = mem.u8(hints as u32 + 2)?;
        mem.bytes_mut(res_len as u32, 4)?;
        let port = match service.as_str() {
            "" => 0,
            "http" => 80,
            "https" => 443,
            number => number.parse::<u16>().map_err(|_| errno::INVAL)?,
        };
        if node.parse::<IpAddr>().is_err() && !state.net.policy.may_look_up(&node) {
            tracing::warn!(
                component = %state.net.policy.component,
                name = %node,
                "service guest lookup refused (EACCES): no allowed_outbound_hosts pattern names it"
            );
            return Err(errno::ACCES);
        }
        Ok((node, port, family))
    })?;
    let (name, port, family) = match request {
        Ok(r) => r,
        Err(e) => return Ok(e),
    };
    let found: Vec<SocketAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match tokio::time::timeout(
            LOOKUP_TIMEOUT,
            tokio::net::lookup_host((name.as_str(), port)),
        )
        .await
        {
            Ok(Ok(addresses)) => addresses.collect(),
            _ => return Ok(errno::NONAME),
        },
    };
    let mut ordered: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match family {
            1 => a.is_ipv4(),
            2 => a.is_ipv6(),
            _ => true,
        })
        .collect();
    ordered.sort_by_key(|a| a.is_ipv6());
    ordered.dedup();
    if ordered.is_empty() {
        return Ok(errno::NONAME);
    }
    with_memory(caller, |mem, state| {
        for address in &ordered {
            state.resolved.remember(&name, address.ip());
        }
        errno_of((|| {
            let written = fill(mem, res as u32, max.max(0) as u32, &ordered)?;
            mem.put_u32(res_len as u32, written)
        })())
    })
}

fn c_string(bytes: &[u8]) -> Result<String, i32> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end])
        .map(str::to_string)
        .map_err(|_| errno::INVAL)
}

/// Writes `addresses` into the guest's pre-linked records; returns how many it wrote.
fn fill(mem: &mut Mem<'_>, res: u32, max: u32, addresses: &[SocketAddr]) -> Result<u32, i32> {
    let mut record = mem.u32(res)?;
    let mut written = 0;
    for address in addresses {
        if written == max || record == 0 {
            break;
        }
        let sockaddr = mem.u32(record + 12)?;
        let data = mem.u32(sockaddr + 8)?;
        let data_len = mem.u32(sockaddr + 4)?;
        let (family, ip): (u8, Vec<u8>) = match address.ip() {
            IpAddr::V4(ip) => (1, ip.octets().to_vec()),
            IpAddr::V6(ip) => (2, ip.octets().to_vec()),
        };
        let needed = 2 + ip.len() as u32;
        if needed > data_len.max(14) || (family == 2 && data_len < needed) {
            continue;
        }
        mem.put_u8(record + 2, family)?;
        mem.put_u8(record + 3, 2)?; // stream
        mem.put_u8(record + 4, 1)?; // TCP
        mem.put_u32(record + 8, needed)?;
        mem.put_u32(record + 20, 0)?;
        mem.put_u8(sockaddr, family)?;
        mem.put(data, &address.port().to_be_bytes())?;
        mem.put(data + 2, &ip)?;
        written += 1;
        record = mem.u32(record + 24)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two records as the guest crates lay them out, each with a 26-byte data buffer of
    /// which it declares 14.
    fn guest_layout(mem: &mut Mem<'_>) {
        mem.put_u32(0, 100).unwrap(); // res -> first record
        for (i, record) in [100u32, 200].into_iter().enumerate() {
            let sockaddr = 300 + i as u32 * 16;
            let data = 400 + i as u32 * 32;
            mem.put_u32(record + 12, sockaddr).unwrap();
            mem.put_u32(sockaddr + 4, 14).unwrap();
            mem.put_u32(sockaddr + 8, data).unwrap();
        }
        mem.put_u32(100 + 24, 200).unwrap();
    }

    #[test]
    fn ipv4_results_fill_the_linked_records_in_order() {
        let mut raw = vec![0u8; 512];
        let mut mem = Mem(&mut raw);
        guest_layout(&mut mem);
        let addresses: Vec<SocketAddr> = vec![
            "10.0.0.1:3306".parse().unwrap(),
            "10.0.0.2:3306".parse().unwrap(),
            "[::1]:3306".parse().unwrap(),
        ];
        assert_eq!(fill(&mut mem, 0, 8, &addresses).unwrap(), 2);
        assert_eq!(mem.u8(102).unwrap(), 1);
        assert_eq!(mem.bytes(400, 6).unwrap(), &[0x0c, 0xea, 10, 0, 0, 1]);
        assert_eq!(mem.bytes(432, 6).unwrap(), &[0x0c, 0xea, 10, 0, 0, 2]);
        assert_eq!(mem.u8(300).unwrap(), 1);
    }

    #[test]
    fn ipv6_results_need_room_for_eighteen_bytes() {
        let mut raw = vec![0u8; 512];
        let mut mem = Mem(&mut raw);
        guest_layout(&mut mem);
        let v6: Vec<SocketAddr> = vec!["[2001:db8::1]:80".parse().unwrap()];
        assert_eq!(fill(&mut mem, 0, 8, &v6).unwrap(), 0);
        mem.put_u32(304, 26).unwrap();
        assert_eq!(fill(&mut mem, 0, 8, &v6).unwrap(), 1);
        assert_eq!(mem.u8(102).unwrap(), 2);
        assert_eq!(mem.bytes(400, 2).unwrap(), &[0, 80]);
    }

    #[test]
    fn names_end_at_their_nul() {
        assert_eq!(c_string(b"db.internal\0junk").unwrap(), "db.internal");
        assert!(c_string(&[0xff, 0]).is_err());
    }
}
