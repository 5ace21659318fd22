//! `ztpd run`: load the plans the way `validate` does, refuse to start on
//! errors, and hand the first snapshot to the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_INVALID;
use crate::settings::Resolved;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of plans to serve (default: `paths.plans`).
    #[arg(long, value_name = "DIR")]
    pub plans: Option<PathBuf>,
    /// How to notice edits: inotify events, polling, or off (SIGHUP only).
    #[arg(long, value_enum, default_value_t)]
    pub watch: crate::watch::WatchMode,
}

impl Args {
    pub fn plan_args(&self) -> Vec<PathBuf> {
        self.plans.iter().cloned().collect()
    }
}

pub fn run(resolved: &Resolved, args: &Args) -> ExitCode {
    let plans = args.plan_args();
    let mut load_cache = crate::plan::LoadCache::default();
    let loaded = crate::plan::load_with(resolved, &plans, &mut load_cache);
    if loaded.diagnostics.has_errors() {
        super::print_diagnostics(&loaded.diagnostics);
        eprintln!(
            "ztpd run: plans are invalid ({}); not starting",
            loaded.diagnostics.summary()
        );
        return ExitCode::from(EXIT_INVALID);
    }
    if !loaded.diagnostics.warnings.is_empty() {
        super::print_diagnostics(&loaded.diagnostics);
    }
    let first = crate::snapshot::Snapshot::from_loaded(resolved.clone(), loaded, 1);
    match crate::daemon::block_on_run(
        resolved.clone(),
        first,
        crate::daemon::RunOptions {
            plan_args: plans,
            watch: args.watch,
            load_cache,
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
