use super::*;

fn opt(code: u16, data: &[u8]) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(&(data.len() as u16).to_be_bytes());
    b.extend_from_slice(data);
    b
}

fn solicit(extra: &[u8]) -> Vec<u8> {
    let mut b = vec![1, 0, 0, 1];
    b.extend(opt(1, &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
    b.extend_from_slice(extra);
    b
}

#[test]
fn a_plain_solicit_parses() {
    let r = parse(&solicit(&opt(3, &[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]))).unwrap();
    assert_eq!(r.msg_type, MessageType::Solicit);
    assert_eq!(r.ia_na.len(), 1);
    assert_eq!(r.ia_na[0].id, 5);
    assert_eq!(r.mac(), Some([2, 0, 0, 0, 0, 1]));
}

#[test]
fn truncated_options_and_wrong_lengths_are_malformed() {
    let mut b = solicit(&[]);
    b.extend_from_slice(&[0, 8, 0, 9, 1]);
    assert_eq!(parse(&b).unwrap_err(), Malformed::Truncated(8));
    // Elapsed time must be 2 bytes.
    assert_eq!(
        parse(&solicit(&opt(8, &[1, 2, 3]))).unwrap_err(),
        Malformed::WrongLength(8)
    );
    // A status code of length 0 inside an IA_NA (dhcproto would subtract 2).
    let mut ia = vec![0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
    ia.extend(opt(13, &[]));
    assert_eq!(
        parse(&solicit(&opt(3, &ia))).unwrap_err(),
        Malformed::WrongLength(13)
    );
    // Vendor class shorter than its enterprise number.
    assert_eq!(
        parse(&solicit(&opt(16, &[0, 0]))).unwrap_err(),
        Malformed::WrongLength(16)
    );
    assert_eq!(parse(&[1, 2]).unwrap_err(), Malformed::Short);
}

#[test]
fn relays_nested_40_deep_are_dropped() {
    let mut msg = solicit(&[]);
    for _ in 0..40 {
        let mut r = vec![12, 0];
        r.extend_from_slice(&[0u8; 32]);
        r.extend(opt(9, &msg));
        msg = r;
    }
    assert_eq!(parse(&msg).unwrap_err(), Malformed::TooDeep);
}

#[test]
fn identity_from_vendor_class_and_duids() {
    let mut vc = 30065u32.to_be_bytes().to_vec();
    let text = b"Arista;DCS-7050SX-64;01.00;JPE123";
    vc.extend_from_slice(&(text.len() as u16).to_be_bytes());
    vc.extend_from_slice(text);
    let r = parse(&solicit(&opt(16, &vc))).unwrap();
    assert_eq!(r.info.serial.as_deref(), Some("JPE123"));
    assert_eq!(r.info.vendor, Some(crate::vendor::Vendor::Arista));
    // DUID-LLT: type 1, htype 1, time, MAC.
    assert_eq!(
        duid_mac(&[0, 1, 0, 1, 9, 9, 9, 9, 0xaa, 0xbb, 0xcc, 0, 0, 1]),
        Some([0xaa, 0xbb, 0xcc, 0, 0, 1])
    );
    assert_eq!(duid_mac(&[0, 4, 1, 2, 3]), None);
}

/// A cheap stand-in for the fuzz target inside `cargo test`: mutated valid
/// messages (and a relayed one) through parse and the handler, with debug
/// assertions on, must never panic.
#[test]
fn mutated_messages_never_panic_the_parser_or_the_handler() {
    use rand::{Rng, SeedableRng};
    let view = crate::dhcp6::Dhcp6View::build(
        &crate::dhcp::fixture::lab_model6(),
        crate::dhcp::fixture::HTTP_PORT,
    );
    let mut leases = crate::dhcp6::leases::LeaseTable6::default();
    let mut ia = vec![0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
    ia.extend(opt(
        5,
        &[
            0x20, 1, 0xd, 0xb8, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 1, 0, 0, 0, 1,
        ],
    ));
    let mut vc = 9u32.to_be_bytes().to_vec();
    vc.extend_from_slice(&[0, 5, b'S', b'O', b'N', b'i', b'C']);
    let base = solicit(
        &[
            opt(3, &ia),
            opt(14, &[]),
            opt(16, &vc),
            opt(6, &[0, 23, 0, 59]),
        ]
        .concat(),
    );
    let mut relayed = vec![12, 0];
    relayed.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe]);
    relayed.extend_from_slice(&[0u8; 16]);
    relayed.extend(opt(18, b"if0"));
    relayed.extend(opt(79, &[0, 1, 2, 0x1c, 0x73, 0, 0, 3]));
    relayed.extend(opt(9, &base));
    let addrs = [crate::dhcp::fixture::SERVER6];
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for i in 0..20_000u32 {
        let mut b = if i % 2 == 0 {
            base.clone()
        } else {
            relayed.clone()
        };
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..b.len());
            match rng.gen_range(0..3) {
                0 => b[at] = rng.gen(),
                1 => b.truncate(at.max(1)),
                _ => b.insert(at, rng.gen()),
            }
        }
        if let Ok(req) = parse(&b) {
            let _ = crate::dhcp6::handler::handle(
                &view,
                &mut leases,
                &req,
                crate::dhcp6::handler::Arrival6 {
                    ifname: "eth1",
                    addrs: &addrs,
                },
                &[0, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                1_000 + u64::from(i),
            );
        }
    }
}
