//! The DHCPv6 socket: `[::]:547`, IPv6 only, the arrival interface of each
//! datagram (`IPV6_RECVPKTINFO`), and membership of All_DHCP_Relay_Agents_
//! and_Servers (ff02::1:2) on the interfaces ztpd serves, and only those.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::RawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// ff02::1:2 (RFC 8415 §7.1).
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// Receive buffer asked of the kernel, as for DHCPv4: bursts must queue.
const RECV_BUFFER: usize = 4 << 20;

pub fn bind(addr: SocketAddr) -> io::Result<Socket> {
    let SocketAddr::V6(v6) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "DHCPv6 needs an IPv6 listen address",
        ));
    };
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    // As for DHCPv4: no SO_REUSEADDR, a taken port is the bind error.
    s.set_only_v6(true)?;
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    let _ = s.set_send_buffer_size(RECV_BUFFER);
    let on: libc::c_int = 1;
    // SAFETY: valid fd; the option value is a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVPKTINFO,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // Replies to link-local multicast senders stay on the link.
    s.set_multicast_hops_v6(1)?;
    s.bind(&SocketAddr::V6(v6).into())?;
    Ok(s)
}

#[derive(Debug, Clone, Copy)]
pub struct Received6 {
    pub len: usize,
    pub src: SocketAddrV6,
    pub ifindex: u32,
    /// The destination address of the datagram (multicast or ours).
    pub dst: Ipv6Addr,
}

/// `recvmsg` with the `IPV6_PKTINFO` control message.
pub fn recv(fd: RawFd, buf: &mut [u8], wait: bool) -> io::Result<Received6> {
    // SAFETY: zero-initialised plain C data; iovec and control buffer point
    // to live buffers of the stated sizes for the duration of the call.
    unsafe {
        let mut addr: libc::sockaddr_in6 = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        let n = libc::recvmsg(fd, &mut msg, flags);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ifindex = 0u32;
        let mut dst = Ipv6Addr::UNSPECIFIED;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IPV6 && (*c).cmsg_type == libc::IPV6_PKTINFO {
                let info = libc::CMSG_DATA(c)
                    .cast::<libc::in6_pktinfo>()
                    .read_unaligned();
                ifindex = info.ipi6_ifindex;
                dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let src = SocketAddrV6::new(
            Ipv6Addr::from(addr.sin6_addr.s6_addr),
            u16::from_be(addr.sin6_port),
            addr.sin6_flowinfo,
            addr.sin6_scope_id,
        );
        Ok(Received6 {
            len: n as usize,
            src,
            ifindex,
            dst,
        })
    }
}
