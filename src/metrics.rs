//! Prometheus text exposition. Each service owns its counters and writes
//! them when `/metrics` is scraped; no registry, no global state.

use std::fmt::Write;

pub trait MetricsSource: Send + Sync {
    /// Append samples in the Prometheus text format.
    fn write_metrics(&self, out: &mut String);
}

/// Write one counter or gauge with its HELP/TYPE header.
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}
