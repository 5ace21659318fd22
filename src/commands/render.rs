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
    print!("{}", dhcp_lines(resolved, &loaded, &d.name));
    match loaded.configs.get(&d.name) {
        Some(cfg) => print!("{cfg}"),
        None => println!("# model `{}` has no template: no config is served", m.name),
    }
    ExitCode::SUCCESS
}

/// The DHCP reply the device would get (`dhcp::preview`), as comment lines:
/// its address, then every option with code, name and decoded value.
fn dhcp_lines(resolved: &Resolved, loaded: &plan::Loaded, device: &str) -> String {
    use std::fmt::Write;
    let http_port = resolved.settings.listen.http.port();
    let mut out = String::new();
    match crate::dhcp::preview::preview(&loaded.model, device, http_port) {
        Ok(p) => {
            let _ = writeln!(
                out,
                "# dhcp: address {} from server {}, boot file {:?}",
                p.address, p.server, p.file
            );
            let _ = writeln!(out, "# dhcp option  code  name                     value");
            for o in &p.options {
                let _ = writeln!(
                    out,
                    "# dhcp option  {:>4}  {:<24} {}",
                    o.code, o.name, o.value
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "# dhcp: {e}");
        }
    }
    out
}
