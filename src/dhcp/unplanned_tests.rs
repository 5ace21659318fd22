use super::*;
use crate::settings::Durability;

fn seen(i: u32, ip: Option<Ipv4Addr>) -> Seen {
    Seen {
        site: "lab".into(),
        subnet: "10.10.0.0/24".parse().unwrap(),
        mac: Some([2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
        client_id: Some(vec![1, 2, 0, 0, 0, 0, i as u8]),
        duid: None,
        vendor: Some(Vendor::Arista),
        model: Some("DCS-7050SX-64".into()),
        serial: Some(format!("JPE{i}")),
        vendor_class: Some(format!("Arista;DCS-7050SX-64;01.00;JPE{i}")),
        ip: ip.map(Into::into),
    }
}

fn key(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

#[test]
fn counts_repeats_and_keeps_the_last_address() {
    let reg = Unplanned::in_memory();
    let ip = Ipv4Addr::new(10, 10, 0, 100);
    assert!(reg.record(&key(1), seen(1, Some(ip)), 1000));
    // A later DISCOVER that got no address (pool exhausted) keeps the old one.
    assert!(!reg.record(&key(1), seen(1, None), 1010));
    let list = reg.list();
    assert_eq!(list.len(), 1);
    let r = &list[0];
    assert_eq!(r.count, 2);
    assert_eq!(r.ip, Some(ip));
    assert_eq!(r.vendor, Some("arista"));
    assert_eq!(r.mac.as_deref(), Some("02:00:00:00:00:01"));
    assert_eq!(r.client_id.as_deref(), Some("01020000000001"));
    assert_eq!(r.subnet, "10.10.0.0/24");
    assert_eq!(r.first_seen, "1970-01-01T00:16:40Z");
    assert_eq!(r.last_seen, "1970-01-01T00:16:50Z");
}

#[test]
fn survives_reopening_the_state_store() {
    let dir = tempfile::tempdir().unwrap();
    let ip = Ipv4Addr::new(10, 10, 0, 101);
    let before = {
        let state = StateStore::open(dir.path(), Durability::Fsync).unwrap();
        let reg = Unplanned::open(&state).unwrap();
        reg.record(&key(7), seen(7, Some(ip)), 2000);
        reg.record(&key(7), seen(7, Some(ip)), 2001);
        reg.record(&key(8), seen(8, None), 2002);
        let done = reg.flush(true).expect("a write was queued");
        done.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(reg.flush(true).is_none(), "nothing dirty after a flush");
        reg.list()
    };
    let state = StateStore::open(dir.path(), Durability::Fsync).unwrap();
    let reg = Unplanned::open(&state).unwrap();
    assert_eq!(reg.list(), before);
    assert_eq!(before.len(), 2);
    assert_eq!(before[1].count, 2);
    // Counting goes on from the stored count.
    reg.record(&key(7), seen(7, None), 2100);
    let again = reg.list();
    assert_eq!((again[0].count, again[0].ip), (3, Some(ip)));
}

#[test]
fn flushes_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(dir.path(), Durability::Os).unwrap();
    let reg = Unplanned::open(&state).unwrap();
    reg.record(&key(1), seen(1, None), 10);
    assert!(
        reg.flush(false).is_none(),
        "opened just now: interval not over"
    );
    reg.flush(true)
        .unwrap()
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    reg.record(&key(1), seen(1, None), 11);
    assert!(reg.flush(false).is_none());
}

#[test]
fn a_flood_keeps_the_most_recent_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(dir.path(), Durability::Os).unwrap();
    let reg = Unplanned::open(&state).unwrap();
    let total = 2 * CAP as u32 + 10;
    for i in 0..total {
        reg.record(&key(i), seen(i, None), u64::from(i));
    }
    reg.flush(true)
        .unwrap()
        .recv_timeout(Duration::from_secs(30))
        .unwrap();
    let list = reg.list();
    assert_eq!(list.len(), CAP);
    let oldest_kept = format!("JPE{}", total - CAP as u32);
    assert_eq!(list.last().unwrap().serial.as_deref(), Some(&*oldest_kept));
    let rows: i64 = state
        .reader()
        .unwrap()
        .query_row("SELECT count(*) FROM dhcp_unplanned", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, CAP as i64);
}

#[test]
fn rows_whose_write_failed_are_written_at_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(dir.path(), Durability::Os).unwrap();
    let reg = Unplanned::open(&state).unwrap();
    // A real failure: the table is gone, so the INSERT fails.
    let side = rusqlite::Connection::open(dir.path().join("ztpd.sqlite")).unwrap();
    side.execute_batch("DROP TABLE dhcp_unplanned").unwrap();
    reg.record(&key(1), seen(1, None), 10);
    reg.flush(true)
        .expect("a write was queued")
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    for step in MIGRATIONS {
        side.execute_batch(step).unwrap();
    }
    reg.flush(true)
        .expect("the failed row is dirty again")
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    let stored: i64 = side
        .query_row("SELECT count FROM dhcp_unplanned", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 1);
    assert!(reg.flush(true).is_none(), "nothing dirty once written");
}

#[test]
fn the_register_never_holds_more_than_its_cap() {
    let reg = Unplanned::in_memory();
    let mut most = 0;
    for i in 0..3 * CAP as u32 {
        reg.record(&key(i), seen(i, None), u64::from(i));
        // A client that keeps asking is never the one evicted.
        reg.record(&key(u32::MAX), seen(u32::MAX, None), u64::from(i));
        if i % 256 == 0 {
            most = most.max(reg.list().len());
        }
    }
    let list = reg.list();
    most = most.max(list.len());
    assert_eq!(most, CAP, "the register held {most} entries (cap {CAP})");
    assert!(list
        .iter()
        .any(|r| r.serial.as_deref() == Some(&*format!("JPE{}", u32::MAX))));
    // The rest are the most recent ones.
    let oldest_kept = format!("JPE{}", 3 * CAP as u32 - (CAP as u32 - 1));
    assert_eq!(list.last().unwrap().serial.as_deref(), Some(&*oldest_kept));
}
