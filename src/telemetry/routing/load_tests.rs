use std::path::Path;

use super::*;
use crate::telemetry::routing::condition::Step;

fn facts() -> Facts {
    Facts {
        broker: true,
        collection: "telemetry".into(),
    }
}

fn read_text(text: &str, facts: &Facts) -> (RouteTable, Diagnostics) {
    let file = SourceFile::new(Path::new("routes.toml"), text.to_string());
    let mut diags = Diagnostics::default();
    let t = read(&file, facts, &mut diags);
    (t, diags)
}

/// (code without `ztpd::routes::`, line, column) of every error.
fn errors(text: &str, facts: &Facts) -> Vec<(String, usize, usize)> {
    let (_, d) = read_text(text, facts);
    assert!(d.misplaced_span().is_none(), "{:?}", d.misplaced_span());
    d.sorted()
        .iter()
        .map(|d| {
            let (_, l, c) = d.location().unwrap();
            (
                d.code.trim_start_matches("ztpd::routes::").to_string(),
                l,
                c,
            )
        })
        .collect()
}

const GOOD: &str = r#"
[endpoints.alerts]
kind = "mongodb"
collection = "battery_alerts"

[endpoints.ops]
kind = "mqtt"
topic = "ztpd/alerts/{deviceId}"

[endpoints.hook]
kind = "webhook"
url = "http://u:secret@127.0.0.1:9000/ingest"

[[routes]]
name = "low-battery"
source = "DeviceMessages"
condition = "$body.device_battery_level < 0.2"
endpoints = ["alerts", "hook"]

[[routes]]
name = "telemetry"
source = "DeviceMessages"
endpoints = ["events"]

[[routes]]
name = "leaf-twins"
source = "TwinChangeEvents"
condition = "$twin.tags.role = 'leaf'"
endpoints = ["ops"]

[fallback]
enabled = false

[[enrichments]]
key = "site"
value = "$twin.tags.site"
endpoints = ["alerts"]

[[enrichments]]
key = "hub"
value = "$iothubname"
endpoints = ["alerts", "events"]
"#;

#[test]
fn the_spec_example_compiles_into_the_table() {
    let (t, d) = read_text(GOOD, &facts());
    assert!(!d.has_errors(), "{}", d.render(100, false));
    let names: Vec<&str> = t.endpoints.iter().map(|e| e.name.as_str()).collect();
    // `events` first, then the tables in name order (as TOML reads them).
    assert_eq!(names, ["events", "alerts", "hook", "ops"]);
    assert_eq!(
        t.endpoints[1].kind,
        EndpointKind::Mongodb {
            collection: "battery_alerts".into()
        }
    );
    assert_eq!(t.routes.len(), 3);
    assert_eq!(t.routes[0].endpoints, [1, 2]);
    assert_eq!(t.routes[1].condition_text, "true", "no condition: true");
    assert_eq!(t.routes[2].source, Source::TwinChangeEvents);
    assert!(!t.fallback);
    assert_eq!(
        t.enrichments[0].value,
        EnrichmentValue::Twin(vec![Step::Key("tags".into()), Step::Key("site".into())].into())
    );
    assert_eq!(t.enrichments[1].value, EnrichmentValue::HubName);
    assert_eq!(t.enrichments[1].endpoints, [1, 0]);
    assert!(t.reads_twin());
    assert_eq!(t.file.as_deref(), Some(Path::new("routes.toml")));
}

#[test]
fn every_problem_is_reported_at_its_line_and_column() {
    let text = r#"[endpoints.events]
kind = "mongodb"
collection = "x"

[endpoints.bad]
kind = "kafka"

[endpoints.tele]
kind = "mongodb"
collection = "telemetry_rejected"

[endpoints.loop]
kind = "mqtt"
topic = "devices/{deviceId}/messages/events/x"

[endpoints.secure]
kind = "webhook"
url = "https://example.org/in"

[[routes]]
name = "a"
source = "DeviceMessage"
condition = "a = 1 AND AND"
endpoints = ["alert"]

[[routes]]
name = "a"
source = "DeviceConnectionStateEvents"
condition = "$twin.tags.site = 'x'"
endpoints = ["events"]
colour = "red"

[[enrichments]]
key = ""
value = "$body.x"
endpoints = ["nowhere"]
"#;
    let got = errors(text, &facts());
    let want: Vec<(String, usize, usize)> = [
        ("reserved_endpoint", 1, 12),
        ("unknown_kind", 6, 8),
        ("telemetry_collection", 10, 14),
        ("mqtt_loop", 14, 9),
        ("bad_url", 18, 7),
        ("unknown_source", 22, 10),
        // `a = 1 AND AND`: the second AND, inside the string.
        ("syntax", 23, 24),
        ("unknown_endpoint", 24, 14),
        ("duplicate_route", 27, 8),
        // `$twin` in the condition of a source without a twin.
        ("no_twin", 29, 14),
        ("unknown_key", 31, 1),
        ("bad_enrichment", 34, 7),
        ("bad_enrichment", 35, 9),
        ("unknown_endpoint", 36, 14),
    ]
    .iter()
    .map(|(c, l, col)| (c.to_string(), *l, *col))
    .collect();
    assert_eq!(got, want);
    let (t, d) = read_text(text, &facts());
    assert!(t.is_builtin(), "a table with errors is never served");
    let rendered = d.render(100, false);
    assert!(
        rendered.contains("did you mean `DeviceMessages`?"),
        "{rendered}"
    );
    assert!(
        rendered.contains("the endpoints are events, bad, loop, secure, tele;"),
        "{rendered}"
    );
    assert!(rendered.contains("plain http://"), "{rendered}");
}

#[test]
fn mqtt_needs_the_broker_and_known_placeholders() {
    let text = "[endpoints.m]\nkind = \"mqtt\"\ntopic = \"a/{device}/b\"\n";
    let none = Facts {
        broker: false,
        ..facts()
    };
    let codes: Vec<String> = errors(text, &none).into_iter().map(|e| e.0).collect();
    assert_eq!(codes, ["mqtt_without_broker", "bad_topic"]);
    let ok = "[endpoints.m]\nkind = \"mqtt\"\ntopic = \"a/{deviceId}/{route}\"\n";
    assert!(errors(ok, &facts()).is_empty());
    let wild = "[endpoints.m]\nkind = \"mqtt\"\ntopic = \"a/#\"\n";
    assert_eq!(errors(wild, &facts())[0].0, "bad_topic");
}

#[test]
fn condition_errors_in_escaped_and_multiline_strings_land_on_their_column() {
    // The error (`)`) is after an escaped quote pair: column of `)` in the file.
    let basic = "[[routes]]\nname = \"r\"\nsource = \"DeviceMessages\"\n\
                 condition = \"a = \\\"x\\\" )\"\nendpoints = [\"events\"]\n";
    let line = basic.lines().nth(3).unwrap();
    let want_col = line.find(')').unwrap() + 1;
    assert_eq!(errors(basic, &facts()), [("syntax".into(), 4, want_col)]);
    let multi = "[[routes]]\nname = \"r\"\nsource = \"DeviceMessages\"\n\
                 condition = '''\na = 1 AND\n  NOPE(x)'''\nendpoints = [\"events\"]\n";
    assert_eq!(errors(multi, &facts()), [("unknown_function".into(), 6, 3)]);
}

#[test]
fn a_toml_syntax_error_and_wrong_types_get_routes_codes() {
    let codes: Vec<String> = errors("[[routes]\n", &facts())
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(codes.contains(&"toml_syntax".to_string()), "{codes:?}");
    let wrong = "[fallback]\nenabled = \"yes\"\n[[routes]]\nname = \"r\"\nsource = \"DeviceMessages\"\nendpoints = []\n";
    let codes: Vec<String> = errors(wrong, &facts()).into_iter().map(|e| e.0).collect();
    assert_eq!(codes, ["wrong_type", "no_endpoints"]);
}

#[test]
fn urls_show_no_secret() {
    assert_eq!(
        redact_url("http://user:pa55@h:9000/in?code=abc&x=1"),
        "http://user:***@h:9000/in?code=***&x=***"
    );
    assert_eq!(redact_url("http://h/in"), "http://h/in");
    assert_eq!(without_userinfo("http://u:p@h:1/x"), "http://h:1/x");
    // An `@` in the path is no user information.
    assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
}

#[test]
fn no_file_is_the_builtin_table() {
    let dir = tempfile::tempdir().unwrap();
    let resolved = Resolved {
        root: dir.path().to_path_buf(),
        file: None,
        settings: crate::settings::Settings::default(),
    };
    let mut d = Diagnostics::default();
    assert!(load(&resolved, &mut d).is_builtin());
    assert!(!d.has_errors());
    std::fs::create_dir_all(resolved.routes_file().parent().unwrap()).unwrap();
    std::fs::write(resolved.routes_file(), b"[[routes]]\nname = 1\n\xff").unwrap();
    load(&resolved, &mut d);
    assert_eq!(d.errors[0].code, "ztpd::routes::unreadable");
}

#[test]
fn errors_after_escapes_line_ending_backslashes_and_crlf_keep_their_place() {
    // Also a seed of the routes_loader fuzz target.
    let text = include_str!("../../../fuzz/seeds/routes_loader/escapes.toml");
    assert_eq!(
        errors(text, &facts()),
        [("syntax".into(), 5, 6), ("no_twin".into(), 13, 2)]
    );
}
