//! Scalar checks more than one part of the compiler needs: IPv4 addresses,
//! durations and file-name-safe identifiers.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::reader::Sp;

pub(super) fn parse_ip(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    key: &str,
) -> Option<Ipv4Addr> {
    match v.v.trim().parse::<Ipv4Addr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            diags.push(
                Diagnostic::error(
                    "plan::bad_ip",
                    format!("`{}` is not an IPv4 address ({key})", v.v),
                )
                .at(file, v.span.clone())
                .label("expected an IPv4 address")
                .help("write four decimal octets, e.g. \"10.10.0.11\""),
            );
            None
        }
    }
}

pub(super) fn parse_ip6(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    key: &str,
) -> Option<Ipv6Addr> {
    match v.v.trim().parse::<Ipv6Addr>() {
        Ok(ip) if ip.to_ipv4_mapped().is_none() && !ip.is_multicast() => Some(ip),
        _ => {
            diags.push(
                Diagnostic::error(
                    "plan::bad_ip6",
                    format!("`{}` is not an IPv6 unicast address ({key})", v.v),
                )
                .at(file, v.span.clone())
                .label("expected an IPv6 address")
                .help("write it as eight hex groups, `::` for a run of zeros, e.g. \"2001:db8:10::13\""),
            );
            None
        }
    }
}

pub(super) fn duration(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    key: &str,
) -> Option<Duration> {
    match crate::duration::parse(&v.v) {
        Ok(d) => Some(d),
        Err(msg) => {
            diags.push(
                Diagnostic::error("plan::bad_duration", format!("{key}: {msg}"))
                    .at(file, v.span.clone())
                    .label("not a duration")
                    .help(
                        "durations are a number and a unit: ms, s, m, h, d \
                         (e.g. \"1h\", \"5m\", \"1h30m\")",
                    ),
            );
            None
        }
    }
}

/// `what` names the value for the user: "device name", "serial", ...
pub(super) fn bad_identifier(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    what: &str,
) {
    diags.push(
        Diagnostic::error(
            "plan::bad_identifier",
            format!(
                "{what} `{}` has characters that cannot be in a file name",
                v.v
            ),
        )
        .at(file, v.span.clone())
        .label("only A-Z a-z 0-9 . _ - allowed")
        .help(format!(
            "{what}s become file names: use letters, digits, '.', '_' and '-' only \
             (not \".\" or \"..\")"
        )),
    );
}
