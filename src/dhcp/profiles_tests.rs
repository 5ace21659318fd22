use super::*;

#[test]
fn override_values_encode_by_option_code() {
    let t = |s: &str| OptionValue::Text(s.into());
    assert_eq!(
        encode_value(150, &t("10.0.0.1, 10.0.0.2")),
        Ok(vec![10, 0, 0, 1, 10, 0, 0, 2])
    );
    assert_eq!(
        encode_value(6, &OptionValue::List(vec!["1.1.1.1".into()])),
        Ok(vec![1, 1, 1, 1])
    );
    assert_eq!(encode_value(66, &t("tftp.lab")), Ok(b"tftp.lab".to_vec()));
    assert_eq!(encode_value(43, &t("0x01:02 ff")), Ok(vec![1, 2, 0xff]));
    assert_eq!(
        encode_value(51, &OptionValue::Int(60)),
        Ok(vec![0, 0, 0, 60])
    );
    assert_eq!(encode_value(23, &OptionValue::Int(64)), Ok(vec![64]));
    assert_eq!(encode_value(26, &OptionValue::Int(1500)), Ok(vec![5, 0xdc]));
}

#[test]
fn bad_override_values_say_what_was_expected() {
    let e = encode_value(3, &OptionValue::Text("router.lab".into())).unwrap_err();
    assert!(e.contains("expected an IPv4 address"), "{e}");
    let e = encode_value(43, &OptionValue::Text("0x123".into())).unwrap_err();
    assert!(e.contains("odd number of hex digits"), "{e}");
    let e = encode_value(43, &OptionValue::Text("0xzz".into())).unwrap_err();
    assert!(e.contains("expected hex digits"), "{e}");
}

#[test]
fn unplanned_juniper_gets_no_file_names() {
    let srv = ServerAddrs {
        server_ip: Ipv4Addr::new(192, 0, 2, 1),
        http_port: 80,
    };
    let b = boot_options(Vendor::Juniper, srv, None, None).unwrap();
    let subs: Vec<(u8, &[u8])> = crate::dhcp::packet::tlvs(&b.options[&43]).collect();
    assert_eq!(subs, vec![(3, b"http".as_slice()), (5, b"80".as_slice())]);
    assert_eq!(b.file(), None, "no option 67 for Juniper");
}

#[test]
fn long_option_67_is_not_copied_into_the_file_field() {
    let mut b = BootOptions::default();
    b.options.insert(67, vec![b'a'; 128]);
    assert_eq!(b.file(), None);
    b.options.insert(67, vec![b'a'; 127]);
    assert_eq!(b.file().map(<[u8]>::len), Some(127));
}
