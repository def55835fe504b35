//! WASI 0.2 service components: `wasi:cli/run` programs that listen with `wasi:sockets` (Rust
//! std's `TcpListener` on `wasm32-wasip2`, `wstd::net`), under the same port mapping and socket
//! policy as the WasmEdge path.
//!
//! wasmtime-wasi implements the sockets; its `socket_addr_check` hook can only allow or deny an
//! address, not change it. The port mapping needs the bind address rewritten, so the linker
//! shadows the few `wasi:sockets` functions that must see more than the check does, and
//! delegates each to wasmtime-wasi's own implementation:
//! - `tcp-socket.start-bind`: a declared guest port becomes a loopback port the host picks
//!   (`127.0.0.1:0`, or `[::1]:0` for an IPv6 socket); an undeclared one is `access-denied`;
//! - `tcp-socket.start-listen`: publishes the real address in the [`PortMap`] (readiness);
//! - the `tcp-socket` destructor: frees the guest port for a later bind;
//! - `ip-name-lookup` (lookup, next answer, destructor): looks up only names some pattern
//!   mentions, and remembers the answers so connecting to a resolved address is judged by its
//!   name.
//!
//! Everything else (connect, UDP, accept) is judged in `socket_addr_check` by [`SocketPolicy`].
//!
//! `local-address` on a mapped listener reports the real loopback address, not the one the
//! guest asked for: it is what the socket is, and what a guest would print for an operator.

use super::policy::{Denial, ResolvedNames};
use super::wasmedge_sockets::NetContext;
use crate::limiter::MemoryLimiter;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host as NameLookup, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddress, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::{SocketError, TcpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The `wasi:sockets` version wasmtime-wasi 48 defines; guests built against any 0.2.x
/// resolve to it.
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
/// Open lookups tracked per instance; past this (a guest leaking answer streams) the oldest
/// are forgotten, and their answers no longer vouch for an address.
const MAX_OPEN_LOOKUPS: usize = 256;

/// Store data of one WASI 0.2 service instance.
pub struct ComponentState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    net: Arc<NetContext>,
    /// Names resolved by this instance, shared with the connect check.
    resolved: Arc<Mutex<ResolvedNames>>,
    /// Listener socket (resource rep) → the guest port it bound.
    bound: HashMap<u32, u16>,
    /// Name-lookup answer stream (resource rep) → the name being resolved.
    lookups: HashMap<u32, String>,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ComponentState {
    /// Finishes `wasi` (stdio, arguments and environment already set) with sockets that obey
    /// `net`'s policy.
    pub fn new(
        mut wasi: WasiCtxBuilder,
        net: Arc<NetContext>,
        memory_limit: u64,
    ) -> ComponentState {
        let resolved = Arc::new(Mutex::new(ResolvedNames::default()));
        let check_net = net.clone();
        let check_names = resolved.clone();
        wasi.allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(true)
            .socket_addr_check(move |address, usage| {
                let allowed = address_allowed(&check_net, &check_names, address, usage);
                Box::pin(std::future::ready(allowed))
            });
        ComponentState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            net,
            resolved,
            bound: HashMap::new(),
            lookups: HashMap::new(),
        }
    }

    /// Where a bind of `requested` really goes, or the error the guest gets.
    fn map_bind(&mut self, socket: u32, requested: SocketAddr) -> Result<SocketAddr, ErrorCode> {
        let port = requested.port();
        let ports = &self.net.ports;
        if !ports.is_declared(port) {
            tracing::warn!(
                component = %self.net.policy.component,
                guest_address = %requested,
                "service tried to bind a port not declared in `ports`; denied"
            );
            return Err(ErrorCode::AccessDenied);
        }
        if !ports.claim(port) {
            return Err(ErrorCode::AddressInUse);
        }
        self.bound.insert(socket, port);
        let loopback = match requested {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        Ok(SocketAddr::new(loopback, 0))
    }

    /// The socket `rep` is gone (or its bind failed): its guest port may be bound again.
    fn unbind(&mut self, socket: u32) {
        if let Some(port) = self.bound.remove(&socket) {
            self.net.ports.release(port);
        }
    }
}

/// The socket policy as wasmtime-wasi's address check: binds only to the loopback addresses
/// [`ComponentState::map_bind`] produces (or an ephemeral port), connects and datagrams only
/// where `allowed_outbound_hosts` allows.
fn address_allowed(
    net: &NetContext,
    resolved: &Mutex<ResolvedNames>,
    address: SocketAddr,
    usage: SocketAddrUse,
) -> bool {
    let outbound = |what: &str| {
        let names = resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .names(address.ip())
            .to_vec();
        match net.policy.check_connect(address, &names) {
            Ok(()) => true,
            Err(denial) => {
                let reason = match denial {
                    Denial::NotAllowed => "allowed_outbound_hosts does not allow it",
                    Denial::Private(kind) => kind,
                };
                tracing::warn!(
                    component = %net.policy.component,
                    address = %address,
                    reason,
                    "service {what} denied"
                );
                false
            }
        }
    };
    match usage {
        // Explicit binds were rewritten to loopback port 0; the wildcard with port 0 is the
        // implicit bind of a connecting socket.
        SocketAddrUse::TcpBind => address.port() == 0,
        SocketAddrUse::TcpListen => address.ip().is_loopback(),
        // Only the gateway can reach a loopback listener the host chose.
        SocketAddrUse::TcpAccept => true,
        SocketAddrUse::TcpConnect => outbound("connect"),
        SocketAddrUse::UdpBind => {
            if address.port() != 0 {
                tracing::warn!(
                    component = %net.policy.component,
                    address = %address,
                    "service tried to bind a UDP port; only ephemeral ports are allowed; denied"
                );
            }
            address.port() == 0
        }
        SocketAddrUse::UdpSend => outbound("UDP send"),
        // Datagrams from elsewhere are dropped silently: logging each would let anyone flood
        // the log.
        SocketAddrUse::UdpReceive => {
            let names = resolved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .names(address.ip())
                .to_vec();
            net.policy.check_connect(address, &names).is_ok()
        }
    }
}

/// wasmtime-wasi's error as the guest sees it; a trap stays a trap.
fn guest_error<T>(result: Result<T, SocketError>) -> wasmtime::Result<Result<T, ErrorCode>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) => error.downcast().map(Err),
    }
}

fn ip_of(address: &IpAddress) -> IpAddr {
    match *address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
}

/// WASI 0.2 (`wasi:cli` and friends) with the socket functions above shadowed.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    linker.allow_shadowing(true);

    let mut tcp = linker.instance(TCP)?;
    tcp.func_wrap_async(
        "[method]tcp-socket.start-bind",
        |mut store: StoreContextMut<'_, ComponentState>,
         (socket, network, requested): (
            Resource<TcpSocket>,
            Resource<Network>,
            IpSocketAddress,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                let rep = socket.rep();
                let host = match state.map_bind(rep, requested.into()) {
                    Ok(host) => host,
                    Err(code) => return Ok((Err(code),)),
                };
                let result =
                    HostTcpSocket::start_bind(&mut state.sockets(), socket, network, host.into())
                        .await;
                if result.is_err() {
                    state.unbind(rep);
                }
                Ok((guest_error(result)?,))
            })
        },
    )?;
    tcp.func_wrap_async(
        "[method]tcp-socket.start-listen",
        |mut store: StoreContextMut<'_, ComponentState>, (socket,): (Resource<TcpSocket>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let rep = socket.rep();
                let borrowed = Resource::<TcpSocket>::new_borrow(rep);
                let result = HostTcpSocket::start_listen(&mut state.sockets(), socket).await;
                if result.is_ok() {
                    if let Some(port) = state.bound.get(&rep).copied() {
                        let local = HostTcpSocket::local_address(&mut state.sockets(), borrowed);
                        if let Ok(local) = local {
                            state.net.ports.publish(port, local.into());
                        }
                    }
                }
                Ok((guest_error(result)?,))
            })
        },
    )?;
    tcp.resource(
        "tcp-socket",
        ResourceType::host::<TcpSocket>(),
        |mut store, rep| {
            let state = store.data_mut();
            state.unbind(rep);
            HostTcpSocket::drop(&mut state.sockets(), Resource::new_own(rep))
        },
    )?;

    let mut lookup = linker.instance(NAME_LOOKUP)?;
    lookup.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, ComponentState>,
         (network, name): (Resource<Network>, String)| {
            let state = store.data_mut();
            if !state.net.policy.may_look_up(&name) {
                tracing::warn!(
                    component = %state.net.policy.component,
                    name = %name,
                    "service name lookup denied: no allowed_outbound_hosts pattern names it"
                );
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            let result = NameLookup::resolve_addresses(&mut state.sockets(), network, name.clone());
            if let Ok(stream) = &result {
                if state.lookups.len() >= MAX_OPEN_LOOKUPS {
                    state.lookups.clear();
                }
                state.lookups.insert(stream.rep(), name);
            }
            Ok((guest_error(result)?,))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, ComponentState>,
         (stream,): (Resource<ResolveAddressStream>,)| {
            let state = store.data_mut();
            let rep = stream.rep();
            let result =
                HostResolveAddressStream::resolve_next_address(&mut state.sockets(), stream);
            if let (Ok(Some(address)), Some(name)) = (&result, state.lookups.get(&rep)) {
                state
                    .resolved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remember(name, ip_of(address));
            }
            Ok((guest_error(result)?,))
        },
    )?;
    lookup.resource(
        "resolve-address-stream",
        ResourceType::host::<ResolveAddressStream>(),
        |mut store, rep| {
            let state = store.data_mut();
            state.lookups.remove(&rep);
            HostResolveAddressStream::drop(&mut state.sockets(), Resource::new_own(rep))
        },
    )?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::policy::SocketPolicy;
    use crate::service::port_map::PortMap;
    use wasmgate_manifest::OutboundHost;

    fn allowed(patterns: &[&str], address: &str, usage: SocketAddrUse) -> bool {
        let net = NetContext {
            policy: SocketPolicy::new(
                "t",
                patterns
                    .iter()
                    .map(|p| OutboundHost::parse(p).unwrap())
                    .collect(),
                false,
            ),
            ports: PortMap::new(&[8080]),
        };
        let names = Mutex::new(ResolvedNames::default());
        address_allowed(&net, &names, address.parse().unwrap(), usage)
    }

    #[test]
    fn binds_reach_only_the_rewritten_loopback_or_an_ephemeral_port() {
        assert!(allowed(&[], "127.0.0.1:0", SocketAddrUse::TcpBind));
        assert!(allowed(&[], "0.0.0.0:0", SocketAddrUse::TcpBind));
        assert!(!allowed(&[], "0.0.0.0:8080", SocketAddrUse::TcpBind));
        assert!(allowed(&[], "127.0.0.1:41000", SocketAddrUse::TcpListen));
        assert!(!allowed(&[], "0.0.0.0:41000", SocketAddrUse::TcpListen));
        assert!(allowed(&[], "0.0.0.0:0", SocketAddrUse::UdpBind));
        assert!(!allowed(&[], "0.0.0.0:53", SocketAddrUse::UdpBind));
    }

    #[test]
    fn connects_and_datagrams_follow_allowed_outbound_hosts() {
        let patterns = ["tcp://10.0.0.5:5432", "udp://10.0.0.6:53"];
        assert!(allowed(
            &patterns,
            "10.0.0.5:5432",
            SocketAddrUse::TcpConnect
        ));
        assert!(!allowed(
            &patterns,
            "10.0.0.5:5433",
            SocketAddrUse::TcpConnect
        ));
        assert!(allowed(&patterns, "10.0.0.6:53", SocketAddrUse::UdpSend));
        assert!(!allowed(&patterns, "10.0.0.7:53", SocketAddrUse::UdpSend));
        assert!(!allowed(
            &patterns,
            "10.0.0.7:53",
            SocketAddrUse::UdpReceive
        ));
        // Private addresses need a pattern naming them, as for outbound HTTP.
        assert!(!allowed(
            &["*://*:*"],
            "127.0.0.1:6379",
            SocketAddrUse::TcpConnect
        ));
    }

    #[test]
    fn only_declared_ports_are_bound_and_each_once_until_released() {
        let net = Arc::new(NetContext {
            policy: SocketPolicy::new("t", Vec::new(), false),
            ports: PortMap::new(&[8080]),
        });
        let mut state = ComponentState::new(WasiCtx::builder(), net, 1 << 20);
        assert_eq!(
            state.map_bind(1, "0.0.0.0:9090".parse().unwrap()),
            Err(ErrorCode::AccessDenied)
        );
        assert_eq!(
            state.map_bind(1, "0.0.0.0:8080".parse().unwrap()),
            Ok("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            state.map_bind(2, "[::]:8080".parse().unwrap()),
            Err(ErrorCode::AddressInUse)
        );
        state.unbind(1);
        assert_eq!(
            state.map_bind(2, "[::]:8080".parse().unwrap()),
            Ok("[::1]:0".parse().unwrap())
        );
    }
}
