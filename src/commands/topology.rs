//! `ztpd topology diff PLAN REPORTED.json`: the daemon's topology engine on a
//! neighbour table, offline. Exit 0 all match, 1 problems, 78 invalid input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Format, EXIT_INVALID};
use crate::plan;
use crate::settings::Resolved;
use crate::topology::{diff, PlannedTopology, Reported};

#[derive(Debug, clap::Subcommand)]
pub enum TopologyCommand {
    /// Compare a reported neighbour table with the plan; exit 0 all match, 1 problems, 78 invalid input.
    Diff {
        plan: PathBuf,
        /// `[{"device", "model", "neighbors": [{"local_port", "remote_device", "remote_port"}]}]`
        #[arg(value_name = "REPORTED.json")]
        reported: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(resolved: &Resolved, plan_path: &Path, reported: &Path, format: Format) -> ExitCode {
    let loaded = plan::load(resolved, &[plan_path.to_path_buf()]);
    if loaded.diagnostics.has_errors() {
        super::print_diagnostics(&loaded.diagnostics);
        eprintln!("invalid: {}", loaded.diagnostics.summary());
        return ExitCode::from(EXIT_INVALID);
    }
    let reports = match read_reports(reported) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let topology = PlannedTopology::from_model(&loaded.model);
    let problems = match diff(&topology, &reports) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", reported.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match format {
        Format::Json => {
            let out = serde_json::json!({ "match": problems.is_empty(), "problems": problems });
            println!("{out:#}");
        }
        Format::Text => {
            for p in &problems {
                let at = match &p.local_port {
                    Some(port) => format!("{}:{port}", p.device),
                    None => p.device.clone(),
                };
                println!("{at}: {}", p.kind.as_str());
                match (&p.expected, &p.observed) {
                    (Some(e), Some(o)) => println!("  expected {e}, observed {o}"),
                    (Some(e), None) => println!("  expected {e}, observed nothing"),
                    (None, Some(o)) => println!("  expected nothing, observed {o}"),
                    (None, None) => {}
                }
                if let (Some(e), Some(o)) = (&p.expected_model, &p.observed_model) {
                    println!("  expected model {e}, observed {o}");
                }
                if let Some(c) = &p.other {
                    println!(
                        "  and {}:{}: expected {}, observed {}",
                        c.device, c.local_port, c.expected, c.observed
                    );
                }
                println!("  fix: {}", p.fix);
            }
            if problems.is_empty() {
                println!(
                    "topology matches the plan ({} device(s) reported)",
                    reports.len()
                );
            } else {
                println!("{} problem(s)", problems.len());
            }
        }
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn read_reports(path: &Path) -> Result<Vec<Reported>, String> {
    let text = crate::limits::read_capped_string(
        path,
        crate::limits::REPORT_BYTES,
        "reported neighbour table",
    )
    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: {e}; expected [{{\"device\": NAME-OR-SERIAL, \"model\": \"...\", \"neighbors\": \
             [{{\"local_port\", \"remote_device\", \"remote_port\"}}]}}]",
            path.display()
        )
    })
}
