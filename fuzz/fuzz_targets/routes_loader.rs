//! Arbitrary text as routes.toml: diagnostics, never a panic, every
//! diagnostic's span inside the text (a condition's error is mapped from the
//! decoded string back into the file, escapes and all), and a table served
//! only without errors.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ztpd::plan::diagnostic::{Diagnostics, SourceFile};
use ztpd::telemetry::routing::load::{read, Facts};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = SourceFile::new(Path::new("routes.toml"), text.to_string());
    let facts = Facts {
        // Both ways, chosen by the input so a crash replays.
        broker: ztpd_fuzz::one_in(data, 2),
        collection: "telemetry".into(),
    };
    let mut d = Diagnostics::default();
    let table = read(&file, &facts, &mut d);
    assert!(
        !d.has_errors() || table.is_builtin(),
        "a table with errors is served"
    );
    ztpd_fuzz::check_report(data, &d, !d.has_errors());
});
