//! Identity by position and replacement (SPEC §12) against the real binary
//! on loopback: serial-less devices bound by where they are cabled, a
//! partial report matching two places, one cable off, a new box at a known
//! device's place (manual and auto), the old serial refused, bindings kept
//! across a restart and dropped once the plan says the same.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::Daemon;

/// The `good` fixture plus a second root and serial-less leaves:
/// leaf3 and leaf4 cabled to both spines; leaf5 and leaf6 to one spine each,
/// on ports a partial report cannot tell apart.
fn position_plan(text: String, replacement: &str) -> String {
    let text = text.replace(
        "mode = \"auto\"",
        &format!("mode = \"auto\"\nreplacement = \"{replacement}\""),
    );
    format!(
        "{text}
[[devices]]
name = \"spine2\"
model = \"spine\"
serial = \"JPE12345679\"
mac = \"00:1c:73:aa:bb:02\"
ip = \"10.10.0.3\"
role = \"root\"
vars = {{ loopback = \"10.255.0.2\", asn = 65002 }}

[[devices]]
name = \"leaf3\"
model = \"access-24\"
ip = \"10.10.0.13\"
vars = {{ loopback = \"10.255.0.13\", asn = 65013 }}

[[devices]]
name = \"leaf4\"
model = \"access-24\"
ip = \"10.10.0.14\"
vars = {{ loopback = \"10.255.0.14\", asn = 65014 }}

[[devices]]
name = \"leaf5\"
model = \"access-24\"
ip = \"10.10.0.15\"
vars = {{ loopback = \"10.255.0.15\", asn = 65015 }}

[[devices]]
name = \"leaf6\"
model = \"access-24\"
ip = \"10.10.0.16\"
vars = {{ loopback = \"10.255.0.16\", asn = 65016 }}

[[links]]
a = \"spine1:Ethernet3\"
b = \"leaf3:Ethernet49\"

[[links]]
a = \"spine2:Ethernet3\"
b = \"leaf3:Ethernet50\"

[[links]]
a = \"spine1:Ethernet4\"
b = \"leaf4:Ethernet49\"

[[links]]
a = \"spine2:Ethernet4\"
b = \"leaf4:Ethernet50\"

[[links]]
a = \"spine1:Ethernet5\"
b = \"leaf5:Ethernet49\"

[[links]]
a = \"spine2:Ethernet6\"
b = \"leaf6:Ethernet50\"
"
    )
}

fn start(replacement: &str, hello: &str) -> Daemon {
    let dir = support::fixtures::temp_root_with_plan("good", |t| position_plan(t, replacement));
    Daemon::builder().owned_root(dir).hello(hello).start()
}

fn hello(serial: &str, mac: &str, ns: &[(&str, &str, &str)]) -> String {
    let neighbors: Vec<Value> = ns
        .iter()
        .map(|(l, d, p)| json!({"local_port": l, "remote_device": d, "remote_port": p}))
        .collect();
    json!({"serial": serial, "mac": mac, "model": "DCS-7050SX-64", "version": "4.29",
           "neighbors": neighbors})
    .to_string()
}

fn device(d: &Daemon, name: &str) -> Value {
    let (code, v) = d.api("/api/v1/devices");
    assert_eq!(code, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} missing in {v}"))
}

fn bindings(d: &Daemon) -> Vec<Value> {
    let (code, v) = d.api("/api/v1/bindings");
    assert_eq!(code, 200, "{v}");
    v.as_array().unwrap().clone()
}

const LEAF3: [(&str, &str, &str); 2] = [
    ("Ethernet49", "spine1", "Ethernet3"),
    ("Ethernet50", "spine2", "Ethernet3"),
];

#[test]
fn serial_less_devices_are_bound_by_position() {
    let d = start("manual", "any");
    assert_eq!(device(&d, "leaf3")["serial"], "");

    // New serials at their places bind them, and they deploy as planned.
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-3", "02:00:00:00:00:03", &LEAF3),
        &[],
    );
    assert_eq!((code, v["state"].as_str()), (200, Some("approved")), "{v}");
    assert_eq!(v["device"], "leaf3");
    assert!(
        v["config_url"]
            .as_str()
            .unwrap()
            .ends_with("/configs/leaf3.cfg"),
        "{v}"
    );
    // One cable off a place: the 404 names the nearest place and the cable.
    let off = [
        ("Ethernet49", "spine1", "Ethernet4"),
        ("Ethernet50", "spine2", "Ethernet9"),
    ];
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-Y", "02:00:00:00:00:06", &off),
        &[],
    );
    assert_eq!(code, 404, "{v}");
    assert_eq!(
        v["error"],
        "serial NEW-Y is not in the plan; it looks like leaf4, but Ethernet50 goes to \
         spine2:Ethernet9, the plan says spine2:Ethernet4",
        "{v}"
    );
    // A report naming a peer by its serial counts too; one cable is enough
    // to know the box. Its other cable is still checked: bound, not approved.
    let leaf4 = [("Ethernet49", "JPE12345678", "Ethernet4")];
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-4", "02:00:00:00:00:04", &leaf4),
        &[],
    );
    assert_eq!((code, v["device"].as_str()), (409, Some("leaf4")), "{v}");
    assert_eq!(v["problems"][0]["kind"], "missing_link", "{v}");
    assert_eq!(device(&d, "leaf4")["bound"], "position");
    let leaf3 = device(&d, "leaf3");
    assert_eq!(
        (leaf3["serial"].as_str(), leaf3["bound"].as_str()),
        (Some("NEW-3"), Some("position")),
        "{leaf3}"
    );
    assert!(
        device(&d, "leaf1").get("bound").is_none(),
        "plan serials have no `bound`"
    );

    // A second identical hello changes nothing: same binding, same state.
    let before = bindings(&d);
    assert_eq!(before.len(), 2, "{before:?}");
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-3", "02:00:00:00:00:03", &LEAF3),
        &[],
    );
    assert_eq!((code, v["device"].as_str()), (200, Some("leaf3")), "{v}");
    assert_eq!(bindings(&d), before);
    assert_eq!(device(&d, "leaf3")["state"], "approved");
    let b = before.iter().find(|b| b["device"] == "leaf3").unwrap();
    assert_eq!(
        (b["serial"].as_str(), b["kind"].as_str()),
        (Some("NEW-3"), Some("position"))
    );
    assert!(b["file"].as_str().unwrap().ends_with("lab.toml"), "{b}");
    // The bound serial is the device's now: progress is accepted under it.
    let (code, v) = d.post(
        "/ztp/v1/devices/NEW-3/progress",
        r#"{"stage":"deployed"}"#,
        &[],
    );
    assert_eq!(code, 200, "{v}");

    // A report too partial to decide: it fits leaf5's and leaf6's places.
    let partial = [
        ("Ethernet49", "spine1", "Ethernet5"),
        ("Ethernet50", "spine2", "Ethernet6"),
    ];
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-X", "02:00:00:00:00:05", &partial),
        &[],
    );
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["state"], "ambiguous_position");
    assert_eq!(v["candidates"], json!(["leaf5", "leaf6"]));

    assert_eq!(bindings(&d).len(), 2, "nothing bound by a refused hello");
}

#[test]
fn a_hello_binds_only_from_the_address_leased_to_its_mac() {
    let d = start("auto", "leased");
    // No lease from ztpd for this MAC on 127.0.0.1: answered, nothing bound.
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-3", "02:00:00:00:00:03", &LEAF3),
        &[],
    );
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["counted"], false);
    assert_eq!(v["device"], "leaf3");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("would bind serial NEW-3 to leaf3"),
        "{v}"
    );
    // The same for a replacement under replacement = "auto": no takeover.
    let leaf1 = [("Ethernet49", "spine1", "Ethernet1")];
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("EVIL-1", "02:00:00:00:00:66", &leaf1),
        &[],
    );
    assert_eq!((code, v["counted"].as_bool()), (403, Some(false)), "{v}");
    assert!(bindings(&d).is_empty());
    assert_eq!(device(&d, "leaf1")["serial"], "JPE87654321");

    // The operator endpoints need the token.
    assert_eq!(d.get("/api/v1/bindings").0, 401);
    let (code, _) = d.request(
        "POST",
        "/api/v1/devices/leaf1/replace",
        &[("content-type", "application/json")],
        Some(r#"{"serial":"EVIL-1"}"#),
    );
    assert_eq!(code, 401);
    assert_eq!(device(&d, "leaf1")["serial"], "JPE87654321");
}

#[test]
fn a_replacement_accepted_by_the_operator_survives_a_restart_and_settles_in_the_plan() {
    let mut d = start("manual", "any");
    let leaf1 = [("Ethernet49", "spine1", "Ethernet1")];
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("JPE87654321", "00:1c:73:aa:bb:11", &leaf1),
        &[],
    );
    assert_eq!(code, 200, "{v}");

    // leaf1 died; a new box is racked in its place, same cables.
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-LEAF1", "02:00:00:00:01:01", &leaf1),
        &[],
    );
    assert_eq!(code, 202, "{v}");
    assert_eq!(
        v,
        json!({"state": "replacement_pending", "device": "leaf1", "replaces": "JPE87654321"})
    );
    let dev = device(&d, "leaf1");
    assert_eq!(dev["state"], "replacement_pending");
    assert_eq!(dev["replacement"]["serial"], "NEW-LEAF1");
    assert_eq!(dev["replacement"]["replaces"], "JPE87654321");

    let out = d.cli(&["replace", "leaf1", "NEW-LEAF1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("replaces JPE87654321"));
    let dev = device(&d, "leaf1");
    assert_eq!(
        (
            dev["state"].as_str(),
            dev["serial"].as_str(),
            dev["bound"].as_str()
        ),
        (Some("planned"), Some("NEW-LEAF1"), Some("replacement")),
        "{dev}"
    );

    // The old serial is refused from now on; the new box deploys leaf1's config.
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("JPE87654321", "00:1c:73:aa:bb:11", &leaf1),
        &[],
    );
    assert_eq!((code, v["state"].as_str()), (409, Some("replaced")), "{v}");
    assert_eq!(v["device"], "leaf1");
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-LEAF1", "02:00:00:00:01:01", &leaf1),
        &[],
    );
    assert_eq!((code, v["device"].as_str()), (200, Some("leaf1")), "{v}");
    let (code, cfg) = d.get("/files/configs/leaf1.cfg");
    assert_eq!(code, 200);
    assert!(cfg.contains("leaf1"), "{cfg}");

    // Bound also by position, then restarted: both bindings are still there.
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-3", "02:00:00:00:00:03", &LEAF3),
        &[],
    );
    assert_eq!(code, 200, "{v}");
    d.restart();
    assert_eq!(bindings(&d).len(), 2);
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("JPE87654321", "00:1c:73:aa:bb:11", &leaf1),
        &[],
    );
    assert_eq!((code, v["state"].as_str()), (409, Some("replaced")), "{v}");
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-LEAF1", "02:00:00:00:01:01", &leaf1),
        &[],
    );
    assert_eq!((code, v["device"].as_str()), (200, Some("leaf1")), "{v}");

    // `ztpd plan bindings` prints the lines; pasted into the plan, they
    // make the bindings disappear on reload.
    let out = d.cli(&["plan", "bindings"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("serial = \"NEW-LEAF1\""), "{text}");
    assert!(text.contains("serial = \"NEW-3\""), "{text}");
    assert!(
        text.contains("in place of serial = \"JPE87654321\""),
        "{text}"
    );
    let plan_path = d.path("plans/lab.toml");
    let plan = std::fs::read_to_string(&plan_path).unwrap();
    let plan = plan
        .replace("serial = \"JPE87654321\"", "serial = \"NEW-LEAF1\"")
        .replace(
            "name = \"leaf3\"\n",
            "name = \"leaf3\"\nserial = \"NEW-3\"\n",
        );
    std::fs::write(&plan_path, plan).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for("bindings to settle", Duration::from_secs(20), || {
        bindings(&d).is_empty().then_some(())
    });
    assert!(device(&d, "leaf1").get("bound").is_none());
    assert_eq!(device(&d, "leaf3")["serial"], "NEW-3");
    // Still the same devices.
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-LEAF1", "02:00:00:00:01:01", &leaf1),
        &[],
    );
    assert_eq!((code, v["device"].as_str()), (200, Some("leaf1")), "{v}");
}

#[test]
fn an_automatic_replacement_binds_at_the_first_hello() {
    let d = start("auto", "any");
    let leaf1 = [("Ethernet49", "spine1", "Ethernet1")];
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("NEW-LEAF1", "02:00:00:00:01:01", &leaf1),
        &[],
    );
    assert_eq!((code, v["state"].as_str()), (200, Some("approved")), "{v}");
    assert_eq!(v["device"], "leaf1");
    let b = bindings(&d);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(
        (
            b[0]["kind"].as_str(),
            b[0]["replaces"].as_str(),
            b[0]["mac"].as_str()
        ),
        (
            Some("replacement"),
            Some("JPE87654321"),
            Some("02:00:00:00:01:01")
        )
    );
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &hello("JPE87654321", "00:1c:73:aa:bb:11", &leaf1),
        &[],
    );
    assert_eq!((code, v["state"].as_str()), (409, Some("replaced")), "{v}");
    // A box of another model at a place is a wrong box, not a replacement.
    let wrong = json!({"serial": "ODD-1", "model": "DCS-7280SR-48C6", "neighbors": [
        {"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet2"}]});
    let (code, v) = d.post("/ztp/v1/hello", &wrong.to_string(), &[]);
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["problems"][0]["kind"], "wrong_model", "{v}");
    assert_eq!(bindings(&d).len(), 1);
}

#[test]
fn a_replaced_device_with_a_device_function_gets_a_credential_keeping_its_name() {
    let d = start("manual", "any");
    let old = "device_credentials/device_24c319455312bcd559b333c986024211.json";
    let read = |rel: &str| -> Value {
        serde_json::from_slice(&std::fs::read(d.path(rel)).unwrap()).unwrap()
    };
    d.wait_for("the sensor's credential", Duration::from_secs(20), || {
        d.path(old).is_file().then_some(())
    });
    let name = read(old)["device_name"].clone();
    let auth = format!("Bearer {}", d.token());
    let (code, body) = d.request(
        "POST",
        "/api/v1/devices/sensor-0001/replace",
        &[
            ("Authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(r#"{"serial":"NEWSENSOR1"}"#),
    );
    assert_eq!(code, 200, "{body}");
    let new = "device_credentials/device_NEWSENSOR1.json";
    d.wait_for("the new box's credential", Duration::from_secs(20), || {
        d.path(new).is_file().then_some(())
    });
    let cred = read(new);
    assert_eq!(cred["device_id"], "NEWSENSOR1");
    assert_eq!(
        cred["device_name"], name,
        "the device keeps its device_name"
    );
    assert_eq!(device(&d, "sensor-0001")["serial"], "NEWSENSOR1");
}
