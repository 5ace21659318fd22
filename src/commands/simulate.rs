//! `ztpd device simulate`: one command, two kinds of simulated device (SPEC §2).
//! With `--switch` it is a switch running the ZTP flow from the plan
//! (`ztp::simulate`); otherwise a telemetry device publishing per its
//! credential (`telemetry::command`). `--fleet N` means "N of them" in both.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::EXIT_INVALID;
use crate::ztp::simulate::Fault;

#[derive(Debug, clap::Args)]
pub struct DeviceSimulateArgs {
    /// Telemetry devices: `--credential FILE` or `--credentials DIR --fleet N`.
    #[command(flatten)]
    pub telemetry: crate::telemetry::command::SimulateArgs,
    /// A switch: serial (or name) of the planned switch, or `all` for every
    /// non-root device with links (`--fleet N`: the first N).
    #[arg(long, value_name = "SERIAL", conflicts_with_all = ["credential", "credentials"], requires = "server")]
    pub switch: Option<String>,
    /// With --switch: ztpd's HTTP address, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", requires = "switch")]
    pub server: Option<String>,
    /// With --switch: inject a cabling or model fault.
    #[arg(long, value_enum, requires = "switch")]
    pub fault: Option<Fault>,
    /// With --switch: switches running at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// With --switch: plan files or directories (default: `paths.plans`).
    #[arg(long = "plan", value_name = "PLAN")]
    pub plan: Vec<PathBuf>,
    /// With --switch: ztpd's DHCP address (`listen.dhcp`); lease through a relay first.
    #[arg(long, value_name = "ADDR")]
    pub dhcp: Option<SocketAddr>,
    /// With --switch --dhcp: the simulated relay agent's address (giaddr; binds port 67).
    #[arg(long, value_name = "IP", default_value = "127.0.0.2")]
    pub relay: Ipv4Addr,
    /// With --switch: how long a switch keeps asking while it waits for approval.
    #[arg(long, default_value = "5m", value_parser = crate::duration::parse)]
    pub approval_wait: Duration,
}

pub fn run(config: Option<&Path>, args: DeviceSimulateArgs) -> ExitCode {
    let Some(switch) = args.switch else {
        return crate::telemetry::command::run_simulate(config, args.telemetry);
    };
    let Some(server) = args.server else {
        eprintln!("error: --switch needs --server URL (ztpd's HTTP address)");
        return ExitCode::from(EXIT_INVALID);
    };
    let ztp = crate::ztp::simulate::SimulateArgs {
        switch,
        server,
        fault: args.fault,
        fleet: args.telemetry.fleet,
        concurrency: args.concurrency,
        plan: args.plan,
        dhcp: args.dhcp,
        relay: args.relay,
        approval_wait: args.approval_wait,
    };
    match crate::settings::resolve(config, &ztp.plans()) {
        Ok(r) => crate::ztp::simulate::run(&r, &ztp),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}
