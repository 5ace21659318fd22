//! TFTP transfer slots (issue 15 defect 3): 1,030 read requests with
//! `timeout=60` that never acknowledge the OACK no longer lock every other
//! host out. One address holds at most `limits.tftp_transfers_per_client`
//! transfers, and a never-acknowledged transfer frees its slot within 30 s.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::files::{self, IMAGE};
use support::poll::poll;

const IMAGE_LEN: usize = 300_000;
const ACTIVE: &str = "ztpd_files_transfers_active{proto=\"tftp\"}";

fn rrq(path: &str) -> Vec<u8> {
    let mut p = vec![0, 1];
    for part in [path, "octet", "timeout", "60", "blksize", "1468"] {
        p.extend_from_slice(part.as_bytes());
        p.push(0);
    }
    p
}

#[test]
fn one_host_cannot_lock_others_out_and_unacknowledged_slots_free_up() {
    let d = files::start("open", IMAGE_LEN);
    let image = d.file(IMAGE);
    let flood: Vec<UdpSocket> = (0..1_030)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.send_to(&rrq(IMAGE), d.tftp).expect("send RRQ");
            // Paced, so the listening socket's receive buffer drops none.
            std::thread::sleep(Duration::from_millis(1));
            s
        })
        .collect();
    let sent = Instant::now();
    // Every request of the flood has been handled: the count stops moving.
    let mut last = u64::MAX;
    d.wait_for(
        "the flood's transfers started",
        Duration::from_secs(20),
        || {
            std::thread::sleep(Duration::from_millis(500));
            let now = d.metric(ACTIVE);
            (std::mem::replace(&mut last, now) == now && now > 0).then_some(())
        },
    );

    // Another host gets the file at once.
    let out = d.path("other.bin");
    let (code, body) = support::curl::tftp(&d.tftp_url(IMAGE), &out, &["--interface", "127.0.0.2"]);
    assert_eq!(code, Some(0), "another host was locked out");
    assert!(body == image, "another host's copy differs");
    let held = d.metric(ACTIVE);
    eprintln!("the flooding address holds {held} transfers");
    assert!(held <= 32, "{held} transfers from one address (cap 32)");

    // The flooding address's share frees itself, whatever timeout it asked for.
    let freed = poll(
        Duration::from_secs(30).saturating_sub(sent.elapsed()),
        || (d.metric(ACTIVE) == 0).then(|| sent.elapsed()),
    );
    let freed = freed.unwrap_or_else(|| {
        panic!(
            "{} never-acknowledged transfers still hold slots {:?} after the flood",
            d.metric(ACTIVE),
            sent.elapsed()
        )
    });
    eprintln!("never-acknowledged slots free {freed:?} after the flood");
    let (code, body) = support::curl::tftp(&d.tftp_url(IMAGE), &out, &[]);
    assert_eq!(code, Some(0), "the flooding address itself can fetch again");
    assert!(body == image);
    drop(flood);
}
