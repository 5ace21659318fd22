//! Tolerant DHCPv4 request parsing and client identity extraction.
//!
//! dhcproto's owned `Message::decode` stops at the first option it cannot
//! decode, losing everything after it. We read the fixed header ourselves and
//! walk the options with `dhcproto::v4::borrowed`, interpreting each option on
//! its own: a malformed option is skipped and the rest of the packet is used.

use std::net::Ipv4Addr;

use dhcproto::v4::borrowed::Message as RawMessage;

use super::identity::identify;
pub use super::identity::ClientInfo;
pub use super::suboptions::{printable, tlvs};

/// Minimum size of a BOOTP message (header + cookie, without options).
pub const BOOTP_HEADER: usize = 240;

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
}

impl MessageType {
    pub fn from_code(c: u8) -> Option<MessageType> {
        Some(match c {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }
    pub fn code(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Discover => "discover",
            MessageType::Offer => "offer",
            MessageType::Request => "request",
            MessageType::Decline => "decline",
            MessageType::Ack => "ack",
            MessageType::Nak => "nak",
            MessageType::Release => "release",
            MessageType::Inform => "inform",
        }
    }
}

/// Why a packet was dropped before the handler saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet is {0} bytes; a BOOTP message needs at least {BOOTP_HEADER}")]
    TooShort(usize),
    #[error("op is {0}; expected 1 (BOOTREQUEST)")]
    NotRequest(u8),
    #[error("magic cookie missing; expected 99.130.83.99")]
    NoCookie,
    #[error("option 53 (message type) missing or invalid")]
    NoMessageType,
}

/// A parsed DHCP request: everything the handler needs, owned.
#[derive(Debug, Clone)]
pub struct Request {
    pub msg_type: MessageType,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// The 16-byte chaddr field as sent.
    pub chaddr: [u8; 16],
    /// Option 61, raw.
    pub client_id: Option<Vec<u8>>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55.
    pub params: Vec<u8>,
    /// Option 57, at least 576 when present.
    pub max_size: Option<u16>,
    /// Option 82, raw, echoed in replies.
    pub relay_agent: Option<Vec<u8>>,
    /// Option 82 sub-option 5 (link selection) or option 118 (subnet selection).
    pub link_selection: Option<Ipv4Addr>,
    pub info: ClientInfo,
    /// Options that could not be interpreted (code), for counters and logs.
    pub skipped_options: Vec<u8>,
}

impl Request {
    /// The MAC address from chaddr, when the hardware type is Ethernet.
    pub fn mac(&self) -> Option<[u8; 6]> {
        if self.htype == 1 && self.hlen == 6 {
            let mut m = [0u8; 6];
            m.copy_from_slice(&self.chaddr[..6]);
            Some(m)
        } else {
            None
        }
    }

    /// The key a lease is bound to: option 61 when present, else htype + chaddr
    /// (RFC 2131 §4.2).
    pub fn client_key(&self) -> Vec<u8> {
        match &self.client_id {
            Some(id) if !id.is_empty() => {
                let mut k = Vec::with_capacity(id.len() + 1);
                k.push(b'i');
                k.extend_from_slice(id);
                k
            }
            _ => {
                let n = usize::from(self.hlen.min(16));
                let mut k = Vec::with_capacity(n + 2);
                k.push(b'h');
                k.push(self.htype);
                k.extend_from_slice(&self.chaddr[..n]);
                k
            }
        }
    }

    pub fn broadcast_flag(&self) -> bool {
        self.flags & 0x8000 != 0
    }
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn ip_of(data: &[u8]) -> Option<Ipv4Addr> {
    (data.len() == 4).then(|| ip_at(data, 0))
}

/// Parse a request. Malformed options are skipped; only a broken header or a
/// missing message type is an error.
pub fn parse(buf: &[u8]) -> Result<Request, ParseError> {
    if buf.len() < BOOTP_HEADER {
        return Err(ParseError::TooShort(buf.len()));
    }
    if buf[0] != 1 {
        return Err(ParseError::NotRequest(buf[0]));
    }
    if buf[236..240] != [99, 130, 83, 99] {
        return Err(ParseError::NoCookie);
    }
    let raw = RawMessage::new(buf).map_err(|_| ParseError::TooShort(buf.len()))?;
    let mut chaddr = [0u8; 16];
    chaddr.copy_from_slice(&buf[28..44]);
    let mut req = Request {
        msg_type: MessageType::Discover,
        htype: buf[1],
        hlen: buf[2],
        hops: buf[3],
        xid: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        secs: u16::from_be_bytes([buf[8], buf[9]]),
        flags: u16::from_be_bytes([buf[10], buf[11]]),
        ciaddr: ip_at(buf, 12),
        giaddr: ip_at(buf, 24),
        chaddr,
        client_id: None,
        requested_ip: None,
        server_id: None,
        params: Vec::new(),
        max_size: None,
        relay_agent: None,
        link_selection: None,
        info: ClientInfo::default(),
        skipped_options: Vec::new(),
    };
    let mut msg_type = None;
    let mut vendor_class: Option<Vec<u8>> = None;
    let mut user_class: Option<Vec<u8>> = None;
    let mut vi_class: Option<Vec<u8>> = None;
    let mut vi_opts: Option<Vec<u8>> = None;
    let mut subnet_selection = None;
    for opt in raw.opts() {
        let code = u8::from(opt.code());
        let data = opt.data();
        let ok = match code {
            53 => match data {
                [c] => {
                    msg_type = MessageType::from_code(*c);
                    msg_type.is_some()
                }
                _ => false,
            },
            50 => ip_of(data).map(|ip| req.requested_ip = Some(ip)).is_some(),
            54 => ip_of(data).map(|ip| req.server_id = Some(ip)).is_some(),
            55 => {
                req.params = data.to_vec();
                true
            }
            57 => match data {
                [a, b] => {
                    req.max_size = Some(u16::from_be_bytes([*a, *b]));
                    true
                }
                _ => false,
            },
            61 => {
                req.client_id = Some(data.to_vec());
                !data.is_empty()
            }
            12 => match printable(data) {
                Some(h) => {
                    req.info.hostname = Some(h);
                    true
                }
                None => false,
            },
            60 => {
                vendor_class = Some(data.to_vec());
                true
            }
            77 => {
                user_class = Some(data.to_vec());
                true
            }
            124 => {
                vi_class = Some(data.to_vec());
                true
            }
            125 => {
                vi_opts = Some(data.to_vec());
                true
            }
            82 => {
                req.relay_agent = Some(data.to_vec());
                req.link_selection = relay_link_selection(data);
                true
            }
            118 => ip_of(data).map(|ip| subnet_selection = Some(ip)).is_some(),
            _ => true,
        };
        if !ok {
            req.skipped_options.push(code);
        }
    }
    req.msg_type = msg_type.ok_or(ParseError::NoMessageType)?;
    if req.link_selection.is_none() {
        req.link_selection = subnet_selection;
    }
    req.info = identify(
        req.info.hostname.take(),
        req.client_id.as_deref(),
        vendor_class.as_deref(),
        user_class.as_deref(),
        vi_class.as_deref(),
        vi_opts.as_deref(),
    );
    Ok(req)
}

/// Option 82 sub-option 5 (RFC 3527 link selection).
fn relay_link_selection(data: &[u8]) -> Option<Ipv4Addr> {
    tlvs(data)
        .find(|(c, _)| *c == 5)
        .and_then(|(_, v)| ip_of(v))
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
