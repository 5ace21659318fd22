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
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("ztpd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
