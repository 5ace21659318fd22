use std::net::Ipv6Addr;

use dhcproto::v6::{
    DhcpOption, IAAddr, Message, MessageType, OptionCode, Status, UnknownOption, IANA, IAPD, IATA,
    ORO,
};
use dhcproto::{Decodable, Decoder, Encodable};

use super::*;
use crate::dhcp::fixture::{lab_model6, planned_mac, HTTP_PORT, SERVER6, SONIC_DUID};
use crate::dhcp6::packet::parse;

const SERVER_DUID: &[u8] = &[0, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9];
/// A DUID-LL of an unplanned client.
const STRANGER: &[u8] = &[0, 3, 0, 1, 0x02, 0x99, 0, 0, 0, 1];

fn view() -> Dhcp6View {
    Dhcp6View::build(&lab_model6(), HTTP_PORT)
}

fn served() -> Vec<Ipv6Addr> {
    vec!["2001:db8:10::1".parse().unwrap()]
}

fn msg(t: MessageType, duid: &[u8], server: bool) -> Message {
    let mut m = Message::new_with_id(t, [1, 2, 3]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(duid.to_vec()));
    if server {
        o.insert(DhcpOption::ServerId(SERVER_DUID.to_vec()));
    }
    o.insert(DhcpOption::IANA(IANA {
        id: 7,
        t1: 0,
        t2: 0,
        opts: Default::default(),
    }));
    // Stock dhclient -6: 23, 24 and no 59.
    o.insert(DhcpOption::ORO(ORO {
        opts: vec![OptionCode::DomainNameServers, OptionCode::DomainSearchList],
    }));
    m
}

fn run(leases: &mut LeaseTable6, m: &Message, ifname: &str) -> Outcome6 {
    let req = parse(&m.to_vec().unwrap()).unwrap();
    let addrs = served();
    handle(
        &view(),
        leases,
        &req,
        Arrival6 {
            ifname,
            addrs: &addrs,
        },
        SERVER_DUID,
        1000,
    )
}

fn reply_of(out: &Outcome6) -> Message {
    Message::decode(&mut Decoder::new(out.reply.as_ref().expect("a reply"))).unwrap()
}

fn first_addr(m: &Message) -> Option<(Ipv6Addr, u32)> {
    match m.opts().get(OptionCode::IANA) {
        Some(DhcpOption::IANA(ia)) => ia.opts.iter().find_map(|o| match o {
            DhcpOption::IAAddr(a) => Some((a.addr, a.valid_life)),
            _ => None,
        }),
        _ => None,
    }
}

fn unknown(m: &Message, code: u16) -> Option<String> {
    m.opts().iter().find_map(|o| match o {
        DhcpOption::Unknown(u) if u16::from(u.code()) == code => {
            Some(String::from_utf8_lossy(u.data()).into_owned())
        }
        _ => None,
    })
}

#[test]
fn a_planned_duid_gets_its_ip6_and_the_boot_urls_unasked() {
    let mut t = LeaseTable6::default();
    let out = run(
        &mut t,
        &msg(MessageType::Solicit, &SONIC_DUID, false),
        "eth1",
    );
    assert_eq!(out.device.as_deref(), Some("sonic1"));
    let m = reply_of(&out);
    assert_eq!(m.msg_type(), MessageType::Advertise);
    let sonic_ip: Ipv6Addr = "2001:db8:10::9".parse().unwrap();
    assert_eq!(first_addr(&m).map(|a| a.0), Some(sonic_ip));
    assert_eq!(
        unknown(&m, 59).as_deref(),
        Some("http://[2001:db8:10::1]:8080/files/bootstrap/sonic")
    );
    assert_eq!(
        unknown(&m, 239).as_deref(),
        Some("http://[2001:db8:10::1]:8080/files/bootstrap/generic")
    );
    assert!(
        matches!(m.opts().get(OptionCode::DomainNameServers), Some(DhcpOption::DomainNameServers(d)) if d == &vec![SERVER6])
    );
    assert!(out.writes.is_empty(), "an Advertise binds nothing");
    assert!(out.seen.is_none());
}

#[test]
fn solicit_request_renew_release_bind_and_free_a_pool_address() {
    let mut t = LeaseTable6::default();
    let adv = run(&mut t, &msg(MessageType::Solicit, STRANGER, false), "eth1");
    let (ip, _) = first_addr(&reply_of(&adv)).unwrap();
    assert_eq!(ip, "2001:db8:10::1000".parse::<Ipv6Addr>().unwrap());
    let seen = adv.seen.expect("unplanned recorded");
    assert_eq!(seen.duid.as_deref(), Some(STRANGER));
    assert_eq!(
        seen.mac,
        Some([0x02, 0x99, 0, 0, 0, 1]),
        "MAC from the DUID-LL"
    );
    assert!(seen.subnet.addr().is_ipv6());

    let rep = run(&mut t, &msg(MessageType::Request, STRANGER, true), "eth1");
    let m = reply_of(&rep);
    assert_eq!(m.msg_type(), MessageType::Reply);
    assert_eq!(first_addr(&m), Some((ip, 3600)));
    assert_eq!(rep.writes.len(), 1);
    assert_eq!(rep.writes[0].state, LeaseState::Bound);

    let renew = run(&mut t, &msg(MessageType::Renew, STRANGER, true), "eth1");
    assert_eq!(first_addr(&reply_of(&renew)).map(|a| a.0), Some(ip));

    let mut rel = msg(MessageType::Release, STRANGER, true);
    rel.opts_mut().remove(OptionCode::IANA);
    rel.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 7,
        t1: 0,
        t2: 0,
        opts: [DhcpOption::IAAddr(IAAddr {
            addr: ip,
            preferred_life: 0,
            valid_life: 0,
            opts: Default::default(),
        })]
        .into_iter()
        .collect(),
    }));
    let out = run(&mut t, &rel, "eth1");
    assert_eq!(out.writes[0].state, LeaseState::Released);
    assert!(
        matches!(reply_of(&out).opts().get(OptionCode::StatusCode), Some(DhcpOption::StatusCode(s)) if s.status == Status::Success)
    );
}

#[test]
fn rapid_commit_binds_at_once_and_says_so() {
    let mut t = LeaseTable6::default();
    let mut m = msg(MessageType::Solicit, STRANGER, false);
    m.opts_mut().insert(DhcpOption::RapidCommit);
    let out = run(&mut t, &m, "eth1");
    let r = reply_of(&out);
    assert_eq!(r.msg_type(), MessageType::Reply);
    assert!(r.opts().get(OptionCode::RapidCommit).is_some());
    assert_eq!(out.writes.len(), 1);
}

#[test]
fn temporary_addresses_and_prefixes_get_their_status_codes() {
    let mut t = LeaseTable6::default();
    let mut m = msg(MessageType::Solicit, STRANGER, false);
    m.opts_mut().insert(DhcpOption::IATA(IATA {
        id: 1,
        opts: Default::default(),
    }));
    m.opts_mut().insert(DhcpOption::IAPD(IAPD {
        id: 2,
        t1: 0,
        t2: 0,
        opts: Default::default(),
    }));
    let r = reply_of(&run(&mut t, &m, "eth1"));
    let status_in = |o: &dhcproto::v6::DhcpOptions| {
        o.iter().find_map(|x| match x {
            DhcpOption::StatusCode(s) => Some(s.status),
            _ => None,
        })
    };
    match r.opts().get(OptionCode::IATA) {
        Some(DhcpOption::IATA(ia)) => assert_eq!(status_in(&ia.opts), Some(Status::NoAddrsAvail)),
        o => panic!("{o:?}"),
    }
    match r.opts().get(OptionCode::IAPD) {
        Some(DhcpOption::IAPD(ia)) => assert_eq!(status_in(&ia.opts), Some(Status::NoPrefixAvail)),
        o => panic!("{o:?}"),
    }
}

#[test]
fn nothing_is_answered_outside_plan_subnets_or_for_another_server() {
    let mut t = LeaseTable6::default();
    let req = parse(&msg(MessageType::Solicit, STRANGER, false).to_vec().unwrap()).unwrap();
    let uplink: Vec<Ipv6Addr> = vec!["2001:db8:99::1".parse().unwrap()];
    let out = handle(
        &view(),
        &mut t,
        &req,
        Arrival6 {
            ifname: "uplink0",
            addrs: &uplink,
        },
        SERVER_DUID,
        1000,
    );
    assert_eq!(out.dropped, Some(Dropped6::ForeignInterface));
    assert!(out.reply.is_none());
    let mut other = msg(MessageType::Request, STRANGER, false);
    other
        .opts_mut()
        .insert(DhcpOption::ServerId(vec![0, 4, 1, 1, 1]));
    assert_eq!(
        run(&mut t, &other, "eth1").dropped,
        Some(Dropped6::OtherServer)
    );
}

#[test]
fn confirm_and_information_request() {
    let mut t = LeaseTable6::default();
    let mut c = msg(MessageType::Confirm, STRANGER, false);
    c.opts_mut().remove(OptionCode::IANA);
    c.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 7,
        t1: 0,
        t2: 0,
        opts: [DhcpOption::IAAddr(IAAddr {
            addr: "2001:db8:77::5".parse().unwrap(),
            preferred_life: 0,
            valid_life: 0,
            opts: Default::default(),
        })]
        .into_iter()
        .collect(),
    }));
    let r = reply_of(&run(&mut t, &c, "eth1"));
    assert!(
        matches!(r.opts().get(OptionCode::StatusCode), Some(DhcpOption::StatusCode(s)) if s.status == Status::NotOnLink)
    );

    let mut info = Message::new_with_id(MessageType::InformationRequest, [4, 5, 6]);
    info.opts_mut()
        .insert(DhcpOption::ClientId(STRANGER.to_vec()));
    let r = reply_of(&run(&mut t, &info, "eth1"));
    assert_eq!(r.msg_type(), MessageType::Reply);
    assert!(r.opts().get(OptionCode::IANA).is_none());
    assert!(r.opts().get(OptionCode::DomainNameServers).is_some());
}

/// A Relay-forward as a relay builds it: header, interface-id, option 79,
/// the relayed message last.
fn relay_forw(inner: &[u8], link: Ipv6Addr, ifid: &[u8], mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut b = vec![12, 0];
    b.extend_from_slice(&link.octets());
    b.extend_from_slice(&"fe80::99".parse::<Ipv6Addr>().unwrap().octets());
    let mut opt = |code: u16, data: &[u8]| {
        b.extend_from_slice(&code.to_be_bytes());
        b.extend_from_slice(&(data.len() as u16).to_be_bytes());
        b.extend_from_slice(data);
    };
    opt(18, ifid);
    if let Some(m) = mac {
        let mut ll = vec![0, 1];
        ll.extend_from_slice(&m);
        opt(79, &ll);
    }
    opt(9, inner);
    b
}

#[test]
fn nested_relays_are_answered_through_each_with_interface_id_echoed() {
    let mut t = LeaseTable6::default();
    // A client with a DUID-UUID (no MAC inside): option 79 names it as
    // the planned arista device (planned_mac(3)).
    let mut m = msg(
        MessageType::Solicit,
        &[0, 4, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7],
        false,
    );
    m.set_xid([9, 9, 9]);
    let inner = relay_forw(
        &m.to_vec().unwrap(),
        "2001:db8:10::fe".parse().unwrap(),
        b"inner-if",
        Some(planned_mac(3)),
    );
    let outer = relay_forw(&inner, Ipv6Addr::UNSPECIFIED, b"outer-if", None);
    let req = parse(&outer).unwrap();
    let out = handle(
        &view(),
        &mut t,
        &req,
        Arrival6 {
            ifname: "",
            addrs: &[],
        },
        SERVER_DUID,
        1000,
    );
    assert_eq!(out.device.as_deref(), Some("arista1"));
    let bytes = out.reply.unwrap();
    let outer_repl = dhcproto::v6::RelayMessage::decode(&mut Decoder::new(&bytes)).unwrap();
    assert_eq!(outer_repl.msg_type(), MessageType::RelayRepl);
    assert!(
        matches!(outer_repl.opts().get(OptionCode::InterfaceId), Some(DhcpOption::InterfaceId(i)) if i == b"outer-if")
    );
    // Down to the client message through both layers.
    let inner_bytes = super::innermost(&bytes, 1);
    let inner_repl = dhcproto::v6::RelayMessage::decode(&mut Decoder::new(inner_bytes)).unwrap();
    assert!(
        matches!(inner_repl.opts().get(OptionCode::InterfaceId), Some(DhcpOption::InterfaceId(i)) if i == b"inner-if")
    );
    let client = Message::decode(&mut Decoder::new(super::innermost(&bytes, 2))).unwrap();
    assert_eq!(client.msg_type(), MessageType::Advertise);
    assert_eq!(client.xid(), [9, 9, 9]);
    assert_eq!(
        first_addr(&client).map(|a| a.0),
        Some("2001:db8:10::3".parse().unwrap())
    );
    let _ = UnknownOption::new(OptionCode::RelayMsg, vec![]);
}
