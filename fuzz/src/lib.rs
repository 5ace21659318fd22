//! What more than one fuzz target checks of a diagnostics report.

use std::hash::{DefaultHasher, Hash, Hasher};

use ztpd::plan::diagnostic::Diagnostics;

/// True for about one input in `n`, chosen by the input's bytes, so a
/// replayed input (a crash reproduction) takes the same path.
pub fn one_in(data: &[u8], n: u64) -> bool {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish() % n == 0
}

/// Every span must lie inside its file on character boundaries (asserted on
/// every input: the renderer would quietly drop a bad snippet), the report
/// must serialise, and on one input in 16 it is rendered too. Rendering is
/// miette's wrapping and line breaking, ~90 % of a run under ASan; it reads
/// only what the span check already proved, so sampling it keeps its
/// coverage at a fraction of the cost.
pub fn check_report(data: &[u8], diags: &Diagnostics, valid: bool) {
    if let Some(problem) = diags.misplaced_span() {
        panic!("a diagnostic points outside its text: {problem}");
    }
    let _ = diags.to_json(valid);
    if one_in(data, 16) {
        let _ = diags.render(80, false);
    }
}
