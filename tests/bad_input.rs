//! Bad input on the command line (issue 14): every count and duration
//! argument, and every file a command reads whole. Each is a clear error
//! naming the argument or the file and what was expected (or the cap) —
//! never a panic, and never a read that grows without end.

mod support;

use std::path::Path;
use std::process::Output;

use support::daemon::ztpd_bounded;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run in `dir`; the output, after checking it is no panic.
fn run(dir: &Path, args: &[&str]) -> Output {
    let o = ztpd_bounded(dir, args);
    let err = stderr(&o);
    assert!(
        !err.contains("panicked") && o.status.code().is_some(),
        "ztpd {args:?} crashed ({:?}):\n{err}",
        o.status
    );
    o
}

/// A usage error (exit 2) whose message names `arg` and contains `expected`.
fn usage_error(dir: &Path, args: &[&str], arg: &str, expected: &str) {
    let o = run(dir, args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "ztpd {args:?}:\n{err}");
    assert!(
        err.contains(&format!("'{arg} <")) && err.contains(expected),
        "ztpd {args:?}: the error must name {arg} and say {expected:?}:\n{err}"
    );
}

/// A valid telemetry credential, so that only the argument is wrong.
fn credential(dir: &Path) -> String {
    let c = serde_json::json!({
        "device_id": "bad-input-1",
        "device_name": 1000001,
        "device_function": {"name": "t", "interval": "1s", "fields": ["device_id", "signal_date"]},
        "CONNECTION_STR_PUB": "HostName=localhost;DeviceId=bad-input-1;SharedAccessKey=dGVzdGtleXRlc3RrZXl0ZXN0a2V5dGVzdGtleTEyMzQ=",
    });
    let p = dir.join("device_bad-input-1.json");
    std::fs::write(&p, c.to_string()).unwrap();
    p.to_str().unwrap().to_string()
}

/// A broker port nothing listens on: the command must fail before it matters.
const NO_BROKER: &str = "mqtt://127.0.0.1:9";

#[test]
fn a_zero_interval_is_an_error_naming_the_argument_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cred = credential(dir.path());
    for zero in ["0s", "0ms", "0m0s"] {
        let args = [
            "device",
            "simulate",
            "--credential",
            &cred,
            "--broker",
            NO_BROKER,
            "--interval",
            zero,
        ];
        usage_error(dir.path(), &args, "--interval", "longer than 0");
    }
}

#[test]
fn durations_too_long_for_a_deadline_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cred = credential(dir.path());
    // --count 1: were the interval accepted, the run would end (failing to
    // reach the broker) instead of waiting for a second tick
    let sim = [
        "device",
        "simulate",
        "--credential",
        &cred,
        "--broker",
        NO_BROKER,
        "--count",
        "1",
    ];
    for long in ["36501d", "213503982334601d", "99999999999999999999s"] {
        let args = [&sim[..], &["--interval", long]].concat();
        usage_error(
            dir.path(),
            &args,
            "--interval",
            "longest duration accepted is 36500d",
        );
    }
    let args = [
        "device",
        "simulate",
        "--switch",
        "all",
        "--server",
        "http://127.0.0.1:9",
        "--approval-wait",
        "213503982334601d",
    ];
    usage_error(dir.path(), &args, "--approval-wait", "longest duration");
    let args = ["rollout", "start", "g", "--device-timeout", "0s"];
    usage_error(dir.path(), &args, "--device-timeout", "longer than 0");
    let args = ["rollout", "start", "g", "--pause-between", "soon"];
    usage_error(dir.path(), &args, "--pause-between", "not a duration");
}

#[test]
fn zero_negative_and_overflowing_counts_are_errors_naming_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let cred = credential(dir.path());
    let sim = [
        "device",
        "simulate",
        "--credential",
        &cred,
        "--broker",
        NO_BROKER,
    ];
    for (value, expected) in [
        (
            "0",
            "`0` is too small; expected a whole number of at least 1",
        ),
        (
            "-1",
            "`-1` is negative; expected a whole number of at least 1",
        ),
        (
            "18446744073709551616",
            "is too large; expected a whole number",
        ),
        ("many", "`many` is not a whole number"),
    ] {
        let args = [&sim[..], &["--count", value]].concat();
        usage_error(dir.path(), &args, "--count", expected);
    }
    let creds = dir.path().to_str().unwrap();
    for value in ["0", "-2"] {
        let args = [
            "device",
            "simulate",
            "--credentials",
            creds,
            "--fleet",
            value,
        ];
        usage_error(
            dir.path(),
            &args,
            "--fleet",
            "expected a whole number of at least 1",
        );
    }
    let switch = [
        "device",
        "simulate",
        "--switch",
        "all",
        "--server",
        "http://127.0.0.1:9",
    ];
    for value in ["0", "-1", "18446744073709551615"] {
        let args = [&switch[..], &["--concurrency", value]].concat();
        usage_error(dir.path(), &args, "--concurrency", "from 1 to 1048576");
    }
    // rollout policies are checked before the daemon is asked
    let start = ["rollout", "start", "g"];
    for value in ["0", "-5", "4294967296"] {
        let args = [&start[..], &["--batch-size", value]].concat();
        usage_error(dir.path(), &args, "--batch-size", "from 1 to 4294967295");
    }
    let args = [&start[..], &["--canary", "-1"]].concat();
    usage_error(dir.path(), &args, "--canary", "from 0 to");
    let args = [&start[..], &["--max-failures", "120%"]].concat();
    usage_error(dir.path(), &args, "--max-failures", "expected 0% to 100%");
}

/// The error names the file and the cap.
fn capped(dir: &Path, args: &[&str], file: &str, cap: &str) {
    let o = run(dir, args);
    let err = stderr(&o);
    assert!(!o.status.success(), "ztpd {args:?} succeeded:\n{err}");
    assert!(
        err.contains(file) && err.contains(&format!("more than {cap}")),
        "ztpd {args:?}: the error must name {file} and the cap {cap}:\n{err}"
    );
}

#[test]
fn an_endless_credential_file_is_refused_at_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "device",
        "simulate",
        "--credential",
        "/dev/zero",
        "--broker",
        NO_BROKER,
    ];
    capped(dir.path(), &args, "/dev/zero", "1 MiB (1048576 bytes)");
}

#[test]
fn every_file_read_whole_has_a_cap_named_in_its_error() {
    let root = support::fixtures::temp_root("good");
    let r = root.path();
    let link = |rel: &str| {
        let p = r.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        p.display().to_string()
    };
    let unlink = |p: &str| std::fs::remove_file(p).unwrap();
    std::fs::write(r.join("ztpd.toml"), "").unwrap();

    capped(
        r,
        &["--config", "/dev/zero", "validate"],
        "/dev/zero",
        "1 MiB",
    );

    let hub = link("azure_mqtt_credentials/hub.toml");
    capped(r, &["credentials", "create", "dev-a"], &hub, "1 MiB");
    capped(r, &["validate"], &hub, "1 MiB");
    unlink(&hub);

    let function = link("templates/device_function/endless.toml");
    let args = ["credentials", "create", "dev-a", "--function", "endless"];
    capped(r, &args, &function, "1 MiB");
    unlink(&function);

    let token = link("state/operator.token");
    capped(r, &["status"], &token, "64 KiB");
    unlink(&token);

    capped(
        r,
        &["topology", "diff", "plans/lab.toml", "/dev/zero"],
        "/dev/zero",
        "64 MiB",
    );

    // a template the plan names
    let template = link("templates/arista.j2");
    capped(r, &["validate"], &template, "16 MiB");
    unlink(&template);

    // a credential the store reads before it rewrites it
    let cred = link("device_credentials/device_dev-b.json");
    capped(r, &["credentials", "regenerate"], &cred, "1 MiB");
}

#[test]
fn an_oversized_plan_is_refused_naming_the_file_and_the_cap() {
    let root = support::fixtures::temp_root("good");
    let r = root.path();
    let big = r.join("plans/big.toml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let o = run(r, &["validate", big.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("plan::too_large") && err.contains("big.toml") && err.contains("64 MiB"),
        "{err}"
    );
    // not a file at all: said so, and nothing is read
    let o = run(r, &["validate", "/dev/zero"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(err.contains("neither a file nor a directory"), "{err}");
}
