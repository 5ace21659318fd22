//! Addresses as devices see them: the one builder of ztpd's URLs (IPv6
//! addresses in brackets, RFC 3986) and the canonical form of a client
//! address (an IPv4 client of a dual-stack listener arrives as a v4-mapped
//! IPv6 address; every rule and record sees it as the IPv4 address it is).

use std::net::{IpAddr, SocketAddr};

/// `::ffff:10.0.0.5` -> `10.0.0.5`; every other address unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The same for a socket address (the port is kept).
pub fn canonical_socket(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(addr.ip()), addr.port())
}

/// `http://10.0.0.1:8080` or `http://[2001:db8::1]:8080`.
pub fn http_base(server: IpAddr, port: u16) -> String {
    format!("http://{}", SocketAddr::new(canonical(server), port))
}

/// `http://<server>:<port>/files`: the HTTP view of the file tree.
pub fn files_base(server: IpAddr, port: u16) -> String {
    format!("{}/files", http_base(server, port))
}

/// `http://<server>:<port>/files/<path>`.
pub fn files_url(server: IpAddr, port: u16, path: &str) -> String {
    format!(
        "{}/{}",
        files_base(server, port),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_servers_are_bracketed_and_ipv4_is_not() {
        let v6: IpAddr = "2001:db8:10::1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            files_url(v6, 8080, "bootstrap/sonic"),
            "http://[2001:db8:10::1]:8080/files/bootstrap/sonic"
        );
        assert_eq!(files_base(v4, 80), "http://10.0.0.1:80/files");
        assert_eq!(http_base(v4, 8080), "http://10.0.0.1:8080");
    }

    #[test]
    fn v4_mapped_addresses_become_ipv4() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(canonical(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(canonical(v6), v6);
        // A mapped server address in a URL is written as the IPv4 address.
        assert_eq!(http_base(mapped, 1), "http://10.1.2.3:1");
    }
}
