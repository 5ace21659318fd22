//! Raw bytes into the DHCPv6 packet path: the structure check and parse,
//! then the handler against a dual-stack plan with every vendor profile and
//! a lease table that lives across inputs. Must never panic; every reply
//! must decode again with dhcproto (a Relay-reply for a relayed request).
#![no_main]

use std::cell::RefCell;
use std::net::Ipv6Addr;

use dhcproto::Decodable;
use libfuzzer_sys::fuzz_target;
use ztpd::dhcp::fixture::{lab_model6, HTTP_PORT, SERVER6};
use ztpd::dhcp6::handler::{handle, Arrival6};
use ztpd::dhcp6::leases::LeaseTable6;
use ztpd::dhcp6::packet::parse;
use ztpd::dhcp6::Dhcp6View;

const SERVER_DUID: &[u8] = &[0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

thread_local! {
    static WORLD: RefCell<(Dhcp6View, LeaseTable6)> =
        RefCell::new((Dhcp6View::build(&lab_model6(), HTTP_PORT), LeaseTable6::default()));
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse(data) else { return };
    let _ = req.mac();
    let addrs = [SERVER6];
    let foreign = [Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1)];
    let pick = data.last().copied().unwrap_or(0);
    let arrival = if pick & 1 == 0 {
        Arrival6 { ifname: "eth1", addrs: &addrs }
    } else {
        Arrival6 { ifname: "uplink", addrs: &foreign }
    };
    let now = 1_000_000 + u64::from(pick) * 600;
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        if w.1.len() > 10_000 {
            w.1 = LeaseTable6::default();
        }
        let (view, leases) = &mut *w;
        let out = handle(view, leases, &req, arrival, SERVER_DUID, now);
        if let Some(r) = out.reply {
            if req.relays.is_empty() {
                assert!(dhcproto::v6::Message::from_bytes(&r).is_ok(), "reply decodes");
            } else {
                assert_eq!(r.first(), Some(&13), "a Relay-reply");
            }
        }
    });
});
