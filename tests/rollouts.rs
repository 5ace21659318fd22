//! Groups, durable actions and rollouts (SPEC §7, §8) against the real binary.

mod support;

use serde_json::{json, Value};
use support::Daemon;

const FIXTURE: &str = "good";

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn groups_list_create_refuse_export_and_survive_a_restart() {
    let mut d = Daemon::start(FIXTURE, "", &[]);
    let (code, v) = d.api("/api/v1/groups");
    assert_eq!(code, 200, "{v}");
    assert_eq!(names(&v), ["leafs-floor1"]);
    assert_eq!(v[0]["source"], "plan");
    assert_eq!(v[0]["model"], "access-24");
    assert_eq!(v[0]["devices"], json!(["leaf1", "leaf2"]));
    assert_eq!(v[0]["policy"]["canary"], 1);
    assert_eq!(v[0]["policy"]["pause_between"], "5m");
    assert_eq!(v[0]["policy"]["device_timeout"], "30m");

    // Without the token: refused, nothing made.
    let (code, _) = d.post("/api/v1/groups", r#"{"name":"x","devices":["leaf1"]}"#, &[]);
    assert_eq!(code, 401);

    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"mixed","devices":["leaf1","spine1"]}"#,
    );
    assert_eq!(code, 400, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("leaf1") && e.contains("spine1"),
        "names a device of each model: {e}"
    );
    let (code, v) = d.api_post("/api/v1/groups", r#"{"name":"g","devices":["leaf9"]}"#);
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown device `leaf9`"),
        "{v}"
    );
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"colour":1}"#,
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{v}"
    );
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"policy":{"max_failures":"101%"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"policy":{"window":"Mon 25:00-01:00"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"policy":{"device_timeout":"later"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    let (_, v) = d.api("/api/v1/groups");
    assert_eq!(names(&v), ["leafs-floor1"], "refusals changed nothing");

    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"leafs-floor1","devices":["leaf1"]}"#,
    );
    assert_eq!(code, 409, "{v}");
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"leafs","select":{"model":"access-24","name":"leaf*"},"policy":{"batch_size":2,"max_failures":"50%","window":"Sat,Sun 01:00-05:00"}}"#,
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["source"], "runtime");
    assert_eq!(v["devices"], json!(["leaf1", "leaf2"]));
    assert_eq!(v["policy"]["max_failures"], "50%");

    let (code, text) = d.request(
        "GET",
        "/api/v1/groups/leafs/toml",
        &[("Authorization", &format!("Bearer {}", d.token()))],
        None,
    );
    assert_eq!(code, 200, "{text}");
    assert!(
        text.starts_with("[groups.leafs]\ndevices = [\"leaf1\", \"leaf2\"]\n"),
        "{text}"
    );
    assert!(
        text.contains("batch_size = 2") && text.contains("window = \"Sat,Sun 01:00-05:00\""),
        "{text}"
    );
    let parsed: toml::Table = toml::from_str(&text).expect("the export is TOML");
    assert!(parsed["groups"]["leafs"]["policy"].is_table());

    let (code, v) = d.api_delete("/api/v1/groups/leafs-floor1");
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("lab.toml"),
        "names its file: {v}"
    );

    d.restart();
    let (_, v) = d.api("/api/v1/groups");
    assert_eq!(
        names(&v),
        ["leafs-floor1", "leafs"],
        "the runtime group survived"
    );
    let (code, _) = d.api_delete("/api/v1/groups/leafs");
    assert_eq!(code, 200);
    let (code, _) = d.api_delete("/api/v1/groups/leafs");
    assert_eq!(code, 404);
    d.restart();
    let (_, v) = d.api("/api/v1/groups");
    assert_eq!(names(&v), ["leafs-floor1"]);
}

#[test]
fn validate_reports_a_plan_group_that_mixes_models() {
    let dir = support::fixtures::temp_root_with_plan(FIXTURE, |t| {
        t.replace(
            "devices = [\"leaf1\", \"leaf2\"]",
            "devices = [\"leaf1\", \"spine1\"]",
        )
    });
    let plans = dir.path().join("plans");
    let out = support::ztpd(&["validate", "--format", "json", plans.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ztpd::plan::group_mixed_models"], "{v}");
}
