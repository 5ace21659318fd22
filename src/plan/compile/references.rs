//! What a plan refers to on disk: templates, software images and patches,
//! device function files, and files that would shadow generated paths. The
//! only part of the compiler that reads the file system.

use std::path::{Component, Path};
use std::sync::Arc;

use super::values::bad_identifier;
use super::Dirs;
use crate::identifier::is_identifier;
use crate::plan::diagnostic::{Diagnostic, Diagnostics, Severity, SourceFile};
use crate::plan::reader::Sp;

/// Generated top-level paths in the file tree that `files/` must not shadow.
pub const GENERATED_PATHS: [&str; 4] = ["configs", "bootstrap", "credentials", "network-confg"];

/// A relative path under `base` that must exist and must not escape it.
/// `what` names the reference ("template"), `setting` the directory's
/// setting ("paths.templates").
pub(super) fn check_file(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    base: &Path,
    code: &str,
    what: &str,
    setting: &str,
) {
    let rel = Path::new(&v.v);
    let escapes = rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir));
    if escapes {
        diags.push(
            Diagnostic::error(
                code,
                format!("{what} `{}` must be a path inside {setting}", v.v),
            )
            .at(file, v.span.clone())
            .label("leaves the directory")
            .help(format!(
                "write it relative to {}, without `..`",
                base.display()
            )),
        );
        return;
    }
    if !base.join(rel).is_file() {
        diags.push(
            Diagnostic::error(
                code,
                format!(
                    "{what} `{}` not found: {} does not exist",
                    v.v,
                    base.join(rel).display()
                ),
            )
            .at(file, v.span.clone())
            .label("no such file")
            .help(format!(
                "create it, or fix the path (relative to {setting} = {})",
                base.display()
            )),
        );
    }
}

/// The device function a device names must exist and read cleanly. Its own
/// problems point into the device-function file; a file used by many
/// devices is reported once.
pub(super) fn check_device_function(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    f: &Sp<String>,
    dirs: &Dirs,
) {
    if !is_identifier(&f.v) {
        bad_identifier(diags, file, f, "device function");
        return;
    }
    let path = dirs.device_function(&f.v);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => {
            let known = known_device_functions(dirs);
            diags.push(
                Diagnostic::error(
                    "plan::unknown_device_function",
                    format!(
                        "device function `{}` not found: {} does not exist",
                        f.v,
                        path.display()
                    ),
                )
                .at(file, f.span.clone())
                .label("no such device function")
                .help(if known.is_empty() {
                    "create it under templates/device_function/".into()
                } else {
                    format!("available: {}", known.join(", "))
                }),
            );
            return;
        }
    };
    let src = SourceFile::new(&path, text);
    let mut own = Diagnostics::default();
    crate::telemetry::device_function::read(&src, &f.v, &mut own);
    let seen = |d: &Diagnostic, all: &[Diagnostic]| {
        all.iter().any(|x| {
            x.code == d.code
                && x.span == d.span
                && x.file.as_ref().map(|f| &f.path) == d.file.as_ref().map(|f| &f.path)
        })
    };
    for d in own.errors.into_iter().chain(own.warnings) {
        let all = match d.severity {
            Severity::Error => &diags.errors,
            Severity::Warning => &diags.warnings,
        };
        if !seen(&d, all) {
            diags.push(d);
        }
    }
}

/// Names of the device functions on disk, sorted, for the help line.
fn known_device_functions(dirs: &Dirs) -> Vec<String> {
    let mut known: Vec<String> = std::fs::read_dir(dirs.templates.join("device_function"))
        .map(|rd| {
            rd.filter_map(|x| x.ok())
                .filter_map(|x| {
                    x.file_name()
                        .to_str()?
                        .strip_suffix(".toml")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    known.sort();
    known
}

/// Files under `paths.files` that would hide a path ztpd generates.
pub(super) fn check_shadowed_files(diags: &mut Diagnostics, files: &Path) {
    for g in GENERATED_PATHS {
        let p = files.join(g);
        if p.exists() {
            diags.push(
                Diagnostic::error(
                    "plan::shadowed_path",
                    format!("{} would shadow the generated path `{g}`", p.display()),
                )
                .help(format!(
                    "ztpd generates `{g}` itself; rename or move {} out of paths.files",
                    p.display()
                )),
            );
        }
    }
    let Ok(rd) = std::fs::read_dir(files) else {
        return;
    };
    for entry in rd.flatten() {
        let n = entry.file_name();
        if n.to_string_lossy().ends_with("-confg") {
            diags.push(
                Diagnostic::error(
                    "plan::shadowed_path",
                    format!(
                        "{} would shadow a generated Cisco AutoInstall file",
                        entry.path().display()
                    ),
                )
                .help(
                    "`<hostname>-confg` at the root is generated from the plan; \
                     move this file into a subdirectory",
                ),
            );
        }
    }
}
