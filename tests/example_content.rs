//! The example content users start from: everything `plans/lab.toml`
//! references exists, the default device function is the prototype's, and the
//! hub example carries only a placeholder. (Rendering every device's template
//! is `ztpd validate plans/lab.toml`'s job.)

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use ztpd::plan::ports;
use ztpd::vendor::Vendor;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_toml(rel: &str) -> toml::Table {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()))
}

fn str_of<'a>(v: &'a toml::Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("`{key}` missing or not a string in {v}"))
}

fn assert_file(dir: &str, rel: &str, referenced_by: &str) {
    let path: PathBuf = root().join(dir).join(rel);
    assert!(
        path.is_file(),
        "{referenced_by} references {}, which does not exist",
        Path::new(dir).join(rel).display()
    );
}

#[test]
fn lab_plan_references_only_files_that_exist() {
    let plan = read_toml("plans/lab.toml");
    for (name, model) in plan["models"].as_table().expect("[models]") {
        if let Some(t) = model.get("template") {
            assert_file(
                "templates",
                t.as_str().expect("template"),
                &format!("models.{name}"),
            );
        }
        if let Some(sw) = model.get("software") {
            assert_file(
                "files",
                str_of(sw, "image"),
                &format!("models.{name}.software"),
            );
        }
        if let Some(p) = model.get("patch") {
            assert_file(
                "files",
                p.as_str().expect("patch"),
                &format!("models.{name}.patch"),
            );
        }
    }
    for d in plan["devices"].as_array().expect("[[devices]]") {
        if let Some(f) = d.get("device_function") {
            let f = f.as_str().expect("device_function");
            assert_file(
                "templates",
                &format!("device_function/{f}.toml"),
                str_of(d, "name"),
            );
        }
    }
}

#[test]
fn lab_plan_is_the_promised_multi_vendor_lab() {
    let plan = read_toml("plans/lab.toml");
    let models = plan["models"].as_table().expect("[models]");
    let devices = plan["devices"].as_array().expect("[[devices]]");
    let vendor_of = |d: &toml::Value| str_of(&models[str_of(d, "model")], "vendor").to_string();

    let spines: Vec<_> = devices
        .iter()
        .filter(|d| str_of(d, "name").starts_with("spine"))
        .collect();
    assert_eq!(spines.len(), 2, "a spine pair");
    assert!(spines.iter().all(|d| vendor_of(d) == "arista"));
    assert_eq!(
        spines
            .iter()
            .filter(|d| d.get("role").and_then(|r| r.as_str()) == Some("root"))
            .count(),
        1,
        "one root spine"
    );
    let leaves: Vec<_> = devices
        .iter()
        .filter(|d| str_of(d, "name").starts_with("leaf"))
        .collect();
    assert_eq!(leaves.len(), 4);
    let leaf_vendors: HashSet<String> = leaves.iter().map(|d| vendor_of(d)).collect();
    assert!(
        leaf_vendors.len() >= 2,
        "leaves across vendors: {leaf_vendors:?}"
    );

    let sensors: Vec<_> = devices
        .iter()
        .filter(|d| d.get("device_function").is_some())
        .collect();
    assert_eq!(sensors.len(), 2);
    for s in sensors {
        assert_eq!(vendor_of(s), "generic");
        let serial = str_of(s, "serial");
        assert!(
            serial.len() == 32 && serial.bytes().all(|b| b.is_ascii_hexdigit()),
            "sensor serial {serial} should be a 32-hex id"
        );
    }
    assert!(plan["groups"]
        .as_table()
        .expect("[groups]")
        .values()
        .all(|g| g.get("policy").is_some()));
}

#[test]
fn lab_links_name_real_ports_once_each() {
    let plan = read_toml("plans/lab.toml");
    let models = plan["models"].as_table().expect("[models]");
    let mut ports_of: BTreeMap<&str, (Vendor, HashSet<String>)> = BTreeMap::new();
    for d in plan["devices"].as_array().expect("[[devices]]") {
        let model = &models[str_of(d, "model")];
        let vendor = Vendor::from_name(str_of(model, "vendor")).expect("known vendor");
        let mut set = HashSet::new();
        for spec in model
            .get("ports")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            set.extend(ports::expand(vendor, spec.as_str().expect("port")).expect("port spec"));
        }
        ports_of.insert(str_of(d, "name"), (vendor, set));
    }
    let mut used = HashSet::new();
    for link in plan["links"].as_array().expect("[[links]]") {
        for end in ["a", "b"] {
            let (device, port) = str_of(link, end).split_once(':').expect("device:port");
            let (vendor, ports) = ports_of
                .get(device)
                .unwrap_or_else(|| panic!("unknown {device}"));
            let canonical = ports::canonical(*vendor, port);
            assert!(ports.contains(&canonical), "{device} has no port {port}");
            assert!(
                used.insert(format!("{device}:{canonical}")),
                "{device}:{canonical} cabled twice"
            );
        }
    }
}

#[test]
fn default_device_function_reproduces_the_prototype() {
    let f = read_toml("templates/device_function/default.toml");
    assert_eq!(f["interval"].as_str(), Some("1s"));
    let fields: Vec<&str> = f["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|v| v.as_str().expect("field name"))
        .collect();
    assert_eq!(
        fields,
        [
            "device_id",
            "device_name",
            "device_latitude",
            "device_longitude",
            "device_battery_level",
            "signal_date"
        ]
    );
    let floats = |v: &toml::Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_float().expect("float"))
            .collect()
    };
    assert_eq!(floats(&f["location"]["latitude"]), [-37.36, -32.04]);
    assert_eq!(floats(&f["location"]["longitude"]), [-68.22, -61.69]);
    assert_eq!(f["location"]["precision"].as_integer(), Some(6));
    assert_eq!(f["battery"]["initial"].as_float(), Some(1.0));
    assert_eq!(f["battery"]["drain_every"].as_integer(), Some(10));
    assert_eq!(f["battery"]["drain_max"].as_float(), Some(0.03));
}

#[test]
fn hub_example_has_a_placeholder_key_and_the_real_file_is_ignored() {
    let hub = read_toml("azure_mqtt_credentials/hub.toml.example");
    assert!(hub.get("hostname").and_then(|v| v.as_str()).is_some());
    assert!(hub.get("broker").and_then(|v| v.as_str()).is_some());
    assert_eq!(
        hub["enrollment_key"].as_str(),
        Some("REPLACE_WITH_YOUR_ENROLLMENT_KEY")
    );
    let ignore = std::fs::read_to_string(root().join(".gitignore")).expect(".gitignore");
    for line in [
        "/azure_mqtt_credentials/hub.toml",
        "/state/",
        "/device_credentials/device_*.json",
    ] {
        assert!(
            ignore.lines().any(|l| l.trim() == line),
            ".gitignore lacks {line}"
        );
    }
}

/// The real loader agrees: the lab plan is valid, renders every config and
/// draws no warning, from a fresh clone with no settings file.
#[test]
fn lab_plan_passes_ztpd_validate_without_warnings() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .args([
            "validate",
            "--deny-warnings",
            "--format",
            "json",
            "plans/lab.toml",
        ])
        .current_dir(root())
        .output()
        .expect("run ztpd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "ztpd validate plans/lab.toml failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(0));
}

/// Copied as is, the example is refused for its placeholder key; with a real
/// key in its place it loads as written.
#[test]
fn hub_example_loads_only_once_the_placeholder_is_replaced() {
    use ztpd::credentials::hub;
    let example = root().join("azure_mqtt_credentials/hub.toml.example");
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let err = match hub::load_from(&example, &state, "mqtt://127.0.0.1:1883") {
        Ok(_) => panic!("the placeholder key was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("placeholder"), "{err}");

    // Microsoft's DPS group-enrollment test key: a real key's shape.
    let text = std::fs::read_to_string(&example).expect("example").replace(
        "REPLACE_WITH_YOUR_ENROLLMENT_KEY",
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
    );
    let filled = dir.path().join("hub.toml");
    std::fs::write(&filled, text).expect("write hub.toml");
    let hub = hub::load_from(&filled, &state, "mqtt://127.0.0.1:1883")
        .unwrap_or_else(|e| panic!("filled-in example refused: {e}"));
    assert_eq!(hub.hostname, "my-hub.azure-devices.net");
    assert_eq!(hub.broker, "mqtts://my-hub.azure-devices.net:8883");
}
