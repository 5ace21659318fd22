//! In-process tests of the TFTP server with a raw UDP client; the
//! third-party clients (curl, atftp, tftp-hpa) run in `tests/files_tftp.rs`.

use super::*;
use crate::files::access::NoFacts;
use crate::files::ledger::Outcome;
use crate::files::testutil;
use crate::snapshot::SnapshotHandle;
use tokio::time::Instant;

struct Server {
    addr: SocketAddr,
    files: Arc<FileService>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(image: &[u8]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("files")).expect("mkdir");
    std::fs::write(dir.path().join("files/image.bin"), image).expect("write");
    let mut snap = testutil::snapshot(dir.path());
    snap.resolved.settings.access.configs = crate::settings::ConfigAccess::Open;
    let files = Arc::new(FileService::new(
        SnapshotHandle::new(snap),
        Arc::new(NoFacts),
    ));
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(sock, files.clone(), shutdown.clone()));
    Server {
        addr,
        files,
        shutdown,
        _dir: dir,
    }
}

fn rrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    rrq_mode(name, "octet", opts)
}

fn rrq_mode(name: &str, mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![0, 1];
    for s in [name, mode]
        .into_iter()
        .chain(opts.iter().flat_map(|(a, b)| [*a, *b]))
    {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }
    v
}

async fn recv(c: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 70000];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut buf))
        .await
        .expect("reply within 5 s")
        .expect("recv");
    buf.truncate(n);
    (buf, from)
}

/// Fetch with a given window, acking only the last block of each window.
async fn fetch(
    srv: &Server,
    name: &str,
    opts: &[(&str, &str)],
    window: usize,
    blksize: usize,
) -> Result<Vec<u8>, (u16, String)> {
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    c.send_to(&rrq(name, opts), srv.addr).await.expect("send");
    let mut out = Vec::new();
    let mut expect: u16 = 1;
    let mut in_window = 0;
    loop {
        let (p, from) = recv(&c).await;
        assert_ne!(from, srv.addr, "replies come from a fresh TID");
        match pkt::parse(&p) {
            Ok(Packet::Oack) => {
                c.send_to(&[0, 4, 0, 0], from).await.expect("ack0");
            }
            Ok(Packet::Error { code, message }) => return Err((code, message)),
            Ok(Packet::Data { block, data }) => {
                assert_eq!(block, expect, "blocks arrive in order on loopback");
                out.extend_from_slice(data);
                expect = expect.wrapping_add(1);
                in_window += 1;
                let last = data.len() < blksize;
                if in_window == window || last {
                    in_window = 0;
                    let mut ack = vec![0, 4];
                    ack.extend_from_slice(&block.to_be_bytes());
                    c.send_to(&ack, from).await.expect("ack");
                }
                if last {
                    return Ok(out);
                }
            }
            other => panic!("unexpected packet {other:?}"),
        }
    }
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn serves_files_with_and_without_options() {
    // 512 * 70000 blocks would be slow; 1 MiB at 512 still wraps no block
    // numbers, so wrap-around is covered with blksize 8 below.
    let img = image(1 << 20);
    let srv = start(&img).await;
    assert_eq!(fetch(&srv, "image.bin", &[], 1, 512).await, Ok(img.clone()));
    let got = fetch(
        &srv,
        "image.bin",
        &[("blksize", "1468"), ("windowsize", "8"), ("tsize", "0")],
        8,
        1468,
    )
    .await;
    assert_eq!(got, Ok(img.clone()));
    let cfg = fetch(&srv, "configs/leaf1.cfg", &[("tsize", "enable")], 1, 512).await;
    assert_eq!(cfg, Ok(b"hostname leaf1\n".to_vec()));
    // The server sees the final ACK after the client returned: poll.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let done = srv.files.ledger.transfers();
        assert_eq!(done.len(), 3);
        if done.iter().all(|t| t.outcome == Outcome::Complete) {
            assert!(done.iter().all(|t| t.bytes == t.total), "{done:?}");
            let cfg = done.iter().find(|t| t.path == "configs/leaf1.cfg");
            assert_eq!(cfg.and_then(|t| t.device.as_deref()), Some("leaf1"));
            assert!(done.iter().all(|t| t.client.ip().is_loopback()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "transfers not complete: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn block_numbers_wrap_past_65535() {
    // blksize 8: 70000 blocks.
    let img = image(8 * 70_000 + 3);
    let srv = start(&img).await;
    let got = fetch(
        &srv,
        "image.bin",
        &[("blksize", "8"), ("windowsize", "64")],
        64,
        8,
    )
    .await;
    assert_eq!(got.map(|v| v.len()), Ok(img.len()));
}

#[tokio::test]
async fn errors_for_missing_refused_written_and_malformed() {
    let srv = start(b"x").await;
    assert_eq!(
        fetch(&srv, "nope.bin", &[], 1, 512).await.map_err(|e| e.0),
        Err(1)
    );
    assert_eq!(
        fetch(&srv, "../etc/hostname", &[], 1, 512)
            .await
            .map_err(|e| e.0),
        Err(2)
    );
    assert_eq!(
        fetch(&srv, "/etc/hostname", &[], 1, 512)
            .await
            .map_err(|e| e.0),
        Err(2)
    );
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut wrq = rrq("image.bin", &[]);
    wrq[1] = 2;
    c.send_to(&wrq, srv.addr).await.expect("send");
    let (p, _) = recv(&c).await;
    assert!(
        matches!(pkt::parse(&p), Ok(Packet::Error { code: 2, .. })),
        "{p:?}"
    );
    for junk in [&[0u8, 9, 1, 2][..], &[0, 1, b'x'], &[7]] {
        c.send_to(junk, srv.addr).await.expect("send");
        let (p, _) = recv(&c).await;
        assert!(
            matches!(pkt::parse(&p), Ok(Packet::Error { code: 4, .. })),
            "{p:?}"
        );
    }
    // The server still serves after all that.
    assert_eq!(
        fetch(&srv, "image.bin", &[], 1, 512).await,
        Ok(b"x".to_vec())
    );
}

#[tokio::test]
async fn client_that_goes_away_is_cleaned_up() {
    let srv = start(&image(1 << 20)).await;
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    c.send_to(&rrq("image.bin", &[]), srv.addr)
        .await
        .expect("send");
    let (p, from) = recv(&c).await;
    assert!(matches!(pkt::parse(&p), Ok(Packet::Data { block: 1, .. })));
    c.send_to(&[0, 4, 0, 1], from).await.expect("ack");
    let _ = recv(&c).await;
    drop(c); // the next retransmission meets a closed port
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = srv.files.ledger.transfers();
        if t.len() == 1 && t[0].outcome == Outcome::Aborted {
            assert_eq!(t[0].bytes, 512);
            break;
        }
        assert!(Instant::now() < deadline, "transfer not cleaned up: {t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn netascii_sends_cr_lf() {
    let srv = start(b"x").await;
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    c.send_to(&rrq_mode("configs/leaf1.cfg", "netascii", &[]), srv.addr)
        .await
        .expect("send");
    let (p, _) = recv(&c).await;
    assert_eq!(
        pkt::parse(&p),
        Ok(Packet::Data {
            block: 1,
            data: b"hostname leaf1\r\n"
        })
    );
}

/// Bound to the wildcard address, a transfer answers from the address the
/// request was sent to. On loopback a request to 127.0.0.2 from 127.0.0.1
/// would otherwise be answered from 127.0.0.1 (the routed source), which a
/// strict client drops.
#[tokio::test]
async fn a_wildcard_server_answers_from_the_address_the_request_went_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("files")).expect("mkdir");
    // One block, so each transfer ends with its first ack.
    std::fs::write(dir.path().join("files/image.bin"), image(100)).expect("write");
    let files = Arc::new(FileService::new(
        SnapshotHandle::new(testutil::snapshot(dir.path())),
        Arc::new(NoFacts),
    ));
    let sock = UdpSocket::bind("0.0.0.0:0").await.expect("bind");
    let port = sock.local_addr().expect("addr").port();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(sock, files, shutdown.clone()));
    for to in ["127.0.0.2", "127.0.0.1"] {
        let to: IpAddr = to.parse().unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        c.send_to(&rrq("image.bin", &[]), (to, port))
            .await
            .expect("send");
        let (p, from) = recv(&c).await;
        assert!(
            matches!(pkt::parse(&p), Ok(Packet::Data { block: 1, .. })),
            "{p:?}"
        );
        assert_eq!(from.ip(), to, "reply source");
        assert_ne!(from.port(), port, "a fresh TID");
        c.send_to(&[0, 4, 0, 1], from).await.expect("ack");
    }
    shutdown.cancel();
}
