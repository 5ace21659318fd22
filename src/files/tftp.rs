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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::ledger::Proto;
use super::tftp_clients::{lock, Admit, Clients};
use super::tftp_packet::{self as pkt, Packet, Request};
use super::tftp_session;
use super::{FileService, OpenError};
use crate::limits::RateLimitedLog;

pub use super::tftp_session::{MAX_RETRIES, UNACKED_LIFETIME};
/// Stack of a transfer's thread: it only loops over send and recv.
const TRANSFER_STACK: usize = 256 * 1024;
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
                            r = transfer(&files, req, client, reply_ip, shutdown.clone()) => if let Err(e) = r {
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
///
/// The access check and the open are async; the blocks then go out from a
/// thread of the transfer's own, on a blocking socket (`tftp_session`): a
/// lockstep block's round trip is then one `send` and one `recv`, as in
/// tftpd-hpa, with no wake-up of the async runtime between them.
async fn transfer(
    files: &FileService,
    req: Request,
    client: SocketAddr,
    local_ip: IpAddr,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let bind_ip = if local_ip.is_unspecified() && client.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        local_ip
    };
    let sock = std::net::UdpSocket::bind((bind_ip, 0))?;
    if let Err(e) = sock.connect(client) {
        tracing::debug!(client = %client, "tftp: cannot reach client: {e}");
        return Ok(());
    }
    let served = match files.open(&req.filename, client, None, Proto::Tftp).await {
        Ok(s) => s,
        Err(OpenError::NotFound) => {
            let _ = sock.send(&pkt::encode_error(pkt::ERR_NOT_FOUND, "file not found"));
            return Ok(());
        }
        Err(OpenError::Refused(_)) => {
            let _ = sock.send(&pkt::encode_error(pkt::ERR_ACCESS, "access violation"));
            return Ok(());
        }
    };
    let handle = served.begin(&files.ledger, client, Proto::Tftp, served.len);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ztpd-tftp".into())
        .stack_size(TRANSFER_STACK)
        .spawn(move || {
            tftp_session::run(sock, req, served, handle, client, &shutdown);
            let _ = done_tx.send(());
        })?;
    let _ = done_rx.await;
    Ok(())
}

#[cfg(test)]
#[path = "tftp_tests.rs"]
mod tests;
