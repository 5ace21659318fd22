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
    for line in dhcp6_lines(resolved, &loaded, &d.name) {
        println!("# dhcp6: {line}");
    }
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

/// What DHCPv6 gives the device (SPEC §11): its address and DUID, then every
/// option sent whether asked or not, from the same view the server uses.
fn dhcp6_lines(resolved: &Resolved, loaded: &plan::Loaded, device: &str) -> Vec<String> {
    let view = crate::dhcp6::Dhcp6View::build(&loaded.model, resolved.settings.listen.http.port());
    let Some(r) = view.reservations.iter().find(|r| r.name == device) else {
        return Vec::new();
    };
    let Some(s) = view.subnets.get(r.subnet) else {
        return Vec::new();
    };
    let duid = loaded
        .model
        .device(device)
        .and_then(|(_, d)| d.duid.as_ref())
        .map(|b| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        });
    let mut out = vec![format!(
        "ip6 {} duid {} (subnet {}, lifetimes {}s/{}s)",
        r.ip6
            .map_or("- (pool address)".to_string(), |i| i.to_string()),
        duid.unwrap_or_else(|| "-".into()),
        s.net,
        s.preferred_secs,
        s.valid_secs
    )];
    if !s.dns.is_empty() {
        let dns: Vec<String> = s.dns.iter().map(|a| a.to_string()).collect();
        out.push(format!("option 23 (dns) {}", dns.join(", ")));
    }
    if let Some(d) = &s.domain {
        out.push(format!("option 24 (domain search) {d}"));
    }
    for (code, v) in &r.boot {
        out.push(format!("option {code} {}", String::from_utf8_lossy(v)));
    }
    if r.boot.is_empty() {
        out.push(format!(
            "no boot option: the {} profile has no DHCPv6 provisioning path",
            r.vendor.name()
        ));
    }
    out
}
