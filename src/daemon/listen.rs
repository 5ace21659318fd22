//! Binding the TFTP and HTTP listeners (SPEC §1b, §11): `[::]` defaults are
//! dual-stack (IPv4 clients arrive v4-mapped and are canonicalised by
//! `addr::canonical` before any rule or record); on a host with IPv6
//! disabled they fall back to `0.0.0.0` with an info line; a plan with
//! `[dhcp6]` while one of them listens on IPv4 only is refused by name.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use crate::settings::bind_error;

/// Listen backlog of the HTTP socket (what tokio's `TcpListener::bind` uses).
const BACKLOG: i32 = 1024;

/// `[::]:port` -> dual-stack socket; when IPv6 is unavailable on this host,
/// `0.0.0.0:port` instead (logged). Other addresses as given.
fn socket(setting: &str, addr: SocketAddr, ty: Type, proto: Protocol) -> anyhow::Result<Socket> {
    let make = |a: SocketAddr| -> std::io::Result<Socket> {
        let s = Socket::new(Domain::for_address(a), ty, Some(proto))?;
        if a.is_ipv6() && a.ip().is_unspecified() {
            s.set_only_v6(false)?;
        }
        if ty == Type::STREAM {
            // As std and tokio do for listeners: a restart may rebind at once.
            s.set_reuse_address(true)?;
        }
        s.set_nonblocking(true)?;
        s.bind(&a.into())?;
        Ok(s)
    };
    match make(addr) {
        Ok(s) => Ok(s),
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() && ipv6_unavailable(&e) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            tracing::info!(
                "{setting}: IPv6 is not available on this host ({e}); listening on {v4} (IPv4 only)"
            );
            make(v4).map_err(|e| bind_error(setting, v4, e))
        }
        Err(e) => Err(bind_error(setting, addr, e)),
    }
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) | Some(libc::EPROTONOSUPPORT)
    )
}

pub fn udp(setting: &str, addr: SocketAddr) -> anyhow::Result<tokio::net::UdpSocket> {
    let s = socket(setting, addr, Type::DGRAM, Protocol::UDP)?;
    Ok(tokio::net::UdpSocket::from_std(s.into())?)
}

pub fn tcp(setting: &str, addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let s = socket(setting, addr, Type::STREAM, Protocol::TCP)?;
    s.listen(BACKLOG)
        .map_err(|e| bind_error(setting, addr, e))?;
    Ok(tokio::net::TcpListener::from_std(s.into())?)
}

/// With a `[dhcp6]` plan, devices reach ztpd over IPv6: a TFTP or HTTP
/// listener on an IPv4 address cannot serve them.
/// Checked at start and at every reload (a reload adding the first
/// `[dhcp6]` to such a daemon is refused, the last good plan keeps serving).
pub fn check_ipv6_reachable(
    resolved: &crate::settings::Resolved,
    model: &crate::plan::model::Model,
) -> anyhow::Result<()> {
    let Some(site) = model.sites.iter().find(|s| s.dhcp6.is_some()) else {
        return Ok(());
    };
    let l = &resolved.settings.listen;
    for (setting, addr) in [("listen.http", l.http), ("listen.tftp", l.tftp)] {
        if addr.is_ipv4() {
            anyhow::bail!(
                "{setting} = \"{addr}\" is IPv4 only, but site `{}` serves DHCPv6 ([dhcp6]): \
                 its devices could not reach ztpd; set `{setting}` to \"[::]:{}\" (IPv4 and \
                 IPv6) or to an IPv6 address in ztpd.toml",
                site.name,
                addr.port()
            );
        }
    }
    Ok(())
}
