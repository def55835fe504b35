//! Which IP addresses are off-limits to guests unless explicitly allowed: anything that is not
//! a public unicast address. Checked on the resolved address, after DNS, so a public name that
//! resolves to 127.0.0.1 or 169.254.169.254 (the cloud metadata service) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is restricted, for the log line; `None` for a public unicast address.
pub fn restriction(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restriction_v4(v4),
        IpAddr::V6(v6) => restriction_v6(v6),
    }
}

fn restriction_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignments")
    } else if (a == 198 && (b == 18 || b == 19)) || ip.is_documentation() {
        Some("benchmarking or documentation")
    } else {
        None
    }
}

fn restriction_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // Addresses that embed an IPv4 address reach that address: judge the embedded one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return restriction_v4(v4);
    }
    let segments = ip.segments();
    if segments[0] == 0x64 && segments[1] == 0xff9b {
        // NAT64 well-known prefix 64:ff9b::/96.
        let [.., a, b, c, d] = ip.octets();
        return restriction_v4(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if (segments[0] & 0xfe00) == 0xfc00 {
        Some("unique local")
    } else if (segments[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        Some("documentation")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::restriction;

    fn restricted(text: &str) -> bool {
        restriction(text.parse().unwrap()).is_some()
    }

    #[test]
    fn private_and_special_addresses_are_restricted() {
        for addr in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(restricted(addr), "{addr} should be restricted");
        }
    }

    #[test]
    fn public_addresses_are_not() {
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!restricted(addr), "{addr} should be allowed");
        }
    }
}
