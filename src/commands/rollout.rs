//! `ztpd rollout start|list|status|pause|resume|abort` (SPEC §8), against a
//! running daemon's operator API. `status ID --watch` follows a rollout to
//! its end: a live progress bar on a TTY, a plain line per change otherwise.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use super::operator::{call_with, fail, request};
use super::{Format, EXIT_INVALID};
use crate::settings::Resolved;

/// How often `--watch` asks.
const WATCH_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    pub group: String,
    /// A config rollout (`reconfigure`); written `--config` after GROUP
    /// (`ztpd rollout start leaves --config`).
    #[arg(long = "kind-config")]
    pub config_kind: bool,
    /// Target software version (default: the model's).
    #[arg(long)]
    pub version: Option<String>,
    /// Image under `paths.files` (default: the model's).
    #[arg(long)]
    pub image: Option<String>,
    /// A method rollout: call this direct method on each device (SPEC §13).
    #[arg(long, value_name = "NAME")]
    pub method: Option<String>,
    /// The method's payload, JSON (with --method).
    #[arg(long, value_name = "JSON", requires = "method", value_parser = super::arg::json_value)]
    pub payload: Option<Value>,
    /// Devices per batch, at least 1.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = super::arg::count_u32)]
    pub batch_size: Option<u32>,
    /// Devices in the first (canary) batch; 0: no canary batch.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = super::arg::zero_or_more_u32)]
    pub canary: Option<u32>,
    /// A count (`2`) or a percentage of the group (`10%`, rounded down).
    #[arg(long, value_name = "N|P%", allow_negative_numbers = true, value_parser = super::arg::failure_limit_text)]
    pub max_failures: Option<String>,
    /// Wait between batches; 0s: none.
    #[arg(long, value_name = "DURATION", value_parser = super::arg::duration_text)]
    pub pause_between: Option<String>,
    /// `HH:MM-HH:MM`, optionally after days: `"Sat,Sun 01:00-05:00"`.
    #[arg(long)]
    pub window: Option<String>,
    /// How long one device may take, longer than 0.
    #[arg(long, value_name = "DURATION", value_parser = super::arg::positive_duration_text)]
    pub device_timeout: Option<String>,
    /// `topology` (farthest from a root first) or `plan`.
    #[arg(long)]
    pub order: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Start a software (default), config or method rollout of a group.
    Start(Box<StartArgs>),
    /// Every rollout.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One rollout; `--watch` follows it until it ends.
    Status {
        id: String,
        #[arg(long)]
        watch: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    Pause {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    Resume {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    Abort {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `--config` right after `rollout start GROUP ...` is the rollout kind,
/// not the global `--config FILE`: it is rewritten when no value follows it.
pub fn rewrite_kind_flag(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let pos = |s: &str| args.iter().position(|a| a == s);
    let (Some(r), Some(st)) = (pos("rollout"), pos("start")) else {
        return args;
    };
    if st != r + 1 {
        return args;
    }
    let mut out = args.clone();
    for i in st + 1..args.len() {
        let value_follows = args
            .get(i + 1)
            .and_then(|a| a.to_str())
            .is_some_and(|a| !a.starts_with('-'));
        if args[i] == "--config" && !value_follows {
            out[i] = "--kind-config".into();
        }
    }
    out
}

fn policy(a: &StartArgs) -> Value {
    let mut p = json!({});
    if let Some(n) = a.batch_size {
        p["batch_size"] = n.into();
    }
    if let Some(n) = a.canary {
        p["canary"] = n.into();
    }
    if let Some(m) = &a.max_failures {
        p["max_failures"] = match m.trim().parse::<u64>() {
            Ok(n) => n.into(),
            Err(_) => m.clone().into(),
        };
    }
    for (k, v) in [
        ("pause_between", &a.pause_between),
        ("window", &a.window),
        ("device_timeout", &a.device_timeout),
        ("order", &a.order),
    ] {
        if let Some(v) = v {
            p[k] = v.clone().into();
        }
    }
    p
}

fn summary(r: &Value) -> String {
    let c = &r["counts"];
    format!(
        "{} {} {}: {} (pending {}, in progress {}, succeeded {}, failed {}){}",
        r["id"].as_str().unwrap_or("?"),
        r["group"].as_str().unwrap_or("?"),
        r["kind"].as_str().unwrap_or("?"),
        r["state"].as_str().unwrap_or("?"),
        c["pending"],
        c["in_progress"],
        c["succeeded"],
        c["failed"],
        r["reason"]
            .as_str()
            .map(|x| format!(" - {x}"))
            .unwrap_or_default()
    )
}

fn print_detail(r: &Value) {
    println!("{}", summary(r));
    for b in r["batches"].as_array().into_iter().flatten() {
        println!(
            "  batch {}{}: {}",
            b["index"],
            if b["canary"] == true { " (canary)" } else { "" },
            b["state"].as_str().unwrap_or("?")
        );
        for n in b["devices"].as_array().into_iter().flatten() {
            let d = r["devices"]
                .as_array()
                .and_then(|ds| ds.iter().find(|d| &d["name"] == n))
                .cloned()
                .unwrap_or_default();
            println!(
                "    {:<20} {:<12} {}",
                n.as_str().unwrap_or("?"),
                d["state"].as_str().unwrap_or("?"),
                d["message"].as_str().unwrap_or("")
            );
        }
    }
}

fn bar(r: &Value) -> String {
    let c = &r["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let total = (n("pending") + n("in_progress") + n("succeeded") + n("failed")).max(1);
    let done = n("succeeded") + n("failed");
    let width = 30u64;
    let fill = (done * width / total) as usize;
    format!(
        "[{}{}] {done}/{total} {}",
        "#".repeat(fill),
        ".".repeat(width as usize - fill),
        summary(r)
    )
}

/// Follow a rollout until it is done, aborted or paused.
fn watch(r: &Resolved, id: &str, format: Format) -> ExitCode {
    let tty = std::io::stdout().is_terminal() && format == Format::Text;
    let mut last = String::new();
    loop {
        let v = match call_with(r, "GET", &format!("/api/v1/rollouts/{id}"), None) {
            Ok(resp) if resp.status == 200 => resp.json(),
            Ok(resp) => return fail(&resp),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let line = match format {
            Format::Json => v.to_string(),
            Format::Text if tty => bar(&v),
            Format::Text => summary(&v),
        };
        if line != last {
            if tty {
                print!("\r\x1b[2K{line}");
                let _ = std::io::stdout().flush();
            } else {
                println!("{line}");
            }
            last = line;
        }
        match v["state"].as_str() {
            Some("done") => {
                if tty {
                    println!();
                }
                return ExitCode::SUCCESS;
            }
            Some("aborted" | "paused") => {
                if tty {
                    println!();
                }
                return ExitCode::FAILURE;
            }
            _ => std::thread::sleep(WATCH_EVERY),
        }
    }
}

pub fn run(r: &Resolved, cmd: RolloutCommand) -> ExitCode {
    let bad_id = |id: &str| {
        (!crate::identifier::is_identifier(id)).then(|| {
            eprintln!("error: {id:?} is not a rollout id");
            ExitCode::from(EXIT_INVALID)
        })
    };
    match cmd {
        RolloutCommand::Start(a) => {
            let kind = match (&a.method, a.config_kind) {
                (Some(_), true) => {
                    eprintln!("error: --method and --config are two kinds of rollout; give one");
                    return ExitCode::from(EXIT_INVALID);
                }
                (Some(_), false) => "method",
                (None, true) => "config",
                (None, false) => "software",
            };
            let mut body = json!({
                "group": a.group,
                "kind": kind,
                "policy": policy(&a),
            });
            if let Some(name) = &a.method {
                body["method"] =
                    json!({"name": name, "payload": a.payload.clone().unwrap_or(Value::Null)});
            }
            if a.version.is_some() || a.image.is_some() {
                if kind != "software" {
                    eprintln!("error: a {kind} rollout takes no --version or --image");
                    return ExitCode::from(EXIT_INVALID);
                }
                body["software"] = json!({"version": a.version, "image": a.image});
            }
            let text = body.to_string();
            request(
                r,
                "POST",
                "/api/v1/rollouts",
                Some(&text),
                201,
                a.format,
                |v| {
                    println!("started {}", summary(v));
                },
            )
        }
        RolloutCommand::List { format } => {
            request(r, "GET", "/api/v1/rollouts", None, 200, format, |v| {
                for x in v.as_array().into_iter().flatten() {
                    println!("{}", summary(x));
                }
            })
        }
        RolloutCommand::Status {
            id,
            watch: true,
            format,
        } => bad_id(&id).unwrap_or_else(|| watch(r, &id, format)),
        RolloutCommand::Status { id, format, .. } => bad_id(&id).unwrap_or_else(|| {
            request(
                r,
                "GET",
                &format!("/api/v1/rollouts/{id}"),
                None,
                200,
                format,
                print_detail,
            )
        }),
        RolloutCommand::Pause { id, format } => operate(r, &id, "pause", format),
        RolloutCommand::Resume { id, format } => operate(r, &id, "resume", format),
        RolloutCommand::Abort { id, format } => operate(r, &id, "abort", format),
    }
}

fn operate(r: &Resolved, id: &str, op: &str, format: Format) -> ExitCode {
    if !crate::identifier::is_identifier(id) {
        eprintln!("error: {id:?} is not a rollout id");
        return ExitCode::from(EXIT_INVALID);
    }
    request(
        r,
        "POST",
        &format!("/api/v1/rollouts/{id}/{op}"),
        Some(""),
        200,
        format,
        |v| println!("{}", summary(v)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<std::ffi::OsString> {
        v.iter().map(|s| s.into()).collect()
    }

    #[test]
    fn config_after_start_is_the_rollout_kind() {
        assert_eq!(
            rewrite_kind_flag(os(&["ztpd", "rollout", "start", "g", "--config"])),
            os(&["ztpd", "rollout", "start", "g", "--kind-config"])
        );
        assert_eq!(
            rewrite_kind_flag(os(&[
                "ztpd", "rollout", "start", "g", "--config", "--canary", "1"
            ])),
            os(&[
                "ztpd",
                "rollout",
                "start",
                "g",
                "--kind-config",
                "--canary",
                "1"
            ])
        );
        let global = os(&["ztpd", "--config", "x.toml", "rollout", "start", "g"]);
        assert_eq!(rewrite_kind_flag(global.clone()), global);
        let with_file = os(&["ztpd", "rollout", "start", "g", "--config", "x.toml"]);
        assert_eq!(rewrite_kind_flag(with_file.clone()), with_file);
    }
}
