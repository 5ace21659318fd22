use super::*;
use crate::dhcp::fixture::{lab_model, planned_mac, HTTP_PORT, SERVER};
use crate::dhcp::packet::parse;
use crate::dhcp::wire::{DecodedReply, RequestBuilder};

const IFADDRS: [Ipv4Addr; 1] = [SERVER];
const LAB: Arrival<'static> = Arrival {
    ifname: "eth1",
    addrs: &IFADDRS,
};
pub(crate) const T0: u64 = 1_000_000;

pub(crate) struct World {
    pub view: DhcpView,
    pub leases: LeaseTable,
}

impl World {
    pub fn new() -> World {
        World::with(|_| {})
    }
    /// The lab model after `edit`.
    fn with(edit: impl FnOnce(&mut crate::plan::model::Model)) -> World {
        let mut model = lab_model();
        edit(&mut model);
        let (view, warnings) = DhcpView::build(&model, HTTP_PORT);
        assert!(warnings.is_empty(), "{warnings:?}");
        World {
            view,
            leases: LeaseTable::new(),
        }
    }
    pub fn send(&mut self, b: RequestBuilder, now: u64) -> Outcome {
        self.send_on(b, LAB, now)
    }
    fn send_on(&mut self, b: RequestBuilder, arrival: Arrival<'_>, now: u64) -> Outcome {
        let req = parse(&b.encode()).expect("test packet parses");
        handle(&self.view, &mut self.leases, &req, arrival, now)
    }
    /// DISCOVER then REQUEST; returns the ACK.
    pub fn dora(&mut self, mac: [u8; 6], extra: &[(u8, &[u8])], now: u64) -> DecodedReply {
        let mut d = RequestBuilder::new(MessageType::Discover, mac, 1);
        for (c, v) in extra {
            d = d.option(*c, v.to_vec());
        }
        let offer = decoded(&self.send(d, now));
        assert_eq!(offer.msg_type(), Some(MessageType::Offer));
        let mut r = RequestBuilder::new(MessageType::Request, mac, 2)
            .requested(offer.yiaddr)
            .server_id(SERVER);
        for (c, v) in extra {
            r = r.option(*c, v.to_vec());
        }
        let out = self.send(r, now);
        let ack = decoded(&out);
        assert_eq!(ack.msg_type(), Some(MessageType::Ack));
        assert_eq!(out.writes.len(), 1, "an ACK persists its lease");
        ack
    }
}

pub(crate) fn decoded(o: &Outcome) -> DecodedReply {
    let r = o
        .reply
        .as_ref()
        .unwrap_or_else(|| panic!("no reply: {o:?}"));
    DecodedReply::decode(&r.bytes).expect("reply decodes")
}

pub(crate) fn unplanned(n: u8) -> [u8; 6] {
    [0x02, 0xaa, 0, 0, 0, n]
}

#[test]
fn planned_mac_gets_its_address_hostname_and_header() {
    let mut w = World::new();
    let ack = w.dora(planned_mac(2), &[], T0); // generic1 at .2
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 10, 0, 2));
    assert_eq!(ack.text(12).as_deref(), Some("generic1"));
    assert_eq!(ack.siaddr, SERVER);
    assert_eq!(ack.sname, "10.10.0.1");
    let url = "http://10.10.0.1:8080/files/bootstrap/generic";
    assert_eq!(ack.text(67).as_deref(), Some(url));
    assert_eq!(ack.file, url);
    assert_eq!(ack.u32(51), Some(3600));
    assert_eq!(ack.u32(58), Some(1800));
    assert_eq!(ack.u32(59), Some(3150));
    assert_eq!(ack.ips(1), vec![Ipv4Addr::new(255, 255, 255, 0)]);
    assert_eq!(ack.ips(3), vec![SERVER]);
    assert_eq!(ack.ips(6), vec![SERVER]);
    assert_eq!(ack.text(15).as_deref(), Some("lab.example"));
    assert_eq!(ack.ips(54), vec![SERVER]);
    assert!(
        ack.len >= 300,
        "padded to the BOOTP minimum, got {}",
        ack.len
    );
}

/// The lab with no planned MAC for `device`.
pub(crate) fn without_mac(device: &str) -> World {
    World::with(|m| {
        for s in &mut m.sites {
            for d in s.devices.iter_mut().filter(|d| d.name == device) {
                std::sync::Arc::make_mut(d).mac = None;
            }
        }
    })
}

#[test]
fn serial_in_option_60_beats_an_unknown_mac() {
    // arista1 is device #3 (.3), serial SER-arista1; the plan gives no MAC.
    let mut w = without_mac("arista1");
    let vc: &[u8] = b"Arista;DCS-7050SX-64;01.00;SER-arista1";
    let ack = w.dora(unplanned(1), &[(60, vc)], T0);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 10, 0, 3));
    assert_eq!(ack.text(12).as_deref(), Some("arista1"));
    assert_eq!(
        ack.text(67).as_deref(),
        Some("http://10.10.0.1:8080/files/bootstrap/arista")
    );
}

#[test]
fn cisco_client_id_mac_identifies_the_device() {
    let mut w = World::new();
    // cisco-ios1 is device #4 with MAC 02:1c:73:00:00:04.
    let mut id = vec![0u8];
    id.extend_from_slice(b"cisco-021c.7300.0004-Vl1");
    let ack = w.dora(unplanned(2), &[(61, &id)], T0);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 10, 0, 4));
    assert_eq!(ack.ips(150), vec![SERVER]);
    assert_eq!(ack.text(66).as_deref(), Some("10.10.0.1"));
    assert_eq!(ack.text(67).as_deref(), Some("network-confg"));
}

#[test]
fn every_profile_sends_its_boot_options_unrequested() {
    let mut w = World::new();
    let url = |p: &str| format!("http://10.10.0.1:8080/files/{p}");
    for (n, v) in Vendor::ALL.iter().enumerate() {
        let ack = w.dora(planned_mac(n as u8 + 2), &[], T0);
        assert_eq!(
            ack.text(12).as_deref(),
            Some(format!("{}1", v.name()).as_str())
        );
        match v {
            Vendor::Generic | Vendor::Arista | Vendor::CiscoIosxe | Vendor::Sonic => {
                assert_eq!(
                    ack.text(67),
                    Some(url(&format!("bootstrap/{}", v.name()))),
                    "{v}"
                )
            }
            Vendor::CiscoIos => assert_eq!(ack.ips(150), vec![SERVER]),
            Vendor::CiscoNxos => {
                assert_eq!(ack.text(67).as_deref(), Some("bootstrap/cisco-nxos"));
                assert_eq!(ack.ips(150), vec![SERVER]);
            }
            Vendor::Juniper => {
                let subs: Vec<(u8, String)> = crate::dhcp::packet::tlvs(&ack.options[&43])
                    .map(|(c, v)| (c, String::from_utf8_lossy(v).into_owned()))
                    .collect();
                assert_eq!(
                    subs,
                    vec![
                        (0, "files/images/juniper.bin".to_string()),
                        (1, "files/configs/juniper1.cfg".to_string()),
                        (3, "http".to_string()),
                        (5, "8080".to_string()),
                    ]
                );
                assert_eq!(ack.text(66).as_deref(), Some("10.10.0.1"));
                assert_eq!(ack.ips(150), vec![SERVER]);
            }
            Vendor::Huawei => {
                assert_eq!(ack.text(66).as_deref(), Some("10.10.0.1"));
                assert_eq!(ack.text(67).as_deref(), Some("bootstrap/huawei.ini"));
                assert!(
                    !ack.options.contains_key(&148),
                    "148 is a cloud controller's"
                );
            }
            Vendor::Cumulus => assert_eq!(ack.text(239), Some(url("bootstrap/cumulus"))),
            Vendor::Onie => {
                // ztpd's installer even though the model has an image: the
                // image comes only after hello and approval.
                let installer = url("bootstrap/onie");
                assert_eq!(ack.text(114), Some(installer.clone()));
                let o125 = &ack.options[&125];
                assert_eq!(&o125[..4], &42623u32.to_be_bytes());
                assert_eq!(usize::from(o125[4]), o125.len() - 5);
                assert_eq!((o125[5], &o125[7..]), (1, installer.as_bytes()));
            }
        }
    }
}

#[test]
fn model_overrides_replace_profile_options() {
    let mut w = World::new();
    let ack = w.dora(planned_mac(20), &[], T0);
    assert_eq!(
        ack.text(67).as_deref(),
        Some("http://example.invalid/custom.sh")
    );
    assert_eq!(ack.ips(150), vec![SERVER, Ipv4Addr::new(10, 10, 0, 2)]);
    assert_eq!(ack.options[&43], vec![1, 2, 0xab]);
}

#[test]
fn unplanned_client_gets_a_pool_address_and_is_recorded() {
    let mut w = World::new();
    let d = RequestBuilder::new(MessageType::Discover, unplanned(1), 7)
        .option(60, b"Juniper-ex4300-48t-PE123".to_vec());
    let out = w.send(d, T0);
    let offer = decoded(&out);
    assert!(w.view.subnets[0].in_pool(offer.yiaddr));
    assert!(
        offer.options.contains_key(&43),
        "recognised vendor gets its boot options"
    );
    assert!(!offer.options.contains_key(&12));
    let seen = out.seen.expect("unplanned recorded");
    assert_eq!(seen.vendor, Some(Vendor::Juniper));
    assert_eq!(seen.model.as_deref(), Some("ex4300-48t"));
    assert_eq!(seen.serial.as_deref(), Some("PE123"));
    assert_eq!(seen.ip, Some(offer.yiaddr.into()));
    assert_eq!(seen.site, "lab");
    // An unrecognised client gets an address but no boot options.
    let ack = w.dora(unplanned(2), &[], T0);
    assert!(!ack.options.contains_key(&67) && !ack.options.contains_key(&43));
}

#[test]
fn unplanned_device_of_a_planned_model_gets_that_model_overrides() {
    let mut w = World::new();
    let vc: &[u8] = b"Arista;DCS-CUSTOM;01.00;UNKNOWN9";
    let ack = w.dora(unplanned(3), &[(60, vc)], T0);
    assert!(w.view.subnets[0].in_pool(ack.yiaddr));
    assert_eq!(
        ack.text(67).as_deref(),
        Some("http://example.invalid/custom.sh")
    );
}

/// Option 125 read the way ONIE's `import_vivso` and `import_vendoropts`
/// read it: enterprise blocks, only 42623's TLVs, sub-option 1 = installer.
fn onie_installer_url(o125: &[u8]) -> Option<String> {
    let mut rest = o125;
    while rest.len() >= 5 {
        let ent = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(rest[4]);
        let block = rest.get(5..5 + len)?;
        if ent == 42623 {
            let mut b = block;
            while b.len() >= 2 {
                let (t, l) = (b[0], usize::from(b[1]));
                let v = b.get(2..2 + l)?;
                if t == 1 {
                    return Some(String::from_utf8_lossy(v).into_owned());
                }
                b = &b[2 + l..];
            }
        }
        rest = &rest[5 + len..];
    }
    None
}

#[test]
fn unplanned_box_of_a_planned_model_is_never_told_where_an_image_is() {
    let mut w = World::new();
    // An ONIE box of the planned platform, as ONIE's udhcpc_args sends it.
    let onie_vc: &[u8] = b"onie_vendor:MODEL-onie-r0";
    let ack = w.dora(unplanned(4), &[(60, onie_vc)], T0);
    assert!(w.view.subnets[0].in_pool(ack.yiaddr));
    let installer = "http://10.10.0.1:8080/files/bootstrap/onie".to_string();
    assert_eq!(ack.text(114), Some(installer.clone()));
    assert_eq!(onie_installer_url(&ack.options[&125]), Some(installer));
    // A Juniper box of the planned model: config and transfer mode, no image.
    let jun_vc: &[u8] = b"Juniper-MODEL-juniper-NEW123";
    let ack = w.dora(unplanned(5), &[(60, jun_vc)], T0);
    let subs: Vec<u8> = crate::dhcp::packet::tlvs(&ack.options[&43])
        .map(|(c, _)| c)
        .collect();
    assert!(!subs.contains(&0), "sub-option 0 (image) sent: {subs:?}");
}

#[test]
fn onie_option_125_parses_as_onie_parses_it() {
    let mut w = World::new();
    let onie = Vendor::ALL.iter().position(|v| *v == Vendor::Onie).unwrap();
    let ack = w.dora(planned_mac(onie as u8 + 2), &[], T0); // onie1
    assert_eq!(ack.text(12).as_deref(), Some("onie1"));
    assert_eq!(
        onie_installer_url(&ack.options[&125]).as_deref(),
        Some("http://10.10.0.1:8080/files/bootstrap/onie")
    );
    // Another enterprise's block first is skipped, as ONIE skips it.
    let mut two = vec![0, 0, 0, 9, 3, 1, 1, b'x'];
    two.extend_from_slice(&ack.options[&125]);
    assert!(onie_installer_url(&two).is_some());
    let mut wrong = ack.options[&125].clone();
    wrong[..4].copy_from_slice(&40310u32.to_be_bytes());
    assert_eq!(onie_installer_url(&wrong), None);
}

#[test]
fn planned_address_is_never_given_to_another_client() {
    let mut w = World::new();
    let d = RequestBuilder::new(MessageType::Discover, unplanned(1), 1)
        .requested(Ipv4Addr::new(10, 10, 0, 2));
    let offer = decoded(&w.send(d, T0));
    assert_ne!(offer.yiaddr, Ipv4Addr::new(10, 10, 0, 2));
    // Nor by asking for it directly (INIT-REBOOT).
    let r = RequestBuilder::new(MessageType::Request, unplanned(1), 2)
        .requested(Ipv4Addr::new(10, 10, 0, 2));
    assert_eq!(decoded(&w.send(r, T0)).msg_type(), Some(MessageType::Nak));
}

#[test]
fn planned_device_asking_for_another_address_is_nakd_then_gets_its_own() {
    let mut w = World::new();
    let r = RequestBuilder::new(MessageType::Request, planned_mac(2), 1)
        .requested(Ipv4Addr::new(10, 10, 0, 100));
    let nak = decoded(&w.send(r, T0));
    assert_eq!(nak.msg_type(), Some(MessageType::Nak));
    assert!(!nak.options.contains_key(&51) && !nak.options.contains_key(&67));
    assert_eq!(
        w.dora(planned_mac(2), &[], T0).yiaddr,
        Ipv4Addr::new(10, 10, 0, 2)
    );
}

#[test]
fn same_client_gets_the_same_address_again() {
    let mut w = World::new();
    let first = w.dora(unplanned(5), &[], T0).yiaddr;
    w.dora(unplanned(6), &[], T0);
    assert_eq!(w.dora(unplanned(5), &[], T0 + 10).yiaddr, first);
}

#[test]
fn renew_unicast_and_rebind_extend_the_lease() {
    let mut w = World::new();
    let ip = w.dora(unplanned(1), &[], T0).yiaddr;
    let renew = RequestBuilder::new(MessageType::Request, unplanned(1), 3).ciaddr(ip);
    let out = w.send(renew, T0 + 1800);
    assert_eq!(out.reply.as_ref().map(|r| r.dest), Some(Dest::Unicast(ip)));
    let ack = decoded(&out);
    assert_eq!((ack.msg_type(), ack.yiaddr), (Some(MessageType::Ack), ip));
    assert_eq!(out.writes[0].expires, T0 + 1800 + 3600);
    let rebind = RequestBuilder::new(MessageType::Request, unplanned(1), 4)
        .ciaddr(ip)
        .broadcast();
    let out = w.send(rebind, T0 + 3200);
    assert_eq!(decoded(&out).msg_type(), Some(MessageType::Ack));
    // Someone else renewing that address is refused.
    let thief = RequestBuilder::new(MessageType::Request, unplanned(9), 5).ciaddr(ip);
    assert_eq!(
        decoded(&w.send(thief, T0 + 3300)).msg_type(),
        Some(MessageType::Nak)
    );
}

#[test]
fn expired_lease_is_reused_only_after_expiry() {
    let mut w = World::new();
    // Fill the 10-address pool.
    let mut ips = Vec::new();
    for n in 0..10 {
        ips.push(w.dora(unplanned(n), &[], T0).yiaddr);
    }
    let d = RequestBuilder::new(MessageType::Discover, unplanned(50), 1);
    let out = w.send(d.clone(), T0 + 3599);
    assert_eq!(out.dropped, Some(Dropped::PoolExhausted(0)));
    assert!(out.reply.is_none());
    let offer = decoded(&w.send(d, T0 + 3600));
    assert!(ips.contains(&offer.yiaddr));
}

#[test]
fn starvation_leaves_planned_devices_served() {
    let mut w = World::new();
    for n in 0..200u8 {
        let _ = w.send(
            RequestBuilder::new(MessageType::Discover, unplanned(n), 1),
            T0,
        );
    }
    let pool = w.view.subnets[0].pool;
    assert_eq!(w.leases.used_in((pool.0.into(), pool.1.into()), T0), 10);
    assert_eq!(
        w.dora(planned_mac(3), &[], T0).yiaddr,
        Ipv4Addr::new(10, 10, 0, 3)
    );
}

#[test]
fn offers_expire_and_free_the_pool() {
    let mut w = World::new();
    for n in 0..10 {
        w.send(
            RequestBuilder::new(MessageType::Discover, unplanned(n), 1),
            T0,
        );
    }
    let d = RequestBuilder::new(MessageType::Discover, unplanned(99), 1);
    assert!(w.send(d.clone(), T0 + 1).reply.is_none());
    assert!(w.send(d, T0 + OFFER_HOLD_SECS).reply.is_some());
}

#[test]
fn request_for_another_server_frees_the_offer() {
    let mut w = World::new();
    let offer = decoded(&w.send(
        RequestBuilder::new(MessageType::Discover, unplanned(1), 1),
        T0,
    ));
    let r = RequestBuilder::new(MessageType::Request, unplanned(1), 2)
        .requested(offer.yiaddr)
        .server_id(Ipv4Addr::new(10, 10, 0, 254));
    let out = w.send(r, T0);
    assert_eq!(out.dropped, Some(Dropped::OtherServer));
    assert!(w.leases.get(offer.yiaddr).is_none());
}

#[test]
fn decline_quarantines_the_address() {
    let mut w = World::new();
    let ip = w.dora(unplanned(1), &[], T0).yiaddr;
    let dec = RequestBuilder::new(MessageType::Decline, unplanned(1), 3)
        .requested(ip)
        .server_id(SERVER);
    let out = w.send(dec, T0 + 1);
    assert!(out.reply.is_none());
    assert_eq!(out.writes.len(), 1);
    assert_eq!(out.writes[0].state, LeaseState::Declined);
    // The client comes back and gets another address; so does everyone else.
    assert_ne!(w.dora(unplanned(1), &[], T0 + 2).yiaddr, ip);
    for n in 2..12 {
        let o = w.send(
            RequestBuilder::new(MessageType::Discover, unplanned(n), 1),
            T0 + 3,
        );
        if let Some(r) = &o.reply {
            assert_ne!(DecodedReply::decode(&r.bytes).map(|d| d.yiaddr), Some(ip));
        }
    }
    // After the quarantine it is free again.
    let later = T0 + QUARANTINE_SECS + 10;
    let d = RequestBuilder::new(MessageType::Discover, unplanned(60), 1).requested(ip);
    assert_eq!(decoded(&w.send(d, later)).yiaddr, ip);
}

#[test]
fn release_frees_the_address_for_others() {
    let mut w = World::new();
    let ip = w.dora(unplanned(1), &[], T0).yiaddr;
    let rel = RequestBuilder::new(MessageType::Release, unplanned(1), 3)
        .ciaddr(ip)
        .server_id(SERVER);
    let out = w.send(rel, T0 + 5);
    assert!(out.reply.is_none());
    assert_eq!(out.writes[0].state, LeaseState::Released);
    let d = RequestBuilder::new(MessageType::Discover, unplanned(2), 1).requested(ip);
    assert_eq!(decoded(&w.send(d, T0 + 6)).yiaddr, ip);
    // A release from someone who does not hold the lease changes nothing.
    let rel = RequestBuilder::new(MessageType::Release, unplanned(7), 3).ciaddr(ip);
    assert!(w.send(rel, T0 + 7).writes.is_empty());
}

#[test]
fn inform_gets_options_without_a_lease() {
    let mut w = World::new();
    let ip = Ipv4Addr::new(10, 10, 0, 50);
    let out = w.send(
        RequestBuilder::new(MessageType::Inform, planned_mac(2), 9).ciaddr(ip),
        T0,
    );
    assert!(out.writes.is_empty());
    assert_eq!(out.reply.as_ref().map(|r| r.dest), Some(Dest::Unicast(ip)));
    let ack = decoded(&out);
    assert_eq!(ack.msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert!(!ack.options.contains_key(&51));
    assert!(ack.options.contains_key(&67));
}

#[test]
fn relayed_request_selects_by_giaddr_and_echoes_option_82() {
    let mut w = World::new();
    let ra = vec![1, 3, b'e', b't', b'1'];
    let d = RequestBuilder::new(MessageType::Discover, unplanned(1), 1)
        .giaddr(Ipv4Addr::new(10, 10, 0, 254))
        .option(82, ra.clone());
    // Arrived on an interface with no plan address: relayed traffic is still served.
    let uplink = Arrival {
        ifname: "uplink0",
        addrs: &[],
    };
    let out = w.send_on(d, uplink, T0);
    assert_eq!(
        out.reply.as_ref().map(|r| r.dest),
        Some(Dest::Relay(Ipv4Addr::new(10, 10, 0, 254)))
    );
    let offer = decoded(&out);
    assert_eq!(offer.giaddr, Ipv4Addr::new(10, 10, 0, 254));
    assert_eq!(offer.options.get(&82), Some(&ra));
    assert_eq!(*offer.options.keys().last().unwrap(), 82);
}

#[test]
fn link_selection_overrides_giaddr_and_unknown_subnets_drop() {
    let mut w = World::new();
    let d = RequestBuilder::new(MessageType::Discover, unplanned(1), 1)
        .giaddr(Ipv4Addr::new(192, 168, 5, 1))
        .option(82, vec![5, 4, 10, 10, 0, 0]);
    assert!(w.send(d, T0).reply.is_some());
    let d = RequestBuilder::new(MessageType::Discover, unplanned(1), 1)
        .giaddr(Ipv4Addr::new(192, 168, 5, 1));
    assert_eq!(w.send(d, T0).dropped, Some(Dropped::NoSubnet));
}

#[test]
fn never_answers_on_a_foreign_interface() {
    let mut w = World::new();
    let uplink = Arrival {
        ifname: "uplink0",
        addrs: &[Ipv4Addr::new(192, 0, 2, 10)],
    };
    let out = w.send_on(
        RequestBuilder::new(MessageType::Discover, unplanned(1), 1),
        uplink,
        T0,
    );
    assert_eq!(out.dropped, Some(Dropped::ForeignInterface));
    assert!(out.reply.is_none());
}

#[test]
fn destination_follows_the_broadcast_flag_and_nak_rules() {
    let mut w = World::new();
    let out = w.send(
        RequestBuilder::new(MessageType::Discover, unplanned(1), 1).broadcast(),
        T0,
    );
    let r = out.reply.unwrap();
    assert_eq!(r.dest, Dest::Broadcast);
    assert_eq!(
        DecodedReply::decode(&r.bytes).unwrap().flags & 0x8000,
        0x8000
    );
    // No broadcast flag, no address yet: unicast to the offered address at
    // the client's MAC (RFC 2131 §4.1), for the OFFER and the ACK alike.
    let out = w.send(
        RequestBuilder::new(MessageType::Discover, unplanned(2), 2),
        T0,
    );
    let offer = decoded(&out);
    assert_eq!(offer.flags & 0x8000, 0);
    assert_eq!(
        out.reply.as_ref().map(|r| r.dest),
        Some(Dest::Hardware {
            ip: offer.yiaddr,
            mac: unplanned(2)
        })
    );
    let req = RequestBuilder::new(MessageType::Request, unplanned(2), 3)
        .requested(offer.yiaddr)
        .server_id(offer.siaddr);
    let out = w.send(req, T0);
    assert_eq!(decoded(&out).msg_type(), Some(MessageType::Ack));
    assert_eq!(
        out.reply.as_ref().map(|r| r.dest),
        Some(Dest::Hardware {
            ip: offer.yiaddr,
            mac: unplanned(2)
        })
    );
    // A NAK to a client without an address is broadcast, flag or not.
    let wrong = RequestBuilder::new(MessageType::Request, unplanned(3), 4)
        .requested(Ipv4Addr::new(10, 10, 0, 250))
        .server_id(offer.siaddr);
    let out = w.send(wrong, T0);
    assert_eq!(decoded(&out).msg_type(), Some(MessageType::Nak));
    assert_eq!(out.reply.map(|r| r.dest), Some(Dest::Broadcast));
    let nak = RequestBuilder::new(MessageType::Request, unplanned(1), 1)
        .ciaddr(Ipv4Addr::new(10, 10, 0, 2))
        .giaddr(Ipv4Addr::new(10, 10, 0, 254));
    let out = w.send(nak, T0);
    let r = out.reply.unwrap();
    assert_eq!(r.msg_type, MessageType::Nak);
    assert_eq!(r.dest, Dest::Relay(Ipv4Addr::new(10, 10, 0, 254)));
    assert_eq!(
        DecodedReply::decode(&r.bytes).unwrap().flags & 0x8000,
        0x8000
    );
}

#[test]
fn server_messages_sent_to_us_are_ignored() {
    let mut w = World::new();
    let out = w.send(RequestBuilder::new(MessageType::Offer, unplanned(1), 1), T0);
    assert_eq!(out.dropped, Some(Dropped::NotAClientMessage));
}

#[test]
fn small_max_size_drops_unrequested_boot_options() {
    let mut w = World::new();
    // ONIE sends 114 and 125 with long URLs; pretend the client is tiny.
    let mut model = lab_model();
    let long = "x".repeat(200);
    if let Some(m) = model.sites[0].models.get_mut("onie") {
        m.dhcp_options
            .insert(114, crate::plan::model::OptionValue::Text(long.clone()));
        m.dhcp_options
            .insert(239, crate::plan::model::OptionValue::Text(long.clone()));
        m.dhcp_options
            .insert(224, crate::plan::model::OptionValue::Text(long));
    }
    w.view = DhcpView::build(&model, HTTP_PORT).0;
    let onie_mac =
        planned_mac(Vendor::ALL.iter().position(|v| *v == Vendor::Onie).unwrap() as u8 + 2);
    let d = RequestBuilder::new(MessageType::Discover, onie_mac, 1).option(55, vec![1, 3, 114]);
    let r = decoded(&w.send(d, T0));
    assert!(r.len <= 576, "reply {} bytes", r.len);
    assert!(r.options.contains_key(&114) && !r.options.contains_key(&239));
}
