//! Hot reload against the real daemon, with edits made the way editors make
//! them. A good edit becomes the serving snapshot; a broken one is reported in
//! `/api/v1/status` and the last good plan keeps serving.

mod support;

use std::path::Path;
use std::time::Duration;

use support::Daemon;

/// Configs open to any address, so the test can read what is served.
/// The `good` fixture with `access.configs = "open"`.
fn open_daemon() -> Daemon {
    Daemon::builder()
        .fixture("good")
        .access("configs = \"open\"")
        .start()
}

/// Only a failing run waits this long; an endless template is stopped after
/// its work limit, a few seconds of a debug build on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

fn status(d: &Daemon) -> serde_json::Value {
    let (code, v) = d.api("/api/v1/status");
    assert_eq!(code, 200, "{v}");
    v
}

fn version(d: &Daemon) -> u64 {
    status(d)["snapshot_version"].as_u64().unwrap()
}

/// Wait until the last reload attempt is newer than `after_version` or failed.
fn wait_reload(
    d: &Daemon,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    d.wait_for(what, WAIT, || {
        let s = status(d);
        pred(&s).then_some(s)
    })
}

fn plan(d: &Daemon) -> std::path::PathBuf {
    d.root.join("plans/lab.toml")
}

fn edit_asn(text: &str, asn: u32) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("vars = { loopback = \"10.255.0.11\"") {
            out.push_str(&format!(
                "vars = {{ loopback = \"10.255.0.11\", asn = {asn} }}\n"
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The last reload succeeded, changed leaf1, and HTTP serves the new config.
fn assert_serving_leaf1_asn(d: &Daemon, asn: u32) {
    let s = status(d);
    assert_eq!(s["last_reload"]["ok"], true, "{s}");
    assert!(
        s["last_reload"]["changed_devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "leaf1"),
        "{s}"
    );
    let (code, body) = d.get("/files/configs/leaf1.cfg");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("router bgp {asn}")), "{body}");
}

#[test]
fn editor_style_saves_are_picked_up() {
    let d = open_daemon();
    let p = plan(&d);
    let original = std::fs::read_to_string(&p).unwrap();
    assert_eq!(version(&d), 1);

    // 1. In place (truncate + write), as `echo > file` or nano do.
    std::fs::write(&p, edit_asn(&original, 65101)).unwrap();
    wait_reload(&d, "in-place save", |s| s["snapshot_version"] == 2);
    assert_serving_leaf1_asn(&d, 65101);

    // 2. Temp file + rename, as VS Code, JetBrains and `sed -i` do.
    let tmp = d.root.join("plans/.lab.toml.tmp");
    std::fs::write(&tmp, edit_asn(&original, 65102)).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    wait_reload(&d, "temp+rename save", |s| s["snapshot_version"] == 3);
    assert_serving_leaf1_asn(&d, 65102);

    // 3. vim with backup: move the original to `lab.toml~`, write a new
    //    file, delete the backup (plus vim's 4913 probe file).
    let probe = d.root.join("plans/4913");
    std::fs::write(&probe, "").unwrap();
    std::fs::remove_file(&probe).unwrap();
    let backup = d.root.join("plans/lab.toml~");
    std::fs::rename(&p, &backup).unwrap();
    std::fs::write(&p, edit_asn(&original, 65103)).unwrap();
    std::fs::remove_file(&backup).unwrap();
    wait_reload(&d, "vim-style save", |s| {
        s["snapshot_version"].as_u64().unwrap() >= 4 && s["last_reload"]["ok"] == true
    });
    assert_serving_leaf1_asn(&d, 65103);

    // 4. A burst of writes ends with the last content serving, in few reloads.
    let before = version(&d);
    for asn in 65200..65220 {
        std::fs::write(&p, edit_asn(&original, asn)).unwrap();
    }
    let s = wait_reload(&d, "burst", |s| {
        s["snapshot_version"].as_u64().unwrap() > before && s["last_reload"]["ok"] == true
    });
    // Quiet now: the version must settle (every write after the first reload
    // start is covered by at most one more reload). Not a readiness wait: this
    // sleep outlasts the watcher's debounce window, so that any reload the
    // burst still causes has happened before the count below.
    std::thread::sleep(Duration::from_millis(600));
    let settled = version(&d);
    assert!(
        settled - before <= 4,
        "20 writes caused {} reloads (debounce broken)",
        settled - before
    );
    let _ = s;
    let (_, cfg) = d.get("/files/configs/leaf1.cfg");
    assert!(
        cfg.contains("router bgp 65219"),
        "the last write of the burst serves: {cfg}"
    );
    assert!(d.log().contains("reloaded plans"));
}

/// (what, how to break it, the diagnostic code expected)
type BrokenEdit<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);

#[test]
fn broken_edits_keep_the_last_good_plan_serving() {
    let d = open_daemon();
    let p = plan(&d);
    let good = std::fs::read_to_string(&p).unwrap();

    let hub = d.root.join("azure_mqtt_credentials/hub.toml");
    let function = d.root.join("templates/device_function/default.toml");
    let good_function = std::fs::read_to_string(&function).unwrap();
    let cases: [BrokenEdit; 7] = [
        (
            "syntax",
            Box::new(|| {
                std::fs::write(&p, good.replace("name = \"lab\"", "name = \"lab")).unwrap()
            }),
            "ztpd::plan::toml_syntax",
        ),
        (
            "unknown model",
            Box::new(|| {
                std::fs::write(&p, good.replace("model = \"spine\"", "model = \"spline\"")).unwrap()
            }),
            "ztpd::plan::unknown_model",
        ),
        (
            "template error",
            Box::new(|| {
                std::fs::write(
                    d.root.join("templates/arista.j2"),
                    "hostname {{ device.nmae }}\n",
                )
                .unwrap()
            }),
            "ztpd::template::undefined_variable",
        ),
        (
            // Issue 25: 10^12 steps pinned a core and held every later reload.
            "endless template",
            Box::new(|| {
                std::fs::write(
                    d.root.join("templates/arista.j2"),
                    "{% for a in range(10000) %}{% for b in range(10000) %}\
                     {% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}\n",
                )
                .unwrap()
            }),
            "ztpd::template::work_limit",
        ),
        (
            // Issue 25 7f: a 1 GB render was accepted whole. 100 MB here.
            "huge render",
            Box::new(|| {
                std::fs::write(
                    d.root.join("templates/arista.j2"),
                    "{% for i in range(100000) %}{{ \"x\" * 1000 }}{% endfor %}\n",
                )
                .unwrap()
            }),
            "ztpd::template::render_error",
        ),
        (
            // hub.toml is read by the same loader: no key at all.
            "hub.toml",
            Box::new(|| {
                std::fs::create_dir_all(hub.parent().unwrap()).unwrap();
                std::fs::write(
                    &hub,
                    "hostname = \"lab.example\"\nbroker = \"mqtt://127.0.0.1:1883\"\n",
                )
                .unwrap()
            }),
            "ztpd::hub::invalid",
        ),
        (
            "device function",
            Box::new(|| std::fs::write(&function, "interval = \"soon\"\n").unwrap()),
            "ztpd::device_function::bad_interval",
        ),
    ];
    for (what, break_it, code) in cases {
        let serving = version(&d);
        break_it();
        let s = wait_reload(&d, what, |s| s["last_reload"]["ok"] == false);
        assert_eq!(
            s["snapshot_version"], serving,
            "{what}: a broken edit must not replace the snapshot"
        );
        let (http_code, cfg) = d.get("/files/configs/leaf1.cfg");
        assert_eq!(
            http_code, 200,
            "{what}: the last good config is still served"
        );
        assert!(cfg.contains("router bgp 65011"), "{what}: {cfg}");
        let errors = s["last_reload"]["diagnostics"]["errors"]
            .as_array()
            .unwrap();
        assert!(errors.iter().any(|e| e["code"] == code), "{what}: {s}");
        assert_eq!(d.get("/healthz").0, 200, "{what}: still serving");
        // Repair: the good plan and template again.
        std::fs::write(&p, &good).unwrap();
        std::fs::copy(
            "tests/fixtures/good/templates/arista.j2",
            d.root.join("templates/arista.j2"),
        )
        .unwrap();
        let _ = std::fs::remove_file(&hub);
        std::fs::write(&function, &good_function).unwrap();
        wait_reload(&d, "repair", |s| s["last_reload"]["ok"] == true);
    }
    assert!(
        d.log().contains("reload refused"),
        "the diagnostic is logged"
    );
}

#[test]
fn sighup_reloads_and_listen_changes_are_refused_by_name() {
    let d = Daemon::start("good", "", &["--watch", "off"]);
    let p = plan(&d);
    let original = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, edit_asn(&original, 65150)).unwrap();
    // Not a readiness wait: proving that nothing happens needs a bound. A
    // watching daemon reloads within its debounce window (well under 300 ms),
    // so this one would have by now if `--watch off` were ignored.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(version(&d), 1, "--watch off must not reload on its own");
    d.signal(libc::SIGHUP);
    wait_reload(&d, "SIGHUP reload", |s| s["snapshot_version"] == 2);

    let cfg = d.root.join("ztpd.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let other = support::ports::free_tcp();
    std::fs::write(
        &cfg,
        text.replace(&d.http.to_string(), &format!("127.0.0.1:{other}")),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    let s = wait_reload(&d, "refused listen change", |s| {
        s["last_reload"]["ok"] == false
    });
    let msg = s["last_reload"]["message"].as_str().unwrap();
    assert!(msg.contains("listen.http"), "{msg}");
    assert_eq!(s["snapshot_version"], 2);
}

/// Every setting a reload accepts takes effect; the ones read once at start
/// refuse it by name (issue 24). One daemon, reloaded by SIGHUP.
#[test]
fn settings_take_effect_on_reload_or_refuse_it_by_name() {
    let d = Daemon::start("good", "", &["--watch", "off"]);
    let cfg = d.root.join("ztpd.toml");
    let base = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(status(&d)["state"]["durability"], "fsync");

    // Read at start: refused, each by name, and nothing changes.
    std::fs::write(
        &cfg,
        format!(
            "{base}[telemetry]\ncollection = \"elsewhere\"\n\
             [limits]\nhttp_connections = 100\n"
        ),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    let s = wait_reload(&d, "refused telemetry/limits change", |s| {
        s["last_reload"]["ok"] == false
    });
    let msg = s["last_reload"]["message"].as_str().unwrap();
    assert!(msg.contains("telemetry.collection"), "{msg}");
    assert!(msg.contains("limits.http_connections"), "{msg}");
    assert!(msg.contains("restart ztpd"), "{msg}");
    assert_eq!(s["snapshot_version"], 1);

    // Applied in place: a new token file and durability.
    let old = d.token();
    std::fs::write(
        &cfg,
        format!("{base}[state]\ndurability = \"os\"\n[api]\ntoken_file = \"rotated.token\"\n"),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    let new_token = d.wait_for("the new token file", WAIT, || {
        std::fs::read_to_string(d.root.join("state/rotated.token"))
            .ok()
            .map(|t| t.trim().to_string())
    });
    assert_ne!(new_token, old);
    let with = |token: &str| {
        let auth = format!("Bearer {token}");
        let (code, body) = d.request("GET", "/api/v1/status", &[("Authorization", &auth)], None);
        (code, body)
    };
    let body = d.wait_for("the new token to work", WAIT, || {
        let (code, body) = with(&new_token);
        (code == 200).then_some(body)
    });
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["last_reload"]["ok"], true, "{s}");
    assert_eq!(s["snapshot_version"], 2, "{s}");
    assert_eq!(s["state"]["durability"], "os", "{s}");
    assert_eq!(with(&old).0, 401, "the old token no longer opens the API");
}

#[test]
fn polling_watcher_sees_saves() {
    let d = Daemon::start("good", "", &["--watch", "poll"]);
    let p = plan(&d);
    let original = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, edit_asn(&original, 65300)).unwrap();
    wait_reload(&d, "poll reload", |s| s["snapshot_version"] == 2);
}

#[test]
fn operator_api_needs_the_token() {
    let d = Daemon::start("good", "", &[]);
    let (code, _) = d.get("/api/v1/status");
    assert_eq!(code, 401);
    let (code, _) = support::api::get(d.http, "/api/v1/status", Some("wrong")).unwrap();
    assert_eq!(code, 401);
    assert_eq!(status(&d)["devices"], 4);
    let meta = std::fs::metadata(d.root.join("state/operator.token")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(Path::new(&d.root.join("state")).is_dir());
}

/// Issue 25: `ln -s . templates/a; ln -s . templates/b` with a computed
/// include name made the reload walk the directory without end.
#[test]
fn directory_symlink_loops_under_templates_are_walked_once() {
    let d = open_daemon();
    let t = d.root.join("templates");
    std::os::unix::fs::symlink(".", t.join("a")).unwrap();
    std::os::unix::fs::symlink(".", t.join("b")).unwrap();
    std::fs::write(t.join("extra.j2"), "! included by a computed name\n").unwrap();
    let good = std::fs::read_to_string(t.join("arista.j2")).unwrap();
    std::fs::write(
        t.join("arista.j2"),
        format!("{good}{{% include \"extra\" ~ \".j2\" %}}"),
    )
    .unwrap();
    wait_reload(&d, "the reload through the loop", |s| {
        s["snapshot_version"] == 2 && s["last_reload"]["ok"] == true
    });
    let (code, cfg) = d.get("/files/configs/leaf1.cfg");
    assert_eq!(code, 200, "{cfg}");
    assert!(cfg.contains("included by a computed name"), "{cfg}");
}

/// Issue 25: a reload that never finishes (here a template that includes a
/// FIFO nobody writes: the read blocks for good) is refused once past
/// `limits.reload_timeout`, status says it runs meanwhile, later edits are
/// applied, and SIGTERM still ends the process with the thread stuck.
#[test]
fn a_reload_past_its_budget_is_refused_and_later_ones_apply() {
    let mut d = Daemon::builder()
        .fixture("good")
        .access("configs = \"open\"")
        .settings("[limits]\nreload_timeout = \"3s\"\n")
        .start();
    let t = d.root.join("templates");
    let fifo = t.join("stuck.j2");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let good = std::fs::read_to_string(t.join("arista.j2")).unwrap();
    std::fs::write(
        t.join("arista.j2"),
        format!("{good}{{% include \"stuck.j2\" %}}"),
    )
    .unwrap();

    let s = wait_reload(&d, "a running reload shown", |s| {
        s["reloading"]["since"].is_string()
    });
    assert_eq!(s["snapshot_version"], 1, "{s}");
    let s = wait_reload(&d, "the stuck reload refused", |s| {
        s["last_reload"]["ok"] == false
    });
    assert_eq!(s["snapshot_version"], 1, "{s}");
    assert!(s["reloading"].is_null(), "{s}");
    let errors = &s["last_reload"]["diagnostics"]["errors"];
    assert_eq!(errors[0]["code"], "ztpd::reload::timeout", "{s}");
    assert!(
        s["last_reload"]["message"]
            .as_str()
            .unwrap()
            .contains("still serving version 1"),
        "{s}"
    );
    let (code, cfg) = d.get("/files/configs/leaf1.cfg");
    assert_eq!(code, 200, "the last good snapshot serves: {cfg}");
    assert_eq!(d.get("/healthz").0, 200);

    // A later edit is applied although the stuck load never ends.
    std::fs::write(t.join("arista.j2"), &good).unwrap();
    std::fs::write(
        plan(&d),
        edit_asn(&std::fs::read_to_string(plan(&d)).unwrap(), 65123),
    )
    .unwrap();
    wait_reload(&d, "the next edit applied", |s| {
        s["snapshot_version"] == 2 && s["last_reload"]["ok"] == true
    });
    assert_serving_leaf1_asn(&d, 65123);

    // SIGTERM with the reload thread still blocked: gone within 10 s.
    let exit = d.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert!(
        exit.is_some(),
        "still running 10 s after SIGTERM:\n{}",
        d.log()
    );
}

/// routes.toml is loaded with the plans: a good file is in force and shown
/// by `/api/v1/routes` (a webhook's password never); an edit with a syntax
/// error in one condition is refused whole, `/api/v1/status` shows where,
/// and the routes in force stay; the next good edit applies.
#[test]
fn routes_toml_reloads_whole_or_not_at_all() {
    let d = Daemon::start("good", "", &[]);
    let routes = d.root.join("azure_mqtt_credentials/routes.toml");
    std::fs::create_dir_all(routes.parent().unwrap()).unwrap();
    let (code, none) = d.api("/api/v1/routes");
    assert_eq!(code, 200, "{none}");
    assert_eq!(none["file"], serde_json::Value::Null, "no file: built in");
    assert_eq!(none["routes"].as_array().unwrap().len(), 0, "{none}");
    assert_eq!(none["endpoints"][0]["name"], "events");
    assert_eq!(none["fallback"], true);

    let good = r#"[endpoints.alerts]
kind = "mongodb"
collection = "battery_alerts"

[endpoints.hook]
kind = "webhook"
url = "http://ops:hunter2@127.0.0.1:9/ingest"

[[routes]]
name = "low-battery"
source = "DeviceMessages"
condition = "$body.device_battery_level < 0.2"
endpoints = ["alerts", "hook"]

[[routes]]
name = "telemetry"
source = "DeviceMessages"
condition = "true"
endpoints = ["events"]

[[enrichments]]
key = "site"
value = "$twin.tags.site"
endpoints = ["alerts"]
"#;
    let serving = version(&d);
    std::fs::write(&routes, good).unwrap();
    let s = wait_reload(&d, "routes.toml in force", |s| {
        s["snapshot_version"].as_u64() > Some(serving)
    });
    assert_eq!(s["last_reload"]["ok"], true, "{s}");
    assert_eq!(
        s["routes"]["names"],
        serde_json::json!(["low-battery", "telemetry"])
    );
    let (code, r) = d.api("/api/v1/routes");
    assert_eq!(code, 200, "{r}");
    assert!(r["file"].as_str().unwrap().ends_with("routes.toml"), "{r}");
    assert_eq!(r["routes"][0]["name"], "low-battery");
    assert_eq!(r["routes"][0]["source"], "DeviceMessages");
    assert_eq!(
        r["routes"][0]["condition"],
        "$body.device_battery_level < 0.2"
    );
    assert_eq!(
        r["routes"][0]["endpoints"],
        serde_json::json!(["alerts", "hook"])
    );
    assert_eq!(r["routes"][0]["matched"], 0);
    assert_eq!(r["routes"][0]["delivered"], 0);
    let hook = &r["endpoints"][2];
    assert_eq!(hook["kind"], "webhook");
    assert_eq!(hook["url"], "http://ops:***@127.0.0.1:9/ingest");
    assert!(!r.to_string().contains("hunter2"), "a secret shown: {r}");
    assert_eq!(r["endpoints"][1]["collection"], "battery_alerts");
    assert_eq!(r["enrichments"][0]["value"], "$twin.tags.site");
    // Like the rest of /api/v1: no token, no routes.
    assert_eq!(d.get("/api/v1/routes").0, 401);

    let serving = version(&d);
    let bad = good.replace(
        "condition = \"$body.device_battery_level < 0.2\"",
        "condition = \"$body.device_battery_level < 0.2 AND\"",
    );
    std::fs::write(&routes, &bad).unwrap();
    let s = wait_reload(&d, "bad routes refused", |s| {
        s["last_reload"]["ok"] == false
    });
    assert_eq!(s["snapshot_version"], serving, "{s}");
    let errors = s["last_reload"]["diagnostics"]["errors"]
        .as_array()
        .unwrap();
    let e = errors
        .iter()
        .find(|e| e["code"] == "ztpd::routes::syntax")
        .unwrap_or_else(|| panic!("{s}"));
    // The end of the condition, where a value is missing after AND: line
    // 12, the `D` of `AND` in the file.
    let line = bad.lines().nth(11).unwrap();
    assert_eq!(e["line"], 12, "{e}");
    assert_eq!(e["column"], line.find("AND\"").unwrap() + 3, "{e}");
    assert!(e["file"].as_str().unwrap().ends_with("routes.toml"), "{e}");
    assert!(e["help"].is_string(), "{e}");
    assert_eq!(
        s["routes"]["names"],
        serde_json::json!(["low-battery", "telemetry"]),
        "the routes in force stay"
    );
    let (_, r) = d.api("/api/v1/routes");
    assert_eq!(
        r["routes"][0]["condition"],
        "$body.device_battery_level < 0.2"
    );

    let next = good.replace("name = \"telemetry\"", "name = \"all\"");
    std::fs::write(&routes, next).unwrap();
    let s = wait_reload(&d, "good edit", |s| s["last_reload"]["ok"] == true);
    assert_eq!(
        s["routes"]["names"],
        serde_json::json!(["low-battery", "all"])
    );
}
