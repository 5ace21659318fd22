//! `ztpd device simulate`: one command, two kinds of simulated device (SPEC §2).
//! With `--switch` it is a switch running the ZTP flow from the plan
//! (`ztp::simulate`); otherwise a telemetry device publishing per its
//! credential (`simulate_telemetry`). `--fleet N` means "N of them" in both.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::{runtime, EXIT_INVALID};
use crate::settings::Resolved;
use crate::ztp::simulate::{Ending, FaultSpec, FleetOptions, NotCounted, NOT_COUNTED_HELP};

#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Simulated devices: telemetry devices (`--credential FILE`, or
    /// `--credentials DIR --fleet N`) or switches running the ZTP flow
    /// (`--switch SERIAL|all --server URL`).
    Simulate(Box<DeviceSimulateArgs>),
}

#[derive(Debug, clap::Args)]
pub struct DeviceSimulateArgs {
    /// Telemetry devices: `--credential FILE` or `--credentials DIR --fleet N`.
    #[command(flatten)]
    pub telemetry: super::simulate_telemetry::SimulateArgs,
    /// A switch: serial (or name) of the planned switch, or `all` for every
    /// non-root device with links (`--fleet N`: the first N).
    #[arg(long, value_name = "SERIAL", conflicts_with_all = ["credential", "credentials"], requires = "server")]
    pub switch: Option<String>,
    /// ztpd's HTTP address, e.g. http://127.0.0.1:8080. With --switch: where
    /// the switch talks to. For telemetry devices: the only origin a
    /// `refresh_credential` URL may point at (default: each plan site's
    /// `server_ip` at `listen.http`'s port, as the daemon writes them).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// With --switch: `KIND[:DEVICE,DEVICE...]`, a fault for the listed
    /// devices (all when no list): wrong-model, move-port, swap, and for
    /// agents upgrade-fails, upgrade-silent, upgrade-miscabled. Repeatable.
    #[arg(long, value_name = "KIND[:DEVICES]", requires = "switch")]
    pub fault: Vec<FaultSpec>,
    /// With --switch: stay running after deployment, long-poll actions and
    /// carry them out (upgrade, reconfigure).
    #[arg(long, requires = "switch")]
    pub agent: bool,
    /// With --switch: switches running at once (at least 1).
    #[arg(long, default_value = "256", allow_negative_numbers = true, value_parser = super::arg::concurrency)]
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
    /// With --switch: ztpd's DHCPv6 address (`listen.dhcp6`, e.g. [::1]:547);
    /// lease the planned `ip6` through a DHCPv6 relay first. Give an IPv6
    /// `--server` URL to run the whole flow over IPv6.
    #[arg(long, value_name = "ADDR", requires = "switch")]
    pub dhcp6: Option<SocketAddr>,
    /// With --switch --dhcp6: the simulated DHCPv6 relay agent's address (binds port 547).
    #[arg(long, value_name = "IP", default_value = "::1")]
    pub relay6: Ipv6Addr,
    /// With --switch: how long a switch keeps asking while it waits for
    /// approval; `0s` asks once.
    #[arg(long, default_value = "5m", value_parser = super::arg::duration)]
    pub approval_wait: Duration,
}

pub fn run(config: Option<&Path>, args: DeviceSimulateArgs) -> ExitCode {
    let Some(switch) = args.switch.clone() else {
        return super::simulate_telemetry::run(config, args.telemetry, args.server.as_deref());
    };
    let Some(server) = args.server.clone() else {
        eprintln!("error: --switch needs --server URL (ztpd's HTTP address)");
        return ExitCode::from(EXIT_INVALID);
    };
    match crate::settings::resolve(config, &args.plan) {
        Ok(r) => run_switches(&r, &args, &switch, server),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Simulated switches from the plan; exit 0 when every one deployed.
fn run_switches(
    resolved: &Resolved,
    args: &DeviceSimulateArgs,
    key: &str,
    server: String,
) -> ExitCode {
    let loaded = crate::plan::load(resolved, &args.plan);
    if loaded.diagnostics.has_errors() {
        super::print_diagnostics(&loaded.diagnostics);
        return ExitCode::from(EXIT_INVALID);
    }
    let switches =
        match crate::ztp::simulate::switches(&loaded.model, key, args.telemetry.fleet, &args.fault)
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(EXIT_INVALID);
            }
        };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let opts = FleetOptions {
        server,
        concurrency: args.concurrency,
        dhcp: args.dhcp,
        relay: args.relay,
        dhcp6: args.dhcp6,
        relay6: args.relay6,
        approval_wait: args.approval_wait,
        agent: args.agent,
    };
    let started = Instant::now();
    let link = loaded
        .model
        .sites
        .iter()
        .find_map(|s| s.dhcp.as_ref().map(|d| d.subnet.network()));
    let link6 = loaded
        .model
        .sites
        .iter()
        .find_map(|s| s.dhcp6.as_ref().map(|d| d.subnet.network()));
    let results = match rt.block_on(crate::ztp::simulate::fleet(&opts, switches, link, link6)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let (mut deployed, mut refused, mut failed, mut not_counted) = (0, 0, 0, 0);
    for (name, r) in &results {
        match r {
            Ok(Ending::Deployed) => {
                deployed += 1;
                if results.len() <= 20 {
                    println!("{name}: deployed");
                }
            }
            Ok(Ending::Refused(problems)) => {
                refused += 1;
                println!("{name}: refused (topology_mismatch)");
                for p in problems {
                    println!(
                        "  {}: {}",
                        p["kind"].as_str().unwrap_or("?"),
                        p["fix"].as_str().unwrap_or("")
                    );
                }
            }
            Err(e) if e.downcast_ref::<NotCounted>().is_some() => {
                failed += 1;
                not_counted += 1;
                println!("{name}: hello not counted (access.hello)");
            }
            Err(e) => {
                failed += 1;
                println!("{name}: failed: {e:#}");
            }
        }
    }
    if not_counted > 0 {
        eprintln!("{NOT_COUNTED_HELP}");
    }
    println!(
        "{} switch(es): {deployed} deployed, {refused} refused, {failed} failed in {:.2} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    if deployed == results.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
