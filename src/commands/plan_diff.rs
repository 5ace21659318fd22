//! `ztpd plan diff OLD NEW`: per-device changes for code review.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Format, EXIT_INVALID};
use crate::plan::{self, diff};
use crate::settings::Resolved;

#[derive(Debug, clap::Subcommand)]
pub enum PlanCommand {
    /// What changes for each device if NEW replaces OLD; exit 0 no change, 1 changes.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print the serials a running daemon bound at run time as plan lines to
    /// commit (SPEC §12); once the plan says the same, the binding is dropped.
    Bindings {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(resolved: &Resolved, old: &PathBuf, new: &PathBuf, format: Format) -> ExitCode {
    let o = plan::load(resolved, std::slice::from_ref(old));
    let n = plan::load(resolved, std::slice::from_ref(new));
    for (which, l) in [("OLD", &o), ("NEW", &n)] {
        if l.diagnostics.has_errors() {
            super::print_diagnostics(&l.diagnostics);
            eprintln!("{which} plan is invalid: {}", l.diagnostics.summary());
            return ExitCode::from(EXIT_INVALID);
        }
    }
    let changes = diff::diff((&o.model, &o.configs), (&n.model, &n.configs));
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        ),
        Format::Text => print!("{}", diff::render(&changes)),
    }
    if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
