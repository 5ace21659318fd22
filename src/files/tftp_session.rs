//! One TFTP read transfer after its file is open: the OACK, then every
//! block, `windowsize` at a time (RFC 7440), on the transfer's own blocking
//! socket connected to the client, from a thread of its own.
//!
//! Why blocking: most boot loaders fetch in lockstep (one block, one ACK),
//! so a transfer's speed is its round trip. On a blocking socket that is one
//! `send` and one `recv`; on the async runtime it also cost an epoll
//! registration, a wake-up, a task switch and a timer per block (measured:
//! 0.86-0.89x tftpd-hpa's lockstep speed, docs/benchmarks.md).
//!
//! The receive timeout is a short slice ([`SLICE`]), so the thread notices
//! the daemon's shutdown and its own deadlines without a timer per block.

use std::collections::VecDeque;
use std::io::{BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::ledger::TransferHandle;
use super::tftp_packet::{self as pkt, Mode, Packet, Request};
use super::vfs::Content;
use super::Served;

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
/// Disk read-ahead per transfer: 1468-byte blocks rarely hit the disk,
/// and a thousand transfers stay in 128 MiB.
const READ_BUFFER: usize = 128 * 1024;
/// Longest a blocked `recv` waits before the thread looks at its deadline
/// and the shutdown token again.
const SLICE: Duration = Duration::from_millis(200);

/// Serve `served` to `client` over `sock` (connected to it) until done,
/// given up, or `shutdown`.
pub fn run(
    sock: UdpSocket,
    req: Request,
    served: Served,
    handle: TransferHandle,
    client: SocketAddr,
    shutdown: &CancellationToken,
) {
    if let Err(e) = sock.set_read_timeout(Some(SLICE)) {
        tracing::warn!(client = %client, "tftp: cannot set a receive timeout: {e}");
        return;
    }
    let octet = req.mode == Mode::Octet;
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
        shutdown,
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
        if !session.send_until_ack(&pkt::encode_oack(&acked), 0) {
            return;
        }
    }
    let mut blocks = Blocks::new(served.content, blksize, !octet);
    match session.send_file(&mut blocks, window, &handle) {
        Ok(true) => handle.complete(),
        Ok(false) => {
            tracing::info!(client = %client, path = %served.path, "tftp transfer abandoned by the client")
        }
        Err(e) => {
            tracing::warn!(client = %client, path = %served.path, "tftp read failed: {e}");
            let _ = session
                .sock
                .send(&pkt::encode_error(pkt::ERR_UNDEFINED, "read error"));
        }
    }
}

struct Session<'a> {
    sock: UdpSocket,
    timeout: Duration,
    /// Until the client's first ACK: when the transfer is given up.
    unacked_until: Option<Instant>,
    buf: Vec<u8>,
    shutdown: &'a CancellationToken,
}

enum Reply {
    Ack(u16),
    /// The client sent an ERROR or went silent for too long, or shutdown.
    Gone,
    Timeout,
}

impl Session<'_> {
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
    fn next_reply(&mut self, deadline: Instant) -> Reply {
        loop {
            let n = match self.sock.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    if self.shutdown.is_cancelled() {
                        return Reply::Gone;
                    }
                    let now = Instant::now();
                    if self.unacked_until.is_some_and(|u| u <= now) {
                        return Reply::Gone;
                    }
                    if now >= deadline {
                        return Reply::Timeout;
                    }
                    continue;
                }
                // ICMP port unreachable: the client's socket is closed.
                Err(_) => return Reply::Gone,
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
    fn send_until_ack(&mut self, packet: &[u8], block: u16) -> bool {
        for _ in 0..=MAX_RETRIES {
            if self.sock.send(packet).is_err() {
                return false;
            }
            let deadline = Instant::now() + self.rto();
            loop {
                match self.next_reply(deadline) {
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
    fn send_file(
        &mut self,
        blocks: &mut Blocks,
        window: usize,
        handle: &TransferHandle,
    ) -> std::io::Result<bool> {
        // (absolute block number, packet, data length, sent before)
        let mut inflight: VecDeque<(u64, Bytes, usize, bool)> = VecDeque::with_capacity(window);
        let mut next: u64 = 1;
        let mut retries = 0;
        loop {
            while inflight.len() < window {
                let Some((packet, len)) = blocks.next_packet(next as u16)? else {
                    break;
                };
                inflight.push_back((next, packet, len, false));
                next += 1;
            }
            if inflight.is_empty() {
                return Ok(true);
            }
            let mut resent = 0;
            for (_, _, _, sent) in inflight.iter_mut() {
                resent += u64::from(*sent);
                *sent = true;
            }
            let packets: Vec<&[u8]> = inflight.iter().map(|(_, p, ..)| &p[..]).collect();
            if send_all(&self.sock, &packets).is_err() {
                return Ok(false);
            }
            handle.count_retransmits(resent);
            let deadline = Instant::now() + self.rto();
            loop {
                match self.next_reply(deadline) {
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

/// Send `packets` in order on the connected `sock`: a window in one
/// `sendmmsg` (a lockstep block is one `send`).
fn send_all(sock: &UdpSocket, packets: &[&[u8]]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if let [one] = packets {
        return sock.send(one).map(|_| ());
    }
    let mut iov: Vec<libc::iovec> = packets
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    let mut sent = 0;
    while sent < packets.len() {
        let mut msgs: Vec<libc::mmsghdr> = iov[sent..]
            .iter_mut()
            .map(|v| {
                // SAFETY: an all-zero mmsghdr is valid (no name: the socket
                // is connected; no control data); the iovec is set below.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: `msgs` points at `msgs.len()` initialised headers whose
        // iovecs borrow `packets`, which outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
    }
    Ok(())
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
    Disk(BufReader<std::fs::File>),
}

impl Blocks {
    fn new(content: Content, blksize: u16, netascii: bool) -> Self {
        let source = match content {
            Content::Memory(b) => Source::Memory(b),
            Content::Disk(f) => Source::Disk(BufReader::with_capacity(READ_BUFFER, f)),
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
    fn next_packet(&mut self, block: u16) -> std::io::Result<Option<(Bytes, usize)>> {
        if self.finished {
            return Ok(None);
        }
        let (packet, len) = if self.netascii {
            let data = self.next_netascii()?;
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
                    let got = fill(r, &mut p[4..])?;
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
    fn next_netascii(&mut self) -> std::io::Result<Bytes> {
        while self.pending.len() < self.blksize {
            let raw = match &mut self.source {
                Source::Memory(b) => b.split_to(self.blksize.min(b.len())).to_vec(),
                Source::Disk(r) => {
                    let mut v = vec![0u8; self.blksize];
                    let got = fill(r, &mut v)?;
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
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let k = r.read(&mut buf[got..])?;
        if k == 0 {
            break;
        }
        got += k;
    }
    Ok(got)
}
