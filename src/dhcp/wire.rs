//! Encoding: replies and (for tests, fuzz seeds and benches) requests.
//!
//! We write the BOOTP header and option TLVs directly: it is short, it lets us
//! send lists (option 150) and raw sub-option blocks (43, 125) as they are, and
//! pad to the 300-byte BOOTP minimum, which dhcproto's encoder does not do.

use std::net::Ipv4Addr;

use super::packet::MessageType;

/// BOOTP minimum message size (RFC 951/1542): some boot ROMs drop shorter replies.
pub const BOOTP_MIN: usize = 300;

/// Append one option; values over 255 bytes are split into consecutive
/// instances of the same code (RFC 3396), which receivers concatenate.
pub fn put_option(buf: &mut Vec<u8>, code: u8, data: &[u8]) {
    if data.is_empty() {
        buf.extend_from_slice(&[code, 0]);
        return;
    }
    for chunk in data.chunks(255) {
        buf.push(code);
        buf.push(chunk.len() as u8);
        buf.extend_from_slice(chunk);
    }
}

/// The fixed part of a BOOTP message, `op` = 1 request / 2 reply.
#[derive(Debug, Clone)]
pub struct Header {
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    pub sname: Vec<u8>,
    pub file: Vec<u8>,
}

impl Header {
    /// Write header + magic cookie (240 bytes).
    pub fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&[self.op, self.htype, self.hlen, self.hops]);
        buf.extend_from_slice(&self.xid.to_be_bytes());
        buf.extend_from_slice(&self.secs.to_be_bytes());
        buf.extend_from_slice(&self.flags.to_be_bytes());
        for ip in [self.ciaddr, self.yiaddr, self.siaddr, self.giaddr] {
            buf.extend_from_slice(&ip.octets());
        }
        buf.extend_from_slice(&self.chaddr);
        let mut sname = [0u8; 64];
        let n = self.sname.len().min(63);
        sname[..n].copy_from_slice(&self.sname[..n]);
        buf.extend_from_slice(&sname);
        let mut file = [0u8; 128];
        let n = self.file.len().min(127);
        file[..n].copy_from_slice(&self.file[..n]);
        buf.extend_from_slice(&file);
        buf.extend_from_slice(&[99, 130, 83, 99]);
    }
}

/// End the options and pad to the BOOTP minimum.
pub fn finish(buf: &mut Vec<u8>) {
    buf.push(255);
    if buf.len() < BOOTP_MIN {
        buf.resize(BOOTP_MIN, 0);
    }
}

/// A client request, for unit tests, fuzz seeds and load tools.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    pub header: Header,
    pub options: Vec<(u8, Vec<u8>)>,
}

impl RequestBuilder {
    pub fn new(msg_type: MessageType, mac: [u8; 6], xid: u32) -> Self {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&mac);
        RequestBuilder {
            header: Header {
                op: 1,
                htype: 1,
                hlen: 6,
                hops: 0,
                xid,
                secs: 0,
                flags: 0,
                ciaddr: Ipv4Addr::UNSPECIFIED,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                siaddr: Ipv4Addr::UNSPECIFIED,
                giaddr: Ipv4Addr::UNSPECIFIED,
                chaddr,
                sname: Vec::new(),
                file: Vec::new(),
            },
            options: vec![(53, vec![msg_type.code()])],
        }
    }
    pub fn option(mut self, code: u8, data: impl Into<Vec<u8>>) -> Self {
        self.options.push((code, data.into()));
        self
    }
    pub fn requested(self, ip: Ipv4Addr) -> Self {
        self.option(50, ip.octets().to_vec())
    }
    pub fn server_id(self, ip: Ipv4Addr) -> Self {
        self.option(54, ip.octets().to_vec())
    }
    pub fn ciaddr(mut self, ip: Ipv4Addr) -> Self {
        self.header.ciaddr = ip;
        self
    }
    pub fn giaddr(mut self, ip: Ipv4Addr) -> Self {
        self.header.giaddr = ip;
        self.header.hops = 1;
        self
    }
    pub fn broadcast(mut self) -> Self {
        self.header.flags |= 0x8000;
        self
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(BOOTP_MIN);
        self.header.write(&mut buf);
        for (code, data) in &self.options {
            put_option(&mut buf, *code, data);
        }
        finish(&mut buf);
        buf
    }
}

/// A decoded reply, for tests: header fields and options by code
/// (split instances concatenated).
#[derive(Debug, Clone)]
pub struct DecodedReply {
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub sname: String,
    pub file: String,
    pub flags: u16,
    pub options: std::collections::BTreeMap<u8, Vec<u8>>,
    pub len: usize,
}

impl DecodedReply {
    pub fn decode(b: &[u8]) -> Option<DecodedReply> {
        if b.len() < 240 || b[236..240] != [99, 130, 83, 99] {
            return None;
        }
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        let cstr = |s: &[u8]| {
            let end = s.iter().position(|c| *c == 0).unwrap_or(s.len());
            String::from_utf8_lossy(&s[..end]).into_owned()
        };
        let mut options = std::collections::BTreeMap::<u8, Vec<u8>>::new();
        let mut at = 240;
        while let Some(&code) = b.get(at) {
            match code {
                0 => at += 1,
                255 => break,
                _ => {
                    let len = usize::from(*b.get(at + 1)?);
                    let v = b.get(at + 2..at + 2 + len)?;
                    options.entry(code).or_default().extend_from_slice(v);
                    at += 2 + len;
                }
            }
        }
        Some(DecodedReply {
            yiaddr: ip(16),
            siaddr: ip(20),
            giaddr: ip(24),
            sname: cstr(&b[44..108]),
            file: cstr(&b[108..236]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            options,
            len: b.len(),
        })
    }
    pub fn msg_type(&self) -> Option<MessageType> {
        self.options
            .get(&53)
            .and_then(|v| v.first())
            .and_then(|c| MessageType::from_code(*c))
    }
    pub fn text(&self, code: u8) -> Option<String> {
        self.options
            .get(&code)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
    pub fn u32(&self, code: u8) -> Option<u32> {
        let v = self.options.get(&code)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }
    pub fn ips(&self, code: u8) -> Vec<Ipv4Addr> {
        self.options.get(&code).map_or_else(Vec::new, |v| {
            v.chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect()
        })
    }
}
