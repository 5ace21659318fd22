//! `listen.dhcp` that cannot be bound is a clear error naming the setting
//! (no root needed: the port is taken by this test on 127.0.0.1).

mod support;

use std::time::Duration;

use support::Daemon;

#[test]
fn run_names_listen_dhcp_when_its_port_is_taken() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    let port = busy.local_addr().expect("local addr").port();
    let (status, err) = Daemon::builder()
        .fixture("good")
        .dhcp(&format!("127.0.0.1:{port}"))
        .expect_exit(Duration::from_secs(30));
    assert!(!status.success(), "ztpd must not start: {err}");
    assert!(
        err.contains(&format!("cannot bind listen.dhcp = \"127.0.0.1:{port}\"")),
        "{err}"
    );
    assert!(err.contains("change `listen.dhcp` in ztpd.toml"), "{err}");
}

#[test]
fn a_second_daemon_cannot_share_the_dhcp_port() {
    // As `ztpd run` twice on 0.0.0.0:67, on a port no root is needed for.
    let addr = format!("0.0.0.0:{}", support::ports::free_udp());
    let first = Daemon::builder().fixture("good").dhcp(&addr).start();
    first.wait_log("dhcp listening", 1);
    let (status, err) = Daemon::builder()
        .fixture("good")
        .dhcp(&addr)
        .expect_exit(Duration::from_secs(30));
    assert!(!status.success(), "a second ztpd shares {addr}: {err}");
    assert!(
        err.contains(&format!("cannot bind listen.dhcp = \"{addr}\"")),
        "{err}"
    );
    assert!(
        err.contains("Address in use") || err.contains("in use"),
        "{err}"
    );
    assert!(err.contains("change `listen.dhcp` in ztpd.toml"), "{err}");
    drop(first);
}
