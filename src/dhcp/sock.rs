//! The socket layer dhcproto does not have: a UDP socket that learns the
//! arrival interface of each datagram (`IP_PKTINFO`) and can send a broadcast
//! out of one chosen interface, plus a cache of interface names and addresses.

use std::collections::HashMap;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// Receive buffer asked of the kernel: bursts of a few thousand requests
/// (a rack powering on, or perfdhcp) must queue, not drop.
const RECV_BUFFER: usize = 4 << 20;

/// Bind the DHCP socket: broadcast allowed, arrival interface reported,
/// never shared with another process.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "DHCPv4 needs an IPv4 listen address",
        ));
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // No SO_REUSEADDR (nor SO_REUSEPORT): with it a second server (another
    // ztpd) binds the same port silently and the kernel hands each datagram
    // to one of them, so planned devices go unanswered. A taken port must be
    // the bind error naming `listen.dhcp`. UDP has no TIME_WAIT to wait out.
    s.set_broadcast(true)?;
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    let _ = s.set_send_buffer_size(RECV_BUFFER);
    enable_pktinfo(s.as_raw_fd())?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(v4).into())?;
    Ok(s.into())
}

/// Ask the kernel for each datagram's `IP_PKTINFO` (arrival interface and
/// local address), read by [`recv`].
pub fn enable_pktinfo(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: valid fd, option value points to a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One received datagram's metadata.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub src: SocketAddrV4,
    pub ifindex: u32,
    /// The local address the datagram was for (`ipi_spec_dst`: the address
    /// it was sent to, or for a broadcast the interface's own address), the
    /// source a reply should come from; unspecified without `IP_PKTINFO`.
    pub local: Ipv4Addr,
}

/// `recvmsg` with the `IP_PKTINFO` control message. With `wait` false (or
/// on a non-blocking socket) it returns `WouldBlock` when the queue is empty.
pub fn recv(fd: RawFd, buf: &mut [u8], wait: bool) -> io::Result<Received> {
    // SAFETY: all structures are zero-initialised plain C data; the iovec and
    // control buffer point to live buffers of the stated sizes for the call.
    unsafe {
        let mut addr: libc::sockaddr_in = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
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
        let mut local = Ipv4Addr::UNSPECIFIED;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let info = libc::CMSG_DATA(c)
                    .cast::<libc::in_pktinfo>()
                    .read_unaligned();
                ifindex = u32::try_from(info.ipi_ifindex).unwrap_or(0);
                local = Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let src = SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
            u16::from_be(addr.sin_port),
        );
        Ok(Received {
            len: n as usize,
            src,
            ifindex,
            local,
        })
    }
}

/// `sendmsg`; with `ifindex` set the datagram leaves by that interface
/// (needed for 255.255.255.255 when several interfaces exist).
pub fn send(fd: RawFd, buf: &[u8], dst: SocketAddrV4, ifindex: Option<u32>) -> io::Result<()> {
    // SAFETY: as in `recv`; the control buffer is large enough for one
    // in_pktinfo cmsg and is aligned to u64.
    unsafe {
        let mut addr: libc::sockaddr_in = zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = dst.port().to_be();
        addr.sin_addr.s_addr = u32::from(*dst.ip()).to_be();
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 8];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(idx) = ifindex {
            let space = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::IPPROTO_IP;
            (*c).cmsg_type = libc::IP_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
            let mut info: libc::in_pktinfo = zeroed();
            info.ipi_ifindex = idx as libc::c_int;
            libc::CMSG_DATA(c)
                .cast::<libc::in_pktinfo>()
                .write_unaligned(info);
        }
        // Never block: a full send buffer drops this reply (the client retries)
        // rather than stalling the thread that sends it.
        if libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `ATF_COM` from `<net/if_arp.h>`: the entry carries a hardware address.
const ATF_COM: libc::c_int = 0x02;

/// Tell the kernel that `ip` is at `mac` on interface `ifname` (`SIOCSARP`,
/// as dnsmasq does), so a unicast to an address the client does not have
/// yet goes out without an ARP request nobody would answer. The entry is
/// not permanent: the kernel ages it out like a learnt one. Needs
/// CAP_NET_ADMIN.
pub fn set_neighbour(fd: RawFd, ifname: &str, ip: Ipv4Addr, mac: [u8; 6]) -> io::Result<()> {
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= 16 || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name does not fit IFNAMSIZ",
        ));
    }
    // SAFETY: arpreq is plain C data, zero-initialised; the sockaddr_in is
    // written into the 16-byte sockaddr it overlays (same size); the ioctl
    // reads the struct only during the call.
    unsafe {
        let mut req: libc::arpreq = zeroed();
        let mut pa: libc::sockaddr_in = zeroed();
        pa.sin_family = libc::AF_INET as libc::sa_family_t;
        pa.sin_addr.s_addr = u32::from(ip).to_be();
        std::ptr::addr_of_mut!(req.arp_pa)
            .cast::<libc::sockaddr_in>()
            .write_unaligned(pa);
        req.arp_ha.sa_family = libc::ARPHRD_ETHER;
        for (d, s) in req.arp_ha.sa_data.iter_mut().zip(mac) {
            *d = s as libc::c_char;
        }
        req.arp_flags = ATF_COM;
        for (d, s) in req.arp_dev.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCSARP as _, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct Interface {
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
    /// Its IPv6 addresses (DHCPv6 serves interfaces with one in a plan subnet).
    pub addrs6: Vec<std::net::Ipv6Addr>,
}

/// Interface index -> name and IPv4 addresses, re-read when an unknown index
/// shows up (at most once a second) or when the cache is older than `MAX_AGE`.
#[derive(Debug)]
pub struct Interfaces {
    by_index: HashMap<u32, Interface>,
    read_at: Option<Instant>,
}

impl Default for Interfaces {
    fn default() -> Self {
        Self::new()
    }
}

impl Interfaces {
    const MAX_AGE: Duration = Duration::from_secs(10);
    const MIN_AGE: Duration = Duration::from_secs(1);

    pub fn new() -> Self {
        Interfaces {
            by_index: HashMap::new(),
            read_at: None,
        }
    }

    /// Every interface, re-read when the cache is stale.
    pub fn all(&mut self) -> impl Iterator<Item = (&u32, &Interface)> {
        if self.read_at.is_none_or(|t| t.elapsed() > Self::MIN_AGE) {
            match read_interfaces() {
                Ok(m) => self.by_index = m,
                Err(e) => tracing::warn!("cannot list network interfaces: {e}"),
            }
            self.read_at = Some(Instant::now());
        }
        self.by_index.iter()
    }

    pub fn get(&mut self, ifindex: u32) -> Option<&Interface> {
        let age = self.read_at.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a > Self::MAX_AGE);
        let unknown =
            !self.by_index.contains_key(&ifindex) && age.is_none_or(|a| a > Self::MIN_AGE);
        if stale || unknown {
            match read_interfaces() {
                Ok(m) => self.by_index = m,
                Err(e) => tracing::warn!("cannot list network interfaces: {e}"),
            }
            self.read_at = Some(Instant::now());
        }
        self.by_index.get(&ifindex)
    }
}

fn read_interfaces() -> io::Result<HashMap<u32, Interface>> {
    let mut out: HashMap<u32, Interface> = HashMap::new();
    // SAFETY: getifaddrs gives a linked list we only read and then free; names
    // are NUL-terminated C strings owned by that list.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut p = head;
        while !p.is_null() {
            let ifa = &*p;
            p = ifa.ifa_next;
            if ifa.ifa_name.is_null() {
                continue;
            }
            let idx = libc::if_nametoindex(ifa.ifa_name);
            if idx == 0 {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let entry = out.entry(idx).or_insert_with(|| Interface {
                name,
                addrs: Vec::new(),
                addrs6: Vec::new(),
            });
            if !ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET6 {
                let sin6 = ifa.ifa_addr.cast::<libc::sockaddr_in6>().read_unaligned();
                entry
                    .addrs6
                    .push(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr));
            }
            if !ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET {
                let sin = ifa.ifa_addr.cast::<libc::sockaddr_in>().read_unaligned();
                entry
                    .addrs
                    .push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_round_trip_reports_the_interface() {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(a_addr) = a.local_addr().unwrap() else {
            panic!()
        };
        b.send_to(b"hello", a_addr).unwrap();
        let mut buf = [0u8; 64];
        let got = loop {
            match recv(a.as_raw_fd(), &mut buf, true) {
                Ok(r) => break r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..got.len], b"hello");
        let mut ifs = Interfaces::new();
        let lo = ifs.get(got.ifindex).expect("arrival interface known");
        assert!(lo.addrs.contains(&Ipv4Addr::LOCALHOST), "{lo:?}");
        let SocketAddr::V4(b_addr) = b.local_addr().unwrap() else {
            panic!()
        };
        send(a.as_raw_fd(), b"back", b_addr, Some(got.ifindex)).unwrap();
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");
    }
}
