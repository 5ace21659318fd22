//! The topology GUI (SPEC §8): its session cookie, headers and refusals
//! with curl, and the page itself in real headless Chromium (Debian's
//! `chromium`, driven by Playwright from the test venv).

mod support;

use std::time::Duration;

use serde_json::json;
use support::curl::{fetch, header};
use support::Daemon;

const FIXTURE: &str = "good";
const MARKUP: &str = "<img src=x onerror=window.__xss=1>";

#[test]
fn the_page_and_its_session_cookie() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let url = |p: &str| d.http_url(p);

    // The page needs no token, holds no data, and forbids everything foreign.
    let (code, headers, body) = fetch(&url("/"), &[]);
    assert_eq!(code, 200);
    let csp = header(&headers, "content-security-policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'self'"), "{headers}");
    assert!(String::from_utf8_lossy(&body).contains("name=\"token\""));
    let (code, _, js) = fetch(&url("/assets/vendor/cytoscape.min.js"), &[]);
    assert_eq!((code, js.len() > 100_000), (200, true));
    assert_eq!(
        fetch(&url("/assets/../ztpd.toml"), &["--path-as-is"]).0,
        404
    );

    // A session costs the token itself: none, a wrong one, or a cookie will not do.
    let session = url("/api/v1/session");
    assert_eq!(fetch(&session, &["-X", "POST"]).0, 401);
    assert_eq!(
        fetch(
            &session,
            &["-X", "POST", "-H", "Authorization: Bearer wrong"]
        )
        .0,
        401
    );
    let auth = format!("Authorization: Bearer {}", d.token());
    let (code, headers, _) = fetch(&session, &["-X", "POST", "-H", &auth]);
    assert_eq!(code, 204);
    let set = header(&headers, "set-cookie").expect("a session cookie");
    assert!(
        set.contains("httponly") && set.contains("samesite=strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(
        cookie.starts_with("ztpd_session=") && cookie.len() > 60,
        "{cookie}"
    );
    assert_eq!(
        fetch(&session, &["-X", "POST", "-b", &cookie]).0,
        401,
        "a cookie buys no new session"
    );

    // The cookie reads the API and its event stream in the token's place.
    assert_eq!(fetch(&url("/api/v1/devices"), &["-b", &cookie]).0, 200);
    assert_eq!(fetch(&url("/api/v1/devices"), &[]).0, 401);
    let (code, headers, _) = fetch(&url("/api/v1/events"), &["-b", &cookie, "-m", "1"]);
    assert_eq!(code, 200);
    assert!(header(&headers, "content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream"));

    // A change made with the cookie must be JSON: a cross-site form cannot post.
    let approve = url("/api/v1/devices/leaf1/approve");
    let form = ["-X", "POST", "-b", &cookie, "-d", "x=1"];
    assert_eq!(fetch(&approve, &form).0, 415);
    let json_post = [
        "-X",
        "POST",
        "-b",
        &cookie,
        "-H",
        "content-type: application/json",
        "-d",
        "{}",
    ];
    let (code, _, _) = fetch(&approve, &json_post);
    assert_ne!(code, 415, "a JSON change passes the cookie check");
    assert_ne!(code, 401);

    // Logout clears the cookie and forgets the session.
    assert_eq!(fetch(&session, &["-X", "DELETE", "-b", &cookie]).0, 415);
    let (code, headers, _) = fetch(
        &session,
        &[
            "-X",
            "DELETE",
            "-b",
            &cookie,
            "-H",
            "content-type: application/json",
        ],
    );
    assert_eq!(code, 204);
    assert!(header(&headers, "set-cookie")
        .unwrap_or_default()
        .contains("max-age=0"));
    assert_eq!(fetch(&url("/api/v1/devices"), &["-b", &cookie]).0, 401);
}

/// Where Playwright and Chromium are; `None` (with the reason) when this
/// machine has not installed them and is not root, so cannot.
fn browser() -> Option<std::path::PathBuf> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    let ready = python.is_file()
        && std::path::Path::new("/usr/bin/chromium").is_file()
        && std::process::Command::new(&python)
            .args(["-c", "import playwright"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    assert!(
        !support::tools::is_root(),
        "chromium or playwright missing: run scripts/install-test-deps.sh"
    );
    eprintln!("SKIP the GUI in Chromium: run `sudo scripts/install-test-deps.sh` first");
    None
}

#[test]
fn the_topology_gui_in_chromium() {
    let Some(python) = browser() else { return };
    let d = Daemon::start(FIXTURE, "", &[]);
    // leaf2 says hello reporting a model with markup in it.
    let hello = json!({
        "serial": "JPE87654322", "mac": "00:1c:73:aa:bb:12", "model": MARKUP, "version": "4.29",
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet2"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &hello.to_string(), &[]);
    assert_eq!(code, 409, "a wrong model is a mismatch: {v}");

    let models = planned_models(&d);
    let expected = json!({
        "devices": models,
        "markup_device": "leaf2",
        "markup": MARKUP,
        "mixed": ["spine1", "leaf1"],
        "search": "JPE87654321",
    });
    check_in_chromium(&python, &d, &expected, "gui-lab.png");
}

/// Create a group from two leaves in the page and start a rollout there,
/// then follow it live to done, against simulated switch agents.
#[test]
fn a_rollout_started_and_followed_in_the_gui() {
    let Some(python) = browser() else { return };
    let d = Daemon::start("rollout_fabric", "", &[]);
    let _agents = support::agents::Agents::start(&d, &[]);
    let models = planned_models(&d);
    let expected = json!({
        "devices": models,
        "mixed": ["spine1", "leaf1"],
        "rollout": {"group": "pair", "devices": ["leaf1", "leaf2"], "version": "2.0"},
        "graph_click": "leaf5",
    });
    check_in_chromium(&python, &d, &expected, "gui-rollout.png");
    // What the page did is what the API holds: one done rollout of `pair`.
    let (_, rollouts) = d.api("/api/v1/rollouts");
    let r = &rollouts.as_array().unwrap()[0];
    assert_eq!(
        (r["group"].as_str(), r["state"].as_str()),
        (Some("pair"), Some("done")),
        "{r}"
    );
}

/// The state filter offers every stage the API can report (from the one
/// stage list) and each selects its devices; a device waiting for approval
/// is approved from the page.
#[test]
fn every_stage_filters_and_approve_works_in_chromium() {
    let Some(python) = browser() else { return };
    let dir = support::fixtures::temp_root_with_plan(FIXTURE, |p| {
        p.replace("mode = \"auto\"", "mode = \"manual\"")
            + "\n[[devices]]\nname = \"leaf3\"\nmodel = \"access-24\"\nserial = \"JPE87654323\"\n\
               ip = \"10.10.0.13\"\nvars = { loopback = \"10.255.0.13\", asn = 65013 }\n\n\
               [[links]]\na = \"spine1:Ethernet3\"\nb = \"leaf3:Ethernet49\"\n"
    });
    let d = Daemon::builder().owned_root(dir).start();
    let hello = json!({
        "serial": "JPE87654321", "mac": "00:1c:73:aa:bb:11", "model": "DCS-7050SX-64",
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet1"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &hello.to_string(), &[]);
    assert_eq!(
        (code, v["state"].as_str()),
        (202, Some("pending_approval")),
        "{v}"
    );
    // leaf2 died: a new box at its place waits to be accepted as its replacement.
    let new_box = json!({
        "serial": "NEWLEAF2", "mac": "02:00:00:00:00:12", "model": "DCS-7050SX-64",
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet2"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &new_box.to_string(), &[]);
    assert_eq!(
        (code, v["state"].as_str()),
        (202, Some("replacement_pending")),
        "{v}"
    );
    // leaf3 is deployed, then its cable is moved by hand: it reports its own
    // ports (as an SNMP read would show them), and that is drift.
    let hello3 = json!({"serial": "JPE87654323", "model": "DCS-7050SX-64", "neighbors": [
        {"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet3"}]});
    assert_eq!(d.post("/ztp/v1/hello", &hello3.to_string(), &[]).0, 202);
    assert_eq!(d.api_post("/api/v1/devices/leaf3/approve", "{}").0, 200);
    let (code, v) = d.post(
        "/ztp/v1/devices/JPE87654323/progress",
        r#"{"stage":"deployed"}"#,
        &[],
    );
    assert_eq!(code, 200, "{v}");
    let moved = json!({"reporter": "JPE87654323", "neighbors": [
        {"local_port": "Ethernet50", "remote_device": "spine1", "remote_port": "Ethernet3"}]});
    let (code, v) = d.post("/ztp/v1/neighbors", &moved.to_string(), &[]);
    assert_eq!(code, 200, "{v}");
    // A stranger cabled at no planned place: 404, listed as unplanned.
    let stranger = json!({
        "serial": "STRANGER1", "mac": "02:00:00:00:00:99", "model": "DCS-7050SX-64",
        "neighbors": [{"local_port": "Ethernet1", "remote_device": "spine1", "remote_port": "Ethernet40"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &stranger.to_string(), &[]);
    assert_eq!(code, 404, "{v}");
    let (_, unplanned) = d.api("/api/v1/unplanned");
    assert_eq!(unplanned[0]["source"], "hello", "{unplanned}");
    assert_eq!(unplanned[0]["serial"], "STRANGER1", "{unplanned}");

    // Only with the operator token.
    assert_eq!(d.get("/api/v1/stages").0, 401);
    let (code, stages) = d.api("/api/v1/stages");
    assert_eq!(code, 200, "{stages}");
    let stages: Vec<String> = stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        stages.contains(&"pending_approval".to_string()),
        "{stages:?}"
    );
    let (_, devices) = d.api("/api/v1/devices");
    let states: serde_json::Map<String, serde_json::Value> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap().to_string(), x["state"].clone()))
        .collect();
    let expected = json!({
        "devices": planned_models(&d),
        "stages": stages,
        "states": states,
        "approve": "leaf1",
        "drift": {"device": "leaf3", "kind": "wrong_port"},
        "replace": {"device": "leaf2", "old": "JPE87654322", "new": "NEWLEAF2"},
        "unplanned": {"serial": "STRANGER1",
                      "entry": "[[devices]]\nname = \"CHANGE-ME\"\nmodel = \"access-24\"\nserial = \"STRANGER1\"\nmac = \"02:00:00:00:00:99\"\n"},
    });
    check_in_chromium(&python, &d, &expected, "gui-stages.png");
    let (_, devices) = d.api("/api/v1/devices");
    let leaf1 = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "leaf1")
        .unwrap()
        .clone();
    assert_eq!(leaf1["state"], "approved", "{leaf1}");
    let (_, bindings) = d.api("/api/v1/bindings");
    assert_eq!(bindings[0]["serial"], "NEWLEAF2", "{bindings}");
    assert_eq!(bindings[0]["replaces"], "JPE87654322", "{bindings}");
}

/// Every planned device's model, by name, as the API gives them.
fn planned_models(d: &Daemon) -> serde_json::Map<String, serde_json::Value> {
    let (_, devices) = d.api("/api/v1/devices");
    devices
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap().to_string(), x["model"].clone()))
        .collect()
}

/// Run tests/gui/gui_check.py against `d` (bounded in time); the
/// screenshot goes to target/NAME.
fn check_in_chromium(
    python: &std::path::Path,
    d: &Daemon,
    expected: &serde_json::Value,
    name: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("expected.json");
    std::fs::write(&exp, expected.to_string()).unwrap();
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gui/gui_check.py");
    let mut child = std::process::Command::new(python)
        .arg(&script)
        .arg(d.http_url("/"))
        .arg(d.token())
        .arg(&exp)
        .arg(&shot)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the GUI check");
    // Bounded: a hung browser fails the test instead of the whole run.
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the GUI check did not finish within 150 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "GUI check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
}
