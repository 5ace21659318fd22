//! `ztpd group list|show NAME|create NAME (--devices a,b | --select
//! model=M[,name=GLOB])|delete NAME|export NAME` (SPEC §8), against a
//! running daemon's operator API.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::operator::{call_with, fail, request};
use super::{Format, EXIT_INVALID};
use crate::settings::Resolved;

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Every group, from the plan and made at runtime.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One group: model, devices, policy.
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// A runtime group of devices of one model (kept in the state store).
    Create {
        name: String,
        /// Device names, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            conflicts_with = "select",
            required_unless_present = "select"
        )]
        devices: Vec<String>,
        /// `model=M[,name=GLOB]`.
        #[arg(long)]
        select: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Delete a runtime group (plan groups live in their plan file).
    Delete {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print the `[groups.NAME]` table to paste into a plan.
    Export { name: String },
}

/// `model=M[,name=GLOB]` -> `{model, name?}`.
pub fn parse_select(s: &str) -> Result<Value, String> {
    let mut out = json!({});
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("model", m)) if !m.is_empty() => out["model"] = m.into(),
            Some(("name", n)) if !n.is_empty() => out["name"] = n.into(),
            _ => return Err(format!("--select {s:?}: expected model=M[,name=GLOB]")),
        }
    }
    if out.get("model").is_none() {
        return Err(format!("--select {s:?}: expected model=M[,name=GLOB]"));
    }
    Ok(out)
}

fn print_group(g: &Value) {
    println!(
        "{:<24} {:<8} {:<16} {}",
        g["name"].as_str().unwrap_or("?"),
        g["source"].as_str().unwrap_or("?"),
        g["model"].as_str().unwrap_or("?"),
        g["devices"]
            .as_array()
            .map(|d| d
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()
    );
}

fn named(name: &str) -> Result<(), ExitCode> {
    if crate::identifier::is_identifier(name) {
        Ok(())
    } else {
        eprintln!("error: {name:?} is not a group name ([A-Za-z0-9._-]+)");
        Err(ExitCode::from(EXIT_INVALID))
    }
}

pub fn run(r: &Resolved, cmd: GroupCommand) -> ExitCode {
    match cmd {
        GroupCommand::List { format } => {
            request(r, "GET", "/api/v1/groups", None, 200, format, |v| {
                println!("{:<24} {:<8} {:<16} DEVICES", "GROUP", "SOURCE", "MODEL");
                v.as_array().into_iter().flatten().for_each(print_group);
            })
        }
        GroupCommand::Show { name, format } => {
            if let Err(c) = named(&name) {
                return c;
            }
            request(
                r,
                "GET",
                &format!("/api/v1/groups/{name}"),
                None,
                200,
                format,
                |g| {
                    print_group(g);
                    println!("policy: {}", g["policy"]);
                },
            )
        }
        GroupCommand::Create {
            name,
            devices,
            select,
            format,
        } => {
            let mut body = json!({"name": name});
            match select {
                Some(s) => match parse_select(&s) {
                    Ok(v) => body["select"] = v,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(EXIT_INVALID);
                    }
                },
                None => body["devices"] = json!(devices),
            }
            let text = body.to_string();
            request(r, "POST", "/api/v1/groups", Some(&text), 201, format, |g| {
                print!("created ");
                print_group(g);
            })
        }
        GroupCommand::Delete { name, format } => {
            if let Err(c) = named(&name) {
                return c;
            }
            request(
                r,
                "DELETE",
                &format!("/api/v1/groups/{name}"),
                None,
                200,
                format,
                |_| {
                    println!("deleted {name}");
                },
            )
        }
        GroupCommand::Export { name } => {
            if let Err(c) = named(&name) {
                return c;
            }
            match call_with(r, "GET", &format!("/api/v1/groups/{name}/toml"), None) {
                Ok(resp) if resp.status == 200 => {
                    print!("{}", String::from_utf8_lossy(&resp.body));
                    ExitCode::SUCCESS
                }
                Ok(resp) => fail(&resp),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
