//! The switch simulator's DHCPv6 client, speaking as a relay agent: each
//! SOLICIT and REQUEST goes to ztpd inside a RELAY-FORW whose link-address
//! is in the plan's `[dhcp6]` subnet (so ztpd picks that subnet), and ztpd
//! answers with a RELAY-REPL to the relay's port 547; a whole fleet shares
//! one socket. Binding port 547 needs root or CAP_NET_BIND_SERVICE.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use dhcproto::v6::{DhcpOption, IAAddr, Message, MessageType, OptionCode, IANA};
use dhcproto::{Decodable, Decoder, Encodable};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::sim_dhcp::{retry_exchange, route_replies, Waiters, TRIES};
use crate::dhcp6::handler::{innermost, wrap_relay};

/// Relay agents listen on 547 (RFC 8415 §7.2): ztpd replies there.
const RELAY_PORT: u16 = 547;

pub struct Relay6Client {
    sock: Arc<UdpSocket>,
    server: SocketAddr,
    /// The link-address of every RELAY-FORW: the plan subnet's network.
    link: Ipv6Addr,
    next_xid: AtomicU32,
    pending: Arc<Waiters<[u8; 3], Message>>,
}

/// A DUID-LL (RFC 8415 §11.4) of an Ethernet MAC: what ztpd reads a MAC from.
pub fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&mac);
    d
}

impl Relay6Client {
    /// Bind `[local]:547` and start routing replies to waiting switches by
    /// transaction id.
    pub async fn bind(
        local: Ipv6Addr,
        server: SocketAddr,
        link: Ipv6Addr,
    ) -> anyhow::Result<Arc<Self>> {
        let sock = UdpSocket::bind((local, RELAY_PORT))
            .await
            .with_context(|| {
                format!(
                    "cannot bind the simulated DHCPv6 relay on [{local}]:{RELAY_PORT} (needs root)"
                )
            })?;
        let c = Arc::new(Relay6Client {
            sock: Arc::new(sock),
            server,
            link,
            next_xid: AtomicU32::new(std::process::id().wrapping_mul(7919)),
            pending: Arc::default(),
        });
        route_replies(c.sock.clone(), Arc::downgrade(&c.pending), |b| {
            let msg = Message::decode(&mut Decoder::new(innermost(b, 1))).ok()?;
            Some((msg.xid(), msg))
        });
        Ok(c)
    }

    /// A client message for `duid`'s IA_NA `iaid`, relayed.
    fn request(
        &self,
        xid: [u8; 3],
        kind: MessageType,
        duid: &[u8],
        iaid: u32,
        server: Option<(&[u8], Ipv6Addr)>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut m = Message::new_with_id(kind, xid);
        let mut ia = IANA {
            id: iaid,
            t1: 0,
            t2: 0,
            opts: Default::default(),
        };
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientId(duid.to_vec()));
        if let Some((id, addr)) = server {
            o.insert(DhcpOption::ServerId(id.to_vec()));
            ia.opts.insert(DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: 0,
                valid_life: 0,
                opts: Default::default(),
            }));
        }
        o.insert(DhcpOption::IANA(ia));
        let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, (iaid & 0xffff) as u16);
        wrap_relay(
            MessageType::RelayForw,
            0,
            self.link,
            peer,
            None,
            m.to_vec()?,
        )
        .ok_or_else(|| anyhow!("cannot encode a RELAY-FORW"))
    }

    async fn exchange(
        &self,
        rx: &mut mpsc::Receiver<Message>,
        bytes: &[u8],
        want: MessageType,
    ) -> anyhow::Result<Message> {
        let got = retry_exchange(&self.sock, self.server, rx, bytes, |m| {
            (m.msg_type() == want).then_some(Ok(()))
        })
        .await?;
        got.ok_or_else(|| {
            anyhow!(
                "no DHCPv6 {want:?} from {} after {TRIES} tries",
                self.server
            )
        })
    }

    /// SOLICIT, ADVERTISE, REQUEST, REPLY for `duid`; the address leased.
    pub async fn lease(&self, duid: &[u8], iaid: u32) -> anyhow::Result<Ipv6Addr> {
        let n = self.next_xid.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let xid = [n[1], n[2], n[3]];
        let (tx, mut rx) = mpsc::channel(4);
        self.pending
            .lock()
            .map_err(|_| anyhow!("relay state poisoned"))?
            .insert(xid, tx);
        let r = async {
            let s = self.request(xid, MessageType::Solicit, duid, iaid, None)?;
            let adv = self.exchange(&mut rx, &s, MessageType::Advertise).await?;
            let ip = address(&adv).context("ADVERTISE without an address")?;
            let Some(DhcpOption::ServerId(id)) = adv.opts().get(OptionCode::ServerId) else {
                bail!("ADVERTISE without a server identifier");
            };
            let req = self.request(xid, MessageType::Request, duid, iaid, Some((id, ip)))?;
            let reply = self.exchange(&mut rx, &req, MessageType::Reply).await?;
            address(&reply).context("REPLY without an address")
        }
        .await;
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&xid);
        }
        r
    }
}

/// The first IA_NA address of a server message.
fn address(m: &Message) -> Option<Ipv6Addr> {
    match m.opts().get(OptionCode::IANA) {
        Some(DhcpOption::IANA(ia)) => ia.opts.iter().find_map(|o| match o {
            DhcpOption::IAAddr(a) => Some(a.addr),
            _ => None,
        }),
        _ => None,
    }
}
