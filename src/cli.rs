//! Command-line interface: one clap tree; each command lives in `commands/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{self, EXIT_INVALID};

use crate::settings::{self, Resolved};

#[derive(Debug, Parser)]
#[command(
    name = "ztpd",
    version,
    about = "Zero-touch provisioning daemon: DHCP, TFTP and HTTP from TOML plans kept in git"
)]
pub struct Cli {
    /// Daemon settings file; its directory becomes the root for every path.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plans and everything they reference; exit 0 valid, 78 invalid.
    Validate(commands::validate::Args),
    /// The daemon: DHCP + TFTP + HTTP + watcher + credentials + broker + bridge.
    Run(commands::run::Args),
    /// Print the rendered config and DHCP view of one device.
    Render(commands::render::Args),
    /// Plan operations for code review.
    Plan {
        #[command(subcommand)]
        command: commands::plan_diff::PlanCommand,
    },
    /// Device states of a running daemon (operator API).
    Status(commands::operator::StatusArgs),
    /// Approve a device waiting in manual approval mode (name or serial).
    Approve(commands::operator::ApproveArgs),
    /// Accept a new box (SERIAL) at a planned device's place (SPEC §12).
    Replace(commands::operator::ReplaceArgs),
    /// Groups of devices of one model (operator API).
    Group {
        #[command(subcommand)]
        command: commands::group::GroupCommand,
    },
    /// Rollouts of a group under a policy (operator API).
    Rollout {
        #[command(subcommand)]
        command: commands::rollout::RolloutCommand,
    },
    /// Simulated devices.
    Device {
        #[command(subcommand)]
        command: commands::simulate::DeviceCommand,
    },
    /// The telemetry bridge alone (MQTT -> MongoDB or the embedded store).
    Bridge(commands::bridge::Args),
    /// Per-device telemetry statistics: count, min/mean/max latitude and longitude, last battery.
    Analyze(commands::analyze::Args),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Offline topology checks.
    Topology {
        #[command(subcommand)]
        command: commands::topology::TopologyCommand,
    },
    /// The local hub: provisioning settings, devices, direct methods, twins.
    Hub {
        #[command(subcommand)]
        command: commands::hub::HubCommand,
    },
    /// Device credentials: `device_credentials/device_<id>.json` + history.
    Credentials {
        #[command(subcommand)]
        action: commands::credentials::CredentialsCommand,
    },
}

pub fn main() -> ExitCode {
    use commands::plan_diff::PlanCommand;
    use commands::simulate::DeviceCommand;
    use commands::topology::TopologyCommand;
    let cli = Cli::parse_from(commands::rollout::rewrite_kind_flag(
        std::env::args_os().collect(),
    ));
    crate::telemetry::mqtt::install_crypto_provider();
    init_tracing();
    let config = cli.config.as_deref();
    match cli.command {
        Command::Validate(args) => {
            with_settings(config, &args.plans, |r| commands::validate::run(r, &args))
        }
        Command::Run(args) => {
            with_settings(config, &args.plan_args(), |r| commands::run::run(r, &args))
        }
        Command::Render(args) => with_settings(config, std::slice::from_ref(&args.plan), |r| {
            commands::render::run(r, &args)
        }),
        Command::Plan {
            command: PlanCommand::Diff { old, new, format },
        } => with_settings(config, &[new.clone(), old.clone()], |r| {
            commands::plan_diff::run(r, &old, &new, format)
        }),
        Command::Plan {
            command: PlanCommand::Bindings { format },
        } => with_settings(config, &[], |r| commands::operator::bindings(r, format)),
        Command::Replace(args) => with_settings(config, &[], |r| {
            commands::operator::replace(r, &args.device, &args.serial)
        }),
        Command::Status(args) => {
            with_settings(config, &[], |r| commands::operator::status(r, &args))
        }
        Command::Approve(args) => {
            with_settings(config, &[], |r| commands::operator::approve(r, &args))
        }
        Command::Group { command } => {
            with_settings(config, &[], |r| commands::group::run(r, command))
        }
        Command::Rollout { command } => {
            with_settings(config, &[], |r| commands::rollout::run(r, command))
        }
        Command::Device {
            command: DeviceCommand::Simulate(args),
        } => commands::simulate::run(config, *args),
        Command::Bridge(args) => with_settings(config, &[], |r| commands::bridge::run(r, args)),
        Command::Analyze(args) => with_settings(config, &[], |r| commands::analyze::run(r, &args)),
        Command::Topology {
            command:
                TopologyCommand::Diff {
                    plan,
                    reported,
                    format,
                },
        } => with_settings(config, std::slice::from_ref(&plan), |r| {
            commands::topology::run(r, &plan, &reported, format)
        }),
        Command::Hub { command } => with_settings(config, &[], |r| commands::hub::run(r, command)),
        Command::Credentials { action } => {
            with_settings(config, &[], |r| commands::credentials::run(r, action))
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ztpd", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// Resolve settings (SPEC §1) or exit 78 with the problem.
fn with_settings(
    config: Option<&Path>,
    plans: &[PathBuf],
    f: impl FnOnce(&Resolved) -> ExitCode,
) -> ExitCode {
    match settings::resolve(config, plans) {
        Ok(r) => f(&r),
        Err(e) => {
            report_settings_error(&e);
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn report_settings_error(e: &settings::SettingsError) {
    use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
    let mut ds = Diagnostics::default();
    match e {
        settings::SettingsError::Parse {
            path,
            message,
            span,
            text,
        } => {
            let src = SourceFile::new(path, text.clone());
            ds.push(
                Diagnostic::error(
                    "settings::invalid",
                    format!("invalid settings: {}", message.trim()),
                )
                .at(&src, span.clone().unwrap_or(0..0))
                .help("see SPEC §1b for the settings and their defaults; every key is optional"),
            );
        }
        other => ds.push(
            Diagnostic::error("settings::unreadable", other.to_string())
                .help("check --config FILE"),
        ),
    }
    eprint!("{}", ds.render(commands::terminal_width(), false));
}

/// `ZTPD_LOG` overrides it (tracing's `EnvFilter` syntax, e.g. `debug`).
const DEFAULT_LOG: &str = "info";

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZTPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    // Colours only on a terminal: a log file or journald gets plain text.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks the whole tree (unique ids, valid requires/conflicts);
    /// without this, a clash only shows when someone runs that subcommand.
    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
