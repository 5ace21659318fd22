//! Arbitrary text as a device function: diagnostics, never a panic, and
//! every diagnostic's span inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ztpd::plan::diagnostic::{Diagnostics, SourceFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = SourceFile::new(Path::new("device_function/fuzz.toml"), text.to_string());
    let mut d = Diagnostics::default();
    let f = ztpd::telemetry::device_function::read(&file, "fuzz", &mut d);
    ztpd_fuzz::check_report(data, &d, f.is_some() && !d.has_errors());
});
