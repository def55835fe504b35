//! The guest's socket descriptors. They live in their own number range, far above the
//! descriptors wasmtime-wasi hands out (it counts up from 0), so a number says which table it
//! belongs to without asking wasmtime-wasi.
//!
//! Every host socket is non-blocking; whether the *guest* sees it as blocking is a flag here
//! (set through `fd_fdstat_set_flags`), so a blocking call awaits readiness instead of parking
//! a thread, and epochs and shutdown can still interrupt it.
//!
//! A socket is registered with tokio's reactor only once it listens, connects or was accepted.
//! Registered earlier, an unconnected socket reports hang-up, and tokio keeps "closed"
//! readiness for good: the listener would look ready forever and the guest's accept loop
//! would spin.

use super::abi::errno;
use socket2::Socket;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;

/// The first socket descriptor number.
pub const FIRST_FD: u32 = 0x4000_0000;
/// Sockets one instance may have open at once (its EMFILE).
pub const MAX_SOCKETS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Datagram,
}

enum Handle {
    Unregistered(Socket),
    Registered(Arc<AsyncFd<Socket>>),
    /// Only while registration is in progress.
    Moving,
}

pub struct Entry {
    handle: Handle,
    pub kind: Kind,
    pub ipv6: bool,
    /// The guest asked for O_NONBLOCK.
    pub nonblocking: bool,
    /// The address the guest bound, as it wrote it (its port, not the host's).
    pub guest_local: Option<SocketAddr>,
    /// A declared port this socket claimed in the port map.
    pub claimed_port: Option<u16>,
    /// Recorded at accept or connect time: asking the OS later fails once the peer reset.
    pub peer: Option<SocketAddr>,
    pub listening: bool,
}

impl Entry {
    pub fn new(socket: Socket, kind: Kind, ipv6: bool) -> Entry {
        Entry {
            handle: Handle::Unregistered(socket),
            kind,
            ipv6,
            nonblocking: false,
            guest_local: None,
            claimed_port: None,
            peer: None,
            listening: false,
        }
    }

    /// An accepted connection: registered at once.
    pub fn accepted(socket: Arc<AsyncFd<Socket>>, ipv6: bool) -> Entry {
        Entry {
            handle: Handle::Registered(socket),
            ..Entry::new_placeholder(ipv6)
        }
    }

    fn new_placeholder(ipv6: bool) -> Entry {
        Entry {
            handle: Handle::Moving,
            kind: Kind::Stream,
            ipv6,
            nonblocking: false,
            guest_local: None,
            claimed_port: None,
            peer: None,
            listening: false,
        }
    }

    /// The host socket, for calls that do not wait.
    pub fn sock(&self) -> Result<&Socket, i32> {
        match &self.handle {
            Handle::Unregistered(socket) => Ok(socket),
            Handle::Registered(fd) => Ok(fd.get_ref()),
            Handle::Moving => Err(errno::BADF),
        }
    }

    /// The socket registered with tokio (registering it now if needed), for calls that wait.
    pub fn registered(&mut self) -> Result<Arc<AsyncFd<Socket>>, i32> {
        if let Handle::Registered(fd) = &self.handle {
            return Ok(fd.clone());
        }
        let Handle::Unregistered(socket) = std::mem::replace(&mut self.handle, Handle::Moving)
        else {
            return Err(errno::BADF);
        };
        match register(socket) {
            Ok(fd) => {
                self.handle = Handle::Registered(fd.clone());
                Ok(fd)
            }
            Err((socket, error)) => {
                self.handle = Handle::Unregistered(socket);
                Err(super::abi::from_io(&error))
            }
        }
    }
}

/// Registers a non-blocking socket with tokio's reactor.
pub fn register(socket: Socket) -> Result<Arc<AsyncFd<Socket>>, (Socket, std::io::Error)> {
    // SAFETY: the AsyncFd takes ownership of the socket, so its descriptor stays open (and is
    // not reused) for exactly as long as it is registered.
    let registered = unsafe { AsyncFd::register(socket) };
    registered.map(Arc::new).map_err(|e| e.into_parts())
}

#[derive(Default)]
pub struct SocketTable {
    entries: HashMap<u32, Entry>,
    next: u32,
}

impl SocketTable {
    pub fn is_socket(fd: u32) -> bool {
        fd >= FIRST_FD
    }

    pub fn insert(&mut self, entry: Entry) -> Result<u32, i32> {
        if self.entries.len() >= MAX_SOCKETS {
            return Err(errno::MFILE);
        }
        loop {
            let fd = FIRST_FD + (self.next % (u32::MAX - FIRST_FD));
            self.next = self.next.wrapping_add(1);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.entries.entry(fd) {
                slot.insert(entry);
                return Ok(fd);
            }
        }
    }

    pub fn get(&self, fd: u32) -> Result<&Entry, i32> {
        self.entries.get(&fd).ok_or(errno::BADF)
    }

    pub fn get_mut(&mut self, fd: u32) -> Result<&mut Entry, i32> {
        self.entries.get_mut(&fd).ok_or(errno::BADF)
    }

    pub fn remove(&mut self, fd: u32) -> Option<Entry> {
        self.entries.remove(&fd)
    }
}
