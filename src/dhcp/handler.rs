//! The DHCP protocol as a pure function: `(view, leases, request, arrival, now)
//! -> outcome`. No I/O and no clock: the server loop supplies both, persists
//! `Outcome::writes` and sends `Outcome::reply` once they are stored.

use std::net::Ipv4Addr;

use super::conflict::conflict_with;
pub use super::conflict::{Conflict, ConflictKind};
use super::leases::{Lease, LeaseState, LeaseTable, OFFER_HOLD_SECS, QUARANTINE_SECS};
use super::packet::{MessageType, Request};
use super::profiles::BootOptions;
use super::stats::DropReason;
use super::view::{DhcpView, Reservation, SubnetView};
use super::wire::{finish, put_option, Header};
use crate::vendor::Vendor;

/// The interface a non-relayed request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub ifname: &'a str,
    pub addrs: &'a [Ipv4Addr],
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// To the relay agent, port 67.
    Relay(Ipv4Addr),
    /// To the client's own address, port 68.
    Unicast(Ipv4Addr),
    /// To `yiaddr`:68 at the client's hardware address, on the arrival
    /// interface: a client with no address yet that did not ask for
    /// broadcast. The kernel cannot ARP for an address the client does not
    /// have, so the socket side installs a neighbour entry first (and
    /// broadcasts when it cannot).
    Hardware { ip: Ipv4Addr, mac: [u8; 6] },
    /// 255.255.255.255:68 on the arrival interface.
    Broadcast,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub msg_type: MessageType,
    pub bytes: Vec<u8>,
    pub dest: Dest,
}

/// Why a request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Relayed for an address in no plan subnet.
    NoSubnet,
    /// Arrived on an interface with no address in a plan subnet (an uplink).
    ForeignInterface,
    /// The client chose another server, or addressed one that is not us.
    OtherServer,
    /// No free pool address in this subnet.
    PoolExhausted(usize),
    /// A message type servers do not answer (OFFER, ACK, NAK sent to us).
    NotAClientMessage,
}

impl Dropped {
    /// The metrics reason of this decision.
    pub fn reason(self) -> DropReason {
        match self {
            Dropped::NoSubnet => DropReason::NoSubnet,
            Dropped::ForeignInterface => DropReason::ForeignInterface,
            Dropped::OtherServer => DropReason::OtherServer,
            Dropped::PoolExhausted(_) => DropReason::PoolExhausted,
            Dropped::NotAClientMessage => DropReason::NotAClientMessage,
        }
    }
}

/// An unplanned client and what it said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub site: String,
    /// The plan subnet it asked in (IPv4 `[dhcp]` or IPv6 `[dhcp6]`).
    pub subnet: ipnet::IpNet,
    pub mac: Option<[u8; 6]>,
    /// Option 61 as sent (DHCPv4).
    pub client_id: Option<Vec<u8>>,
    /// The DUID, option 1 (DHCPv6).
    pub duid: Option<Vec<u8>>,
    pub vendor: Option<Vendor>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub vendor_class: Option<String>,
    pub ip: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub reply: Option<Reply>,
    /// Leases to persist before the reply may leave.
    pub writes: Vec<Lease>,
    pub seen: Option<Seen>,
    pub dropped: Option<Dropped>,
    /// The planned device this request came from.
    pub device: Option<String>,
    /// The address offered or acknowledged.
    pub ip: Option<Ipv4Addr>,
    /// The client named a planned device it is not.
    pub conflict: Option<Conflict>,
}

impl Outcome {
    fn drop(d: Dropped) -> Outcome {
        Outcome {
            dropped: Some(d),
            ..Outcome::default()
        }
    }
}

/// Everything decided about one request before a reply is built.
struct Ctx<'a> {
    view: &'a DhcpView,
    req: &'a Request,
    subnet: &'a SubnetView,
    /// The planned device, when it belongs to this subnet.
    planned: Option<&'a Reservation>,
    boot: Option<&'a BootOptions>,
    client: Vec<u8>,
    now: u64,
}

pub fn handle(
    view: &DhcpView,
    leases: &mut LeaseTable,
    req: &Request,
    arrival: Arrival<'_>,
    now: u64,
) -> Outcome {
    let subnet_idx = match select_subnet(view, req, arrival) {
        Ok(i) => i,
        Err(d) => return Outcome::drop(d),
    };
    let Some(subnet) = view.subnets.get(subnet_idx) else {
        return Outcome::drop(Dropped::NoSubnet);
    };
    let claimed = view
        .find(&req.info, req.mac())
        .filter(|r| r.subnet == subnet_idx);
    let client = req.client_key();
    let conflict = claimed.and_then(|r| conflict_with(r, req, &client, leases, now));
    let planned = claimed.filter(|_| conflict.is_none());
    let boot = match planned {
        Some(r) => Some(&r.boot),
        None => req
            .info
            .model
            .as_ref()
            .and_then(|m| subnet.by_model.get(m))
            .map(|(_, b)| b)
            .or_else(|| req.info.vendor.and_then(|v| subnet.by_vendor.get(&v))),
    };
    let ctx = Ctx {
        view,
        req,
        subnet,
        planned,
        boot,
        client,
        now,
    };
    let mut out = match req.msg_type {
        MessageType::Discover => discover(&ctx, leases, subnet_idx),
        MessageType::Request => request(&ctx, leases),
        MessageType::Decline => decline(&ctx, leases),
        MessageType::Release => release(&ctx, leases),
        MessageType::Inform => Outcome {
            reply: Some(reply(&ctx, MessageType::Ack, Ipv4Addr::UNSPECIFIED, false)),
            ..Outcome::default()
        },
        MessageType::Offer | MessageType::Ack | MessageType::Nak => {
            Outcome::drop(Dropped::NotAClientMessage)
        }
    };
    out.device = planned.map(|r| r.name.clone());
    if matches!(req.msg_type, MessageType::Discover | MessageType::Request) {
        out.conflict = conflict;
    }
    if planned.is_none() && matches!(req.msg_type, MessageType::Discover | MessageType::Request) {
        out.seen = Some(Seen {
            site: subnet.site.clone(),
            subnet: subnet.net.into(),
            mac: req.mac(),
            client_id: req.client_id.clone(),
            duid: None,
            vendor: req
                .info
                .model
                .as_ref()
                .and_then(|m| subnet.by_model.get(m))
                .map(|(v, _)| *v)
                .or(req.info.vendor),
            model: req.info.model.clone(),
            serial: req.info.serial.clone(),
            vendor_class: req.info.vendor_class.clone(),
            ip: out.ip.map(Into::into),
        });
    }
    out
}

/// Relayed: option 82.5 / 118, else giaddr. Local: only on an interface with
/// an address in a plan subnet (or named by one), then 118 may pick another.
fn select_subnet(view: &DhcpView, req: &Request, arrival: Arrival<'_>) -> Result<usize, Dropped> {
    if !req.giaddr.is_unspecified() {
        let key = req.link_selection.unwrap_or(req.giaddr);
        return view.subnet_for(key).ok_or(Dropped::NoSubnet);
    }
    let local = view
        .subnet_for_interface(arrival.ifname, arrival.addrs)
        .ok_or(Dropped::ForeignInterface)?;
    match req.link_selection {
        Some(ls) => view.subnet_for(ls).ok_or(Dropped::NoSubnet),
        None => Ok(local),
    }
}

/// May this (unplanned, or planned without an address) client use `ip`?
fn pool_address_ok(ctx: &Ctx<'_>, leases: &LeaseTable, ip: Ipv4Addr) -> bool {
    ctx.subnet.in_pool(ip)
        && ctx.view.planned_owner(ip).is_none()
        && leases.available(ip, &ctx.client, ctx.now)
}

/// The address a planned device must have, if the plan gives one.
fn planned_ip(ctx: &Ctx<'_>) -> Option<Ipv4Addr> {
    ctx.planned
        .and_then(|r| r.ip)
        .filter(|ip| ctx.subnet.net.contains(ip))
}

fn discover(ctx: &Ctx<'_>, leases: &mut LeaseTable, subnet_idx: usize) -> Outcome {
    let ip = if let Some(ip) = planned_ip(ctx) {
        ip
    } else {
        let current = leases
            .of_client(&ctx.client)
            .map(|l| l.ip)
            .filter(|ip| pool_address_ok(ctx, leases, *ip));
        let requested = ctx
            .req
            .requested_ip
            .filter(|ip| pool_address_ok(ctx, leases, *ip));
        match current.or(requested) {
            Some(ip) => ip,
            None => {
                let view = ctx.view;
                match leases.allocate(ctx.subnet.pool, &ctx.client, ctx.now, |ip| {
                    view.planned_owner(ip).is_some()
                }) {
                    Some(ip) => ip,
                    None => return Outcome::drop(Dropped::PoolExhausted(subnet_idx)),
                }
            }
        }
    };
    let already_bound = leases.get(ip).is_some_and(|l| {
        l.client == ctx.client && l.state == LeaseState::Bound && l.expires > ctx.now
    });
    if !already_bound {
        leases.insert(Lease {
            ip,
            client: ctx.client.clone(),
            mac: ctx.req.mac(),
            hostname: ctx.planned.map(|r| r.name.clone()),
            expires: ctx.now + OFFER_HOLD_SECS,
            state: LeaseState::Offered,
        });
    }
    Outcome {
        reply: Some(reply(ctx, MessageType::Offer, ip, true)),
        ip: Some(ip),
        ..Outcome::default()
    }
}

fn request(ctx: &Ctx<'_>, leases: &mut LeaseTable) -> Outcome {
    let req = ctx.req;
    if let Some(sid) = req.server_id {
        if sid != ctx.subnet.server_ip {
            // SELECTING another server's offer: free ours.
            if let Some(ip) = req.requested_ip {
                leases.forget_offer(ip, &ctx.client);
            }
            return Outcome::drop(Dropped::OtherServer);
        }
    }
    let asked = if req.ciaddr.is_unspecified() {
        req.requested_ip
    } else {
        Some(req.ciaddr)
    };
    let ok = match (asked, planned_ip(ctx)) {
        (Some(ip), Some(planned)) => ip == planned,
        (Some(ip), None) => {
            let own = leases
                .get(ip)
                .is_some_and(|l| l.client == ctx.client && l.state != LeaseState::Declined);
            ctx.subnet.net.contains(&ip)
                && ctx.view.planned_owner(ip).is_none()
                && (own || pool_address_ok(ctx, leases, ip))
        }
        (None, _) => false,
    };
    let Some(ip) = asked.filter(|_| ok) else {
        return Outcome {
            reply: Some(reply(ctx, MessageType::Nak, Ipv4Addr::UNSPECIFIED, false)),
            ..Outcome::default()
        };
    };
    let lease = Lease {
        ip,
        client: ctx.client.clone(),
        mac: req.mac(),
        hostname: ctx.planned.map(|r| r.name.clone()),
        expires: ctx.now + u64::from(ctx.subnet.lease_secs),
        state: LeaseState::Bound,
    };
    leases.insert(lease.clone());
    Outcome {
        reply: Some(reply(ctx, MessageType::Ack, ip, true)),
        writes: vec![lease],
        ip: Some(ip),
        ..Outcome::default()
    }
}

fn decline(ctx: &Ctx<'_>, leases: &mut LeaseTable) -> Outcome {
    let Some(ip) = ctx.req.requested_ip else {
        return Outcome::default();
    };
    let ours = leases.get(ip).is_some_and(|l| l.client == ctx.client);
    if !ours || !ctx.subnet.in_pool(ip) {
        if ctx.view.planned_owner(ip).is_some() {
            tracing::warn!(%ip, "a client declined a planned address: another host uses it");
        }
        return Outcome::default();
    }
    tracing::warn!(%ip, site = %ctx.subnet.site, "address declined (in use on the network); quarantined");
    let lease = Lease {
        ip,
        client: ctx.client.clone(),
        mac: ctx.req.mac(),
        hostname: None,
        expires: ctx.now + QUARANTINE_SECS,
        state: LeaseState::Declined,
    };
    leases.insert(lease.clone());
    Outcome {
        writes: vec![lease],
        ..Outcome::default()
    }
}

fn release(ctx: &Ctx<'_>, leases: &mut LeaseTable) -> Outcome {
    let ip = ctx.req.ciaddr;
    let Some(l) = leases
        .get(ip)
        .filter(|l| l.client == ctx.client && l.state == LeaseState::Bound)
    else {
        return Outcome::default();
    };
    let mut lease = l.clone();
    lease.state = LeaseState::Released;
    lease.expires = ctx.now;
    leases.insert(lease.clone());
    Outcome {
        writes: vec![lease],
        ..Outcome::default()
    }
}

/// The broadcast bit of the BOOTP flags field.
const BROADCAST_FLAG: u16 = 0x8000;

/// RFC 2131 §4.1 destination rules: relay first; NAK broadcast; a client
/// with an address at that address; a client without one by broadcast when
/// it asks for it (or has no Ethernet address we could unicast to), else
/// unicast to the offered address at its hardware address.
fn destination(req: &Request, msg: MessageType, yiaddr: Ipv4Addr) -> Dest {
    if !req.giaddr.is_unspecified() {
        return Dest::Relay(req.giaddr);
    }
    if msg == MessageType::Nak {
        return Dest::Broadcast;
    }
    if !req.ciaddr.is_unspecified() {
        return Dest::Unicast(req.ciaddr);
    }
    match req.mac() {
        Some(mac) if req.flags & BROADCAST_FLAG == 0 && !yiaddr.is_unspecified() => {
            Dest::Hardware { ip: yiaddr, mac }
        }
        _ => Dest::Broadcast,
    }
}

/// Build a reply. `with_lease` adds 51/58/59 (not for INFORM or NAK).
fn reply(ctx: &Ctx<'_>, msg: MessageType, yiaddr: Ipv4Addr, with_lease: bool) -> Reply {
    let limit = usize::from(ctx.req.max_size.unwrap_or(576).max(576)).min(1500);
    let mut bytes = encode(ctx, msg, yiaddr, with_lease, false);
    if bytes.len() > limit {
        // Too big for the client: keep only the boot options it asked for.
        bytes = encode(ctx, msg, yiaddr, with_lease, true);
    }
    Reply {
        msg_type: msg,
        bytes,
        dest: destination(ctx.req, msg, yiaddr),
    }
}

fn encode(
    ctx: &Ctx<'_>,
    msg: MessageType,
    yiaddr: Ipv4Addr,
    with_lease: bool,
    trim: bool,
) -> Vec<u8> {
    let req = ctx.req;
    let nak = msg == MessageType::Nak;
    let server = ctx.subnet.server_ip;
    let boot = if nak { None } else { ctx.boot };
    let mut buf = Vec::with_capacity(576);
    Header {
        op: 2,
        htype: req.htype,
        hlen: req.hlen,
        hops: 0,
        xid: req.xid,
        secs: 0,
        flags: if nak && !req.giaddr.is_unspecified() {
            req.flags | BROADCAST_FLAG
        } else {
            req.flags
        },
        ciaddr: if msg == MessageType::Ack {
            req.ciaddr
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        yiaddr,
        siaddr: if nak { Ipv4Addr::UNSPECIFIED } else { server },
        giaddr: req.giaddr,
        chaddr: req.chaddr,
        sname: if nak {
            Vec::new()
        } else {
            ctx.subnet.sname.clone()
        },
        file: boot
            .and_then(BootOptions::file)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
    }
    .write(&mut buf);
    put_option(&mut buf, 53, &[msg.code()]);
    put_option(&mut buf, 54, &server.octets());
    if !nak {
        if with_lease {
            let t = ctx.subnet.lease_secs;
            put_option(&mut buf, 51, &t.to_be_bytes());
            put_option(&mut buf, 58, &(t / 2).to_be_bytes());
            put_option(&mut buf, 59, &(t / 8 * 7).to_be_bytes());
        }
        for (code, v) in &ctx.subnet.common {
            put_option(&mut buf, *code, v);
        }
        if let Some(r) = ctx.planned {
            put_option(&mut buf, 12, r.name.as_bytes());
        }
        if let Some(b) = boot {
            for (code, v) in &b.options {
                if !trim || req.params.contains(code) {
                    put_option(&mut buf, *code, v);
                }
            }
        }
    }
    if let Some(ra) = &req.relay_agent {
        // RFC 3046: echoed unchanged, last.
        put_option(&mut buf, 82, ra);
    }
    finish(&mut buf);
    buf
}

#[cfg(test)]
#[path = "handler_tests.rs"]
pub(crate) mod tests;
