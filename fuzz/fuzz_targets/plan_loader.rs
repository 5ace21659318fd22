//! Arbitrary bytes (and, from the seed corpus, arbitrary TOML) into the plan
//! loader: it must always return diagnostics, never panic, every span must
//! stay inside its text, and the report must serialise and render
//! (`ztpd_fuzz::check_report`).
//!
//! Speed: one `LoadCache` lives across runs, as the daemon keeps one across
//! reloads. A cold load rendered all eight built-in bootstrap scripts
//! (minijinja parse + render) for every input, although they depend only on
//! a context that most mutated inputs share (docs/benchmarks.md, "Fuzzing
//! the plan loader"). The loader promises that a warm load equals a cold
//! one; on one input in 64 (chosen by the input's bytes, so a replayed input
//! does the same) the target loads it cold as well and checks that promise.
#![no_main]

use std::cell::RefCell;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ztpd::plan::{LoadCache, Loaded};
use ztpd::settings::{Resolved, Settings};

thread_local! {
    static CACHE: RefCell<LoadCache> = RefCell::new(LoadCache::default());
}

/// Everything a load hands on, as comparable text. The diagnostics by every
/// field the report is drawn from (rendering them as well would only repeat
/// that at several times the cost).
fn outcome(l: &Loaded) -> (String, String, String, Vec<String>, bool) {
    let diagnostics = l
        .diagnostics
        .sorted()
        .into_iter()
        .map(|d| {
            let elsewhere: Vec<_> = d
                .elsewhere
                .iter()
                .map(|e| (&e.file.display, &e.span, &e.label))
                .collect();
            format!(
                "{} {:?} {} {:?} {:?} {:?} {} {:?} {:?}",
                d.code,
                d.severity,
                d.message,
                d.help,
                d.file.as_ref().map(|f| &f.display),
                d.span,
                d.label,
                d.related,
                elsewhere
            )
        })
        .collect();
    (
        format!("{:?}", l.model),
        format!("{:?}", l.configs),
        format!("{:?}", l.bootstrap),
        diagnostics,
        l.is_valid(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let resolved = Resolved {
        root: Path::new("/nonexistent-ztpd-fuzz-root").to_path_buf(),
        file: None,
        settings: Settings::default(),
    };
    let file = [(Path::new("plans/fuzz.toml"), text)];
    let loaded = CACHE.with(|c| ztpd::plan::load_texts_with(&resolved, file, &mut c.borrow_mut()));
    ztpd_fuzz::check_report(data, &loaded.diagnostics, loaded.is_valid());

    if ztpd_fuzz::one_in(data, 64) {
        let cold = ztpd::plan::load_texts(&resolved, file);
        assert!(
            outcome(&loaded) == outcome(&cold),
            "a load with the cache differs from a cold load"
        );
    }
});
