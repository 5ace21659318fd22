//! `ztpd device simulate --credential FILE | --credentials DIR --fleet N`:
//! simulated telemetry devices publishing per their credential.

use std::process::ExitCode;
use std::sync::Arc;

use super::{runtime, EXIT_INVALID};
use crate::telemetry::mqtt::install_crypto_provider;
use crate::telemetry::simulate::Progress;

/// How often a running simulation prints its progress line.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Exit status after Ctrl-C, as shells report a process ended by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// `ztpd device simulate` (telemetry devices).
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// One device: its credential file (device_credentials/device_<id>.json).
    #[arg(long, value_name = "FILE", conflicts_with = "credentials")]
    pub credential: Option<std::path::PathBuf>,
    /// A fleet: the directory holding device_*.json credentials.
    #[arg(long, value_name = "DIR", requires = "fleet")]
    pub credentials: Option<std::path::PathBuf>,
    /// How many devices: with --credentials, N of its credentials at once;
    /// with --switch all, the first N planned switches.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = super::arg::count_usize)]
    pub fleet: Option<usize>,
    /// Messages per device, at least 1 (default: until the battery is empty).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = super::arg::count)]
    pub count: Option<u64>,
    /// Time between readings, longer than 0, overriding the device function's (e.g. 100ms).
    #[arg(long, value_name = "DUR", value_parser = super::arg::positive_duration)]
    pub interval: Option<std::time::Duration>,
    /// Broker URL (default: hub.toml's `broker` when the credential is for that hub,
    /// the embedded broker for the local hub; else mqtts://<HostName>:8883).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// Seed the readings' randomness (reproducible runs).
    #[arg(long, value_name = "N", hide = true)]
    pub seed: Option<u64>,
}

/// Run telemetry devices; `server` is `--server` (ztpd's HTTP address, the
/// only origin credential refreshes are fetched from when given).
pub fn run(config: Option<&std::path::Path>, args: SimulateArgs, server: Option<&str>) -> ExitCode {
    use crate::telemetry::simulate::RefreshOrigins;
    install_crypto_provider();
    let resolved = match crate::settings::resolve(config, &[]) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    // hub.toml (or the local hub) says which broker its devices publish to
    let hub = crate::credentials::hub::device_view(&resolved);
    let refresh_from = match server {
        Some(url) => match RefreshOrigins::of_server(url) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
        None => RefreshOrigins::of_plans(&resolved),
    };
    let files = match (&args.credential, &args.credentials, args.fleet) {
        (Some(f), _, _) => vec![f.clone()],
        (None, Some(dir), Some(n)) => match crate::telemetry::simulate::fleet_files(dir, n) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
        _ => {
            eprintln!("error: give --credential FILE, or --credentials DIR --fleet N");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let opts = crate::telemetry::simulate::SimOptions {
        count: args.count,
        interval: args.interval,
        broker: args.broker.clone(),
        hub,
        seed: args.seed,
        refresh_from,
    };
    rt.block_on(async move {
        let progress = Arc::new(Progress::default());
        let fleet = files.len();
        let mut tasks = tokio::task::JoinSet::new();
        for f in files {
            tasks.spawn(crate::telemetry::simulate::run_device(
                f,
                opts.clone(),
                progress.clone(),
            ));
        }
        // plain progress lines (one every 2 s) while devices run
        let ticker = {
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(PROGRESS_EVERY);
                t.tick().await;
                loop {
                    t.tick().await;
                    eprintln!("{fleet} device(s): {}", progress.line());
                }
            })
        };
        let mut failed = 0;
        loop {
            let r = tokio::select! {
                r = tasks.join_next() => match r {
                    Some(r) => r,
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => {
                    ticker.abort();
                    println!("interrupted: {fleet} device(s): {}", progress.line());
                    return ExitCode::from(EXIT_INTERRUPTED);
                }
            };
            match r {
                Ok(Ok(rep)) => println!(
                    "sent {} messages ({} readings, {} acknowledged), battery {:.2}{}{}",
                    rep.messages,
                    rep.readings,
                    rep.acked,
                    rep.battery,
                    if rep.stopped {
                        ", battery empty: stopped"
                    } else {
                        ""
                    },
                    if rep.refreshed > 0 {
                        format!(", credential refreshed {}x", rep.refreshed)
                    } else {
                        String::new()
                    },
                ),
                Ok(Err(e)) => {
                    failed += 1;
                    eprintln!("error: {e}");
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("error: device task failed: {e}");
                }
            }
        }
        ticker.abort();
        if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
