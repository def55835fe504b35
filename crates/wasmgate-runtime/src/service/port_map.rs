//! Which host port each declared guest port is mapped to, for one replica.
//!
//! A guest binds the port its code names (`0.0.0.0:8080`); the host binds a loopback port of its
//! own choosing instead, as a container runtime would, so replicas never collide and no guest
//! holds a public socket. When the guest starts listening, the host address is published here;
//! the supervisor waits on it for readiness and the proxy reads it to forward requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Clone)]
pub struct PortMap {
    inner: Arc<Inner>,
}

struct Inner {
    /// Guest port → host address the guest is listening on, `None` until it listens.
    ports: HashMap<u16, watch::Sender<Option<SocketAddr>>>,
    /// Guest ports bound (not necessarily listening) by the running instance.
    bound: Mutex<Vec<u16>>,
}

impl PortMap {
    pub fn new(declared: &[u16]) -> PortMap {
        let ports = declared
            .iter()
            .map(|port| (*port, watch::channel(None).0))
            .collect();
        PortMap {
            inner: Arc::new(Inner {
                ports,
                bound: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn is_declared(&self, guest_port: u16) -> bool {
        self.inner.ports.contains_key(&guest_port)
    }

    /// Claims `guest_port` for a bind; `false` if the instance already bound it (EADDRINUSE).
    pub fn claim(&self, guest_port: u16) -> bool {
        let mut bound = self.inner.bound.lock().unwrap_or_else(|p| p.into_inner());
        if bound.contains(&guest_port) {
            return false;
        }
        bound.push(guest_port);
        true
    }

    /// The guest listens on `guest_port`; the host side is `host`.
    pub fn publish(&self, guest_port: u16, host: SocketAddr) {
        if let Some(sender) = self.inner.ports.get(&guest_port) {
            sender.send_replace(Some(host));
        }
    }

    /// The guest closed the socket bound to `guest_port`.
    pub fn release(&self, guest_port: u16) {
        self.inner
            .bound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| *p != guest_port);
        if let Some(sender) = self.inner.ports.get(&guest_port) {
            sender.send_replace(None);
        }
    }

    /// Forgets everything: the instance is gone (exit, trap, restart).
    pub fn reset(&self) {
        self.inner
            .bound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for sender in self.inner.ports.values() {
            sender.send_replace(None);
        }
    }

    /// Where `guest_port` is listening now, if it is.
    pub fn current(&self, guest_port: u16) -> Option<SocketAddr> {
        self.inner
            .ports
            .get(&guest_port)
            .and_then(|sender| *sender.borrow())
    }

    /// Follows `guest_port`'s host address as it changes.
    pub fn watch(&self, guest_port: u16) -> Option<watch::Receiver<Option<SocketAddr>>> {
        self.inner
            .ports
            .get(&guest_port)
            .map(watch::Sender::subscribe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_ports_are_mapped_and_each_binds_once() {
        let map = PortMap::new(&[8080]);
        assert!(map.is_declared(8080));
        assert!(!map.is_declared(9090));
        assert!(map.claim(8080));
        assert!(!map.claim(8080));
        let host: SocketAddr = "127.0.0.1:41000".parse().unwrap();
        map.publish(8080, host);
        assert_eq!(map.current(8080), Some(host));
        map.release(8080);
        assert_eq!(map.current(8080), None);
        assert!(map.claim(8080));
        map.reset();
        assert!(map.claim(8080));
    }
}
