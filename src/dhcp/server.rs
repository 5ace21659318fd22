//! The socket loop around the pure handler: receive, parse, handle, persist
//! the lease changes through the group-commit writer, and send the reply only
//! after they are stored (SPEC §4, `state.durability`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::handler::{self, Arrival, Dest, Dropped, Outcome};
use super::leases::{store, Lease, Leases};
use super::packet;
use super::sock::{self, Interfaces};
use super::stats::{DhcpStats, DropReason};
use super::unplanned::Unplanned;
use super::view::{DhcpView, ViewSource};

/// Requests whose lease write is still pending, at most. Beyond this new
/// requests are dropped (clients retransmit) instead of queueing without bound.
pub const MAX_IN_FLIGHT: usize = 16_384;
/// A reply whose write took longer than this is not sent: the client has
/// retransmitted by now, and a late ACK could contradict a newer decision.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(2);
/// Largest datagram read; DHCP messages are at most a few KB.
const RECV_BUF: usize = 4096;

struct Loop {
    sock: Arc<UdpSocket>,
    views: Arc<ViewSource>,
    leases: Arc<Leases>,
    stats: Arc<DhcpStats>,
    unplanned: Arc<Unplanned>,
    in_flight: Arc<AtomicUsize>,
    ifaces: Interfaces,
}

/// Requests handled per wake-up of the receive thread at most before their
/// lease writes go to the writer as one job. Only what is already queued is
/// taken (never waited for), so a batch adds no latency below saturation
/// beyond handling the packets ahead in the queue (~5 us each).
const MAX_BATCH: usize = 32;

/// A reply waiting for its lease write.
struct Waiting {
    msg_type: packet::MessageType,
    bytes: Vec<u8>,
    dst: SocketAddrV4,
    ifindex: Option<u32>,
    started: Instant,
}

/// Lease writes and replies of the requests handled in one wake-up.
#[derive(Default)]
struct Batch {
    writes: Vec<Lease>,
    replies: Vec<Waiting>,
    requests: usize,
}

/// How often the blocking receive loop looks at the shutdown token.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);

/// What the socket loop serves with; shared by every start of the loop.
#[derive(Clone)]
pub struct Parts {
    pub views: Arc<ViewSource>,
    pub leases: Arc<Leases>,
    pub stats: Arc<DhcpStats>,
    pub unplanned: Arc<Unplanned>,
}

/// How long the register's last write may take at shutdown.
const FINAL_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Serve DHCP on `socket` (from [`sock::bind`]) until `shutdown`.
///
/// The receive loop is one dedicated thread doing blocking `recvmsg`: per
/// packet that is one system call and no reactor or task wake-ups, which is
/// most of the CPU a DORA costs. Replies that wait for a lease write are sent
/// by the state writer thread right after the commit.
pub async fn serve(
    socket: std::net::UdpSocket,
    parts: Parts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    let mut lp = Loop {
        sock: Arc::new(socket),
        views: parts.views,
        leases: parts.leases,
        stats: parts.stats,
        unplanned: parts.unplanned,
        in_flight: Arc::new(AtomicUsize::new(0)),
        ifaces: Interfaces::new(),
    };
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; RECV_BUF];
        let mut batch = Batch::default();
        while !shutdown.is_cancelled() {
            lp.unplanned.flush(false);
            match sock::recv(lp.sock.as_raw_fd(), &mut buf, true) {
                Ok(r) => {
                    let len = r.len.min(buf.len());
                    lp.process(&buf[..len], r, &mut batch);
                    // Whatever else is queued already joins this batch:
                    // one writer wake-up and one commit for all of it.
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
                    tracing::warn!("dhcp receive failed: {e}");
                    std::thread::sleep(SHUTDOWN_POLL);
                }
            }
        }
        if let Some(done) = lp.unplanned.flush(true) {
            let _ = done.recv_timeout(FINAL_FLUSH_WAIT);
        }
    })
    .await?;
    Ok(())
}

impl Loop {
    fn process(&mut self, data: &[u8], rx: sock::Received, batch: &mut Batch) {
        let started = Instant::now();
        let req = match packet::parse(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(src = %rx.src, "dropping malformed DHCP packet: {e}");
                self.stats.dropped(DropReason::Malformed);
                return;
            }
        };
        self.stats.received(req.msg_type);
        if !req.skipped_options.is_empty() {
            self.stats.skipped_options(req.skipped_options.len());
        }
        if self.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            self.stats.dropped(DropReason::Overload);
            return;
        }
        let view = self.views.current();
        // Relayed requests are chosen by giaddr: no interface lookup needed.
        let iface = if req.giaddr.is_unspecified() {
            self.ifaces.get(rx.ifindex)
        } else {
            None
        };
        let arrival = match iface {
            Some(i) => Arrival {
                ifname: &i.name,
                addrs: &i.addrs,
            },
            None => Arrival {
                ifname: "",
                addrs: &[],
            },
        };
        let mut out = match self.leases.table.lock() {
            Ok(mut t) => handler::handle(&view, &mut t, &req, arrival, crate::clock::unix_now()),
            Err(_) => {
                tracing::error!("lease table lock poisoned; dropping request");
                return;
            }
        };
        let reply = out.reply.take().map(|r| {
            let ifname = iface.map_or("", |i| i.name.as_str());
            let (dst, ifindex) = route(&self.sock, r.dest, ifname, rx.ifindex);
            (r.msg_type, r.bytes, dst, ifindex)
        });
        let writes = std::mem::take(&mut out.writes);
        self.note(&view, &req, out, reply.as_ref().map(|r| r.0));
        if writes.is_empty() || self.leases.writer.is_none() {
            if let Some((t, bytes, dst, ifindex)) = reply {
                send(&self.sock, &self.stats, t, &bytes, dst, ifindex);
            }
            return;
        }
        batch.writes.extend(writes);
        batch.requests += 1;
        if let Some((msg_type, bytes, dst, ifindex)) = reply {
            batch.replies.push(Waiting {
                msg_type,
                bytes,
                dst,
                ifindex,
                started,
            });
        }
    }

    /// Queue the batch's lease writes as one write of the group commit; its
    /// replies leave right after that commit.
    fn submit(&self, batch: &mut Batch) {
        if batch.requests == 0 {
            return;
        }
        let Some(writer) = &self.leases.writer else {
            return;
        };
        let n = batch.requests;
        let writes = std::mem::take(&mut batch.writes);
        let replies = std::mem::take(&mut batch.replies);
        batch.requests = 0;
        if writer.commits_are_cheap() {
            // Written to the OS only: commit here and send at once, no
            // hand-over to the writer thread (two wake-ups per ACK saved).
            let res = writer.write_now(|c| writes.iter().try_for_each(|l| store::put(c, l)));
            release(&self.sock, &self.stats, res, n, replies);
            return;
        }
        let sock = self.sock.clone();
        let stats = self.stats.clone();
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(n, Ordering::Relaxed);
        let submitted = writer.submit(
            Box::new(move |tx| writes.iter().try_for_each(|l| store::put(tx, l))),
            Box::new(move |res| {
                in_flight.fetch_sub(n, Ordering::Relaxed);
                release(&sock, &stats, res, n, replies);
            }),
        );
        if let Err(e) = submitted {
            self.in_flight.fetch_sub(n, Ordering::Relaxed);
            tracing::debug!("lease write refused: {e}");
            (0..n).for_each(|_| self.stats.dropped(DropReason::Overload));
        }
    }

    /// Counters, logs and the unplanned register for one outcome.
    fn note(
        &self,
        view: &DhcpView,
        req: &packet::Request,
        out: Outcome,
        reply: Option<packet::MessageType>,
    ) {
        if let Some(d) = out.dropped {
            self.stats.dropped(d.reason());
            if let Dropped::PoolExhausted(i) = d {
                if self.stats.should_log_exhaustion(i) {
                    if let Some(s) = view.subnets.get(i) {
                        tracing::warn!(site = %s.site, subnet = %s.net, "DHCP pool exhausted: no free address for new clients");
                    }
                }
            }
        }
        if let Some(c) = &out.conflict {
            if self.stats.identity_conflict(c) {
                let msg = c.describe();
                tracing::warn!(device = %c.device, "{msg}");
                self.leases.push_conflict(&c.device, msg);
            }
        }
        if let Some(seen) = out.seen {
            self.unplanned
                .record(&req.client_key(), seen, crate::clock::unix_now());
        }
        if let (Some(dev), Some(t)) = (&out.device, reply) {
            tracing::debug!(device = %dev, msg = t.name(), ip = ?out.ip, "dhcp reply");
        }
    }
}

/// Set once the first neighbour entry could not be written, so the fallback
/// to broadcast is logged once rather than per packet.
static NEIGHBOUR_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Where a reply leaves: address and, for replies to clients on a local
/// link, the interface. A unicast to a client without an address first
/// writes the neighbour entry `ip -> mac`; when that fails (no
/// CAP_NET_ADMIN, not Ethernet, arrival interface unknown) the reply is
/// broadcast on the arrival interface instead, which clients also read.
fn route(sock: &UdpSocket, dest: Dest, ifname: &str, ifindex: u32) -> (SocketAddrV4, Option<u32>) {
    let broadcast = (SocketAddrV4::new(Ipv4Addr::BROADCAST, 68), Some(ifindex));
    match dest {
        Dest::Relay(ip) => (SocketAddrV4::new(ip, 67), None),
        Dest::Unicast(ip) => (SocketAddrV4::new(ip, 68), None),
        Dest::Broadcast => broadcast,
        Dest::Hardware { ip, mac } => {
            match sock::set_neighbour(sock.as_raw_fd(), ifname, ip, mac) {
                Ok(()) => (SocketAddrV4::new(ip, 68), Some(ifindex)),
                Err(e) => {
                    if !NEIGHBOUR_FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            interface = ifname,
                            "cannot add a neighbour entry for a unicast DHCP reply ({e}); \
                             broadcasting such replies instead (ztpd needs CAP_NET_ADMIN to unicast)"
                        );
                    }
                    broadcast
                }
            }
        }
    }
}

/// After the commit of a batch's `n` lease writes: its replies leave (those
/// past their deadline are dropped); when the commit failed none does.
fn release(
    sock: &UdpSocket,
    stats: &DhcpStats,
    commit: Result<(), crate::state::WriteError>,
    n: usize,
    replies: Vec<Waiting>,
) {
    if let Err(e) = commit {
        tracing::warn!("leases not stored, {n} replies withheld: {e}");
        (0..n).for_each(|_| stats.dropped(DropReason::WriteFailed));
        return;
    }
    for w in replies {
        if w.started.elapsed() > REPLY_DEADLINE {
            stats.dropped(DropReason::Timeout);
        } else {
            send(sock, stats, w.msg_type, &w.bytes, w.dst, w.ifindex);
        }
    }
}

fn send(
    sock: &UdpSocket,
    stats: &DhcpStats,
    t: packet::MessageType,
    bytes: &[u8],
    dst: SocketAddrV4,
    ifindex: Option<u32>,
) {
    match sock::send(sock.as_raw_fd(), bytes, dst, ifindex) {
        Ok(()) => stats.sent(t),
        Err(e) => {
            tracing::debug!(%dst, "dhcp send failed: {e}");
            stats.dropped(DropReason::SendFailed);
        }
    }
}
