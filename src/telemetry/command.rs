//! `ztpd bridge` and `ztpd analyze`.

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::bridge::{self, BridgeOptions, BridgeStats};
use super::mqtt::{install_crypto_provider, BrokerUrl};
use super::store::{AnyStore, DeviceStats, Store};
use crate::settings::Resolved;

#[derive(Debug, Clone, Copy, clap::ValueEnum, Default, PartialEq, Eq)]
pub enum AnalyzeFormat {
    #[default]
    Table,
    Json,
    Csv,
}

/// Default bridge client id: stable across restarts of this host's bridge.
pub fn default_client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if host.is_empty() {
        "ztpd-bridge".into()
    } else {
        format!("ztpd-bridge-{host}")
    }
}

/// The bridge's broker: `telemetry.broker`. (The daemon wires its own bridge
/// to the embedded broker: `service::embedded_bridge_options`.)
pub fn bridge_options(
    resolved: &Resolved,
    client_id: Option<String>,
) -> Result<BridgeOptions, String> {
    let Some(url) = &resolved.settings.telemetry.broker else {
        return Err(
            "no broker for the bridge: set telemetry.broker (e.g. \"mqtt://bridge:secret@127.0.0.1:1883\") in ztpd.toml; \
             for a daemon's embedded broker, add the account to its [broker] users and use the password from its password_file \
             (`ztpd run` itself already bridges its embedded broker)"
                .into(),
        );
    };
    let broker = BrokerUrl::parse(url).map_err(|e| format!("telemetry.broker: {e}"))?;
    Ok(BridgeOptions::new(
        broker,
        client_id.unwrap_or_else(default_client_id),
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

pub fn run_bridge(resolved: &Resolved, client_id: Option<String>, no_share: bool) -> ExitCode {
    install_crypto_provider();
    let mut opts = match bridge_options(resolved, client_id) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(crate::cli::EXIT_INVALID);
        }
    };
    if no_share {
        opts.share_group = None;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    rt.block_on(async {
        let store = match AnyStore::open(resolved).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.cancel();
        });
        let s = shutdown.clone();
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                s.cancel();
            }
        });
        tracing::info!(client_id = %opts.client_id, subscription = %opts.subscription(), "bridge starting");
        bridge::run(opts, store, Arc::new(BridgeStats::default()), shutdown).await;
        ExitCode::SUCCESS
    })
}

pub fn run_analyze(resolved: &Resolved, device: Option<&str>, format: AnalyzeFormat) -> ExitCode {
    install_crypto_provider();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let result = rt.block_on(async {
        let store = AnyStore::open(resolved).await?;
        store.analyze(device).await
    });
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = match format {
        AnalyzeFormat::Json => {
            serde_json::to_string_pretty(&stats).unwrap_or_else(|_| "[]".into()) + "\n"
        }
        AnalyzeFormat::Csv => csv(&stats),
        AnalyzeFormat::Table => table(&stats),
    };
    print!("{out}");
    if stats.is_empty() && device.is_some() {
        eprintln!("no telemetry for device `{}`", device.unwrap_or_default());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn name_text(s: &DeviceStats) -> String {
    match &s.device_name {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(stats: &[DeviceStats]) -> String {
    let mut out = String::from("device_id,device_name,count,latitude_min,latitude_mean,latitude_max,longitude_min,longitude_mean,longitude_max,last_battery\n");
    for s in stats {
        let lat = s.latitude;
        let lon = s.longitude;
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&s.device_id),
            csv_field(&name_text(s)),
            s.count,
            opt(lat.map(|x| x.min)),
            opt(lat.map(|x| x.mean)),
            opt(lat.map(|x| x.max)),
            opt(lon.map(|x| x.min)),
            opt(lon.map(|x| x.mean)),
            opt(lon.map(|x| x.max)),
            opt(s.last_battery),
        ));
    }
    out
}

pub fn table(stats: &[DeviceStats]) -> String {
    let head = [
        "device_id",
        "name",
        "count",
        "lat min",
        "lat mean",
        "lat max",
        "lon min",
        "lon mean",
        "lon max",
        "battery",
    ];
    let f6 = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            vec![
                s.device_id.clone(),
                name_text(s),
                s.count.to_string(),
                f6(s.latitude.map(|x| x.min)),
                f6(s.latitude.map(|x| x.mean)),
                f6(s.latitude.map(|x| x.max)),
                f6(s.longitude.map(|x| x.min)),
                f6(s.longitude.map(|x| x.mean)),
                f6(s.longitude.map(|x| x.max)),
                s.last_battery
                    .map(|b| format!("{b:.2}"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    if stats.is_empty() {
        out.push_str("(no telemetry stored yet)\n");
    }
    out
}

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
    #[arg(long, value_name = "N")]
    pub fleet: Option<usize>,
    /// Messages per device (default: until the battery is empty).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Time between readings, overriding the device function's (e.g. 100ms).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub interval: Option<std::time::Duration>,
    /// Broker URL (default: hub.toml's `broker` when the credential is for that hub,
    /// the embedded broker for the local hub; else mqtts://<HostName>:8883).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// Seed the readings' randomness (reproducible runs).
    #[arg(long, value_name = "N", hide = true)]
    pub seed: Option<u64>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(s)
}

pub fn run_simulate(config: Option<&std::path::Path>, args: SimulateArgs) -> ExitCode {
    use std::sync::atomic::{AtomicU64, Ordering};
    install_crypto_provider();
    // hub.toml (or the local hub) says which broker its devices publish to
    let hub = match crate::settings::resolve(config, &[]) {
        Ok(r) => crate::credentials::hub::device_view(&r),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(crate::cli::EXIT_INVALID);
        }
    };
    let files = match (&args.credential, &args.credentials, args.fleet) {
        (Some(f), _, _) => vec![f.clone()],
        (None, Some(dir), Some(n)) => match super::simulate::fleet_files(dir, n) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(crate::cli::EXIT_INVALID);
            }
        },
        _ => {
            eprintln!("error: give --credential FILE, or --credentials DIR --fleet N");
            return ExitCode::from(crate::cli::EXIT_INVALID);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let opts = super::simulate::SimOptions {
        count: args.count,
        interval: args.interval,
        broker: args.broker.clone(),
        hub,
        seed: args.seed,
    };
    rt.block_on(async move {
        let sent = Arc::new(AtomicU64::new(0));
        let fleet = files.len();
        let mut tasks = tokio::task::JoinSet::new();
        for f in files {
            tasks.spawn(super::simulate::run_device(f, opts.clone(), sent.clone()));
        }
        // plain progress lines (one every 2 s) while a fleet runs
        let progress = {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(std::time::Duration::from_secs(2));
                t.tick().await;
                loop {
                    t.tick().await;
                    eprintln!(
                        "fleet: {fleet} devices, {} messages sent",
                        sent.load(Ordering::Relaxed)
                    );
                }
            })
        };
        let mut failed = 0;
        while let Some(r) = tasks.join_next().await {
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
        progress.abort();
        if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
