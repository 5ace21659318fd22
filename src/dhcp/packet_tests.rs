use super::*;
use crate::dhcp::wire::RequestBuilder;
use crate::vendor::Vendor;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];

fn discover() -> RequestBuilder {
    RequestBuilder::new(MessageType::Discover, MAC, 0x1234)
}

#[test]
fn header_fields_and_basic_options() {
    let b = discover()
        .broadcast()
        .requested(Ipv4Addr::new(10, 0, 0, 5))
        .option(55, vec![1, 3, 6, 66, 67])
        .option(57, vec![0x05, 0xdc])
        .encode();
    let r = parse(&b).expect("valid discover");
    assert_eq!(r.msg_type, MessageType::Discover);
    assert_eq!(r.xid, 0x1234);
    assert_eq!(r.mac(), Some(MAC));
    assert!(r.broadcast_flag());
    assert_eq!(r.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 5)));
    assert_eq!(r.params, vec![1, 3, 6, 66, 67]);
    assert_eq!(r.max_size, Some(1500));
    assert!(r.skipped_options.is_empty());
}

#[test]
fn one_bad_option_is_skipped_and_the_rest_kept() {
    // A hostname with a control byte and a 3-byte "address" come before the
    // identity options; both are skipped, 60 and 61 after them still count.
    let b = discover()
        .option(12, vec![b'a', 0x01, b'b'])
        .option(50, vec![10, 0, 0])
        .option(60, b"Arista;DCS-7050SX-64;01.00;JPE123".to_vec())
        .option(61, vec![1, 2, 0, 0, 0, 0, 0x42])
        .encode();
    let r = parse(&b).expect("parse despite bad options");
    assert_eq!(r.skipped_options, vec![12, 50]);
    assert_eq!(r.info.vendor, Some(Vendor::Arista));
    assert_eq!(r.info.serial.as_deref(), Some("JPE123"));
    assert_eq!(r.info.client_id_mac, Some([2, 0, 0, 0, 0, 0x42]));
}

#[test]
fn truncated_option_ends_parsing_but_keeps_earlier_ones() {
    let mut b = discover()
        .option(60, b"Juniper-ex4300-48t-PE3714100218".to_vec())
        .encode();
    // Replace the end marker with an option whose length runs past the buffer.
    let end = b.iter().rposition(|x| *x == 255).unwrap();
    b.truncate(end);
    b.extend_from_slice(&[61, 200, 1, 2]);
    let r = parse(&b).expect("parse");
    assert_eq!(r.info.vendor, Some(Vendor::Juniper));
    assert_eq!(r.info.model.as_deref(), Some("ex4300-48t"));
    assert_eq!(r.info.serial.as_deref(), Some("PE3714100218"));
    assert_eq!(r.client_id, None);
}

#[test]
fn header_errors_are_named() {
    assert_eq!(parse(&[1u8; 100]).unwrap_err(), ParseError::TooShort(100));
    let mut b = discover().encode();
    b[0] = 2;
    assert_eq!(parse(&b).unwrap_err(), ParseError::NotRequest(2));
    let mut b = discover().encode();
    b[236] = 0;
    assert_eq!(parse(&b).unwrap_err(), ParseError::NoCookie);
    let mut b = discover().encode();
    b[242] = 99; // message type value
    assert_eq!(parse(&b).unwrap_err(), ParseError::NoMessageType);
}

#[test]
fn huge_hlen_does_not_panic() {
    let mut b = discover().encode();
    b[2] = 255;
    let r = parse(&b).expect("parse");
    assert_eq!(r.mac(), None);
    assert_eq!(r.client_key().len(), 18);
}

#[test]
fn cisco_client_id_names_a_mac() {
    let mut id = vec![0u8];
    id.extend_from_slice(b"cisco-0011.2233.4455-Vl1");
    let b = discover().option(61, id).encode();
    let r = parse(&b).unwrap();
    assert_eq!(
        r.info.client_id_mac,
        Some([0, 0x11, 0x22, 0x33, 0x44, 0x55])
    );
    assert_eq!(r.info.vendor, Some(Vendor::CiscoIos));
    assert_eq!(r.info.serial, None);
}

#[test]
fn huawei_esn_in_option_61_is_a_serial() {
    let b = discover()
        .option(60, b"HUAWEI CE6800".to_vec())
        .option(61, b"2102351931P0C3000154".to_vec())
        .encode();
    let r = parse(&b).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::Huawei));
    assert_eq!(r.info.model.as_deref(), Some("CE6800"));
    assert_eq!(r.info.serial.as_deref(), Some("2102351931P0C3000154"));
}

#[test]
fn onie_vendor_class_and_user_class() {
    let b = discover()
        .option(60, b"onie_vendor:x86_64-accton_as7712_32x-r0".to_vec())
        .encode();
    let r = parse(&b).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::Onie));
    assert_eq!(r.info.model.as_deref(), Some("x86_64-accton_as7712_32x"));
    let b = discover().option(77, b"SONiC-ZTP".to_vec()).encode();
    assert_eq!(parse(&b).unwrap().info.vendor, Some(Vendor::Sonic));
    let b = discover().option(77, b"\x0bonie_dhcp_x".to_vec()).encode();
    assert_eq!(parse(&b).unwrap().info.vendor, Some(Vendor::Onie));
}

/// ONIE's `udhcpc_args` (lib/onie/functions): option 60 from the platform,
/// 61 = 0x00 + serial, 77 = length-prefixed `onie_dhcp_user_class`, 125 =
/// enterprise 42623 with sub-options 3 machine, 4 arch, 5 machine revision.
#[test]
fn onie_discovery_request_as_onie_sends_it() {
    let mut o125 = 42623u32.to_be_bytes().to_vec();
    let subs: [(u8, &[u8]); 3] = [(3, b"kvm_x86_64"), (4, b"x86_64"), (5, b"0")];
    let body: Vec<u8> = subs
        .iter()
        .flat_map(|(c, v)| [vec![*c, v.len() as u8], v.to_vec()].concat())
        .collect();
    o125.push(body.len() as u8);
    o125.extend(body);
    let mut o77 = vec![20u8];
    o77.extend_from_slice(b"onie_dhcp_user_class");
    let b = discover()
        .option(60, b"onie_vendor:x86_64-kvm_x86_64-r0".to_vec())
        .option(61, [b"\0".as_slice(), b"ONIE-KVM-0001"].concat())
        .option(77, o77)
        .option(125, o125.clone())
        .encode();
    let r = parse(&b).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::Onie));
    assert_eq!(r.info.model.as_deref(), Some("x86_64-kvm_x86_64"));
    assert_eq!(r.info.serial.as_deref(), Some("ONIE-KVM-0001"));
    // Option 125 alone gives the same platform; sub-option 4 (the
    // architecture) is not taken for a serial as TR-111's 4 would be.
    let r = parse(&discover().option(125, o125).encode()).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::Onie));
    assert_eq!(r.info.model.as_deref(), Some("x86_64-kvm_x86_64"));
    assert_eq!(r.info.serial, None);
}

/// SONiC's dhclient.conf (sonic-buildimage files/dhcp/dhclient.conf.j2):
/// user class `SONiC-ZTP`, client-id `SONiC##<product>##<serial>`, option
/// 60 `<hardware vendor>:<product>`.
#[test]
fn sonic_client_id_names_product_and_serial() {
    let b = discover()
        .option(60, b"Cisco:8101-32H".to_vec())
        .option(77, b"SONiC-ZTP".to_vec())
        .option(61, b"SONiC##8101-32H##FOC2217R0AB".to_vec())
        .encode();
    let r = parse(&b).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::Sonic));
    assert_eq!(r.info.model.as_deref(), Some("8101-32H"));
    assert_eq!(r.info.serial.as_deref(), Some("FOC2217R0AB"));
    // Without the client-id (ZTP disabled in dhclient.conf keeps 60 only, but
    // a box with ZTP sends 77): option 60's product is the model.
    let b = discover()
        .option(60, b"Accton:AS7326-56X".to_vec())
        .option(77, b"SONiC-ZTP".to_vec())
        .encode();
    let r = parse(&b).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::Sonic));
    assert_eq!(r.info.model.as_deref(), Some("AS7326-56X"));
    // A malformed SONiC client-id names nothing.
    let r = parse(&discover().option(61, b"SONiC##only".to_vec()).encode()).unwrap();
    assert_eq!((r.info.serial, r.info.vendor), (None, None));
}

#[test]
fn option_124_cisco_pid_and_serial() {
    let text = b"PID:C9300-24T,VID:V01,SN:FOC1234X0AB";
    let mut d = vec![0, 0, 0, 9, (text.len() + 1) as u8, text.len() as u8];
    d.extend_from_slice(text);
    let r = parse(&discover().option(124, d).encode()).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::CiscoIosxe));
    assert_eq!(r.info.serial.as_deref(), Some("FOC1234X0AB"));
    assert_eq!(r.info.model.as_deref(), Some("C9300-24T"));
}

#[test]
fn option_125_tr111_serial_and_product_class() {
    let mut sub = vec![4, 5];
    sub.extend_from_slice(b"SN777");
    sub.extend_from_slice(&[5, 4]);
    sub.extend_from_slice(b"X100");
    let mut d = vec![0, 0, 0x75, 0x71, sub.len() as u8]; // 30065: Arista
    d.extend_from_slice(&sub);
    let r = parse(&discover().option(125, d).encode()).unwrap();
    assert_eq!(r.info.vendor, Some(Vendor::Arista));
    assert_eq!(r.info.serial.as_deref(), Some("SN777"));
    assert_eq!(r.info.model.as_deref(), Some("X100"));
}

#[test]
fn relay_link_selection_and_subnet_selection() {
    let b = discover()
        .giaddr(Ipv4Addr::new(10, 1, 0, 1))
        .option(82, vec![1, 2, b'p', b'1', 5, 4, 10, 2, 0, 0])
        .encode();
    let r = parse(&b).unwrap();
    assert_eq!(r.link_selection, Some(Ipv4Addr::new(10, 2, 0, 0)));
    assert_eq!(r.relay_agent.as_ref().map(Vec::len), Some(10));
    let b = discover().option(118, vec![10, 3, 0, 0]).encode();
    assert_eq!(
        parse(&b).unwrap().link_selection,
        Some(Ipv4Addr::new(10, 3, 0, 0))
    );
}

#[test]
fn serials_with_odd_characters_are_not_keys() {
    let b = discover().option(61, b"../../etc".to_vec()).encode();
    assert_eq!(parse(&b).unwrap().info.serial, None);
}
