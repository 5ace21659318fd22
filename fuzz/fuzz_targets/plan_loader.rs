//! Arbitrary bytes (and, from the seed corpus, arbitrary TOML) into the plan
//! loader: it must always return diagnostics, never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ztpd::settings::{Resolved, Settings};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let resolved = Resolved {
        root: Path::new("/nonexistent-ztpd-fuzz-root").to_path_buf(),
        file: None,
        settings: Settings::default(),
    };
    let loaded = ztpd::plan::load_texts(&resolved, [(Path::new("plans/fuzz.toml"), text)]);
    // Rendering the report walks every span: it must stay inside the text.
    let _ = loaded.diagnostics.render(80, false);
    let _ = loaded.diagnostics.to_json(loaded.is_valid());
});
