//! `listen.dhcp` that cannot be bound is a clear error naming the setting
//! (no root needed: the port is taken by this test on 127.0.0.1).

use std::process::Command;

#[test]
fn run_names_listen_dhcp_when_its_port_is_taken() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    let port = busy.local_addr().expect("local addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize("tests/fixtures/good").expect("fixture");
    let cfg = dir.path().join("ztpd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[paths]\nplans = \"{r}/plans\"\ntemplates = \"{r}/templates\"\nfiles = \"{r}/files\"\n\
             state = \"{s}/state\"\ncredentials = \"{s}/creds\"\n\
             [listen]\nhttp = \"127.0.0.1:0\"\ndhcp = \"127.0.0.1:{port}\"\ntftp = \"127.0.0.1:0\"\n\
             [broker]\nenabled = false\n",
            r = root.display(),
            s = dir.path().display()
        ),
    )
    .expect("write settings");
    let out = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("NO_COLOR", "1")
        .output()
        .expect("run ztpd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ztpd must not start: {err}");
    assert!(
        err.contains(&format!("cannot bind listen.dhcp = \"127.0.0.1:{port}\"")),
        "{err}"
    );
    assert!(err.contains("change `listen.dhcp` in ztpd.toml"), "{err}");
}
