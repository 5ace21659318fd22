//! The IPv6 parts of the offline commands (SPEC §2, §11): `ztpd render`
//! prints what DHCPv6 gives a device, `ztpd plan diff` its IPv6
//! reservation changes; an IPv6-only plan (no server_ip, no [dhcp]) is valid.

mod support;

use support::ztpd;

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn lab() -> tempfile::TempDir {
    support::fixtures::temp_root("dhcp6_lab")
}

#[test]
fn an_ipv6_only_plan_validates_and_render_shows_its_dhcpv6_options() {
    let dir = lab();
    let plan = dir.path().join("plans/t.toml");
    let v = ztpd(&["validate", plan.to_str().unwrap()]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    let r = ztpd(&["render", plan.to_str().unwrap(), "sonic6"]);
    let out = text(&r);
    assert!(r.status.success(), "{out}");
    assert!(out.contains("# dhcp6: ip6 2001:db8:201::12"), "{out}");
    assert!(
        out.contains("# dhcp6: option 59 http://[2001:db8:201::1]:8080/files/bootstrap/sonic"),
        "{out}"
    );
    assert!(out.contains("# dhcp6: option 239 "), "{out}");
}

#[test]
fn plan_diff_shows_ipv6_reservation_changes() {
    let dir = lab();
    let plans = dir.path().join("plans");
    let base = std::fs::read_to_string(plans.join("t.toml")).unwrap();
    std::fs::remove_file(plans.join("relayed.toml")).unwrap();
    let (old, new) = (plans.join("t.toml"), dir.path().join("new.toml"));
    std::fs::write(
        &new,
        base.replace("ip6 = \"2001:db8:201::11\"", "ip6 = \"2001:db8:201::21\"")
            .replace(
                "00:03:00:01:02:00:00:00:06:01",
                "00:03:00:01:02:00:00:00:06:09",
            ),
    )
    .unwrap();
    let d = ztpd(&["plan", "diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    let out = text(&d);
    assert_eq!(d.status.code(), Some(1), "{out}");
    assert!(
        out.contains("ip6 2001:db8:201::11 -> 2001:db8:201::21"),
        "{out}"
    );
    assert!(
        out.contains("duid 00:03:00:01:02:00:00:00:06:01 -> 00:03:00:01:02:00:00:00:06:09"),
        "{out}"
    );
}
