//! Real Spark for the Spark analysis example (`examples/spark/analyze.py`):
//! pyspark in the `.venv-spark` venv (scripts/install-test-deps.sh) and Java.
//!
//! Absent, a test skips with the reason — except as root, which is how CI
//! runs after installing them: there a missing Spark is a failure, not a
//! silent pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::tools::{is_root, which};

/// The Spark venv's Python: `SPARK_PYTHON`, else `.venv-spark/bin/python`.
fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPARK_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-spark/bin/python");
    p.is_file().then_some(p)
}

/// The Python with pyspark, when it and Java are there; else the reason is
/// printed and `None` returned (as root: a panic, see the module docs).
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    let missing = match (python(), which("java")) {
        (Some(p), Some(_)) => return Some(p),
        (None, _) => ".venv-spark (pyspark) is missing",
        (_, None) => "java is not installed",
    };
    let why = format!("{missing}; run scripts/install-test-deps.sh");
    assert!(
        !is_root(),
        "{test}: {why} (as root, as in CI, Spark must run)"
    );
    eprintln!("SKIP {test}: {why}");
    None
}

/// `examples/spark/analyze.py ARGS` on Spark's Python; its output and how
/// long it took.
pub fn analyze(python: &Path, args: &[&str]) -> (Output, Duration) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/spark/analyze.py");
    let started = Instant::now();
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("run examples/spark/analyze.py");
    (out, started.elapsed())
}
