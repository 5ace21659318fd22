//! Command-line interface: one clap tree; each command lives in `commands/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::settings::{self, Resolved};

/// Exit code for invalid input (sysexits EX_CONFIG), as SPEC §1b/§2 say.
pub const EXIT_INVALID: u8 = 78;

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

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plans and everything they reference; exit 0 valid, 78 invalid.
    Validate {
        /// Plan files or directories (default: `paths.plans`).
        plans: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// The daemon: DHCP + TFTP + HTTP + watcher + credentials + broker + bridge.
    Run {
        /// Directory of plans to serve (default: `paths.plans`).
        #[arg(long, value_name = "DIR")]
        plans: Option<PathBuf>,
        /// How to notice edits: inotify events, polling, or off (SIGHUP only).
        #[arg(long, value_enum, default_value_t)]
        watch: crate::watch::WatchMode,
    },
    /// Print the rendered config and DHCP view of one device.
    Render {
        plan: PathBuf,
        /// Device name or serial.
        device: String,
    },
    /// Plan operations for code review.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Device states of a running daemon (operator API).
    Status {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Approve a device waiting in manual approval mode (name or serial).
    Approve { device: String },
    /// Simulated devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// The telemetry bridge alone (MQTT -> MongoDB or the embedded store).
    Bridge {
        /// MQTT client id; stable across restarts, unique per bridge (default: ztpd-bridge-<hostname>).
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
        /// Subscribe directly instead of through the `$share/ztpd/` shared subscription.
        #[arg(long)]
        no_share: bool,
    },
    /// Per-device telemetry statistics: count, min/mean/max latitude and longitude, last battery.
    Analyze {
        /// A device_id or a device_name.
        #[arg(long, value_name = "ID-OR-NAME")]
        device: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: crate::telemetry::command::AnalyzeFormat,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Offline topology checks.
    Topology {
        #[command(subcommand)]
        command: TopologyCommand,
    },
    /// Device credentials: `device_credentials/device_<id>.json` + history.
    Credentials {
        #[command(subcommand)]
        action: CredentialsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Simulated devices: telemetry devices (`--credential FILE`, or
    /// `--credentials DIR --fleet N`) or switches running the ZTP flow
    /// (`--switch SERIAL|all --server URL`).
    Simulate(Box<crate::commands::simulate::DeviceSimulateArgs>),
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// What changes for each device if NEW replaces OLD; exit 0 no change, 1 changes.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Compare a reported neighbour table with the plan; exit 0 all match, 1 problems, 78 invalid input.
    Diff {
        plan: PathBuf,
        /// `[{"device", "model", "neighbors": [{"local_port", "remote_device", "remote_port"}]}]`
        #[arg(value_name = "REPORTED.json")]
        reported: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Create one device credential (a device keeps its name if it had one).
    Create {
        /// The device id (factory serial), `[A-Za-z0-9._-]+`.
        #[arg(required_unless_present = "new", conflicts_with = "new")]
        device_id: Option<String>,
        /// Make a simulated device id (SHA-1 hex digest of random bytes).
        #[arg(long)]
        new: bool,
        /// Device function: `templates/device_function/<NAME>.toml`.
        #[arg(long, value_name = "NAME", default_value = "default")]
        function: String,
    },
    /// Rewrite every existing credential, keeping each device's name.
    Regenerate,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::mqtt::install_crypto_provider();
    init_tracing();
    let config = cli.config.as_deref();
    match cli.command {
        Command::Validate {
            plans,
            format,
            deny_warnings,
        } => with_settings(config, &plans, |r| {
            crate::commands::validate::run(r, &plans, format, deny_warnings)
        }),
        Command::Run { plans, watch } => {
            let args: Vec<PathBuf> = plans.into_iter().collect();
            with_settings(config, &args, |r| run(r, &args, watch))
        }
        Command::Render { plan, device } => {
            with_settings(config, std::slice::from_ref(&plan), |r| {
                crate::commands::render::run(r, &plan, &device)
            })
        }
        Command::Plan {
            command: PlanCommand::Diff { old, new, format },
        } => with_settings(config, &[new.clone(), old.clone()], |r| {
            crate::commands::plan_diff::run(r, &old, &new, format)
        }),
        Command::Status { format } => with_settings(config, &[], |r| {
            crate::commands::operator::status(r, format)
        }),
        Command::Approve { device } => with_settings(config, &[], |r| {
            crate::commands::operator::approve(r, &device)
        }),
        Command::Device {
            command: DeviceCommand::Simulate(args),
        } => crate::commands::simulate::run(config, *args),
        Command::Bridge {
            client_id,
            no_share,
        } => with_settings(config, &[], |r| {
            crate::telemetry::command::run_bridge(r, client_id, no_share)
        }),
        Command::Analyze { device, format } => with_settings(config, &[], |r| {
            crate::telemetry::command::run_analyze(r, device.as_deref(), format)
        }),
        Command::Topology {
            command:
                TopologyCommand::Diff {
                    plan,
                    reported,
                    format,
                },
        } => with_settings(config, std::slice::from_ref(&plan), |r| {
            crate::commands::topology::run(r, &plan, &reported, format)
        }),
        Command::Credentials { action } => with_settings(config, &[], |r| {
            crate::commands::credentials::run(r, action)
        }),
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
    eprint!(
        "{}",
        ds.render(crate::commands::validate::terminal_width(), false)
    );
}

/// The embedded broker (rumqttd) logs every connection at info and a
/// client's ordinary DISCONNECT as an error from its router ("no-connection
/// id N is already gone"); by default only its warnings and the server's
/// errors show. `ZTPD_LOG=info,rumqttd=debug` shows everything.
const DEFAULT_LOG: &str = "info,rumqttd=warn,rumqttd::router::routing=off";

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZTPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(resolved: &Resolved, plans: &[PathBuf], watch: crate::watch::WatchMode) -> ExitCode {
    let loaded = crate::plan::load(resolved, plans);
    if loaded.diagnostics.has_errors() {
        eprint!(
            "{}",
            loaded
                .diagnostics
                .render(crate::commands::validate::terminal_width(), false)
        );
        eprintln!(
            "ztpd run: plans are invalid ({}); not starting",
            loaded.diagnostics.summary()
        );
        return ExitCode::from(EXIT_INVALID);
    }
    if !loaded.diagnostics.warnings.is_empty() {
        eprint!(
            "{}",
            loaded
                .diagnostics
                .render(crate::commands::validate::terminal_width(), false)
        );
    }
    let first = crate::snapshot::Snapshot::from_loaded(resolved.clone(), loaded, 1);
    match crate::daemon::block_on_run(
        resolved.clone(),
        first,
        crate::daemon::RunOptions {
            plan_args: plans.to_vec(),
            watch,
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
