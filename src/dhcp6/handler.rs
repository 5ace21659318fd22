//! The DHCPv6 protocol as a pure function (RFC 8415 §18.3): `(view, leases,
//! request, arrival, server DUID, now) -> outcome`. No I/O, no clock: the
//! socket loop persists `Outcome6::writes` and sends the reply after them.

use std::net::{IpAddr, Ipv6Addr};

use dhcproto::v6::OptionCode;
use dhcproto::v6::{
    DhcpOption, IAAddr, Message, MessageType, RelayMessage, Status, StatusCode, UnknownOption,
    IANA, IAPD, IATA,
};
use dhcproto::{Decodable, Decoder, Encodable, Name};

use super::leases::{client_key, Lease6, LeaseState, LeaseTable6};
use super::packet::Request;
use super::profiles::BootOptions6;
use super::view::{Dhcp6View, Reservation6, Subnet6};
use crate::dhcp::handler::Seen;
use crate::dhcp::leases::{OFFER_HOLD_SECS, QUARANTINE_SECS};

/// The interface a non-relayed request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Arrival6<'a> {
    pub ifname: &'a str,
    pub addrs: &'a [Ipv6Addr],
}

/// Why a request got no reply (each a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped6 {
    /// Relayed for a link in no plan subnet.
    NoSubnet,
    /// Arrived on an interface with no address in a plan subnet (an uplink).
    ForeignInterface,
    /// For another server (server identifier not ours), or a Solicit,
    /// Confirm or Rebind carrying one (RFC 8415 §16).
    OtherServer,
    /// No client identifier where RFC 8415 requires one.
    NoClientId,
    /// A message servers do not answer (Advertise, Reply, Reconfigure...).
    NotAClientMessage,
    /// A Confirm naming no address: nothing to confirm.
    NothingToConfirm,
}

impl Dropped6 {
    pub fn label(self) -> &'static str {
        match self {
            Dropped6::NoSubnet => "no_subnet",
            Dropped6::ForeignInterface => "foreign_interface",
            Dropped6::OtherServer => "other_server",
            Dropped6::NoClientId => "no_client_id",
            Dropped6::NotAClientMessage => "not_a_client_message",
            Dropped6::NothingToConfirm => "nothing_to_confirm",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Outcome6 {
    /// The reply datagram (a Relay-reply when the request was relayed).
    pub reply: Option<Vec<u8>>,
    pub reply_type: Option<MessageType>,
    /// Leases to persist before the reply may leave.
    pub writes: Vec<Lease6>,
    pub seen: Option<Seen>,
    pub dropped: Option<Dropped6>,
    /// The planned device this request came from.
    pub device: Option<String>,
    /// The address advertised or bound (the first IA_NA's).
    pub ip: Option<Ipv6Addr>,
}

impl Outcome6 {
    fn drop(d: Dropped6) -> Outcome6 {
        Outcome6 {
            dropped: Some(d),
            ..Outcome6::default()
        }
    }
}

struct Ctx<'a> {
    view: &'a Dhcp6View,
    req: &'a Request,
    subnet: &'a Subnet6,
    planned: Option<&'a Reservation6>,
    boot: Option<&'a BootOptions6>,
    duid: &'a [u8],
    server_duid: &'a [u8],
    now: u64,
}

pub fn handle(
    view: &Dhcp6View,
    leases: &mut LeaseTable6,
    req: &Request,
    arrival: Arrival6<'_>,
    server_duid: &[u8],
    now: u64,
) -> Outcome6 {
    use MessageType as M;
    if !matches!(
        req.msg_type,
        M::Solicit
            | M::Request
            | M::Renew
            | M::Rebind
            | M::Release
            | M::Decline
            | M::Confirm
            | M::InformationRequest
    ) {
        return Outcome6::drop(Dropped6::NotAClientMessage);
    }
    let subnet_idx = match select_subnet(view, req, arrival) {
        Ok(i) => i,
        Err(d) => return Outcome6::drop(d),
    };
    let Some(subnet) = view.subnets.get(subnet_idx) else {
        return Outcome6::drop(Dropped6::NoSubnet);
    };
    // RFC 8415 §16: which messages must, may or must not name a server.
    let ours = req.server_id.as_deref() == Some(server_duid);
    let server_rule_ok = match req.msg_type {
        M::Solicit | M::Confirm | M::Rebind => req.server_id.is_none(),
        M::Request | M::Renew | M::Release | M::Decline => ours,
        _ => req.server_id.is_none() || ours,
    };
    if !server_rule_ok {
        return Outcome6::drop(Dropped6::OtherServer);
    }
    let duid = match (&req.client_id, req.msg_type) {
        (Some(d), _) => d.as_slice(),
        (None, M::InformationRequest) => &[],
        (None, _) => return Outcome6::drop(Dropped6::NoClientId),
    };
    let planned = view
        .find(Some(duid).filter(|d| !d.is_empty()), &req.info, req.mac())
        .filter(|r| r.subnet == subnet_idx);
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
        duid,
        server_duid,
        now,
    };
    let mut out = match req.msg_type {
        M::Solicit if req.rapid_commit => assign(&ctx, leases, true, M::Reply),
        M::Solicit => assign(&ctx, leases, false, M::Advertise),
        M::Request | M::Renew | M::Rebind => assign(&ctx, leases, true, M::Reply),
        M::Release => give_back(&ctx, leases, LeaseState::Released),
        M::Decline => give_back(&ctx, leases, LeaseState::Declined),
        M::Confirm => confirm(&ctx),
        _ => reply(&ctx, M::Reply, Vec::new(), None, true),
    };
    out.device = planned.map(|r| r.name.clone());
    if planned.is_none() && matches!(req.msg_type, M::Solicit | M::Request) {
        out.seen = Some(Seen {
            site: subnet.site.clone(),
            subnet: subnet.net.into(),
            mac: req.mac(),
            client_id: None,
            duid: Some(duid.to_vec()),
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
            ip: out.ip.map(IpAddr::V6),
        });
    }
    out
}

/// Relayed: the innermost relay's link-address names the link. Local: only
/// on an interface with an address in a plan subnet (or named by one).
fn select_subnet(
    view: &Dhcp6View,
    req: &Request,
    arrival: Arrival6<'_>,
) -> Result<usize, Dropped6> {
    if !req.relays.is_empty() {
        let link = req.link_address().ok_or(Dropped6::NoSubnet)?;
        return view.subnet_for(link).ok_or(Dropped6::NoSubnet);
    }
    view.subnet_for_interface(arrival.ifname, arrival.addrs)
        .ok_or(Dropped6::ForeignInterface)
}

/// The address for one IA_NA: the planned one; else the client's current
/// lease or an address it asked for when usable; else a free pool address.
fn address_for(
    ctx: &Ctx<'_>,
    leases: &mut LeaseTable6,
    key: &[u8],
    asked: &[Ipv6Addr],
) -> Option<Ipv6Addr> {
    if let Some(r) = ctx.planned {
        if let Some(ip) = r.ip6.filter(|ip| ctx.subnet.net.contains(ip)) {
            return Some(ip);
        }
    }
    let usable = |ip: Ipv6Addr, leases: &LeaseTable6| {
        ctx.subnet.in_pool(ip)
            && ctx.view.planned_owner(ip).is_none()
            && leases.available(ip, key, ctx.now)
    };
    let current = leases
        .of_client(key)
        .map(|l| l.ip)
        .filter(|ip| usable(*ip, leases));
    if let Some(ip) = current.or_else(|| asked.iter().copied().find(|ip| usable(*ip, leases))) {
        return Some(ip);
    }
    let view = ctx.view;
    leases.allocate(ctx.subnet.pool, key, ctx.now, |ip| {
        view.planned_owner(ip).is_some()
    })
}

/// Solicit, Request, Renew, Rebind: an address per IA_NA, bound (`bind`) or
/// only held for the Advertise.
fn assign(ctx: &Ctx<'_>, leases: &mut LeaseTable6, bind: bool, msg: MessageType) -> Outcome6 {
    let s = ctx.subnet;
    let mut ias = Vec::new();
    let mut writes = Vec::new();
    let mut first = None;
    for ia in &ctx.req.ia_na {
        let key = client_key(ctx.duid, ia.id);
        let mut opts = Vec::new();
        match address_for(ctx, leases, &key, &ia.addrs) {
            Some(ip) => {
                let lease = Lease6 {
                    ip,
                    client: key.clone(),
                    mac: ctx.req.mac(),
                    hostname: ctx.planned.map(|r| r.name.clone()),
                    expires: ctx.now
                        + if bind {
                            u64::from(s.valid_secs)
                        } else {
                            OFFER_HOLD_SECS
                        },
                    state: if bind {
                        LeaseState::Bound
                    } else {
                        LeaseState::Offered
                    },
                };
                let already = leases
                    .get(ip)
                    .is_some_and(|l| l.client == key && l.live(ctx.now));
                if bind {
                    leases.insert(lease.clone());
                    writes.push(lease);
                } else if !already {
                    leases.insert(lease);
                }
                first = first.or(Some(ip));
                opts.push(ia_addr(ip, s.preferred_secs, s.valid_secs));
                // Addresses the client named that it may not keep: lifetimes 0
                // (RFC 8415 §18.3.4, §18.3.5).
                for old in ia.addrs.iter().filter(|a| **a != ip) {
                    opts.push(ia_addr(*old, 0, 0));
                }
                ias.push(DhcpOption::IANA(IANA {
                    id: ia.id,
                    t1: s.preferred_secs / 2,
                    t2: s.preferred_secs / 5 * 4,
                    opts: opts.into_iter().collect(),
                }));
            }
            None => ias.push(DhcpOption::IANA(IANA {
                id: ia.id,
                t1: 0,
                t2: 0,
                opts: [status(Status::NoAddrsAvail, "no free address in the pool")]
                    .into_iter()
                    .collect(),
            })),
        }
    }
    for id in &ctx.req.ia_ta {
        ias.push(DhcpOption::IATA(IATA {
            id: *id,
            opts: [status(Status::NoAddrsAvail, "no temporary addresses here")]
                .into_iter()
                .collect(),
        }));
    }
    for id in &ctx.req.ia_pd {
        ias.push(DhcpOption::IAPD(IAPD {
            id: *id,
            t1: 0,
            t2: 0,
            opts: [status(
                Status::NoPrefixAvail,
                "no prefixes are delegated here",
            )]
            .into_iter()
            .collect(),
        }));
    }
    let rapid = msg == MessageType::Reply && ctx.req.msg_type == MessageType::Solicit;
    let mut out = reply(ctx, msg, ias, None, true);
    if rapid {
        out = with_rapid_commit(ctx, out);
    }
    out.writes = writes;
    out.ip = first;
    out
}

/// Release and Decline: the named addresses the client holds go back
/// (declined ones are quarantined); the Reply says Success.
fn give_back(ctx: &Ctx<'_>, leases: &mut LeaseTable6, state: LeaseState) -> Outcome6 {
    let mut writes = Vec::new();
    for ia in &ctx.req.ia_na {
        let key = client_key(ctx.duid, ia.id);
        for ip in &ia.addrs {
            let Some(l) = leases.get(*ip).filter(|l| l.client == key) else {
                continue;
            };
            let mut l = l.clone();
            l.state = state;
            l.expires = if state == LeaseState::Declined {
                tracing::warn!(%ip, site = %ctx.subnet.site, "IPv6 address declined (in use on the link); quarantined");
                ctx.now + QUARANTINE_SECS
            } else {
                ctx.now
            };
            leases.insert(l.clone());
            writes.push(l);
        }
    }
    let mut out = reply(
        ctx,
        MessageType::Reply,
        Vec::new(),
        Some(status(Status::Success, "")),
        false,
    );
    out.writes = writes;
    out
}

/// Confirm: are the client's addresses on this link?
fn confirm(ctx: &Ctx<'_>) -> Outcome6 {
    let addrs: Vec<Ipv6Addr> = ctx
        .req
        .ia_na
        .iter()
        .flat_map(|ia| ia.addrs.clone())
        .collect();
    if addrs.is_empty() {
        return Outcome6::drop(Dropped6::NothingToConfirm);
    }
    let on_link = addrs.iter().all(|a| ctx.subnet.net.contains(a));
    let st = if on_link {
        status(Status::Success, "")
    } else {
        status(Status::NotOnLink, "not on this link")
    };
    reply(ctx, MessageType::Reply, Vec::new(), Some(st), false)
}

fn ia_addr(ip: Ipv6Addr, preferred: u32, valid: u32) -> DhcpOption {
    DhcpOption::IAAddr(IAAddr {
        addr: ip,
        preferred_life: preferred,
        valid_life: valid,
        opts: Default::default(),
    })
}

fn status(s: Status, msg: &str) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status: s,
        msg: msg.to_string(),
    })
}

/// Build the reply: server and client ids, the IAs, a status, and (with
/// `config`) DNS, domain and the boot options, sent whether asked or not.
fn reply(
    ctx: &Ctx<'_>,
    msg: MessageType,
    ias: Vec<DhcpOption>,
    st: Option<DhcpOption>,
    config: bool,
) -> Outcome6 {
    let mut m = Message::new_with_id(msg, ctx.req.xid);
    let o = m.opts_mut();
    o.insert(DhcpOption::ServerId(ctx.server_duid.to_vec()));
    if !ctx.duid.is_empty() {
        o.insert(DhcpOption::ClientId(ctx.duid.to_vec()));
    }
    for ia in ias {
        o.insert(ia);
    }
    if let Some(st) = st {
        o.insert(st);
    }
    if config {
        let s = ctx.subnet;
        if !s.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServers(s.dns.clone()));
        }
        if let Some(name) = s.domain.as_deref().and_then(|d| d.parse::<Name>().ok()) {
            let mut fqdn = name;
            fqdn.set_fqdn(true);
            o.insert(DhcpOption::DomainSearchList(vec![fqdn]));
        }
        if let Some(b) = ctx.boot {
            for (code, v) in b {
                o.insert(DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::from(*code),
                    v.clone(),
                )));
            }
        }
    }
    Outcome6 {
        reply: encode(ctx.req, &m),
        reply_type: Some(msg),
        ..Outcome6::default()
    }
}

fn with_rapid_commit(ctx: &Ctx<'_>, mut out: Outcome6) -> Outcome6 {
    // Re-decode the client message of our own reply to add option 14:
    // simpler than threading a flag through `reply`.
    if let Some(bytes) = out.reply.take() {
        let inner = innermost(&bytes, ctx.req.relays.len());
        if let Ok(mut m) = Message::decode(&mut Decoder::new(inner)) {
            m.opts_mut().insert(DhcpOption::RapidCommit);
            out.reply = encode(ctx.req, &m);
        }
    }
    out
}

/// The client message inside `depth` levels of our own Relay-reply.
pub fn innermost(bytes: &[u8], depth: usize) -> &[u8] {
    let mut b = bytes;
    for _ in 0..depth {
        // Our Relay-reply: 34 bytes of header, then options; the relay
        // message is the last one (see `encode`).
        let mut at = 34;
        let mut found = None;
        while let Some(h) = b.get(at..at + 4) {
            let code = u16::from_be_bytes([h[0], h[1]]);
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if code == 9 {
                found = b.get(at + 4..at + 4 + len);
            }
            at += 4 + len;
        }
        match found {
            Some(f) => b = f,
            None => return &[],
        }
    }
    b
}

/// Encode the reply, wrapped in one Relay-reply per relay the request came
/// through (innermost first), each echoing that relay's interface-id.
fn encode(req: &Request, m: &Message) -> Option<Vec<u8>> {
    let mut bytes = m.to_vec().ok()?;
    for hop in req.relays.iter().rev() {
        bytes = wrap_relay(
            MessageType::RelayRepl,
            hop.hop_count,
            hop.link,
            hop.peer,
            hop.interface_id.as_deref(),
            bytes,
        )?;
    }
    Some(bytes)
}

/// One relay layer (RFC 8415 §9) around the message `inner`: `kind` is
/// RelayForw (a relay agent's, as the switch simulator sends) or RelayRepl.
pub fn wrap_relay(
    kind: MessageType,
    hop_count: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    interface_id: Option<&[u8]>,
    inner: Vec<u8>,
) -> Option<Vec<u8>> {
    // dhcproto's RelayMessage has no constructor: decode its fixed
    // header (type, hop count, link, peer), then set the options.
    let mut header = Vec::with_capacity(34);
    header.push(u8::from(kind));
    header.push(hop_count);
    header.extend_from_slice(&link.octets());
    header.extend_from_slice(&peer.octets());
    let mut relay = RelayMessage::decode(&mut Decoder::new(&header)).ok()?;
    let o = relay.opts_mut();
    if let Some(id) = interface_id {
        o.insert(DhcpOption::InterfaceId(id.to_vec()));
    }
    // dhcproto types option 9 as a relay message only; a client
    // message inside goes in as the option's raw bytes.
    o.insert(DhcpOption::Unknown(UnknownOption::new(
        OptionCode::RelayMsg,
        inner,
    )));
    relay.to_vec().ok()
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
