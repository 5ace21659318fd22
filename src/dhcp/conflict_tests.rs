use std::net::Ipv4Addr;

use super::ConflictKind;
use crate::dhcp::fixture::planned_mac;
use crate::dhcp::handler::tests::{decoded, unplanned, without_mac, World, T0};
use crate::dhcp::packet::MessageType;
use crate::dhcp::wire::RequestBuilder;

#[test]
fn another_mac_claiming_a_serial_gets_no_planned_address() {
    let mut w = World::new();
    // arista1 (.3) is planned with MAC planned_mac(3) and serial SER-arista1.
    let vc: &[u8] = b"Arista;DCS-7050SX-64;01.00;SER-arista1";
    let ack = w.dora(planned_mac(3), &[(60, vc)], T0);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 10, 0, 3));
    let d = RequestBuilder::new(MessageType::Discover, unplanned(1), 9).option(60, vc.to_vec());
    let out = w.send(d, T0 + 1);
    let offer = decoded(&out);
    assert!(
        w.view.subnets[0].in_pool(offer.yiaddr),
        "{:?}",
        offer.yiaddr
    );
    assert!(!offer.options.contains_key(&12), "no planned hostname");
    let c = out.conflict.expect("a conflict is raised");
    assert_eq!(
        (c.device.as_str(), c.why),
        ("arista1", ConflictKind::WrongMac)
    );
    assert!(
        c.describe().contains("02:aa:00:00:00:01"),
        "{}",
        c.describe()
    );
    assert!(out.seen.is_some(), "recorded as unplanned");
    // Asking for the planned address directly is refused.
    let r = RequestBuilder::new(MessageType::Request, unplanned(1), 10)
        .option(60, vc.to_vec())
        .requested(Ipv4Addr::new(10, 10, 0, 3));
    assert_eq!(
        decoded(&w.send(r, T0 + 2)).msg_type(),
        Some(MessageType::Nak)
    );
    // The real device keeps its address.
    let ack = w.dora(planned_mac(3), &[(60, vc)], T0 + 3);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 10, 0, 3));
    let l = w.leases.get(Ipv4Addr::new(10, 10, 0, 3)).unwrap();
    assert_eq!(l.mac, Some(planned_mac(3)));
}

#[test]
fn an_address_never_has_two_live_leases() {
    // Without a planned MAC the serial is all there is: the first holder
    // keeps the address until its lease ends.
    let mut w = without_mac("arista1");
    let vc: &[u8] = b"Arista;DCS-7050SX-64;01.00;SER-arista1";
    let first = w.dora(unplanned(1), &[(60, vc)], T0);
    assert_eq!(first.yiaddr, Ipv4Addr::new(10, 10, 0, 3));
    let second = w.dora(unplanned(2), &[(60, vc)], T0 + 1);
    assert!(w.view.subnets[0].in_pool(second.yiaddr));
    let l = w.leases.get(Ipv4Addr::new(10, 10, 0, 3)).unwrap();
    assert_eq!(l.mac, Some(unplanned(1)));
    let d = RequestBuilder::new(MessageType::Discover, unplanned(2), 3).option(60, vc.to_vec());
    assert_eq!(
        w.send(d, T0 + 2).conflict.map(|c| c.why),
        Some(ConflictKind::AddressHeld)
    );
    // The same MAC with another client-id (boot loader, then OS) is the
    // same device.
    let id: &[u8] = b"\x00os-client-id";
    let again = w.dora(unplanned(1), &[(60, vc), (61, id)], T0 + 3);
    assert_eq!(again.yiaddr, Ipv4Addr::new(10, 10, 0, 3));
    // Once the first lease has expired, the other client may have it.
    let later = T0 + 3 + 3600 + 1;
    let ack = w.dora(unplanned(2), &[(60, vc)], later);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 10, 0, 3));
}
