//! DHCPv6 parsing (RFC 8415 §8, §9): the relay chain and the client message
//! inside it. The structure is checked first, so that every option handed
//! to dhcproto afterwards decodes without surprises (dhcproto subtracts
//! fixed sizes from option lengths and stops silently at the first option it
//! cannot decode); a packet that fails the check is malformed and dropped.

use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, MessageType};
use dhcproto::{Decodable, Decoder};

use crate::dhcp::identity::{identify, ClientInfo};
use crate::dhcp::suboptions::printable;

/// Relay-forward messages nested deeper than this are dropped. RFC 8415's
/// HOP_COUNT_LIMIT is 8 relays; the slack admits odd deployments while a
/// crafted 40-deep nest costs nothing.
pub const MAX_RELAYS: usize = 16;
/// Options nested inside options (IA_NA > IAADDR > STATUS_CODE is 3).
const MAX_OPTION_DEPTH: usize = 6;

/// Why a datagram is not a DHCPv6 message we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("shorter than a DHCPv6 header")]
    Short,
    #[error("option {0} runs past the end of its message")]
    Truncated(u16),
    #[error("option {0} has a wrong length")]
    WrongLength(u16),
    #[error("relay messages nested deeper than {MAX_RELAYS}")]
    TooDeep,
    #[error("options nested too deep")]
    OptionsTooDeep,
    #[error("relay-forward without a relay message")]
    NoRelayMessage,
}

/// One relay agent the request passed through, outermost (nearest to us) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayHop {
    pub hop_count: u8,
    pub link: Ipv6Addr,
    pub peer: Ipv6Addr,
    /// Option 18, echoed in the RELAY-REPL (RFC 8415 §21.18).
    pub interface_id: Option<Vec<u8>>,
    /// Option 79 (RFC 6939): link-layer type and address of the client.
    pub client_link_layer: Option<(u16, Vec<u8>)>,
}

/// An IA_NA of the request, with the addresses the client named in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaNa {
    pub id: u32,
    pub addrs: Vec<Ipv6Addr>,
}

/// A client message as the handler needs it.
#[derive(Debug, Clone)]
pub struct Request {
    pub msg_type: MessageType,
    pub xid: [u8; 3],
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub ia_na: Vec<IaNa>,
    pub ia_ta: Vec<u32>,
    pub ia_pd: Vec<u32>,
    pub oro: Vec<u16>,
    pub rapid_commit: bool,
    /// What options 15/16/17 say about the device.
    pub info: ClientInfo,
    /// Relays, outermost first; empty when the client is on our link.
    pub relays: Vec<RelayHop>,
}

impl Request {
    /// The MAC of the client: option 79 of the relay next to it, else the
    /// link-layer address of a DUID-LLT / DUID-LL of Ethernet type.
    pub fn mac(&self) -> Option<[u8; 6]> {
        self.relays
            .last()
            .and_then(|r| r.client_link_layer.as_ref())
            .and_then(|(t, a)| ethernet(*t, a))
            .or_else(|| self.client_id.as_deref().and_then(duid_mac))
    }

    /// The innermost relay's link-address: it names the client's link.
    pub fn link_address(&self) -> Option<Ipv6Addr> {
        self.relays
            .iter()
            .rev()
            .map(|r| r.link)
            .find(|l| !l.is_unspecified())
    }
}

fn ethernet(htype: u16, addr: &[u8]) -> Option<[u8; 6]> {
    (htype == 1)
        .then(|| <[u8; 6]>::try_from(addr).ok())
        .flatten()
}

/// The Ethernet address inside a DUID-LLT (type 1) or DUID-LL (type 3).
pub fn duid_mac(duid: &[u8]) -> Option<[u8; 6]> {
    let kind = u16::from_be_bytes([*duid.first()?, *duid.get(1)?]);
    let htype = u16::from_be_bytes([*duid.get(2)?, *duid.get(3)?]);
    match kind {
        1 => ethernet(htype, duid.get(8..)?),
        3 => ethernet(htype, duid.get(4..)?),
        _ => None,
    }
}

/// Parse one datagram.
pub fn parse(data: &[u8]) -> Result<Request, Malformed> {
    let mut relays = Vec::new();
    let mut msg = data;
    while matches!(msg.first(), Some(12)) {
        if relays.len() >= MAX_RELAYS {
            return Err(Malformed::TooDeep);
        }
        let (hop, inner) = relay_hop(msg)?;
        relays.push(hop);
        msg = inner;
    }
    if msg.len() < 4 {
        return Err(Malformed::Short);
    }
    let options = tlvs(&msg[4..])?;
    for (code, body) in &options {
        check(*code, body, 0)?;
    }
    let mut req = Request {
        msg_type: MessageType::from(msg[0]),
        xid: [msg[1], msg[2], msg[3]],
        client_id: None,
        server_id: None,
        ia_na: Vec::new(),
        ia_ta: Vec::new(),
        ia_pd: Vec::new(),
        oro: Vec::new(),
        rapid_commit: false,
        info: ClientInfo::default(),
        relays,
    };
    let mut vendor_texts: Vec<Vec<u8>> = Vec::new();
    let mut user_class: Option<Vec<u8>> = None;
    for (code, body) in options {
        match code {
            1 => req.client_id = Some(body.to_vec()),
            2 => req.server_id = Some(body.to_vec()),
            17 => {
                // Vendor sub-options are the vendor's codes: read them as
                // TLVs rather than as DHCPv6 options (dhcproto would).
                if let Ok(subs) = tlvs(&body[4..]) {
                    vendor_texts.extend(subs.into_iter().map(|(_, v)| v.to_vec()));
                }
            }
            3 | 4 | 6 | 14 | 15 | 16 | 25 => match decode(code, body) {
                Some(DhcpOption::IANA(ia)) => req.ia_na.push(IaNa {
                    id: ia.id,
                    addrs: ia
                        .opts
                        .iter()
                        .filter_map(|o| match o {
                            DhcpOption::IAAddr(a) => Some(a.addr),
                            _ => None,
                        })
                        .collect(),
                }),
                Some(DhcpOption::IATA(ia)) => req.ia_ta.push(ia.id),
                Some(DhcpOption::IAPD(ia)) => req.ia_pd.push(ia.id),
                Some(DhcpOption::ORO(o)) => {
                    req.oro = o.opts.iter().map(|c| u16::from(*c)).collect()
                }
                Some(DhcpOption::RapidCommit) => req.rapid_commit = true,
                Some(DhcpOption::UserClass(u)) => user_class = u.data.into_iter().next(),
                Some(DhcpOption::VendorClass(v)) => vendor_texts.extend(v.data),
                _ => {}
            },
            _ => {}
        }
    }
    req.info = identity(&vendor_texts, user_class.as_deref());
    Ok(req)
}

/// Vendor, model and serial from the texts of options 16 and 17, in the
/// DHCPv4 vendor-class formats of SPEC §4 (`Arista;model;rev;serial`,
/// `Juniper-model-serial`, SONiC's `vendor:product`...).
fn identity(texts: &[Vec<u8>], user_class: Option<&[u8]>) -> ClientInfo {
    let mut info = identify(None, None, None, user_class, None, None);
    for t in texts {
        if printable(t).is_none() {
            continue;
        }
        let one = identify(None, None, Some(t), user_class, None, None);
        info.serial = info.serial.or(one.serial);
        info.model = info.model.or(one.model);
        info.vendor = info.vendor.or(one.vendor);
        info.vendor_class = info.vendor_class.or(one.vendor_class);
    }
    info
}

/// One option, decoded by dhcproto from its own bytes (header included).
fn decode(code: u16, body: &[u8]) -> Option<DhcpOption> {
    let mut whole = Vec::with_capacity(body.len() + 4);
    whole.extend_from_slice(&code.to_be_bytes());
    whole.extend_from_slice(&(body.len() as u16).to_be_bytes());
    whole.extend_from_slice(body);
    DhcpOption::decode(&mut Decoder::new(&whole)).ok()
}

/// A RELAY-FORW header and its options; returns the relayed message.
fn relay_hop(msg: &[u8]) -> Result<(RelayHop, &[u8]), Malformed> {
    if msg.len() < 34 {
        return Err(Malformed::Short);
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&msg[at..at + 16]);
        Ipv6Addr::from(a)
    };
    let mut hop = RelayHop {
        hop_count: msg[1],
        link: addr(2),
        peer: addr(18),
        interface_id: None,
        client_link_layer: None,
    };
    let mut inner = None;
    for (code, body) in tlvs(&msg[34..])? {
        match code {
            9 => inner = Some(body),
            18 => hop.interface_id = Some(body.to_vec()),
            79 if body.len() > 2 => {
                hop.client_link_layer =
                    Some((u16::from_be_bytes([body[0], body[1]]), body[2..].to_vec()))
            }
            79 => return Err(Malformed::WrongLength(79)),
            _ => {}
        }
    }
    Ok((hop, inner.ok_or(Malformed::NoRelayMessage)?))
}

/// Split `data` into options; every one must fit.
fn tlvs(data: &[u8]) -> Result<Vec<(u16, &[u8])>, Malformed> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let Some(h) = data.get(at..at + 4) else {
            return Err(Malformed::Truncated(0));
        };
        let code = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let body = data
            .get(at + 4..at + 4 + len)
            .ok_or(Malformed::Truncated(code))?;
        out.push((code, body));
        at += 4 + len;
    }
    Ok(out)
}

/// The lengths RFC 8415 gives, and the same for every option nested inside
/// (IA_NA, IA_TA, IA_PD, IAADDR, IAPREFIX, vendor options, relay messages).
fn check(code: u16, body: &[u8], depth: usize) -> Result<(), Malformed> {
    if depth > MAX_OPTION_DEPTH {
        return Err(Malformed::OptionsTooDeep);
    }
    let wrong = || Err(Malformed::WrongLength(code));
    let exact = match code {
        7 | 19 => Some(1),
        8 => Some(2),
        12 => Some(16),
        14 | 20 => Some(0),
        _ => None,
    };
    if exact.is_some_and(|n| body.len() != n) {
        return wrong();
    }
    let min = match code {
        1 | 2 => 3,
        13 => 2,
        4 | 16 | 17 => 4,
        11 => 11,
        3 | 25 => 12,
        5 => 24,
        26 => 25,
        9 => 4,
        _ => 0,
    };
    if body.len() < min || (code == 1 || code == 2) && body.len() > 130 {
        return wrong();
    }
    if (code == 23 && body.len() % 16 != 0) || (code == 6 && body.len() % 2 != 0) {
        return wrong();
    }
    let header = match code {
        3 | 25 => 12,
        4 | 17 => 4,
        5 => 24,
        26 => 25,
        9 if matches!(body[0], 12 | 13) => 34,
        9 => 4,
        _ => return Ok(()),
    };
    let inner = body.get(header..).ok_or(Malformed::WrongLength(code))?;
    for (c, b) in tlvs(inner)? {
        check(c, b, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
