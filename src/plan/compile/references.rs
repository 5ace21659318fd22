//! What a plan refers to on disk: templates, software images and patches,
//! device function files, and files that would shadow generated paths. The
//! only part of the compiler that reads the file system.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path};
use std::sync::Arc;

use super::values::bad_identifier;
use super::Dirs;
use crate::identifier::is_identifier;
use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
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

/// The device functions devices name, each read once per load: the plan
/// loader is the one reader, and the credential keeper takes them from the
/// model. `default` always exists: the built-in (the prototype's behaviour)
/// when `templates/device_function/default.toml` is absent.
#[derive(Default)]
pub(super) struct DeviceFunctions {
    read: HashMap<String, Read>,
}

enum Read {
    /// Valid: the JSON object credentials carry.
    Valid(serde_json::Value),
    /// No such file: reported at every device that names it.
    Missing,
    /// Read with problems, already reported (once, however many devices
    /// name it).
    Invalid,
}

impl DeviceFunctions {
    /// The device function a device names must exist and read cleanly. Its
    /// own problems point into the device-function file.
    pub(super) fn check(
        &mut self,
        diags: &mut Diagnostics,
        file: &Arc<SourceFile>,
        f: &Sp<String>,
        dirs: &Dirs,
    ) {
        if !is_identifier(&f.v) {
            bad_identifier(diags, file, f, "device function");
            return;
        }
        if !self.read.contains_key(&f.v) {
            let r = read_device_function(diags, &f.v, dirs);
            self.read.insert(f.v.clone(), r);
        }
        if let Some(Read::Missing) = self.read.get(&f.v) {
            let path = dirs.device_function(&f.v);
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
        }
    }

    /// The valid ones, by name.
    pub(super) fn into_valid(self) -> BTreeMap<String, serde_json::Value> {
        self.read
            .into_iter()
            .filter_map(|(name, r)| match r {
                Read::Valid(v) => Some((name, v)),
                _ => None,
            })
            .collect()
    }
}

fn read_device_function(diags: &mut Diagnostics, name: &str, dirs: &Dirs) -> Read {
    let path = dirs.device_function(name);
    let text = match crate::limits::read_capped_string(
        &path,
        crate::limits::DEVICE_FUNCTION_BYTES,
        "device function",
    ) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "default" => {
            crate::credentials::function::BUILTIN_DEFAULT.to_string()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Read::Missing,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    "plan::unreadable_device_function",
                    format!("cannot read device function {}: {e}", path.display()),
                )
                .help("check the file under templates/device_function/"),
            );
            return Read::Invalid;
        }
    };
    let src = SourceFile::new(&path, text);
    let mut own = Diagnostics::default();
    crate::telemetry::device_function::read(&src, name, &mut own);
    if own.has_errors() {
        diags.errors.extend(own.errors);
        diags.warnings.extend(own.warnings);
        return Read::Invalid;
    }
    diags.warnings.extend(own.warnings);
    match crate::credentials::function::to_json(name, &src.text) {
        Ok(v) => Read::Valid(v),
        Err(message) => {
            diags.push(
                Diagnostic::error(
                    "device_function::toml_syntax",
                    format!("device function `{name}` is not valid TOML: {message}"),
                )
                .at(&src, 0..0)
                .help("fix the TOML syntax of the device function"),
            );
            Read::Invalid
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
