//! Free loopback ports. The kernel picks them (bind to port 0); the socket is
//! closed again before the daemon binds, which is racy in theory and fine
//! in practice on one test machine.

use std::net::{SocketAddr, TcpListener, UdpSocket};

pub fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port")
        .port()
}

pub fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

pub fn loopback_tcp() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_tcp()))
}

pub fn loopback_udp() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_udp()))
}
