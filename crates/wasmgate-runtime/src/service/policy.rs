//! What a service guest's sockets may do: bind only its declared ports, look up and connect
//! only to what `allowed_outbound_hosts` allows. The rules are outbound HTTP's
//! (`wasmgate_capabilities::outbound_http`): a pattern must match the destination, and a
//! private, loopback or link-local address is refused unless the matching pattern names it
//! (an IP literal or `localhost`) or the runtime config sets `outbound_http.allow_private`.
//!
//! A socket connects to an address, not a name, so names are remembered when the guest looks
//! them up: connecting to an address is allowed when the address itself, or a name this
//! instance resolved to it, matches a pattern.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use wasmgate_capabilities::outbound_http::restriction;
use wasmgate_manifest::OutboundHost;

/// Names remembered per instance; past this, the oldest answers are forgotten.
const MAX_REMEMBERED: usize = 1024;

pub struct SocketPolicy {
    pub component: Arc<str>,
    allowed: Vec<OutboundHost>,
    allow_private: bool,
}

/// Why a connection or lookup was refused, for the log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Denial {
    NotAllowed,
    Private(&'static str),
}

impl SocketPolicy {
    pub fn new(component: &str, allowed: Vec<OutboundHost>, allow_private: bool) -> SocketPolicy {
        SocketPolicy {
            component: Arc::from(component),
            allowed,
            allow_private,
        }
    }

    /// Whether any pattern could allow a connection to `name` (any port): names no pattern
    /// mentions are not even looked up, so a guest cannot use DNS as a side channel.
    pub fn may_look_up(&self, name: &str) -> bool {
        self.allowed.iter().any(|p| p.host.matches(name))
    }

    /// Whether the guest may connect to `target`, given the names it resolved to that address.
    pub fn check_connect(&self, target: SocketAddr, names: &[String]) -> Result<(), Denial> {
        let literal = target.ip().to_string();
        let pattern = std::iter::once(literal.as_str())
            .chain(names.iter().map(String::as_str))
            .find_map(|host| {
                self.allowed
                    .iter()
                    .find(|p| p.matches_socket(host, target.port()))
            })
            .ok_or(Denial::NotAllowed)?;
        match restriction(target.ip()) {
            Some(kind) if !self.allow_private && !pattern.names_private_destination() => {
                Err(Denial::Private(kind))
            }
            _ => Ok(()),
        }
    }
}

/// Names this instance resolved, by address.
#[derive(Default)]
pub struct ResolvedNames {
    by_address: HashMap<IpAddr, Vec<String>>,
}

impl ResolvedNames {
    pub fn remember(&mut self, name: &str, address: IpAddr) {
        if self.by_address.len() >= MAX_REMEMBERED && !self.by_address.contains_key(&address) {
            self.by_address.clear();
        }
        let names = self.by_address.entry(address).or_default();
        if !names.iter().any(|n| n == name) && names.len() < 16 {
            names.push(name.to_string());
        }
    }

    pub fn names(&self, address: IpAddr) -> &[String] {
        self.by_address.get(&address).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str]) -> SocketPolicy {
        SocketPolicy::new(
            "t",
            patterns
                .iter()
                .map(|p| OutboundHost::parse(p).unwrap())
                .collect(),
            false,
        )
    }

    #[test]
    fn a_resolved_name_allows_its_address_on_the_listed_port_only() {
        let policy = policy(&["mysql://db.example.com:3306"]);
        let addr: SocketAddr = "93.184.216.34:3306".parse().unwrap();
        assert_eq!(policy.check_connect(addr, &[]), Err(Denial::NotAllowed));
        let names = vec!["db.example.com".to_string()];
        assert_eq!(policy.check_connect(addr, &names), Ok(()));
        let other_port: SocketAddr = "93.184.216.34:3307".parse().unwrap();
        assert_eq!(
            policy.check_connect(other_port, &names),
            Err(Denial::NotAllowed)
        );
        assert!(policy.may_look_up("db.example.com"));
        assert!(!policy.may_look_up("evil.example.com"));
    }

    #[test]
    fn private_addresses_need_a_pattern_that_names_them() {
        let names = vec!["db.internal".to_string()];
        let private: SocketAddr = "10.0.0.5:3306".parse().unwrap();
        assert_eq!(
            policy(&["mysql://db.internal:3306"]).check_connect(private, &names),
            Err(Denial::Private("private"))
        );
        assert_eq!(
            policy(&["mysql://10.0.0.5:3306"]).check_connect(private, &[]),
            Ok(())
        );
        let loopback: SocketAddr = "127.0.0.1:6379".parse().unwrap();
        assert_eq!(
            policy(&["*://*:*"]).check_connect(loopback, &[]),
            Err(Denial::Private("loopback"))
        );
        let mut open = policy(&["*://*:*"]);
        open.allow_private = true;
        assert_eq!(open.check_connect(loopback, &[]), Ok(()));
    }

    #[test]
    fn remembered_names_are_bounded() {
        let mut names = ResolvedNames::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        names.remember("a", ip);
        names.remember("a", ip);
        assert_eq!(names.names(ip), ["a".to_string()]);
        for i in 0..2000u32 {
            names.remember("x", IpAddr::from(i.to_be_bytes()));
        }
        assert!(names.by_address.len() <= MAX_REMEMBERED);
    }
}
