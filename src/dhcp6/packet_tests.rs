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
