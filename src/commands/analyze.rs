//! `ztpd analyze`: per-device telemetry statistics from the store, as a
//! table, JSON or CSV.

use std::process::ExitCode;

use super::runtime;
use crate::settings::Resolved;
use crate::telemetry::mqtt::install_crypto_provider;
use crate::telemetry::store::{AnyStore, DeviceStats, Store};

#[derive(Debug, Clone, Copy, clap::ValueEnum, Default, PartialEq, Eq)]
pub enum AnalyzeFormat {
    #[default]
    Table,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A device_id or a device_name.
    #[arg(long, value_name = "ID-OR-NAME")]
    pub device: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: AnalyzeFormat,
}

pub fn run(resolved: &Resolved, args: &Args) -> ExitCode {
    let (device, format) = (args.device.as_deref(), args.format);
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
