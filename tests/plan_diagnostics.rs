//! Every bad-plan fixture is reported with its own diagnostic code, and the
//! rendered report (no colour, 80 columns) matches its snapshot, so a change
//! in wording or span shows up in review. `UPDATE_SNAPSHOTS=1 cargo test`
//! rewrites the snapshots.

use std::path::{Path, PathBuf};

use ztpd::plan;
use ztpd::settings::{Resolved, Settings};

fn resolved(root: &Path) -> Resolved {
    Resolved {
        root: root.to_path_buf(),
        file: None,
        settings: Settings::default(),
    }
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/bad/plans")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

/// Code each fixture must produce (the file stem, unless it tests something
/// whose code has another name).
fn expected_code(stem: &str) -> String {
    let code = match stem {
        "bad_max_failures" => "plan::bad_policy",
        "empty_group_warning" => "plan::empty_group",
        "missing_site" => "plan::missing_key",
        "many_problems" => "plan::duplicate_mac",
        "undefined_variable" => "template::undefined_variable",
        "template_syntax" => "template::syntax",
        other => return format!("ztpd::plan::{other}"),
    };
    format!("ztpd::{code}")
}

#[test]
fn every_fixture_reports_its_code_and_matches_its_snapshot() {
    let root = Path::new("tests/fixtures/bad");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    let all = fixtures();
    assert!(
        all.len() >= 20,
        "at least 20 bad plans, found {}",
        all.len()
    );
    for f in all {
        let stem = f.file_stem().unwrap().to_str().unwrap().to_string();
        let loaded = plan::load(&resolved(root), std::slice::from_ref(&f));
        let d = &loaded.diagnostics;
        let codes: Vec<&str> = d
            .errors
            .iter()
            .chain(&d.warnings)
            .map(|x| x.code.as_str())
            .collect();
        let want = expected_code(&stem);
        if !codes.contains(&want.as_str()) {
            failures.push(format!("{stem}: expected {want}, got {codes:?}"));
        }
        if stem.ends_with("_warning") {
            if d.has_errors() {
                failures.push(format!(
                    "{stem}: expected only warnings, got errors {codes:?}"
                ));
            }
        } else if !d.has_errors() {
            failures.push(format!("{stem}: expected an error"));
        }
        let rendered = format!("{}{}\n", d.render(80, false), d.summary());
        let snap = Path::new("tests/snapshots/plan").join(format!("{stem}.txt"));
        if update {
            std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
            std::fs::write(&snap, &rendered).unwrap();
        } else {
            match std::fs::read_to_string(&snap) {
                Ok(s) if s == rendered => {}
                Ok(s) => failures.push(format!(
                    "{stem}: snapshot differs\n--- {}\n{s}\n+++ now\n{rendered}",
                    snap.display()
                )),
                Err(_) => failures.push(format!(
                    "{stem}: no snapshot at {} (run with UPDATE_SNAPSHOTS=1)",
                    snap.display()
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn several_problems_in_one_plan_are_all_reported() {
    let root = Path::new("tests/fixtures/bad");
    let loaded = plan::load(&resolved(root), &[root.join("plans/many_problems.toml")]);
    let codes: Vec<&str> = loaded
        .diagnostics
        .errors
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    for want in [
        "ztpd::plan::duplicate_mac",
        "ztpd::plan::ip_in_pool",
        "ztpd::plan::unknown_key",
        "ztpd::plan::link_unknown_port",
        "ztpd::plan::bad_duration",
        "ztpd::template::undefined_variable",
    ] {
        assert!(codes.contains(&want), "missing {want} in {codes:?}");
    }
}

#[test]
fn toml_syntax_errors_carry_line_and_column() {
    let root = Path::new("tests/fixtures/bad");
    let loaded = plan::load(&resolved(root), &[root.join("plans/toml_syntax.toml")]);
    let d = &loaded.diagnostics.errors[0];
    assert_eq!(d.code, "ztpd::plan::toml_syntax");
    let (_, line, col) = d.location().unwrap();
    assert_eq!((line, col), (2, 12));
}

#[test]
fn the_good_plan_is_valid_and_renders_every_templated_device() {
    let root = Path::new("tests/fixtures/good");
    let loaded = plan::load(&resolved(root), &[]);
    assert!(
        loaded.is_valid(),
        "{}",
        loaded.diagnostics.render(80, false)
    );
    assert_eq!(loaded.model.devices().count(), 4);
    assert_eq!(loaded.configs.len(), 3);
    // `Et49` in the plan is canonicalised to the model's `Ethernet49`.
    assert!(loaded.configs["leaf1"]
        .contains("interface Ethernet49\n   description to spine1:Ethernet1"));
    let site = &loaded.model.sites[0];
    assert_eq!(site.groups["leafs-floor1"].members, ["leaf1", "leaf2"]);
}

#[test]
fn files_that_shadow_generated_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new("tests/fixtures/good");
    for sub in [
        "plans",
        "templates",
        "templates/device_function",
        "files",
        "files/images",
        "files/patches",
    ] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    for f in [
        "plans/lab.toml",
        "templates/arista.j2",
        "templates/device_function/default.toml",
        "files/images/EOS-4.30.1F.swi",
        "files/patches/hotfix.swix",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("files/configs")).unwrap();
    std::fs::write(dir.path().join("files/leaf1-confg"), "x").unwrap();
    let loaded = plan::load(&resolved(dir.path()), &[]);
    let shadow: Vec<&str> = loaded
        .diagnostics
        .errors
        .iter()
        .filter(|d| d.code == "ztpd::plan::shadowed_path")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(shadow.len(), 2, "{shadow:?}");
    assert!(shadow.iter().any(|m| m.contains("configs")));
    assert!(shadow.iter().any(|m| m.contains("leaf1-confg")));
}

#[test]
fn plans_in_two_files_share_name_uniqueness() {
    let root = Path::new("tests/fixtures/good");
    let text = std::fs::read_to_string(root.join("plans/lab.toml")).unwrap();
    let other = text
        .replace("name = \"lab\"", "name = \"lab2\"")
        .replace("10.10.0.", "10.20.0.");
    let loaded = plan::load_texts(
        &resolved(root),
        [
            (Path::new("plans/a.toml"), text.as_str()),
            (Path::new("plans/b.toml"), other.as_str()),
        ],
    );
    let codes: Vec<&str> = loaded
        .diagnostics
        .errors
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert!(codes.contains(&"ztpd::plan::duplicate_name"), "{codes:?}");
    assert!(codes.contains(&"ztpd::plan::duplicate_serial"), "{codes:?}");
    assert!(codes.contains(&"ztpd::plan::duplicate_mac"), "{codes:?}");
    assert!(
        !codes.contains(&"ztpd::plan::duplicate_ip"),
        "IPs moved to 10.20: {codes:?}"
    );
}

#[test]
fn undefined_variables_point_at_the_device_in_the_plan_too() {
    let root = Path::new("tests/fixtures/bad");
    let plan = root.join("plans/undefined_variable.toml");
    let loaded = plan::load(&resolved(root), std::slice::from_ref(&plan));
    let d = loaded
        .diagnostics
        .errors
        .iter()
        .find(|d| d.code == "ztpd::template::undefined_variable")
        .expect("an undefined variable");
    let (template, line, _) = d.location().unwrap();
    assert!(template.ends_with("templates/arista.j2"), "{template}");
    assert_eq!(line, 12);
    // leaf2 lacks `asn`: its entry is at line 52, the name at column 8.
    assert_eq!(d.elsewhere.len(), 1, "{:?}", d.elsewhere);
    let at = &d.elsewhere[0];
    assert!(at.file.display.ends_with("plans/undefined_variable.toml"));
    assert_eq!(at.file.line_col(at.span.start), (52, 8));
    assert_eq!(&at.file.text[at.span.clone()], "\"leaf2\"");
    assert_eq!(at.label, "device `leaf2` is defined here");

    let rendered = loaded.diagnostics.render(80, false);
    assert!(rendered.contains("templates/arista.j2:12:21"), "{rendered}");
    assert!(
        rendered.contains("plans/undefined_variable.toml:52:8"),
        "{rendered}"
    );

    // `validate --format json` prints this.
    let json = loaded.diagnostics.to_json(false);
    let related = &json["errors"][0]["related"][0];
    assert!(
        related["file"]
            .as_str()
            .unwrap()
            .ends_with("plans/undefined_variable.toml"),
        "{json}"
    );
    assert_eq!(related["line"], 52, "{json}");
    assert_eq!(related["column"], 8, "{json}");
    assert_eq!(related["label"], "device `leaf2` is defined here");
}

/// Every routes.toml problem in one file is reported at once, each with its
/// file:line:col, a `ztpd::routes::*` code and a help line, and the report
/// matches its snapshot.
#[test]
fn routes_toml_problems_are_all_reported_with_their_place() {
    let cwd = std::env::current_dir().unwrap();
    let mut r = resolved(Path::new("tests/fixtures/good"));
    r.settings.paths.routes = cwd.join("tests/fixtures/bad/routes/many_problems.toml");
    let loaded = plan::load(&r, &[]);
    let d = &loaded.diagnostics;
    assert!(d.misplaced_span().is_none(), "{:?}", d.misplaced_span());
    let mut got: Vec<(String, usize, usize)> = Vec::new();
    for e in &d.errors {
        let (file, line, col) = e.location().expect("every problem has a place");
        assert_eq!(file, "tests/fixtures/bad/routes/many_problems.toml");
        assert!(e.code.starts_with("ztpd::routes::"), "{}", e.code);
        assert!(
            e.help.as_ref().is_some_and(|h| !h.is_empty()),
            "{} has no help",
            e.code
        );
        got.push((
            e.code.trim_start_matches("ztpd::routes::").into(),
            line,
            col,
        ));
    }
    got.sort_by_key(|(_, l, c)| (*l, *c));
    let want: Vec<(String, usize, usize)> = [
        ("reserved_endpoint", 8, 12),
        ("mqtt_without_broker", 13, 8),
        ("bad_topic", 14, 9),
        ("mqtt_loop", 14, 9),
        ("bad_url", 18, 7),
        ("unknown_key", 19, 1),
        // The second AND in the condition's string.
        ("syntax", 24, 51),
        ("unknown_endpoint", 25, 24),
        ("unknown_source", 29, 10),
        ("unknown_function", 30, 14),
        ("no_twin", 36, 14),
        ("duplicate_route", 40, 8),
        // After two escaped quotes: `$twin.deviceId` at its file column.
        ("twin_path", 42, 35),
        ("wrong_type", 46, 11),
        ("bad_enrichment", 49, 7),
        ("bad_enrichment", 50, 9),
    ]
    .iter()
    .map(|(c, l, col)| (c.to_string(), *l, *col))
    .collect();
    assert_eq!(got, want);
    let rendered = format!("{}{}\n", d.render(80, false), d.summary());
    let snap = Path::new("tests/snapshots/routes/many_problems.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
        std::fs::write(snap, &rendered).unwrap();
    }
    let want = std::fs::read_to_string(snap)
        .unwrap_or_else(|_| panic!("no snapshot at {} (UPDATE_SNAPSHOTS=1)", snap.display()));
    assert_eq!(rendered, want, "snapshot {} differs", snap.display());
}
