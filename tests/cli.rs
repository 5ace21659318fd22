//! The real binary's exit codes and output for the plan commands.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::{ztpd, Daemon};

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const GOOD: &str = "tests/fixtures/good/plans/lab.toml";

#[test]
fn validate_exit_codes() {
    let ok = ztpd(&["validate", GOOD]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("4 devices"));

    let bad = ztpd(&["validate", "tests/fixtures/bad/plans/duplicate_mac.toml"]);
    assert_eq!(code(&bad), 78);
    let err = stderr(&bad);
    assert!(err.contains("ztpd::plan::duplicate_mac"), "{err}");
    assert!(err.contains("duplicate_mac.toml:55:7"), "{err}");
}

#[test]
fn validate_a_directory_reports_problems_of_every_file() {
    let o = ztpd(&["validate", "tests/fixtures/bad/plans"]);
    assert_eq!(code(&o), 78);
    let err = stderr(&o);
    for f in ["bad_mac.toml", "link_to_self.toml", "toml_syntax.toml"] {
        assert!(err.contains(f), "{f} missing from the report");
    }
}

#[test]
fn validate_json_has_the_spec_shape() {
    let o = ztpd(&[
        "validate",
        "--format",
        "json",
        "tests/fixtures/bad/plans/bad_ip.toml",
    ]);
    assert_eq!(code(&o), 78);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json on stdout");
    assert_eq!(v["valid"], false);
    let e = &v["errors"][0];
    assert_eq!(e["code"], "ztpd::plan::bad_ip");
    assert!(e["message"].as_str().unwrap().contains("10.10.0.312"));
    assert!(e["help"].is_string());
    assert!(e["file"].as_str().unwrap().ends_with("bad_ip.toml"));
    assert_eq!(e["line"], 56);
    assert_eq!(e["column"], 6);
    let span = e["span"].as_array().unwrap();
    assert_eq!(span.len(), 2);
    assert!(v["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn warnings_pass_unless_denied() {
    let f = "tests/fixtures/bad/plans/empty_group_warning.toml";
    let o = ztpd(&["validate", f]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("ztpd::plan::empty_group"));
    let o = ztpd(&["validate", "--deny-warnings", f]);
    assert_eq!(code(&o), 78);
}

#[test]
fn missing_plan_and_bad_settings_are_exit_78_with_a_reason() {
    let o = ztpd(&["validate", "tests/fixtures/nope.toml"]);
    assert_eq!(code(&o), 78);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ztpd.toml");
    std::fs::write(&cfg, "[listen]\nhttp = \"not an address\"\n").unwrap();
    let o = ztpd(&["--config", cfg.to_str().unwrap(), "validate", GOOD]);
    assert_eq!(code(&o), 78);
    let err = stderr(&o);
    assert!(err.contains("ztpd::settings::invalid"), "{err}");
    assert!(err.contains("ztpd.toml:2:8"), "{err}");
}

#[test]
fn render_prints_config_and_reservation() {
    let o = ztpd(&["render", GOOD, "leaf1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("hostname leaf1"));
    // the DHCP reply the real handler gives it: address, then every option
    assert!(
        out.contains("# dhcp: address 10.10.0.11 from server "),
        "{out}"
    );
    let option = |code: &str, name: &str| {
        out.lines()
            .find(|l| l.starts_with("# dhcp option") && l.contains(&format!(" {code}  {name} ")))
            .unwrap_or_else(|| panic!("no option {code} {name}:\n{out}"))
            .to_string()
    };
    assert!(option("12", "host-name").ends_with("\"leaf1\""), "{out}");
    assert!(option("51", "lease-time").ends_with(" s"), "{out}");
    assert!(option("67", "bootfile-name").contains("://"), "{out}");
    option("53", "message-type");
    // by serial too
    let o = ztpd(&["render", GOOD, "JPE87654321"]);
    assert_eq!(code(&o), 0);
    let o = ztpd(&["render", GOOD, "leaf9"]);
    assert_eq!(code(&o), 78);
    assert!(
        stderr(&o).contains("spine1, leaf1, leaf2"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plan_diff_reports_per_device_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new("tests/fixtures/good");
    for sub in [
        "plans",
        "templates/device_function",
        "files/images",
        "files/patches",
    ] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    for f in [
        "templates/arista.j2",
        "templates/device_function/default.toml",
        "files/images/EOS-4.30.1F.swi",
        "files/patches/hotfix.swix",
    ] {
        std::fs::copy(root.join(f), dir.path().join(f)).unwrap();
    }
    let text = std::fs::read_to_string(root.join("plans/lab.toml")).unwrap();
    let old = dir.path().join("plans/old.toml");
    let new = dir.path().join("plans/new.toml");
    std::fs::write(&old, &text).unwrap();
    std::fs::write(&new, &text).unwrap();
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
    let same = ztpd(&["plan", "diff", o, n]);
    assert_eq!(code(&same), 0, "{}", stderr(&same));

    let changed = text
        .replace("ip = \"10.10.0.12\"", "ip = \"10.10.0.22\"")
        .replace("asn = 65011", "asn = 65111")
        .replace(
            "device_function = \"default\"",
            "device_function = \"default\"\nvars = { x = 1 }",
        )
        .replace("name = \"sensor-0001\"", "name = \"sensor-0002\"");
    std::fs::write(&new, changed).unwrap();
    let d = ztpd(&["plan", "diff", o, n]);
    assert_eq!(code(&d), 1, "{}", stderr(&d));
    let out = String::from_utf8_lossy(&d.stdout);
    assert!(out.contains("device leaf1: changed"), "{out}");
    assert!(
        out.contains("-router bgp 65011") && out.contains("+router bgp 65111"),
        "{out}"
    );
    assert!(
        out.contains("device leaf2: changed") && out.contains("ip 10.10.0.12 -> 10.10.0.22"),
        "{out}"
    );
    assert!(out.contains("device sensor-0001: removed"), "{out}");
    assert!(out.contains("device sensor-0002: added"), "{out}");
    assert!(
        out.contains("credentials to regenerate: sensor-0002"),
        "{out}"
    );

    let j = ztpd(&["plan", "diff", "--format", "json", o, n]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);

    let bad = ztpd(&["plan", "diff", o, "tests/fixtures/bad/plans/bad_mac.toml"]);
    assert_eq!(code(&bad), 78);
}

#[test]
fn a_broken_bootstrap_template_is_a_validate_error_naming_the_file() {
    let dir = support::fixtures::temp_root("good");
    let plan = dir.path().join("plans/lab.toml");
    let plan = plan.to_str().unwrap();
    let ok = ztpd(&["validate", plan]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));

    let bootstrap = dir.path().join("templates/bootstrap");
    std::fs::create_dir_all(&bootstrap).unwrap();
    std::fs::write(bootstrap.join("arista"), "{{ nope.x }}\n").unwrap();
    let bad = ztpd(&["validate", plan]);
    assert_eq!(code(&bad), 78, "{}", stderr(&bad));
    let err = stderr(&bad);
    assert!(err.contains("template::bootstrap"), "{err}");
    assert!(err.contains("templates/bootstrap/arista"), "{err}");
}

/// hub.toml goes through the plan loader: `validate` checks it, without
/// printing the key, and a missing `default` device function is the
/// built-in one, not an error.
#[test]
fn validate_checks_hub_toml_and_knows_the_built_in_default_function() {
    let dir = support::fixtures::temp_root("good");
    let plan = dir.path().join("plans/lab.toml");
    let plan = plan.to_str().unwrap();
    std::fs::remove_file(dir.path().join("templates/device_function/default.toml")).unwrap();
    let ok = ztpd(&["validate", plan]);
    assert_eq!(code(&ok), 0, "the built-in default: {}", stderr(&ok));

    let hub = dir.path().join("azure_mqtt_credentials/hub.toml");
    std::fs::create_dir_all(hub.parent().unwrap()).unwrap();
    let key =
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
    std::fs::write(
        &hub,
        format!("hostname = \"lab.example\"\nbroker = \"mqtt://127.0.0.1:1883\"\nenrollment_key = \"{key}\"\n"),
    )
    .unwrap();
    let ok = ztpd(&["validate", plan]);
    assert_eq!(code(&ok), 0, "a good hub.toml: {}", stderr(&ok));

    // A typo in a key name, next to the key itself.
    std::fs::write(
        &hub,
        format!("hostnme = \"lab.example\"\nbroker = \"mqtt://127.0.0.1:1883\"\nenrollment_key = \"{key}\"\n"),
    )
    .unwrap();
    let bad = ztpd(&["validate", plan]);
    assert_eq!(code(&bad), 78, "{}", stderr(&bad));
    let err = stderr(&bad);
    assert!(err.contains("ztpd::hub::invalid"), "{err}");
    assert!(err.contains("hub.toml"), "{err}");
    assert!(!err.contains(&key[..16]), "the key is printed: {err}");
}

/// routes.toml goes through the plan loader too: `validate`, with or
/// without plan arguments, prints every problem with its place and exits
/// 78; a good file is counted in the summary.
#[test]
fn validate_checks_routes_toml() {
    let dir = support::fixtures::temp_root("good");
    let config = dir.path().join("ztpd.toml");
    std::fs::write(&config, "").unwrap();
    let routes = dir.path().join("azure_mqtt_credentials/routes.toml");
    std::fs::create_dir_all(routes.parent().unwrap()).unwrap();
    std::fs::write(
        &routes,
        "[[routes]]\nname = \"hot\"\nsource = \"DeviceMessages\"\n\
         condition = \"$body.t > 30 AND\"\nendpoints = [\"alerts\"]\n",
    )
    .unwrap();
    let plan = dir.path().join("plans/lab.toml");
    for args in [vec!["validate"], vec!["validate", plan.to_str().unwrap()]] {
        let o = support::daemon::ztpd_with(&config, &args);
        assert_eq!(code(&o), 78, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("ztpd::routes::syntax"), "{err}");
        assert!(err.contains("routes.toml:4:29"), "{err}");
        assert!(err.contains("ztpd::routes::unknown_endpoint"), "{err}");
        assert!(err.contains("routes.toml:5:14"), "{err}");
        assert!(err.contains("2 errors"), "{err}");
    }
    std::fs::write(
        &routes,
        "[[routes]]\nname = \"hot\"\nsource = \"DeviceMessages\"\n\
         condition = \"$body.t > 30\"\nendpoints = [\"events\"]\n",
    )
    .unwrap();
    let o = support::daemon::ztpd_with(&config, &["validate"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 route ("), "{out}");
}

#[test]
fn run_refuses_an_invalid_plan_with_78() {
    let o = ztpd(&["run", "--plans", "tests/fixtures/bad/plans"]);
    assert_eq!(code(&o), 78);
    assert!(stderr(&o).contains("not starting"), "{}", stderr(&o));
}

#[test]
fn run_names_the_setting_when_a_port_cannot_be_bound() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let (status, err) = Daemon::builder()
        .fixture("good")
        .http(&format!("127.0.0.1:{port}"))
        .expect_exit(Duration::from_secs(30));
    assert!(status.code().is_some_and(|c| c != 0), "{status}: {err}");
    assert!(err.contains("listen.http"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
}

#[test]
fn every_command_has_help_and_completions_work() {
    for args in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["run", "--help"],
        vec!["render", "--help"],
        vec!["plan", "diff", "--help"],
    ] {
        let o = ztpd(&args);
        assert_eq!(code(&o), 0, "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let o = ztpd(&["completions", "bash"]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("_ztpd"));
}

/// `ztpd completions SHELL` for the shells operators use: each script is
/// non-empty and completes the real subcommands (taken from `ztpd --help`,
/// so a renamed command is caught); an unknown shell is a usage error that
/// lists the valid ones.
#[test]
fn completions_cover_every_subcommand_for_bash_zsh_and_fish() {
    let help = ztpd(&["--help"]);
    assert_eq!(code(&help), 0);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    for c in [
        "validate",
        "run",
        "bridge",
        "rollout",
        "credentials",
        "completions",
    ] {
        assert!(commands.contains(&c), "{c} missing from --help: {help}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let o = ztpd(&["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}: {}", stderr(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        assert!(script.contains("ztpd"), "{shell}: no ztpd in the script");
        for c in &commands {
            assert!(
                script.contains(c),
                "{shell} completion lacks subcommand {c}"
            );
        }
    }
    // A nested subcommand, not only the top level.
    let bash = ztpd(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&bash.stdout).contains("diff"));

    let bad = ztpd(&["completions", "tcsh"]);
    assert_eq!(code(&bad), 2, "usage error exit code");
    let err = stderr(&bad);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
    for shell in ["bash", "zsh", "fish"] {
        assert!(err.contains(shell), "the error should list {shell}: {err}");
    }
    assert!(bad.stdout.is_empty(), "no script on error");
}
