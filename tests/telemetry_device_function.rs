//! `ztpd validate` checks the device functions plans reference, pointing at
//! the problem inside the device-function file (file:line:col), once per file
//! however many devices use it.

mod support;

use ztpd::plan;
use ztpd::settings::{Resolved, Settings};

#[test]
fn a_bad_device_function_is_reported_inside_its_file() {
    let dir = support::fixtures::temp_root("good");
    let resolved = Resolved {
        root: dir.path().to_path_buf(),
        file: None,
        settings: Settings::default(),
    };
    let plan_file = dir.path().join("plans/lab.toml");
    let good = plan::load(&resolved, std::slice::from_ref(&plan_file));
    assert!(
        !good.diagnostics.has_errors(),
        "{}",
        good.diagnostics.render(100, false)
    );

    std::fs::write(
        dir.path().join("templates/device_function/default.toml"),
        "interval = \"1s\"\nfields = [\"device_id\", \"signal_dat\"]\n[battery]\ndrain_max = 3\n",
    )
    .unwrap();
    let bad = plan::load(&resolved, std::slice::from_ref(&plan_file));
    let d = &bad.diagnostics;
    let out = d.render(100, false);
    let unknown: Vec<_> = d
        .errors
        .iter()
        .filter(|e| e.code == "ztpd::device_function::unknown_field")
        .collect();
    assert_eq!(unknown.len(), 1, "reported once: {out}");
    let (file, line, col) = unknown[0].location().unwrap();
    assert!(file.ends_with("device_function/default.toml"), "{file}");
    assert_eq!((line, col), (2, 24));
    assert!(
        d.errors
            .iter()
            .any(|e| e.code == "ztpd::device_function::bad_battery"),
        "{out}"
    );
    assert!(out.contains("did you mean `signal_date`"), "{out}");
}
