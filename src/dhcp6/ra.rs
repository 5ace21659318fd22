//! Router Advertisements for links with no router (`[dhcp6] advertise =
//! true`, SPEC §11). A DHCPv6 lease is a /128: without an RA naming the
//! link's prefix as on-link, an IPv6-only device cannot reach `server_ip6`.
//! Sent on the interfaces DHCPv6 serves: M and O flags set (addresses and
//! options come from DHCPv6), the subnet as an on-link prefix without
//! autonomous configuration, router lifetime 0 (ztpd is no default router).
//! ICMPv6 has no encoder in our dependencies: the 48 bytes are written here.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use ipnet::Ipv6Net;
use socket2::{Domain, Protocol, Socket, Type};

/// All-nodes, link scope (RFC 4861 §6.2.6).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// One Router Advertisement with one Prefix Information option.
pub fn advertisement(prefix: Ipv6Net, valid: u32, preferred: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(48);
    // ICMPv6 type 134, code 0, checksum (the kernel fills it for raw
    // ICMPv6 sockets), cur hop limit 64, flags M|O, router lifetime 0,
    // reachable time 0, retrans timer 0.
    b.extend_from_slice(&[134, 0, 0, 0, 64, 0xc0, 0, 0]);
    b.extend_from_slice(&[0; 8]);
    // Prefix Information (RFC 4861 §4.6.2): type 3, length 4 (x 8 bytes),
    // prefix length, flags L (on-link) without A (no SLAAC).
    b.extend_from_slice(&[3, 4, prefix.prefix_len(), 0x80]);
    b.extend_from_slice(&valid.to_be_bytes());
    b.extend_from_slice(&preferred.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&prefix.network().octets());
    b
}

/// The raw ICMPv6 socket RAs go out of (needs CAP_NET_RAW).
pub fn socket() -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    // RFC 4861 §6.1.2: receivers drop RAs whose hop limit is not 255.
    s.set_multicast_hops_v6(255)?;
    s.set_unicast_hops_v6(255)?;
    s.set_multicast_loop_v6(false)?;
    Ok(s)
}

/// Send one RA to all nodes of the link `ifindex`.
pub fn send(s: &Socket, ifindex: u32, ra: &[u8]) -> std::io::Result<()> {
    let dst = SocketAddrV6::new(ALL_NODES, 0, 0, ifindex);
    s.send_to(ra, &SocketAddr::V6(dst).into()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advertisement_names_the_prefix_on_link_without_autoconfiguration() {
        let ra = advertisement("2001:db8:10::/64".parse().unwrap(), 3600, 2250);
        assert_eq!(ra.len(), 48);
        assert_eq!(ra[0], 134);
        assert_eq!(ra[5], 0xc0, "M and O");
        assert_eq!(&ra[6..8], &[0, 0], "no default router");
        assert_eq!(&ra[16..20], &[3, 4, 64, 0x80], "on-link, not autonomous");
        assert_eq!(&ra[20..24], &3600u32.to_be_bytes());
        assert_eq!(
            &ra[32..48],
            &"2001:db8:10::".parse::<Ipv6Addr>().unwrap().octets()
        );
    }
}
