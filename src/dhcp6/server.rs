//! The DHCPv6 socket loop around the pure handler: receive, parse, handle,
//! persist lease changes through the group-commit writer, and send the reply
//! only once they are stored (SPEC §11: the same durability as DHCPv4).
//! Keeps ff02::1:2 joined on exactly the interfaces the plans serve.

use std::collections::HashSet;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::Socket;
use tokio_util::sync::CancellationToken;

use super::handler::{self, Arrival6};
use super::leases::{store, Leases6};
use super::packet;
use super::sock::{self, ALL_SERVERS};
use super::stats::Dhcp6Stats;
use super::view::ViewSource6;
use crate::dhcp::sock::Interfaces;
use crate::dhcp::unplanned::Unplanned;

/// As for DHCPv4: replies waiting for their lease write, at most.
const MAX_IN_FLIGHT: usize = 16_384;
/// A reply whose write took longer than this is not sent (clients retransmit).
const REPLY_DEADLINE: Duration = Duration::from_secs(2);
const RECV_BUF: usize = 4096;
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// How often served interfaces are looked at again (addresses come and go).
const MEMBERSHIP_INTERVAL: Duration = Duration::from_secs(2);
/// Relay agents and servers listen on 547 (RFC 8415 §7.2).
const RELAY_PORT: u16 = 547;

#[derive(Clone)]
pub struct Parts6 {
    pub views: Arc<ViewSource6>,
    pub leases: Arc<Leases6>,
    pub stats: Arc<Dhcp6Stats>,
    pub unplanned: Arc<Unplanned>,
    pub server_duid: Arc<Vec<u8>>,
}

struct Loop {
    sock: Arc<Socket>,
    parts: Parts6,
    in_flight: Arc<AtomicUsize>,
    ifaces: Interfaces,
    joined: HashSet<u32>,
    membership_at: Option<Instant>,
    /// Router Advertisements (`advertise = true`): the raw socket, made
    /// when first needed (`Err` logged once: no CAP_NET_RAW), and when the
    /// last round went out.
    ra_socket: Option<Result<Socket, ()>>,
    ra_at: Option<Instant>,
}

/// Requests handled per wake-up at most before their lease writes are
/// committed together (as DHCPv4's `MAX_BATCH`): only what is already
/// queued is taken, never waited for.
const MAX_BATCH: usize = 32;

/// A reply waiting for its lease write.
struct Waiting {
    bytes: Vec<u8>,
    dst: SocketAddrV6,
    started: Instant,
}

/// Lease writes and replies of the requests handled in one wake-up.
#[derive(Default)]
struct Batch {
    writes: Vec<super::leases::Lease6>,
    replies: Vec<Waiting>,
}

/// How often RAs go out (RFC 4861's MinRtrAdvInterval is 3 s): a device
/// that just came up waits at most this long for its on-link prefix.
const RA_INTERVAL: Duration = Duration::from_secs(4);

pub async fn serve(
    socket: Socket,
    parts: Parts6,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    let mut lp = Loop {
        sock: Arc::new(socket),
        parts,
        in_flight: Arc::new(AtomicUsize::new(0)),
        ifaces: Interfaces::new(),
        joined: HashSet::new(),
        membership_at: None,
        ra_socket: None,
        ra_at: None,
    };
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; RECV_BUF];
        let mut batch = Batch::default();
        while !shutdown.is_cancelled() {
            lp.parts.unplanned.flush(false);
            lp.refresh_membership();
            lp.advertise();
            match sock::recv(lp.sock.as_raw_fd(), &mut buf, true) {
                Ok(r) => {
                    let len = r.len.min(buf.len());
                    lp.process(&buf[..len], r, &mut batch);
                    // As for DHCPv4: whatever else is queued already joins
                    // this batch, one commit for all of it.
                    for _ in 1..MAX_BATCH {
                        let Ok(r) = sock::recv(lp.sock.as_raw_fd(), &mut buf, false) else {
                            break;
                        };
                        let len = r.len.min(buf.len());
                        lp.process(&buf[..len], r, &mut batch);
                    }
                    lp.submit(&mut batch);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    tracing::warn!("dhcpv6 receive failed: {e}");
                    std::thread::sleep(SHUTDOWN_POLL);
                }
            }
        }
        if let Some(done) = lp.parts.unplanned.flush(true) {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    })
    .await?;
    Ok(())
}

impl Loop {
    /// Join ff02::1:2 on interfaces with an address in a `[dhcp6]` subnet
    /// (or named by one), leave it on those that no longer have one.
    fn refresh_membership(&mut self) {
        if self
            .membership_at
            .is_some_and(|t| t.elapsed() < MEMBERSHIP_INTERVAL)
        {
            return;
        }
        self.membership_at = Some(Instant::now());
        let view = self.parts.views.current();
        let wanted: HashSet<u32> = self
            .ifaces
            .all()
            .filter(|(_, i)| view.subnet_for_interface(&i.name, &i.addrs6).is_some())
            .map(|(idx, _)| *idx)
            .collect();
        for idx in wanted.difference(&self.joined.clone()) {
            match self.sock.join_multicast_v6(&ALL_SERVERS, *idx) {
                Ok(()) => {
                    tracing::info!(
                        ifindex = idx,
                        "dhcpv6 serving this interface (ff02::1:2 joined)"
                    );
                    self.joined.insert(*idx);
                }
                Err(e) => tracing::warn!(ifindex = idx, "cannot join ff02::1:2: {e}"),
            }
        }
        for idx in self.joined.clone().difference(&wanted) {
            let _ = self.sock.leave_multicast_v6(&ALL_SERVERS, *idx);
            self.joined.remove(idx);
        }
    }

    /// Every [`RA_INTERVAL`], an RA on each served interface whose subnet
    /// has `advertise = true`.
    fn advertise(&mut self) {
        if self.ra_at.is_some_and(|t| t.elapsed() < RA_INTERVAL) {
            return;
        }
        self.ra_at = Some(Instant::now());
        let view = self.parts.views.current();
        let mut out = Vec::new();
        for (idx, i) in self.ifaces.all() {
            if !self.joined.contains(idx) {
                continue;
            }
            let Some(s) = view
                .subnet_for_interface(&i.name, &i.addrs6)
                .and_then(|n| view.subnets.get(n))
                .filter(|s| s.advertise)
            else {
                continue;
            };
            out.push((
                *idx,
                super::ra::advertisement(s.net, s.valid_secs, s.preferred_secs),
            ));
        }
        if out.is_empty() {
            return;
        }
        let sock = self.ra_socket.get_or_insert_with(|| {
            super::ra::socket().map_err(|e| {
                tracing::warn!("cannot send Router Advertisements ({e}): ztpd needs CAP_NET_RAW for [dhcp6] advertise = true");
            })
        });
        let Ok(sock) = sock else { return };
        for (idx, ra) in out {
            if let Err(e) = super::ra::send(sock, idx, &ra) {
                tracing::debug!(ifindex = idx, "router advertisement not sent: {e}");
            }
        }
    }

    fn process(&mut self, data: &[u8], rx: sock::Received6, batch: &mut Batch) {
        let started = Instant::now();
        let stats = &self.parts.stats;
        stats.received.fetch_add(1, Ordering::Relaxed);
        let req = match packet::parse(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(src = %rx.src, "dropping malformed DHCPv6 packet: {e}");
                stats.dropped_in_loop("malformed");
                return;
            }
        };
        if self.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            stats.dropped_in_loop("overload");
            return;
        }
        let view = self.parts.views.current();
        let iface = if req.relays.is_empty() {
            self.ifaces.get(rx.ifindex).cloned()
        } else {
            None
        };
        let arrival = match &iface {
            Some(i) => Arrival6 {
                ifname: &i.name,
                addrs: &i.addrs6,
            },
            None => Arrival6 {
                ifname: "",
                addrs: &[],
            },
        };
        let now = crate::clock::unix_now();
        let mut out = match self.parts.leases.table.lock() {
            Ok(mut t) => {
                handler::handle(&view, &mut t, &req, arrival, &self.parts.server_duid, now)
            }
            Err(_) => {
                tracing::error!("dhcpv6 lease table lock poisoned; dropping request");
                return;
            }
        };
        if let Some(d) = out.dropped {
            stats.dropped(d);
        }
        if let Some(seen) = out.seen.take() {
            let mut key = b"dhcp6:".to_vec();
            key.extend_from_slice(req.client_id.as_deref().unwrap_or_default());
            self.parts.unplanned.record(&key, seen, now);
        }
        if let (Some(dev), Some(t)) = (&out.device, out.reply_type) {
            tracing::debug!(device = %dev, msg = ?t, ip = ?out.ip, "dhcpv6 reply");
        }
        let Some(bytes) = out.reply.take() else {
            return;
        };
        // Relayed: back to the relay that sent it, on 547. Direct: to the
        // client's link-local address on the arrival interface.
        let dst = if req.relays.is_empty() {
            SocketAddrV6::new(*rx.src.ip(), rx.src.port(), 0, rx.ifindex)
        } else {
            let scope = if is_link_local(rx.src.ip()) {
                rx.ifindex
            } else {
                0
            };
            SocketAddrV6::new(*rx.src.ip(), RELAY_PORT, 0, scope)
        };
        let waiting = Waiting {
            bytes,
            dst,
            started,
        };
        if out.writes.is_empty() || self.parts.leases.writer.is_none() {
            // Nothing to store: it leaves now, ahead of the batch.
            return send(&self.sock, stats, &waiting.bytes, waiting.dst);
        }
        batch.writes.append(&mut out.writes);
        batch.replies.push(waiting);
    }

    /// Commit the batch's lease writes once and release its replies after
    /// the commit (at once when commits are cheap, else from the writer).
    fn submit(&mut self, batch: &mut Batch) {
        if batch.replies.is_empty() {
            return;
        }
        let writes = std::mem::take(&mut batch.writes);
        let replies = std::mem::take(&mut batch.replies);
        let stats = &self.parts.stats;
        let Some(writer) = &self.parts.leases.writer else {
            return;
        };
        if writer.commits_are_cheap() {
            let res = writer.write_now(|c| writes.iter().try_for_each(|l| store::put(c, l)));
            return release(&self.sock, stats, res, replies);
        }
        let n = replies.len();
        let sock = self.sock.clone();
        let stats2 = stats.clone();
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(n, Ordering::Relaxed);
        let submitted = writer.submit(
            Box::new(move |tx| writes.iter().try_for_each(|l| store::put(tx, l))),
            Box::new(move |res| {
                in_flight.fetch_sub(n, Ordering::Relaxed);
                release(&sock, &stats2, res, replies);
            }),
        );
        if submitted.is_err() {
            self.in_flight.fetch_sub(n, Ordering::Relaxed);
            (0..n).for_each(|_| stats.dropped_in_loop("overload"));
        }
    }
}

fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// After the commit of a batch's lease writes: its replies leave (those
/// past their deadline are dropped); when the commit failed none does.
fn release(
    sock: &Socket,
    stats: &Dhcp6Stats,
    commit: Result<(), crate::state::WriteError>,
    replies: Vec<Waiting>,
) {
    if let Err(e) = commit {
        tracing::warn!(
            "dhcpv6 leases not stored, {} replies withheld: {e}",
            replies.len()
        );
        replies
            .iter()
            .for_each(|_| stats.dropped_in_loop("write_failed"));
        return;
    }
    for w in replies {
        if w.started.elapsed() > REPLY_DEADLINE {
            stats.dropped_in_loop("overload");
            continue;
        }
        send(sock, stats, &w.bytes, w.dst);
    }
}

fn send(sock: &Socket, stats: &Dhcp6Stats, bytes: &[u8], dst: SocketAddrV6) {
    match sock.send_to(bytes, &SocketAddr::V6(dst).into()) {
        Ok(_) => {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::debug!(%dst, "dhcpv6 send failed: {e}");
            stats.dropped_in_loop("send_failed");
        }
    }
}
