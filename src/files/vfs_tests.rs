use super::*;
use crate::files::testutil;

/// An IPv4 client.
const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

fn read(snap: &Snapshot, p: &str) -> Result<(Kind, Vec<u8>), String> {
    read_as(snap, p, V4)
}

fn read_as(snap: &Snapshot, p: &str, client: IpAddr) -> Result<(Kind, Vec<u8>), String> {
    let t = match resolve(snap, p, client) {
        Ok(t) => t,
        Err(LookupError::NotFound) => return Err("not found".into()),
        Err(LookupError::Refused(e)) => return Err(format!("refused: {e}")),
    };
    let o = match open(snap, &t) {
        Ok(o) => o,
        Err(LookupError::NotFound) => return Err("not found".into()),
        Err(LookupError::Refused(e)) => return Err(format!("refused: {e}")),
    };
    let bytes = match o.content {
        Content::Memory(b) => b.to_vec(),
        Content::Disk(mut f) => {
            let mut v = Vec::new();
            io::Read::read_to_end(&mut f, &mut v).map_err(|e| e.to_string())?;
            v
        }
    };
    assert_eq!(bytes.len() as u64, o.len);
    Ok((t.kind, bytes))
}

fn fixture() -> (tempfile::TempDir, Snapshot) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("files/images")).expect("mkdir");
    std::fs::create_dir_all(root.join("device_credentials")).expect("mkdir");
    std::fs::write(root.join("files/images/x.swi"), b"IMAGE").expect("write");
    std::fs::write(root.join("files/top.bin"), b"TOP").expect("write");
    std::fs::write(root.join("secret.txt"), b"SECRET").expect("write");
    std::fs::write(root.join("device_credentials/device_SER1.json"), b"{}").expect("write");
    std::os::unix::fs::symlink(root.join("secret.txt"), root.join("files/escape.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink("images/x.swi", root.join("files/inside.swi")).expect("symlink");
    let snap = testutil::snapshot(root);
    (dir, snap)
}

#[test]
fn configs_by_name_and_serial() {
    let (_d, snap) = fixture();
    let leaf = Kind::Config {
        device: "leaf1".into(),
    };
    assert_eq!(
        read(&snap, "configs/leaf1.cfg"),
        Ok((leaf.clone(), b"hostname leaf1\n".to_vec()))
    );
    assert_eq!(
        read(&snap, "configs/SER1.cfg"),
        Ok((leaf, b"hostname leaf1\n".to_vec()))
    );
    assert_eq!(read(&snap, "configs/leaf1"), Err("not found".into()));
    assert_eq!(read(&snap, "configs/nobody.cfg"), Err("not found".into()));
}

#[test]
fn cisco_autoinstall_names_only_for_cisco_ios() {
    let (_d, snap) = fixture();
    let (kind, text) = read(&snap, "network-confg").expect("network-confg");
    assert_eq!(kind, Kind::Bootstrap);
    let text = String::from_utf8(text).expect("utf8");
    assert!(text.contains("ip host rtr1 10.0.0.21\n"), "{text}");
    assert!(!text.contains("leaf1"), "only cisco-ios devices: {text}");
    assert_eq!(
        read(&snap, "rtr1-confg").map(|(k, _)| k),
        Ok(Kind::Config {
            device: "rtr1".into()
        })
    );
    assert_eq!(read(&snap, "leaf1-confg"), Err("not found".into()));
}

#[test]
fn a_client_over_ipv6_gets_the_ipv6_script_of_a_dual_stack_site() {
    let (_d, mut snap) = fixture();
    std::sync::Arc::make_mut(&mut snap.bootstrap6)
        .insert("generic".into(), "#!/bin/sh\necho over ipv6\n".into());
    let v6: IpAddr = "2001:db8:10::1000".parse().unwrap();
    let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
    let text = |snap: &Snapshot, c| read_as(snap, "bootstrap/generic", c).map(|(_, b)| b);
    assert_eq!(text(&snap, v6), Ok(b"#!/bin/sh\necho over ipv6\n".to_vec()));
    assert_eq!(text(&snap, V4), Ok(b"#!/bin/sh\necho generic\n".to_vec()));
    assert_eq!(
        text(&snap, mapped),
        text(&snap, V4),
        "a v4-mapped client is IPv4"
    );
    // A profile with no IPv6 rendering falls back to the one there is.
    std::sync::Arc::make_mut(&mut snap.bootstrap6).clear();
    assert_eq!(text(&snap, v6), text(&snap, V4));
}

#[test]
fn bootstrap_files_and_credentials() {
    let (_d, snap) = fixture();
    assert_eq!(
        read(&snap, "bootstrap/generic").map(|(k, _)| k),
        Ok(Kind::Bootstrap)
    );
    assert_eq!(read(&snap, "bootstrap/nope"), Err("not found".into()));
    assert_eq!(
        read(&snap, "images/x.swi"),
        Ok((Kind::File, b"IMAGE".to_vec()))
    );
    assert_eq!(read(&snap, "top.bin"), Ok((Kind::File, b"TOP".to_vec())));
    assert_eq!(
        read(&snap, "inside.swi"),
        Ok((Kind::File, b"IMAGE".to_vec()))
    );
    assert_eq!(
        read(&snap, "credentials/device_SER1.json"),
        Ok((
            Kind::Credential {
                device_id: "SER1".into()
            },
            b"{}".to_vec()
        ))
    );
    assert_eq!(
        read(&snap, "credentials/device_NOPE.json"),
        Err("not found".into())
    );
    assert_eq!(
        read(&snap, "credentials/other.json"),
        Err("not found".into())
    );
}

#[test]
fn directories_are_never_listed() {
    let (_d, snap) = fixture();
    assert_eq!(read(&snap, "images"), Err("not found".into()));
    assert!(read(&snap, "images/").is_err());
    assert!(read(&snap, "configs").is_err());
}

#[test]
fn generated_dirs_are_not_shadowed_by_files() {
    let (d, snap) = fixture();
    std::fs::create_dir_all(d.path().join("files/configs")).expect("mkdir");
    std::fs::write(d.path().join("files/configs/evil.cfg"), b"x").expect("write");
    assert_eq!(read(&snap, "configs/evil.cfg"), Err("not found".into()));
}

#[test]
fn traversal_is_refused() {
    let (_d, snap) = fixture();
    let probes = [
        ("../secret.txt", PathError::DotComponent),
        ("images/../../secret.txt", PathError::DotComponent),
        ("./top.bin", PathError::DotComponent),
        ("/etc/hostname", PathError::Absolute),
        ("~root/x", PathError::Absolute),
        ("..\\secret.txt", PathError::Backslash),
        ("images\\x.swi", PathError::Backslash),
        ("top.bin\0.cfg", PathError::Control),
        ("%2e%2e/secret.txt", PathError::Encoded),
        ("%2E%2E%2Fsecret.txt", PathError::Encoded),
        ("images//x.swi", PathError::EmptyComponent),
        ("", PathError::Empty),
        ("escape.txt", PathError::SymlinkEscape),
    ];
    for (p, want) in probes {
        assert_eq!(
            read(&snap, p),
            Err(format!("refused: {want}")),
            "probe {p:?}"
        );
    }
}

#[test]
fn vanished_file_is_not_found_but_open_file_reads_to_the_end() {
    let (d, snap) = fixture();
    let t = resolve(&snap, "top.bin", V4).expect("resolve");
    let o = open(&snap, &t).expect("open");
    std::fs::remove_file(d.path().join("files/top.bin")).expect("rm");
    let Content::Disk(mut f) = o.content else {
        panic!("disk content expected")
    };
    let mut v = Vec::new();
    io::Read::read_to_end(&mut f, &mut v).expect("read");
    assert_eq!(v, b"TOP");
    assert!(matches!(open(&snap, &t), Err(LookupError::NotFound)));
}
