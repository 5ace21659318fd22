//! DHCP end to end: the real `ztpd` binary in one network namespace, busybox
//! udhcpc and ISC dhclient (and a hand-made relay agent) in another, joined
//! by a veth pair. Needs root (CI runs as root); skips with a message otherwise.

mod support;

use std::net::Ipv4Addr;

use support::api::metric;
use support::netns::{self, decode_tlvs, Lab, SERVER};
use ztpd::dhcp::packet::MessageType;
use ztpd::dhcp::wire::RequestBuilder;

const HOST1_MAC: &str = "02:00:00:00:01:01";
const JUN1_MAC: &str = "02:00:00:00:01:02";
const CIS1_MAC: &str = "02:00:00:00:01:03";

fn in_pool(ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().expect("an IPv4 address");
    (Ipv4Addr::new(10, 201, 0, 100)..=Ipv4Addr::new(10, 201, 0, 104)).contains(&ip)
}

#[test]
fn planned_devices_get_their_address_hostname_and_vendor_options() {
    let Some(lab) = Lab::new("plan", "fsync") else {
        return;
    };
    let host = lab.udhcpc(HOST1_MAC, &[]).expect("host1 bound");
    assert_eq!(host["ip"], "10.201.0.11");
    assert_eq!(host["hostname"], "host1");
    assert_eq!(host["siaddr"], SERVER);
    assert_eq!(
        host["bootfile"],
        format!("http://{SERVER}:{}/files/bootstrap/generic", lab.http_port)
    );

    let jun = lab.udhcpc(JUN1_MAC, &[]).expect("jun1 bound");
    assert_eq!(jun["ip"], "10.201.0.12");
    assert_eq!(jun["tftp"], SERVER);
    let subs = decode_tlvs(&jun["opt43"]);
    assert_eq!(
        subs,
        vec![
            (1, "files/configs/jun1.cfg".to_string()),
            (3, "http".to_string()),
            (5, lab.http_port.to_string())
        ]
    );

    let cis = lab.udhcpc(CIS1_MAC, &[]).expect("cis1 bound");
    assert_eq!(cis["ip"], "10.201.0.13");
    assert_eq!(cis["tftp"], SERVER);
    assert_eq!(cis["bootfile"], "network-confg");
    assert_eq!(cis["opt150"], "0ac90001");

    // jun1's serial in option 60 from another MAC: the plan gives jun1 a
    // MAC, so this is not jun1 (issue 15 defect 5).
    let by_serial = lab
        .udhcpc("02:00:00:00:09:09", &["-V", "Juniper-ex4300-48t-PE100"])
        .expect("serial-claiming client bound");
    assert!(in_pool(&by_serial["ip"]), "{by_serial:?}");
    assert!(!by_serial.contains_key("hostname"), "{by_serial:?}");

    let d = lab.dhclient(HOST1_MAC, true).expect("dhclient bound");
    assert_eq!(d["new_ip_address"], "10.201.0.11");
    assert_eq!(d["new_host_name"], "host1");
    assert!(
        d["new_bootfile_name"].ends_with("/files/bootstrap/generic"),
        "{d:?}"
    );
}

#[test]
fn unplanned_client_gets_a_pool_address_and_is_counted() {
    let Some(lab) = Lab::new("pool", "fsync") else {
        return;
    };
    let u = lab.udhcpc("02:00:00:00:05:01", &[]).expect("bound");
    assert!(in_pool(&u["ip"]), "{u:?}");
    assert!(
        !u.contains_key("hostname"),
        "no planned hostname for strangers: {u:?}"
    );
    let d = lab
        .dhclient("02:00:00:00:05:02", true)
        .expect("dhclient bound");
    assert!(in_pool(&d["new_ip_address"]), "{d:?}");
    assert_ne!(d["new_ip_address"], u["ip"]);
    let m = lab.metrics();
    assert!(metric(&m, "ztpd_dhcp_sent_total{type=\"ack\"}") >= 2, "{m}");
    assert_eq!(
        metric(
            &m,
            "ztpd_dhcp_pool_used{site=\"t\",subnet=\"10.201.0.0/24\"}"
        ),
        2,
        "{m}"
    );
}

/// Two clients, restart, then the *second* asks first: only persisted leases
/// give it its old address (a fresh server would hand out the pool start).
fn addresses_survive(tag: &str, stop_with_kill: bool, durability: &str) {
    let Some(mut lab) = Lab::new(tag, durability) else {
        return;
    };
    let a = lab.udhcpc("02:00:00:00:06:01", &[]).expect("a bound")["ip"].clone();
    let b = lab.udhcpc("02:00:00:00:06:02", &[]).expect("b bound")["ip"].clone();
    assert_ne!(a, b);
    lab.stop(stop_with_kill);
    lab.start();
    let b2 = lab.udhcpc("02:00:00:00:06:02", &[]).expect("b bound again")["ip"].clone();
    let a2 = lab.udhcpc("02:00:00:00:06:01", &[]).expect("a bound again")["ip"].clone();
    assert_eq!((a2, b2), (a, b));
}

#[test]
fn restart_keeps_addresses() {
    addresses_survive("rest", false, "fsync");
}

#[test]
fn kill_9_keeps_acknowledged_addresses_with_fsync() {
    addresses_survive("k9fs", true, "fsync");
}

#[test]
fn kill_9_keeps_acknowledged_addresses_with_os_durability() {
    addresses_survive("k9os", true, "os");
}

#[test]
fn release_frees_the_address() {
    let Some(lab) = Lab::new("rel", "fsync") else {
        return;
    };
    let first = lab.udhcpc_then_release("02:00:00:00:07:01").expect("bound")["ip"].clone();
    lab.wait_metric("ztpd_dhcp_received_total{type=\"release\"}", 1);
    let other = lab
        .udhcpc("02:00:00:00:07:02", &["-r", &first])
        .expect("second client bound");
    assert_eq!(other["ip"], first, "a released address is free for others");
}

#[test]
fn decline_quarantines_the_address() {
    let Some(lab) = Lab::new("dec", "fsync") else {
        return;
    };
    // dhclient declines when its script fails on BOUND.
    let _ = lab.dhclient("02:00:00:00:08:01", false);
    lab.wait_metric("ztpd_dhcp_received_total{type=\"decline\"}", 1);
    let declined = lab
        .declined_ip()
        .expect("dhclient recorded the address it declined");
    let other = lab
        .udhcpc("02:00:00:00:08:02", &["-r", &declined])
        .expect("second client bound");
    assert!(in_pool(&other["ip"]));
    assert_ne!(
        other["ip"], declined,
        "a declined address stays out of the pool"
    );
}

#[test]
fn relayed_requests_are_served_to_the_relay_with_option_82_echoed() {
    let Some(lab) = Lab::new("rly", "fsync") else {
        return;
    };
    let relay = lab.relay_socket();
    let ra = vec![1, 4, b'p', b'o', b'r', b't'];
    let giaddr = Ipv4Addr::new(10, 201, 0, 254);
    let mac = [2, 0, 0, 0, 0x0a, 1];
    let discover = RequestBuilder::new(MessageType::Discover, mac, 77)
        .giaddr(giaddr)
        .option(82, ra.clone());
    let offer = netns::exchange(&relay, &discover.encode()).expect("offer via relay");
    assert_eq!(offer.msg_type(), Some(MessageType::Offer));
    assert_eq!(offer.giaddr, giaddr);
    assert!(in_pool(&offer.yiaddr.to_string()));
    assert_eq!(offer.options.get(&82), Some(&ra));
    let request = RequestBuilder::new(MessageType::Request, mac, 78)
        .giaddr(giaddr)
        .requested(offer.yiaddr)
        .server_id(SERVER.parse().unwrap())
        .option(82, ra.clone());
    let ack = netns::exchange(&relay, &request.encode()).expect("ack via relay");
    assert_eq!(
        (ack.msg_type(), ack.yiaddr),
        (Some(MessageType::Ack), offer.yiaddr)
    );
    assert!(ack.len >= 300);
}

#[test]
fn starvation_flood_exhausts_the_pool_but_planned_devices_are_served() {
    let Some(lab) = Lab::new("stv", "fsync") else {
        return;
    };
    let relay = lab.relay_socket();
    let giaddr = Ipv4Addr::new(10, 201, 0, 254);
    // A flood as an attacker sends it: all DISCOVERs at once, then a REQUEST
    // for every OFFER that came back.
    let server = std::net::SocketAddrV4::new(SERVER.parse().unwrap(), 67);
    let macs: Vec<[u8; 6]> = (0..200u8)
        .map(|i| [2, 0xee, i, i.wrapping_mul(7), 0x55, i])
        .collect();
    for (i, mac) in macs.iter().enumerate() {
        let d = RequestBuilder::new(MessageType::Discover, *mac, i as u32).giaddr(giaddr);
        relay.send_to(&d.encode(), server).expect("send discover");
    }
    let offers = netns::collect(&relay);
    assert_eq!(offers.len(), 5, "one OFFER per pool address");
    for (xid, offer) in &offers {
        let r = RequestBuilder::new(MessageType::Request, macs[*xid as usize], *xid)
            .giaddr(giaddr)
            .requested(offer.yiaddr)
            .server_id(SERVER.parse().unwrap());
        relay.send_to(&r.encode(), server).expect("send request");
    }
    let acked = netns::collect_n(&relay, offers.len(), std::time::Duration::from_secs(20))
        .iter()
        .filter(|(_, r)| r.msg_type() == Some(MessageType::Ack) && in_pool(&r.yiaddr.to_string()))
        .count();
    assert_eq!(acked, 5, "the five pool addresses went to the flood");
    assert!(
        lab.udhcpc("02:00:00:00:0b:01", &[]).is_none(),
        "pool is exhausted for strangers"
    );
    let host = lab
        .udhcpc(HOST1_MAC, &[])
        .expect("planned host still served");
    assert_eq!(host["ip"], "10.201.0.11");
    let m = lab.metrics();
    assert!(
        metric(&m, "ztpd_dhcp_dropped_total{reason=\"pool_exhausted\"}") > 0,
        "{m}"
    );
}

#[test]
fn a_device_added_by_reload_gets_its_planned_address() {
    let Some(lab) = Lab::new("rld", "fsync") else {
        return;
    };
    let mac = "02:00:00:00:01:04";
    let before = lab.udhcpc(mac, &[]).expect("bound before the edit");
    assert!(in_pool(&before["ip"]), "{before:?}");
    lab.append_to_plan(
        "\n[[devices]]\nname = \"late1\"\nmodel = \"host\"\nserial = \"L1\"\nmac = \"02:00:00:00:01:04\"\nip = \"10.201.0.14\"\n",
    );
    let after = lab.udhcpc(mac, &[]).expect("bound after the reload");
    assert_eq!(after["ip"], "10.201.0.14");
    assert_eq!(after["hostname"], "late1");
}

fn mac_bytes(mac: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(mac.split(':')) {
        *o = u8::from_str_radix(p, 16).expect("hex MAC");
    }
    out
}

/// RFC 2131 §4.1: a client without an address that did not set the
/// broadcast flag gets its OFFER and ACK unicast to the offered address at
/// its MAC; one that set it gets them broadcast.
#[test]
fn replies_are_unicast_to_clients_without_the_broadcast_flag() {
    let Some(lab) = Lab::new("uni", "fsync") else {
        return;
    };
    let check_unicast = |sniffer: &netns::Sniffer, mac: &str, ip: &str| {
        let frames = sniffer.replies();
        let mac = mac_bytes(mac);
        let ip: Ipv4Addr = ip.parse().expect("ip");
        for t in [MessageType::Offer, MessageType::Ack] {
            let f = frames
                .iter()
                .find(|f| f.msg_type == Some(t))
                .unwrap_or_else(|| panic!("no {t:?} seen: {frames:?}"));
            assert_eq!((f.dst_mac, f.dst_ip), (mac, ip), "{t:?}: {frames:?}");
        }
        assert!(
            netns::neighbour(&lab, &ip.to_string()).contains(&format!(
                "lladdr {}",
                mac.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            )),
            "server neighbour entry for {ip}"
        );
    };

    // ISC dhclient leaves the broadcast flag unset.
    let mac = "02:00:00:00:0c:01";
    let sniffer = lab.sniff_replies();
    let d = lab.dhclient(mac, true).expect("dhclient bound");
    check_unicast(&sniffer, mac, &d["new_ip_address"]);

    // busybox udhcpc without -B leaves it unset too.
    let mac = "02:00:00:00:0c:02";
    let sniffer = lab.sniff_replies();
    let u = lab.udhcpc(mac, &[]).expect("udhcpc bound");
    check_unicast(&sniffer, mac, &u["ip"]);

    // With -B it asks for broadcast replies.
    let sniffer = lab.sniff_replies();
    let b = lab
        .udhcpc("02:00:00:00:0c:03", &["-B"])
        .expect("udhcpc -B bound");
    assert!(in_pool(&b["ip"]));
    let frames = sniffer.replies();
    let acks: Vec<_> = frames
        .iter()
        .filter(|f| f.msg_type == Some(MessageType::Ack))
        .collect();
    assert!(!acks.is_empty(), "{frames:?}");
    for f in acks {
        assert_eq!((f.dst_mac, f.dst_ip), ([0xff; 6], Ipv4Addr::BROADCAST));
    }
}

/// An unplanned client is in `GET /api/v1/unplanned` with what its options
/// said, and still there after a restart (the register is in the state store).
#[test]
fn unplanned_devices_are_listed_by_the_api_and_survive_a_restart() {
    let Some(mut lab) = Lab::new("unp", "fsync") else {
        return;
    };
    let mac = "02:00:00:00:0d:01";
    let class = "Arista;DCS-7050SX-64;01.00;JPE777";
    let u = lab.udhcpc(mac, &["-V", class]).expect("bound");
    let find = |list: &serde_json::Value| -> serde_json::Value {
        list.as_array()
            .expect("a JSON array")
            .iter()
            .find(|d| d["mac"] == mac)
            .cloned()
            .unwrap_or_else(|| panic!("{mac} not listed: {list}"))
    };
    let d = find(&lab.api("unplanned"));
    assert_eq!(d["vendor_class"], class);
    assert_eq!(d["vendor"], "arista");
    assert_eq!(d["model"], "DCS-7050SX-64");
    assert_eq!(d["serial"], "JPE777");
    assert_eq!(d["site"], "t");
    assert_eq!(d["subnet"], "10.201.0.0/24");
    assert_eq!(d["ip"], u["ip"].as_str());
    assert!(d["count"].as_u64().is_some_and(|c| c >= 2), "{d}");
    lab.stop(false);
    lab.start();
    let after = find(&lab.api("unplanned"));
    assert_eq!(after, d, "the register survives a restart unchanged");
}

/// A reload that adds the first `[dhcp]` section starts DHCP; one that
/// removes it stops DHCP (the port is freed), and adding it again restarts it.
#[test]
fn reload_starts_and_stops_dhcp() {
    let Some(lab) = Lab::with_plan("rst", "fsync", &Lab::plan_without_dhcp()) else {
        return;
    };
    assert!(lab.log().contains("DHCP not started"), "{}", lab.log());
    let quick = ["-t", "2", "-T", "1"];
    assert!(
        lab.udhcpc("02:00:00:00:0e:01", &quick).is_none(),
        "no DHCP before a plan has [dhcp]"
    );
    lab.write_plan(&Lab::plan());
    lab.wait_log("DHCP started: a reload added a [dhcp] section", 1);
    let host = lab.udhcpc(HOST1_MAC, &[]).expect("served after the reload");
    assert_eq!(host["ip"], "10.201.0.11");
    let u = lab
        .udhcpc("02:00:00:00:0e:01", &[])
        .expect("stranger served");
    assert!(in_pool(&u["ip"]), "{u:?}");

    lab.write_plan(&Lab::plan_without_dhcp());
    lab.wait_log("DHCP stopped: no plan has a [dhcp] section any more", 1);
    assert!(
        lab.udhcpc("02:00:00:00:0e:02", &quick).is_none(),
        "no DHCP after the last [dhcp] went"
    );

    lab.write_plan(&Lab::plan());
    lab.wait_log("DHCP started: a reload added a [dhcp] section", 2);
    let again = lab.udhcpc(HOST1_MAC, &[]).expect("served after re-adding");
    assert_eq!(again["ip"], "10.201.0.11");
}

#[test]
fn another_mac_claiming_a_planned_serial_gets_no_planned_address() {
    use std::io::{BufRead, BufReader, Write};
    let Some(lab) = Lab::new("twomac", "fsync") else {
        return;
    };
    let jun = lab.udhcpc(JUN1_MAC, &[]).expect("jun1 bound");
    assert_eq!(jun["ip"], "10.201.0.12");
    // The event stream, from inside the server's namespace.
    let (http, token) = (lab.daemon.http, lab.daemon.token());
    let stream = netns::in_netns(&lab.srv, move || {
        let mut s = std::net::TcpStream::connect(http).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            s,
            "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        s
    });
    // jun1's serial in option 61 (as text), from another MAC.
    let stranger = "02:00:00:00:09:09";
    let other = lab
        .udhcpc(stranger, &["-C", "-x", "0x3d:005045313030"])
        .expect("the other client bound");
    assert!(in_pool(&other["ip"]), "it got {}", other["ip"]);
    assert!(!other.contains_key("hostname"), "{other:?}");
    // jun1 keeps its address.
    let again = lab.udhcpc(JUN1_MAC, &[]).expect("jun1 bound again");
    assert_eq!(again["ip"], "10.201.0.12");

    let mut r = BufReader::new(stream);
    let mut line = String::new();
    let event = loop {
        line.clear();
        r.read_line(&mut line).expect("event stream");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            let e: serde_json::Value = serde_json::from_str(data).unwrap();
            if e["message"].as_str().unwrap_or("").contains(stranger) {
                break e;
            }
        }
    };
    assert_eq!(event["device"], "jun1", "{event}");
    assert!(
        metric(&lab.metrics(), "ztpd_dhcp_identity_conflicts_total") >= 1,
        "{}",
        lab.metrics()
    );
    let unplanned = lab.api("unplanned");
    assert!(
        unplanned
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["mac"] == stranger && u["serial"] == "PE100"),
        "{unplanned}"
    );
}

/// Issue 22: a box known by its place binds its serial with a hello from the
/// address ztpd leased to its MAC, and from its next request the DHCP
/// reservation of that place (its planned address and hostname) follows the
/// MAC it came with, also after a restart. A hello naming the MAC from
/// another address binds nothing.
#[test]
fn a_device_bound_by_position_gets_its_planned_address_from_its_next_request() {
    let plan = Lab::plan().replace(
        "match = \"linux\"\n",
        "match = \"linux\"\nports = [\"eth0\", \"eth1\"]\n",
    ) + "\n[[devices]]\nname = \"sw0\"\nmodel = \"host\"\nserial = \"SW0\"\nip = \"10.201.0.2\"\n\
         role = \"root\"\n\n[[devices]]\nname = \"pos1\"\nmodel = \"host\"\nip = \"10.201.0.21\"\n\n\
         [[links]]\na = \"sw0:eth1\"\nb = \"pos1:eth0\"\n";
    let Some(mut lab) = Lab::with_plan("pos", "os", &plan) else {
        return;
    };
    let mac = "02:00:00:00:01:21";
    let first = lab.udhcpc(mac, &[]).expect("bound before the hello");
    assert!(in_pool(&first["ip"]), "not bound yet: {first:?}");
    assert!(!first.contains_key("hostname"), "{first:?}");
    let leased = first["ip"].clone();
    lab.add_client_address(&format!("{leased}/24"));
    lab.add_client_address("10.201.0.50/24");
    let hello = serde_json::json!({"serial": "NEWPOS1", "mac": mac, "model": "linux",
        "neighbors": [{"local_port": "eth0", "remote_device": "sw0", "remote_port": "eth1"}]})
    .to_string();
    let post = |src: &str| {
        let args = [
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            hello.as_str(),
        ];
        lab.curl_from(src, "/ztp/v1/hello", &args)
    };

    // Not the address leased to that MAC: answered, nothing bound.
    let (code, body) = post("10.201.0.50");
    assert_eq!(code, 403, "{body}");
    assert_eq!(lab.api("bindings"), serde_json::json!([]));
    let again = lab.udhcpc(mac, &[]).expect("bound again");
    assert_eq!(again["ip"], leased, "nothing changed: {again:?}");

    // From the leased address: bound by position, approved as pos1.
    let (code, body) = post(&leased);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["device"].as_str(), v["state"].as_str()),
        (Some("pos1"), Some("approved")),
        "{v}"
    );
    let b = &lab.api("bindings")[0];
    assert_eq!(
        (b["device"].as_str(), b["mac"].as_str()),
        (Some("pos1"), Some(mac)),
        "{b}"
    );

    // Its next request: pos1's reservation, by the MAC the binding carries.
    let bound = lab.udhcpc(mac, &[]).expect("bound after the binding");
    assert_eq!(bound["ip"], "10.201.0.21", "{bound:?}");
    assert_eq!(bound["hostname"], "pos1", "{bound:?}");

    // The binding is kept across a restart, and so is the reservation.
    lab.stop(false);
    lab.start();
    let after = lab.udhcpc(mac, &[]).expect("bound after a restart");
    assert_eq!(after["ip"], "10.201.0.21", "{after:?}");
    assert_eq!(after["hostname"], "pos1", "{after:?}");
}
