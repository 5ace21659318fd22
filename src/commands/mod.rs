//! One module per command, each with its clap arguments beside it; `cli`
//! only parses and dispatches. What the commands share lives here: the
//! output format, the exit codes, and how a plan's problems are printed.

use std::process::ExitCode;

use clap::ValueEnum;

pub mod analyze;
pub mod arg;
pub mod bridge;
pub mod credentials;
pub mod group;
pub mod hub;
pub mod operator;
pub mod plan_diff;
pub mod render;
pub mod rollout;
pub mod run;
pub mod simulate;
pub mod simulate_telemetry;
pub mod topology;
pub mod validate;

/// Exit code for invalid input (sysexits EX_CONFIG), as SPEC §1b/§2 say.
pub const EXIT_INVALID: u8 = 78;

/// `--format` of the commands that can print JSON.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Width diagnostics are rendered at: `COLUMNS`, else 100.
pub fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Print a plan's diagnostics (errors and warnings) to stderr.
pub fn print_diagnostics(d: &crate::plan::diagnostic::Diagnostics) {
    eprint!("{}", d.render(terminal_width(), false));
}

/// A multi-threaded runtime for a command, or the exit code of its failure.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}
