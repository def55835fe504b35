//! The encodings of WasmEdge's socket extension: errno numbers, address families, and safe
//! access to the guest's linear memory (an out-of-bounds pointer is the guest's EFAULT, never a
//! host panic).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// WASI errno values (wasi_snapshot_preview1), plus WasmEdge's getaddrinfo NONAME.
pub mod errno {
    pub const SUCCESS: i32 = 0;
    pub const ACCES: i32 = 2;
    pub const ADDRINUSE: i32 = 3;
    pub const ADDRNOTAVAIL: i32 = 4;
    pub const AFNOSUPPORT: i32 = 5;
    pub const AGAIN: i32 = 6;
    pub const ALREADY: i32 = 7;
    pub const BADF: i32 = 8;
    pub const CONNABORTED: i32 = 13;
    pub const CONNREFUSED: i32 = 14;
    pub const CONNRESET: i32 = 15;
    pub const FAULT: i32 = 21;
    pub const HOSTUNREACH: i32 = 23;
    pub const INPROGRESS: i32 = 26;
    pub const INTR: i32 = 27;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const ISCONN: i32 = 30;
    pub const MFILE: i32 = 33;
    pub const MSGSIZE: i32 = 35;
    pub const NETUNREACH: i32 = 40;
    pub const NOBUFS: i32 = 42;
    pub const NOMEM: i32 = 48;
    pub const NOPROTOOPT: i32 = 50;
    pub const NOTCONN: i32 = 53;
    pub const NOTSOCK: i32 = 57;
    pub const NOTSUP: i32 = 58;
    pub const PIPE: i32 = 64;
    pub const TIMEDOUT: i32 = 73;
    /// WasmEdge's `sock_getaddrinfo`: the name does not resolve.
    pub const NONAME: i32 = 84;
}

/// A host I/O error as the errno the guest's libc expects.
pub fn from_io(error: &io::Error) -> i32 {
    if error.kind() == io::ErrorKind::WouldBlock {
        return errno::AGAIN;
    }
    // Linux errno numbers (the host this runs on) to WASI's.
    match error.raw_os_error() {
        Some(13) => errno::ACCES,
        Some(98) => errno::ADDRINUSE,
        Some(99) => errno::ADDRNOTAVAIL,
        Some(97) => errno::AFNOSUPPORT,
        Some(11) => errno::AGAIN,
        Some(114) => errno::ALREADY,
        Some(9) => errno::BADF,
        Some(103) => errno::CONNABORTED,
        Some(111) => errno::CONNREFUSED,
        Some(104) => errno::CONNRESET,
        Some(113) => errno::HOSTUNREACH,
        Some(115) => errno::INPROGRESS,
        Some(4) => errno::INTR,
        Some(22) => errno::INVAL,
        Some(106) => errno::ISCONN,
        Some(24) => errno::MFILE,
        Some(90) => errno::MSGSIZE,
        Some(101) => errno::NETUNREACH,
        Some(105) => errno::NOBUFS,
        Some(12) => errno::NOMEM,
        Some(92) => errno::NOPROTOOPT,
        Some(107) => errno::NOTCONN,
        Some(88) => errno::NOTSOCK,
        Some(95) => errno::NOTSUP,
        Some(32) => errno::PIPE,
        Some(110) => errno::TIMEDOUT,
        _ => errno::IO,
    }
}

/// `sock_open`'s address family argument.
pub const AF_INET4: i32 = 1;
pub const AF_INET6: i32 = 2;
/// `sock_open`'s socket type argument.
pub const SOCK_DGRAM: i32 = 1;
pub const SOCK_STREAM: i32 = 2;

/// Guest memory of one call, bounds-checked.
pub struct Mem<'a>(pub &'a mut [u8]);

impl Mem<'_> {
    pub fn bytes(&self, ptr: u32, len: u32) -> Result<&[u8], i32> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        self.0.get(start..end).ok_or(errno::FAULT)
    }

    pub fn bytes_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], i32> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        self.0.get_mut(start..end).ok_or(errno::FAULT)
    }

    pub fn u8(&self, ptr: u32) -> Result<u8, i32> {
        Ok(self.bytes(ptr, 1)?[0])
    }

    pub fn u32(&self, ptr: u32) -> Result<u32, i32> {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(self.bytes(ptr, 4)?);
        Ok(u32::from_le_bytes(raw))
    }

    pub fn u64(&self, ptr: u32) -> Result<u64, i32> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.bytes(ptr, 8)?);
        Ok(u64::from_le_bytes(raw))
    }

    pub fn put(&mut self, ptr: u32, data: &[u8]) -> Result<(), i32> {
        self.bytes_mut(ptr, data.len() as u32)?
            .copy_from_slice(data);
        Ok(())
    }

    pub fn put_u8(&mut self, ptr: u32, value: u8) -> Result<(), i32> {
        self.put(ptr, &[value])
    }

    pub fn put_u16(&mut self, ptr: u32, value: u16) -> Result<(), i32> {
        self.put(ptr, &value.to_le_bytes())
    }

    pub fn put_u32(&mut self, ptr: u32, value: u32) -> Result<(), i32> {
        self.put(ptr, &value.to_le_bytes())
    }

    pub fn put_u64(&mut self, ptr: u32, value: u64) -> Result<(), i32> {
        self.put(ptr, &value.to_le_bytes())
    }

    /// A `{buf: u32, size: u32}` address: 4 bytes are IPv4, 16 IPv6, in network order.
    pub fn address(&self, ptr: u32, port: u32) -> Result<SocketAddr, i32> {
        let buf = self.u32(ptr)?;
        let size = self.u32(ptr + 4)?;
        let port = u16::try_from(port).map_err(|_| errno::INVAL)?;
        let ip = match size {
            4 => {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(self.bytes(buf, 4)?);
                IpAddr::V4(Ipv4Addr::from(raw))
            }
            16 => {
                let mut raw = [0u8; 16];
                raw.copy_from_slice(self.bytes(buf, 16)?);
                IpAddr::V6(Ipv6Addr::from(raw))
            }
            _ => return Err(errno::INVAL),
        };
        Ok(SocketAddr::new(ip, port))
    }

    /// Writes `addr` the way `sock_getlocaladdr`/`sock_getpeeraddr` report it: the IP bytes
    /// into the `{buf, size}` at `addr_ptr`, the type (4 or 6) and the port as u32s.
    pub fn put_address(
        &mut self,
        addr: SocketAddr,
        addr_ptr: u32,
        type_ptr: u32,
        port_ptr: u32,
    ) -> Result<(), i32> {
        let buf = self.u32(addr_ptr)?;
        let size = self.u32(addr_ptr + 4)?;
        let (octets, kind): (Vec<u8>, u32) = match addr.ip() {
            IpAddr::V4(ip) => (ip.octets().to_vec(), 4),
            IpAddr::V6(ip) => (ip.octets().to_vec(), 6),
        };
        if (size as usize) < octets.len() {
            return Err(errno::INVAL);
        }
        self.put(buf, &octets)?;
        self.put_u32(type_ptr, kind)?;
        self.put_u32(port_ptr, u32::from(addr.port()))
    }

    /// The `(ptr, len)` pairs of an iovec array.
    pub fn iovecs(&self, ptr: u32, count: u32) -> Result<Vec<(u32, u32)>, i32> {
        if count > 1024 {
            return Err(errno::INVAL);
        }
        (0..count)
            .map(|i| {
                let at = ptr.checked_add(i * 8).ok_or(errno::FAULT)?;
                Ok((self.u32(at)?, self.u32(at + 4)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_guest_memory() {
        let mut raw = vec![0u8; 64];
        let mut mem = Mem(&mut raw);
        mem.put_u32(0, 16).unwrap();
        mem.put_u32(4, 4).unwrap();
        mem.put(16, &[127, 0, 0, 1]).unwrap();
        assert_eq!(
            mem.address(0, 8080).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        mem.put_u32(4, 16).unwrap();
        mem.put_address("[::1]:9".parse().unwrap(), 0, 40, 44)
            .unwrap();
        assert_eq!(mem.u32(40).unwrap(), 6);
        assert_eq!(mem.address(0, 9).unwrap(), "[::1]:9".parse().unwrap());
    }

    #[test]
    fn out_of_bounds_pointers_are_efault_and_bad_sizes_einval() {
        let mut raw = vec![0u8; 16];
        let mut mem = Mem(&mut raw);
        assert_eq!(mem.u32(14), Err(errno::FAULT));
        assert_eq!(mem.u32(u32::MAX), Err(errno::FAULT));
        mem.put_u32(4, 5).unwrap();
        assert_eq!(mem.address(0, 1), Err(errno::INVAL));
        assert_eq!(mem.address(0, 70000), Err(errno::INVAL));
    }

    #[test]
    fn host_errors_map_to_wasi_numbers() {
        let e = |n| from_io(&io::Error::from_raw_os_error(n));
        assert_eq!(e(104), errno::CONNRESET);
        assert_eq!(e(111), errno::CONNREFUSED);
        assert_eq!(e(115), errno::INPROGRESS);
        assert_eq!(
            from_io(&io::Error::from(io::ErrorKind::WouldBlock)),
            errno::AGAIN
        );
    }
}
