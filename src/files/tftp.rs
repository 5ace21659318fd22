//! Read-only TFTP server: RFC 1350 with options 2347/2348/2349 and RFC 7440
//! windowsize, written on tokio UDP.
//!
//! Why not `async-tftp`: its handler's open is serialised behind one mutex,
//! its reader gives no hook to count acknowledged bytes for the ledger, and
//! the access hook wants the request's client address and our own error
//! codes (1 vs 2). The protocol is small; owning it keeps those in one place.
//!
//! The listening socket only parses requests. Each read request gets a task
//! with its own ephemeral socket (the server's TID, RFC 1350 §4), connected
//! to the client, so the kernel drops packets from other TIDs. A transfer
//! keeps at most one window of blocks in memory and reads the file as the
//! client acknowledges; it gives up after [`MAX_RETRIES`] silent timeouts, so
//! a client that vanishes is cleaned up and marked aborted in the ledger. A
//! transfer never acknowledged at all ends after [`UNACKED_LIFETIME`], and
//! one address runs at most `limits.tftp_transfers_per_client` transfers
//! (`tftp_clients`), so one host cannot hold every slot.
//!
//! Bound to the wildcard address, the listening socket asks for each
//! request's local address (`IP_PKTINFO`) and the transfer socket is bound
//! to it, as tftpd-hpa does: a client that sent its request to one of the
//! server's addresses gets the data from that address, not from whichever
//! one routing picks (a secondary address, or a relayed client's route),
//! which strict boot loaders drop.
//!
//! Reflection: a spoofed RRQ can make us send at most one block (lockstep)
//! or one OACK (options), each retransmitted [`MAX_RETRIES`] times; a whole
//! window goes out only after the client proved its address by acking the OACK.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ledger::Proto;
use super::tftp_clients::{lock, Admit, Clients};
use super::tftp_packet::{self as pkt, Mode, Packet, Request};
use super::vfs::Content;
use super::{FileService, OpenError};
use crate::limits::RateLimitedLog;

/// A transfer the client never acknowledged (OACK or first block) is given
/// up after this, whatever timeout it asked for: a host sending read
/// requests it never acknowledges (or spoofing them) frees each slot within
/// 30 s instead of holding it for `timeout` x retries (6 minutes at 60 s).
pub const UNACKED_LIFETIME: Duration = Duration::from_secs(25);
/// Until the first acknowledgement, retransmit at least this often, so a
/// lost OACK is resent within [`UNACKED_LIFETIME`] even with `timeout=60`.
const UNACKED_RETRANSMIT: Duration = Duration::from_secs(5);
/// Retransmission timeout when the client does not negotiate one; as
/// tftpd-hpa's default, short enough to recover a lost block quickly.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Silent timeouts in a row before a transfer is given up (client gone).
pub const MAX_RETRIES: u32 = 5;
/// Disk read-ahead per transfer: big enough that 1468-byte blocks rarely
/// hit the blocking-pool, small enough for a thousand transfers.
const READ_BUFFER: usize = 128 * 1024;
/// Receive buffer: a request fits in 512 bytes (RFC 1350), but be generous
/// with options; anything larger is truncated and then fails to parse.
const MAX_PACKET: usize = 4096;

/// Serve read requests on `socket` until `shutdown` is cancelled.
pub async fn serve(
    socket: UdpSocket,
    files: Arc<FileService>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local_ip = socket.local_addr()?.ip();
    let pktinfo = local_ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        && match crate::dhcp::sock::enable_pktinfo(socket.as_raw_fd()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    "tftp: no IP_PKTINFO ({e}): replies leave from the routed source address"
                );
                false
            }
        };
    let limits = files.snapshot.load().resolved.settings.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.tftp_transfers));
    let clients = Arc::new(Mutex::new(Clients::new(limits.tftp_transfers_per_client)));
    // Out of descriptors, every request fails to bind: one line a second.
    let bind_errors = Arc::new(Mutex::new(RateLimitedLog::new(Duration::from_secs(1))));
    let mut buf = vec![0u8; MAX_PACKET];
    // Every transfer is a task of this set, so the daemon's shutdown drain,
    // which waits for `serve`, waits for them too (they see the same token).
    let mut transfers = tokio::task::JoinSet::new();
    loop {
        while transfers.try_join_next().is_some() {}
        let (n, client, reply_ip) = tokio::select! {
            _ = shutdown.cancelled() => {
                while transfers.join_next().await.is_some() {}
                return Ok(());
            }
            r = receive(&socket, &mut buf, pktinfo, local_ip) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems.
                    tracing::debug!("tftp recv: {e}");
                    continue;
                }
            },
        };
        let req = match pkt::parse(&buf[..n]) {
            Ok(Packet::Read(req)) => req,
            Ok(Packet::Write(req)) => {
                files
                    .ledger
                    .count_refusal(Proto::Tftp, super::access::Refusal::ReadOnly);
                tracing::warn!(client = %client, path = %req.filename.escape_debug(), "tftp write request refused");
                let e = pkt::encode_error(
                    pkt::ERR_ACCESS,
                    "ztpd is read-only: write requests are refused",
                );
                let _ = socket.send_to(&e, client).await;
                continue;
            }
            // Stray DATA/ACK/ERROR/OACK for a finished transfer: drop.
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(client = %client, "malformed tftp packet: {e}");
                let e = pkt::encode_error(pkt::ERR_ILLEGAL, &format!("malformed request: {e}"));
                let _ = socket.send_to(&e, client).await;
                continue;
            }
        };
        // Admission happens once per request, never per block: the
        // client's own count first, then the global slots.
        let busy = match lock(&clients).admit(client) {
            Admit::Running => continue,
            Admit::TooMany => "server busy: too many transfers from your address, retry later",
            Admit::Yes => match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let files = files.clone();
                    let clients = clients.clone();
                    let bind_errors = bind_errors.clone();
                    let shutdown = shutdown.clone();
                    transfers.spawn(async move {
                        let _permit = permit;
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            r = transfer(&files, req, client, reply_ip) => if let Err(e) = r {
                                lock(&bind_errors).warn("tftp: cannot bind a transfer socket", &e);
                            }
                        }
                        lock(&clients).release(client);
                    });
                    continue;
                }
                Err(_) => {
                    lock(&clients).release(client);
                    "server busy: too many transfers, retry later"
                }
            },
        };
        let e = pkt::encode_error(pkt::ERR_UNDEFINED, busy);
        let _ = socket.send_to(&e, client).await;
    }
}

/// One datagram: its length, sender, and the local address a reply should
/// come from (the request's own destination with `pktinfo`, else the
/// listening address).
async fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
    pktinfo: bool,
    local_ip: IpAddr,
) -> std::io::Result<(usize, SocketAddr, IpAddr)> {
    if !pktinfo {
        let (n, from) = socket.recv_from(buf).await?;
        return Ok((n, from, local_ip));
    }
    let fd = socket.as_raw_fd();
    let r = socket
        .async_io(tokio::io::Interest::READABLE, || {
            crate::dhcp::sock::recv(fd, buf, false)
        })
        .await?;
    Ok((r.len, SocketAddr::V4(r.src), IpAddr::V4(r.local)))
}

/// One transfer; Err only when no transfer socket could be made.
async fn transfer(
    files: &FileService,
    req: Request,
    client: SocketAddr,
    local_ip: IpAddr,
) -> std::io::Result<()> {
    let bind_ip = if local_ip.is_unspecified() && client.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        local_ip
    };
    let sock = UdpSocket::bind((bind_ip, 0)).await?;
    if let Err(e) = sock.connect(client).await {
        tracing::debug!(client = %client, "tftp: cannot reach client: {e}");
        return Ok(());
    }
    let served = match files.open(&req.filename, client, None, Proto::Tftp).await {
        Ok(s) => s,
        Err(OpenError::NotFound) => {
            let _ = sock
                .send(&pkt::encode_error(pkt::ERR_NOT_FOUND, "file not found"))
                .await;
            return Ok(());
        }
        Err(OpenError::Refused(_)) => {
            let _ = sock
                .send(&pkt::encode_error(pkt::ERR_ACCESS, "access violation"))
                .await;
            return Ok(());
        }
    };
    let octet = req.mode == Mode::Octet;
    let handle = served.begin(&files.ledger, client, Proto::Tftp, served.len);
    let o = &req.options;
    let blksize = o.blksize.unwrap_or(512);
    let window = usize::from(o.windowsize.unwrap_or(1));
    let timeout = o
        .timeout
        .map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs(u64::from(t)));
    let mut session = Session {
        sock,
        timeout,
        unacked_until: Some(Instant::now() + UNACKED_LIFETIME),
        buf: vec![0u8; usize::from(blksize) + 64],
    };
    if o.any() {
        let mut acked = Vec::new();
        if let Some(b) = o.blksize {
            acked.push(("blksize", b.to_string()));
        }
        // tsize of a netascii transfer is unknown until converted: omit it.
        if o.tsize && octet {
            acked.push(("tsize", served.len.to_string()));
        }
        if let Some(t) = o.timeout {
            acked.push(("timeout", t.to_string()));
        }
        if let Some(w) = o.windowsize {
            acked.push(("windowsize", w.to_string()));
        }
        if !session.send_until_ack(&pkt::encode_oack(&acked), 0).await {
            return Ok(());
        }
    }
    let mut blocks = Blocks::new(served.content, blksize, !octet);
    match session.send_file(&mut blocks, window, &handle).await {
        Ok(true) => handle.complete(),
        Ok(false) => {
            tracing::info!(client = %client, path = %served.path, "tftp transfer abandoned by the client")
        }
        Err(e) => {
            tracing::warn!(client = %client, path = %served.path, "tftp read failed: {e}");
            let _ = session
                .sock
                .send(&pkt::encode_error(pkt::ERR_UNDEFINED, "read error"))
                .await;
        }
    }
    Ok(())
}

struct Session {
    sock: UdpSocket,
    timeout: Duration,
    /// Until the client's first ACK: when the transfer is given up.
    unacked_until: Option<Instant>,
    buf: Vec<u8>,
}

enum Reply {
    Ack(u16),
    /// The client sent an ERROR or went silent for too long.
    Gone,
    Timeout,
}

impl Session {
    /// The retransmission timeout: the negotiated one, but short enough
    /// before the first ACK that a lost OACK is resent within the
    /// transfer's unacknowledged lifetime.
    fn rto(&self) -> Duration {
        match self.unacked_until {
            Some(_) => self.timeout.min(UNACKED_RETRANSMIT),
            None => self.timeout,
        }
    }

    /// Wait for the next ACK until `deadline`; ignore anything else. Never
    /// acknowledged by [`UNACKED_LIFETIME`], the client is gone.
    async fn next_reply(&mut self, deadline: Instant) -> Reply {
        loop {
            let until = self.unacked_until.map_or(deadline, |u| u.min(deadline));
            let r = tokio::time::timeout_at(until, self.sock.recv(&mut self.buf)).await;
            let n = match r {
                Err(_) if self.unacked_until.is_some_and(|u| u <= Instant::now()) => {
                    return Reply::Gone
                }
                Err(_) => return Reply::Timeout,
                // ICMP port unreachable: the client's socket is closed.
                Ok(Err(_)) => return Reply::Gone,
                Ok(Ok(n)) => n,
            };
            match pkt::parse(&self.buf[..n]) {
                Ok(Packet::Ack(b)) => {
                    self.unacked_until = None;
                    return Reply::Ack(b);
                }
                Ok(Packet::Error { .. }) => return Reply::Gone,
                _ => continue,
            }
        }
    }

    /// Send one packet (the OACK) until the client acknowledges `block`.
    async fn send_until_ack(&mut self, packet: &[u8], block: u16) -> bool {
        for _ in 0..=MAX_RETRIES {
            if self.sock.send(packet).await.is_err() {
                return false;
            }
            let deadline = Instant::now() + self.rto();
            loop {
                match self.next_reply(deadline).await {
                    Reply::Ack(b) if b == block => return true,
                    Reply::Ack(_) => continue,
                    Reply::Gone => return false,
                    Reply::Timeout => break,
                }
            }
        }
        false
    }

    /// Send every block, `window` at a time (RFC 7440: the client acks the
    /// last block it got in order; we continue from there). Ok(false) when
    /// the client gave up or vanished.
    async fn send_file(
        &mut self,
        blocks: &mut Blocks,
        window: usize,
        handle: &super::ledger::TransferHandle,
    ) -> std::io::Result<bool> {
        // (absolute block number, packet, data length, sent before)
        let mut inflight: VecDeque<(u64, Bytes, usize, bool)> = VecDeque::with_capacity(window);
        let mut next: u64 = 1;
        let mut retries = 0;
        loop {
            while inflight.len() < window {
                let Some((packet, len)) = blocks.next_packet(next as u16).await? else {
                    break;
                };
                inflight.push_back((next, packet, len, false));
                next += 1;
            }
            if inflight.is_empty() {
                return Ok(true);
            }
            let mut resent = 0;
            for (_, p, _, sent) in inflight.iter_mut() {
                if self.sock.send(p).await.is_err() {
                    return Ok(false);
                }
                resent += u64::from(*sent);
                *sent = true;
            }
            handle.count_retransmits(resent);
            let deadline = Instant::now() + self.rto();
            loop {
                match self.next_reply(deadline).await {
                    Reply::Ack(b) => {
                        // Block numbers wrap at 65535; a window is far smaller,
                        // so the 16-bit number names one in-flight block.
                        let Some(pos) = inflight.iter().position(|(n, ..)| *n as u16 == b) else {
                            continue; // duplicate of an older ACK: never resend on it
                        };
                        for (_, _, len, _) in inflight.drain(..=pos) {
                            handle.add_bytes(len as u64);
                        }
                        retries = 0;
                        break;
                    }
                    Reply::Gone => return Ok(false),
                    Reply::Timeout => {
                        retries += 1;
                        if retries > MAX_RETRIES {
                            return Ok(false);
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// Splits content into blocks of `blksize`; the last one is shorter (maybe
/// empty), which tells the client the file ended.
struct Blocks {
    source: Source,
    blksize: usize,
    netascii: bool,
    /// Converted netascii bytes not yet sent.
    pending: Vec<u8>,
    finished: bool,
}

enum Source {
    Memory(Bytes),
    Disk(BufReader<tokio::fs::File>),
}

impl Blocks {
    fn new(content: Content, blksize: u16, netascii: bool) -> Self {
        let source = match content {
            Content::Memory(b) => Source::Memory(b),
            Content::Disk(f) => Source::Disk(BufReader::with_capacity(
                READ_BUFFER,
                tokio::fs::File::from_std(f),
            )),
        };
        Blocks {
            source,
            blksize: usize::from(blksize),
            netascii,
            pending: Vec::new(),
            finished: false,
        }
    }

    /// The next DATA packet and its payload length; `None` after the short
    /// final block. Disk blocks are read straight into the packet buffer.
    async fn next_packet(&mut self, block: u16) -> std::io::Result<Option<(Bytes, usize)>> {
        if self.finished {
            return Ok(None);
        }
        let (packet, len) = if self.netascii {
            let data = self.next_netascii().await?;
            (pkt::encode_data(block, &data), data.len())
        } else {
            match &mut self.source {
                Source::Memory(b) => {
                    let data = b.split_to(self.blksize.min(b.len()));
                    (pkt::encode_data(block, &data), data.len())
                }
                Source::Disk(r) => {
                    let mut p = pkt::encode_data(block, &[]);
                    p.resize(4 + self.blksize, 0);
                    let got = fill(r, &mut p[4..]).await?;
                    p.truncate(4 + got);
                    (p, got)
                }
            }
        };
        if len < self.blksize {
            self.finished = true;
        }
        Ok(Some((Bytes::from(packet), len)))
    }

    /// netascii (RFC 764): LF -> CR LF, CR -> CR NUL.
    async fn next_netascii(&mut self) -> std::io::Result<Bytes> {
        while self.pending.len() < self.blksize {
            let raw = match &mut self.source {
                Source::Memory(b) => b.split_to(self.blksize.min(b.len())).to_vec(),
                Source::Disk(r) => {
                    let mut v = vec![0u8; self.blksize];
                    let got = fill(r, &mut v).await?;
                    v.truncate(got);
                    v
                }
            };
            if raw.is_empty() {
                break;
            }
            for c in raw {
                match c {
                    b'\n' => self.pending.extend_from_slice(b"\r\n"),
                    b'\r' => self.pending.extend_from_slice(b"\r\0"),
                    c => self.pending.push(c),
                }
            }
        }
        let take = self.blksize.min(self.pending.len());
        let rest = self.pending.split_off(take);
        Ok(Bytes::from(std::mem::replace(&mut self.pending, rest)))
    }
}

/// Fill `buf` until it is full or the file ends; returns the bytes read.
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let k = r.read(&mut buf[got..]).await?;
        if k == 0 {
            break;
        }
        got += k;
    }
    Ok(got)
}

#[cfg(test)]
#[path = "tftp_tests.rs"]
mod tests;
