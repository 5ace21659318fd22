//! curl as the third-party client for HTTP and TFTP.

use std::path::Path;
use std::process::{Command, Output};

pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(args)
        .output()
        .expect("run curl (apt-get install curl)")
}

/// One HTTP request with curl: status, headers (lower-cased) and body.
/// `extra` goes before the URL (`-r 0-7`, `-H ...`, `-I`, `--path-as-is`).
pub fn fetch(url: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let hdr = tempfile::NamedTempFile::new().expect("temp file for headers");
    let hdr_path = hdr.path().to_str().expect("utf8 temp path");
    let mut args = vec!["-s", "-D", hdr_path, "-w", "%{http_code}", "-o", "-"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    let mut body = out.stdout;
    let code = body.split_off(body.len().saturating_sub(3));
    let code = String::from_utf8_lossy(&code)
        .parse()
        .unwrap_or_else(|_| panic!("no HTTP code from curl {args:?}"));
    let headers = std::fs::read_to_string(hdr.path())
        .unwrap_or_default()
        .to_ascii_lowercase();
    (code, headers, body)
}

/// The value of header `name` (lower case) in curl's `-D` output.
pub fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(str::trim)
}

/// A TFTP download with curl into `out` (removed afterwards): curl's exit
/// code and what arrived.
pub fn tftp(url: &str, out: &Path, extra: &[&str]) -> (Option<i32>, Vec<u8>) {
    let mut args = vec!["-s", "-o", out.to_str().expect("utf8 path")];
    args.extend_from_slice(extra);
    args.push(url);
    let r = curl(&args);
    let body = std::fs::read(out).unwrap_or_default();
    let _ = std::fs::remove_file(out);
    (r.status.code(), body)
}
