//! Raw bytes into the DHCP packet path: parse, then the handler against a
//! plan with every vendor profile and a lease table that lives across inputs
//! (so state built by earlier inputs is exercised too). Must never panic.
#![no_main]

use std::cell::RefCell;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use ztpd::dhcp::fixture::{lab_model, HTTP_PORT, SERVER};
use ztpd::dhcp::handler::{handle, Arrival};
use ztpd::dhcp::leases::LeaseTable;
use ztpd::dhcp::packet::parse;
use ztpd::dhcp::DhcpView;

thread_local! {
    static WORLD: RefCell<(DhcpView, LeaseTable)> =
        RefCell::new((DhcpView::build(&lab_model(), HTTP_PORT).0, LeaseTable::new()));
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse(data) else { return };
    let _ = req.client_key();
    let addrs = [SERVER];
    let foreign = [Ipv4Addr::new(192, 0, 2, 1)];
    // The first byte after the header picks the clock and the arrival interface.
    let pick = data.get(240).copied().unwrap_or(0);
    let arrival = if pick & 1 == 0 {
        Arrival {
            ifname: "eth1",
            addrs: &addrs,
        }
    } else {
        Arrival {
            ifname: "uplink",
            addrs: &foreign,
        }
    };
    let now = 1_000_000 + u64::from(pick) * 600;
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        if w.1.len() > 10_000 {
            w.1 = LeaseTable::new();
        }
        let (view, leases) = &mut *w;
        let out = handle(view, leases, &req, arrival, now);
        if let Some(r) = out.reply {
            assert!(
                r.bytes.len() >= 300,
                "replies are padded to the BOOTP minimum"
            );
        }
    });
});
