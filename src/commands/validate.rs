//! `ztpd validate PLAN...`: the loader plus reporting (plans, hub.toml and
//! routes.toml are loaded together).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{terminal_width, Format, EXIT_INVALID};
use crate::plan;
use crate::settings::Resolved;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan files or directories (default: `paths.plans`).
    pub plans: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Treat warnings as errors.
    #[arg(long)]
    pub deny_warnings: bool,
}

pub fn run(resolved: &Resolved, args: &Args) -> ExitCode {
    let (plans, format, deny_warnings) = (&args.plans, args.format, args.deny_warnings);
    let loaded = plan::load(resolved, plans);
    let d = &loaded.diagnostics;
    let valid = !(d.has_errors() || (deny_warnings && !d.warnings.is_empty()));
    match format {
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&d.to_json(valid)).unwrap_or_default()
            );
        }
        Format::Text => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            eprint!("{}", d.render(terminal_width(), color));
            let devices = loaded.model.devices().count();
            if valid {
                let routes = match &loaded.routes.file {
                    Some(f) => format!(
                        ", {} route{} ({})",
                        loaded.routes.routes.len(),
                        plural(loaded.routes.routes.len()),
                        f.display()
                    ),
                    None => String::new(),
                };
                println!(
                    "ok: {} plan{}, {} site{}, {} devices, {} configs rendered{routes} ({})",
                    loaded.files.len(),
                    plural(loaded.files.len()),
                    loaded.model.sites.len(),
                    plural(loaded.model.sites.len()),
                    devices,
                    loaded.configs.len(),
                    d.summary()
                );
            } else {
                eprintln!(
                    "invalid: {}{}",
                    d.summary(),
                    if deny_warnings && !d.has_errors() {
                        " (--deny-warnings)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    // The process ends here: freeing a 10 000-device model piece by piece
    // would cost a tenth of the run for nothing.
    std::mem::forget(loaded);
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
