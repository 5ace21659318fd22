//! `ztpd render PLAN DEVICE`: the config a device would get, and its DHCP view.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_INVALID;
use crate::plan;
use crate::settings::Resolved;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub plan: PathBuf,
    /// Device name or serial.
    pub device: String,
}

pub fn run(resolved: &Resolved, args: &Args) -> ExitCode {
    let (plan_path, device) = (&args.plan, args.device.as_str());
    let loaded = plan::load(resolved, std::slice::from_ref(plan_path));
    if loaded.diagnostics.has_errors() {
        super::print_diagnostics(&loaded.diagnostics);
        eprintln!("invalid: {}", loaded.diagnostics.summary());
        return ExitCode::from(EXIT_INVALID);
    }
    let Some((site, d)) = loaded.model.device(device) else {
        let names: Vec<&str> = loaded
            .model
            .devices()
            .map(|(_, d)| d.name.as_str())
            .collect();
        eprintln!(
            "error: no device `{device}` (by name or serial) in {}",
            plan_path.display()
        );
        eprintln!("help: devices in this plan: {}", names.join(", "));
        return ExitCode::from(EXIT_INVALID);
    };
    let m = site.model_of(d);
    println!(
        "# device {} (serial {}, model {} = {} / {})",
        d.name, d.serial, d.model, m.vendor, m.match_model
    );
    println!(
        "# dhcp: ip {} mac {} hostname {}",
        d.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
        d.mac_string().unwrap_or_else(|| "-".into()),
        d.name
    );
    for line in dhcp_lines(resolved, &loaded, &d.name) {
        println!("# dhcp: {line}");
    }
    match loaded.configs.get(&d.name) {
        Some(cfg) => print!("{cfg}"),
        None => println!("# model `{}` has no template: no config is served", m.name),
    }
    ExitCode::SUCCESS
}

/// Boot options the DHCP server would send (filled in by the DHCP view).
fn dhcp_lines(_resolved: &Resolved, _loaded: &plan::Loaded, _device: &str) -> Vec<String> {
    Vec::new()
}
