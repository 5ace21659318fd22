//! `ztpd topology diff PLAN REPORTED.json` against the real binary and the
//! lead's good/bad plan fixtures.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::daemon::BIN;
use support::tools::text;

fn fixture(which: &str) -> PathBuf {
    support::fixtures::fixture(&format!("{which}/plans/lab.toml"))
}

fn diff(plan: &Path, reported: &str, json: bool) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reported.json");
    std::fs::write(&file, reported).unwrap();
    let mut c = std::process::Command::new(BIN);
    c.args(["topology", "diff"]).arg(plan).arg(&file);
    if json {
        c.args(["--format", "json"]);
    }
    c.current_dir(dir.path()).output().unwrap()
}

#[test]
fn matching_report_exits_0() {
    // The plan writes leaf1's port as `Et49`; the spine reports abbreviations.
    let reported = r#"[{"device": "spine1", "model": "DCS-7280SR-48C6", "neighbors": [
        {"local_port": "Et1", "remote_device": "leaf1.lab.example", "remote_port": "Ethernet49"},
        {"local_port": "Ethernet2", "remote_device": "JPE87654322", "remote_port": "Et49"}]}]"#;
    let o = diff(&fixture("good"), reported, false);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("topology matches the plan"),
        "{}",
        text(&o)
    );
}

#[test]
fn swapped_cables_exit_1_with_one_problem_and_its_fix() {
    let reported = r#"[{"device": "JPE12345678", "model": "DCS-7280SR-48C6", "neighbors": [
        {"local_port": "Et1", "remote_device": "00:1c:73:aa:bb:12", "remote_port": "Et49"},
        {"local_port": "Et2", "remote_device": "leaf1", "remote_port": "Et49"}]}]"#;
    let o = diff(&fixture("good"), reported, false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("spine1:Ethernet1: swapped"), "{out}");
    assert!(
        out.contains("fix: the cables at spine1:Ethernet1 and spine1:Ethernet2 are swapped"),
        "{out}"
    );
    assert!(out.contains("1 problem(s)"), "{out}");

    let o = diff(&fixture("good"), reported, true);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["match"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0]["kind"], "swapped");
    assert_eq!(problems[0]["other"]["local_port"], "Ethernet2");
}

#[test]
fn wrong_model_is_reported_in_json() {
    let reported = r#"[{"device": "leaf2", "model": "DCS-7050TX-48", "neighbors": []}]"#;
    let o = diff(&fixture("good"), reported, true);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["problems"][0]["kind"], "wrong_model");
    assert_eq!(v["problems"][0]["expected_model"], "DCS-7050SX-64");
    assert_eq!(v["problems"][0]["observed_model"], "DCS-7050TX-48");
}

#[test]
fn invalid_input_exits_78() {
    let good = fixture("good");
    for (reported, want) in [
        ("{not json", "expected [{\"device\""),
        (r#"[{"device": "leaf1", "neigbors": []}]"#, "unknown field"),
        (
            r#"[{"device": "nope", "neighbors": []}]"#,
            "not in the plan",
        ),
    ] {
        let o = diff(&good, reported, false);
        assert_eq!(o.status.code(), Some(78), "{reported}: {}", text(&o));
        assert!(text(&o).contains(want), "{reported}: {}", text(&o));
    }
    let o = diff(&fixture("bad"), "[]", false);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
}
