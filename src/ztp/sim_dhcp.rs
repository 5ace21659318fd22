//! The switch simulator's DHCP client, speaking as a relay agent: requests
//! carry `giaddr` and option 118 (the plan subnet), so ztpd answers by
//! unicast to `giaddr:67` and a whole fleet shares one socket on loopback.
//! Binding port 67 needs root or CAP_NET_BIND_SERVICE.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::{anyhow, Context};
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub(super) const TRIES: u32 = 4;
const WAIT: Duration = Duration::from_secs(2);

pub struct RelayClient {
    sock: Arc<UdpSocket>,
    server: SocketAddr,
    giaddr: Ipv4Addr,
    link: Ipv4Addr,
    next_xid: AtomicU32,
    pending: Arc<Waiters<u32, Message>>,
}

/// Switches waiting for a reply, by transaction id.
pub type Waiters<K, M> = Mutex<HashMap<K, mpsc::Sender<M>>>;

/// Hand each datagram arriving on `sock` to the switch waiting for it
/// (`decode` gives its transaction id and message), until the relay and
/// its waiters are gone.
pub fn route_replies<K, M>(
    sock: Arc<UdpSocket>,
    waiters: Weak<Waiters<K, M>>,
    decode: fn(&[u8]) -> Option<(K, M)>,
) where
    K: Eq + Hash + Send + 'static,
    M: Send + 'static,
{
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, _)) = sock.recv_from(&mut buf).await {
            let Some(w) = waiters.upgrade() else { return };
            let Some((key, msg)) = decode(&buf[..n]) else {
                continue;
            };
            let tx = w.lock().ok().and_then(|p| p.get(&key).cloned());
            if let Some(tx) = tx {
                let _ = tx.try_send(msg);
            }
        }
    });
}

impl RelayClient {
    /// Bind `giaddr:67` and start routing replies to waiting switches by xid.
    pub async fn bind(
        giaddr: Ipv4Addr,
        server: SocketAddr,
        link: Ipv4Addr,
    ) -> anyhow::Result<Arc<Self>> {
        let sock = UdpSocket::bind((giaddr, 67)).await.with_context(|| {
            format!("cannot bind the simulated relay on {giaddr}:67 (needs root)")
        })?;
        let c = Arc::new(RelayClient {
            sock: Arc::new(sock),
            server,
            giaddr,
            link,
            next_xid: AtomicU32::new(std::process::id().wrapping_mul(7919)),
            pending: Arc::default(),
        });
        route_replies(c.sock.clone(), Arc::downgrade(&c.pending), |b| {
            let msg = Message::from_bytes(b).ok()?;
            Some((msg.xid(), msg))
        });
        Ok(c)
    }

    fn request(
        &self,
        xid: u32,
        mac: &[u8; 6],
        kind: MessageType,
        extra: &[DhcpOption],
    ) -> anyhow::Result<Vec<u8>> {
        let mut m = Message::new_with_id(
            xid,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            self.giaddr,
            mac,
        );
        m.set_opcode(Opcode::BootRequest).set_hops(1);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut().insert(DhcpOption::SubnetSelection(self.link));
        for o in extra {
            m.opts_mut().insert(o.clone());
        }
        Ok(m.to_vec()?)
    }

    async fn exchange(
        &self,
        rx: &mut mpsc::Receiver<Message>,
        bytes: &[u8],
        want: MessageType,
    ) -> anyhow::Result<Message> {
        let got = retry_exchange(&self.sock, self.server, rx, bytes, |m| {
            match m.opts().msg_type() {
                Some(t) if t == want => Some(Ok(())),
                Some(MessageType::Nak) => Some(Err(anyhow!("DHCP NAK"))),
                _ => None,
            }
        })
        .await?;
        got.ok_or_else(|| anyhow!("no DHCP {want:?} from {} after {TRIES} tries", self.server))
    }

    /// DISCOVER, OFFER, REQUEST, ACK for `mac`; the address leased.
    pub async fn lease(&self, mac: [u8; 6]) -> anyhow::Result<Ipv4Addr> {
        let xid = self.next_xid.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel(4);
        self.pending
            .lock()
            .map_err(|_| anyhow!("relay state poisoned"))?
            .insert(xid, tx);
        let r = async {
            let d = self.request(xid, &mac, MessageType::Discover, &[])?;
            let offer = self.exchange(&mut rx, &d, MessageType::Offer).await?;
            let ip = offer.yiaddr();
            let mut extra = vec![DhcpOption::RequestedIpAddress(ip)];
            if let Some(DhcpOption::ServerIdentifier(s)) =
                offer.opts().get(OptionCode::ServerIdentifier)
            {
                extra.push(DhcpOption::ServerIdentifier(*s));
            }
            let req = self.request(xid, &mac, MessageType::Request, &extra)?;
            let ack = self.exchange(&mut rx, &req, MessageType::Ack).await?;
            Ok(ack.yiaddr())
        }
        .await;
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&xid);
        }
        r
    }
}

/// Send `bytes` to `server` up to [`TRIES`] times, waiting [`WAIT`] each time
/// for a reply that `pick` takes (`Some(Ok)`), fails on (`Some(Err)`) or
/// skips (`None`). `None` when nothing was taken: the caller names what it
/// waited for. Both simulated relays (DHCPv4 and DHCPv6) retry this way.
pub(super) async fn retry_exchange<M>(
    sock: &UdpSocket,
    server: SocketAddr,
    rx: &mut mpsc::Receiver<M>,
    bytes: &[u8],
    mut pick: impl FnMut(&M) -> Option<anyhow::Result<()>>,
) -> anyhow::Result<Option<M>> {
    for _ in 0..TRIES {
        sock.send_to(bytes, server).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            if let Some(taken) = pick(&m) {
                return taken.map(|()| Some(m));
            }
        }
    }
    Ok(None)
}
