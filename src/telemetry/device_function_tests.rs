use super::*;

const PROTOTYPE: &str = r#"interval = "1s"
fields = ["device_id", "device_name", "device_latitude", "device_longitude", "device_battery_level", "signal_date"]
[location]
latitude = [-37.36, -32.04]
longitude = [-68.22, -61.69]
precision = 6
[battery]
initial = 1.0
drain_every = 10
drain_max = 0.03
"#;

fn parse(text: &str) -> (Option<DeviceFunction>, Diagnostics) {
    let file = SourceFile::new(Path::new("f.toml"), text.to_string());
    let mut d = Diagnostics::default();
    let f = read(&file, "f", &mut d);
    (f, d)
}

fn codes(d: &Diagnostics) -> Vec<String> {
    d.errors.iter().map(|e| e.code.clone()).collect()
}

#[test]
fn the_prototype_file_is_the_default() {
    let (f, d) = parse(PROTOTYPE);
    assert!(!d.has_errors(), "{}", d.render(80, false));
    let f = f.unwrap();
    assert_eq!(
        f,
        DeviceFunction {
            name: "f".into(),
            ..DeviceFunction::default()
        }
    );
}

#[test]
fn tuning_keys_are_read() {
    let (f, d) = parse(
        "interval = \"250ms\"\nfields = [\"signal_date\", \"device_id\", \"device_battery_level\"]\nbatch = 20\n[location]\nlatitude = [0, 1]\nlongitude = [-180, 180]\nprecision = 2\n",
    );
    assert!(!d.has_errors(), "{}", d.render(80, false));
    let f = f.unwrap();
    assert_eq!(f.interval, Duration::from_millis(250));
    assert_eq!(
        f.fields,
        vec![Field::DeviceId, Field::Battery, Field::SignalDate]
    );
    assert_eq!(f.batch, 20);
    assert_eq!(f.location.latitude, (0.0, 1.0));
    assert_eq!(f.location.precision, 2);
}

#[test]
fn every_problem_is_reported_with_its_span() {
    let text = "interval = \"fast\"\nfields = [\"device_id\", \"device_lattitude\", \"device_id\"]\nbatch = 0\ncolour = 1\n[location]\nlatitude = [10, -10]\nlongitude = [0]\nprecision = 40\n[battery]\ninitial = 1.5\ndrain_every = 0\ndrain_max = \"x\"\n";
    let (f, d) = parse(text);
    assert!(f.is_none());
    let c = codes(&d);
    for want in [
        "ztpd::device_function::bad_interval",
        "ztpd::device_function::unknown_field",
        "ztpd::device_function::duplicate_field",
        "ztpd::device_function::missing_field",
        "ztpd::device_function::bad_batch",
        "ztpd::plan::unknown_key",
        "ztpd::device_function::bad_range",
        "ztpd::device_function::bad_precision",
        "ztpd::device_function::bad_battery",
        "ztpd::plan::wrong_type",
    ] {
        assert!(c.iter().any(|x| x == want), "missing {want} in {c:?}");
    }
    let typo = d
        .errors
        .iter()
        .find(|e| e.code.ends_with("unknown_field"))
        .unwrap();
    assert_eq!(&text[typo.span.clone()], "\"device_lattitude\"");
    assert!(typo
        .help
        .as_deref()
        .unwrap()
        .contains("did you mean `device_latitude`"));
    let out = d.render(100, false);
    assert!(out.contains("f.toml:1:12"), "{out}");
}

#[test]
fn syntax_errors_are_diagnostics() {
    let (f, d) = parse("interval = \n");
    assert!(f.is_none());
    assert_eq!(codes(&d)[0], "ztpd::device_function::toml_syntax");
}

#[test]
fn credential_json_reads_through_the_same_checks() {
    let v = serde_json::json!({
        "name": "default",
        "interval": "1s",
        "fields": ["device_id", "device_name", "device_latitude", "device_longitude", "device_battery_level", "signal_date"],
        "location": {"latitude": [-37.36, -32.04], "longitude": [-68.22, -61.69], "precision": 6},
        "battery": {"initial": 1.0, "drain_every": 10, "drain_max": 0.03}
    });
    assert_eq!(from_json(&v).unwrap(), DeviceFunction::default());
    let bad = serde_json::json!({"name": "x", "battery": {"initial": 2}});
    let e = from_json(&bad).unwrap_err();
    assert!(e.contains("battery.initial"), "{e}");
    assert!(from_json(&serde_json::json!([1])).is_err());
}

#[test]
fn credentials_carry_functions_this_reader_accepts() {
    use crate::credentials::function::{to_json, BUILTIN_DEFAULT};
    let v = to_json("default", BUILTIN_DEFAULT).unwrap();
    assert_eq!(from_json(&v).unwrap(), DeviceFunction::default());
    let tuned = to_json("fast", "interval = \"100ms\"\nbatch = 10\n").unwrap();
    let f = from_json(&tuned).unwrap();
    assert_eq!((f.name.as_str(), f.batch), ("fast", 10));
}
