//! Command-line interface: one clap tree, one function per command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for invalid input (sysexits EX_CONFIG), as SPEC §1b/§2 say.
pub const EXIT_INVALID: u8 = 78;

#[derive(Debug, Parser)]
#[command(name = "ztpd", version, about = "Zero-touch provisioning daemon")]
pub struct Cli {
    /// Daemon settings file; its directory becomes the root for every path.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version.
    Version,
    /// The daemon: DHCP + TFTP + HTTP + watcher + credentials + broker + bridge.
    Run {
        /// Directory of plans to serve (default: `paths.plans`).
        #[arg(long, value_name = "DIR")]
        plans: Option<PathBuf>,
    },
    /// Device credentials: `device_credentials/device_<id>.json` + history.
    Credentials {
        #[command(subcommand)]
        action: CredentialsCommand,
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
    init_tracing();
    match cli.command {
        Command::Run { plans } => run(cli.config.as_deref(), plans),
        Command::Credentials { action } => {
            crate::credentials::command::run(cli.config.as_deref(), action)
        }
        Command::Version => {
            println!("ztpd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZTPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(config: Option<&std::path::Path>, plans: Option<PathBuf>) -> ExitCode {
    let plan_args: Vec<PathBuf> = plans.iter().cloned().collect();
    let resolved = match crate::settings::resolve(config, &plan_args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    // The plan loader replaces this empty snapshot.
    let first = crate::snapshot::Snapshot::empty(resolved.clone());
    match crate::daemon::block_on_run(resolved, first) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
