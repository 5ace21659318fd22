//! The one way plans become a model: read files, check, compile, dry-render.
//! `ztpd validate`, `ztpd render`, `ztpd plan diff` and the daemon's start and
//! reload all call [`load`].

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compile::{compile, Dirs};
use super::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use super::model::Model;
use super::raw;
use crate::settings::Resolved;
use crate::template::{render_all_cached, RenderCache, Renderer};

#[derive(Debug, Default)]
pub struct Loaded {
    pub model: Model,
    /// Rendered config by device name.
    pub configs: BTreeMap<String, String>,
    /// Rendered bootstrap scripts by profile name (`bootstrap/<profile>`).
    pub bootstrap: BTreeMap<String, String>,
    /// The same on the site's IPv6 address, for devices that fetch them over
    /// IPv6; only on a dual-stack site (empty otherwise).
    pub bootstrap6: BTreeMap<String, String>,
    pub diagnostics: Diagnostics,
    /// The plan files read, in order.
    pub files: Vec<PathBuf>,
    /// `paths.hub` (hub.toml) as read with the plans; `None` when there is
    /// no such file (the daemon then runs a local hub).
    pub hub: Option<Arc<crate::credentials::hub::Hub>>,
    /// `paths.routes` (routes.toml) as read with the plans, for the same
    /// reasons as hub.toml; the built-in table when there is no such file.
    pub routes: crate::telemetry::routing::RouteTable,
}

impl Loaded {
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.has_errors()
    }
}

/// Expand plan arguments (files or directories of `*.toml`); with none, the
/// settings' `paths.plans` directory.
pub fn plan_files(resolved: &Resolved, args: &[PathBuf], diags: &mut Diagnostics) -> Vec<PathBuf> {
    let args: Vec<PathBuf> = if args.is_empty() {
        vec![resolved.plans_dir()]
    } else {
        args.to_vec()
    };
    let mut out = Vec::new();
    for a in &args {
        if a.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(a)
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            if found.is_empty() {
                diags.push(
                    Diagnostic::error(
                        "plan::not_found",
                        format!("no plan files (*.toml) in {}", a.display()),
                    )
                    .help("put one plan per site in plans/<site>.toml, or pass the plan file"),
                );
            }
            out.extend(found);
        } else if a.is_file() {
            out.push(a.clone());
        } else if a.exists() {
            diags.push(
                Diagnostic::error(
                    "plan::not_found",
                    format!(
                        "plan {} is neither a file nor a directory (a device or a pipe?)",
                        a.display()
                    ),
                )
                .help("pass a plan file or a directory of plans"),
            );
        } else {
            diags.push(
                Diagnostic::error(
                    "plan::not_found",
                    format!("plan {} does not exist", a.display()),
                )
                .help("pass a plan file or a directory of plans"),
            );
        }
    }
    out
}

/// What one load leaves for the next, so that a reload acts on what
/// changed: a plan file whose text is unchanged is not parsed again, and a
/// device whose render inputs are unchanged is not rendered again (see
/// `template::cache`). Checks across plans (uniqueness, references) and
/// compilation still run on every load: they are cheap, and skipping them
/// could hide a problem another file's edit created.
#[derive(Debug, Default)]
pub struct LoadCache {
    /// Parsed plans by path, with a digest of the text they came from; only
    /// plans parsed without a diagnostic are kept.
    raws: HashMap<PathBuf, (u64, Arc<raw::RawPlan>)>,
    renders: RenderCache,
    bootstrap: crate::ztp::bootstrap::BootstrapCache,
}

impl LoadCache {
    /// How many configs the last load took from the cache.
    pub fn reused_configs(&self) -> usize {
        self.renders.reused()
    }
}

pub fn load(resolved: &Resolved, args: &[PathBuf]) -> Loaded {
    load_with(resolved, args, &mut LoadCache::default())
}

/// [`load`], reusing and then replacing what `cache` holds from the last
/// load. The result is the same as a cold load's.
pub fn load_with(resolved: &Resolved, args: &[PathBuf], cache: &mut LoadCache) -> Loaded {
    let mut diags = Diagnostics::default();
    let files = plan_files(resolved, args, &mut diags);
    let sources: Vec<_> = files
        .iter()
        .filter_map(|f| read_source(f, &mut diags))
        .collect();
    load_sources(
        resolved,
        sources.iter().map(|s| (s.path.as_path(), s.text.as_str())),
        diags,
        files,
        cache,
    )
}

/// Load plan texts that are already in memory (used by `plan diff` on git
/// revisions and by tests/fuzzing).
pub fn load_texts<'a>(
    resolved: &Resolved,
    texts: impl IntoIterator<Item = (&'a Path, &'a str)>,
) -> Loaded {
    load_sources(
        resolved,
        texts,
        Diagnostics::default(),
        Vec::new(),
        &mut LoadCache::default(),
    )
}

/// [`load_texts`], reusing and then replacing what `cache` holds from the
/// last load (as [`load_with`] does for files). The result is the same as a
/// cold load's; the plan-loader fuzz target relies on this to skip work that
/// does not depend on the input (the built-in bootstrap scripts for an
/// unchanged context) and checks it on a sample of inputs.
pub fn load_texts_with<'a>(
    resolved: &Resolved,
    texts: impl IntoIterator<Item = (&'a Path, &'a str)>,
    cache: &mut LoadCache,
) -> Loaded {
    load_sources(resolved, texts, Diagnostics::default(), Vec::new(), cache)
}

fn load_sources<'a>(
    resolved: &Resolved,
    texts: impl IntoIterator<Item = (&'a Path, &'a str)>,
    mut diags: Diagnostics,
    mut files: Vec<PathBuf>,
    cache: &mut LoadCache,
) -> Loaded {
    let t0 = std::time::Instant::now();
    let mut raws = Vec::new();
    let mut parsed = HashMap::new();
    for (path, text) in texts {
        if files.is_empty() || !files.iter().any(|f| f == path) {
            files.push(path.to_path_buf());
        }
        let digest = {
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        let raw = match cache.raws.get(path) {
            Some((d, raw)) if *d == digest => {
                parsed.insert(path.to_path_buf(), (digest, raw.clone()));
                raw.clone()
            }
            _ => {
                let src = SourceFile::new(path, text.to_string());
                let mut read_diags = Diagnostics::default();
                let raw = Arc::new(raw::read(&src, &mut read_diags));
                if read_diags.errors.is_empty() && read_diags.warnings.is_empty() {
                    parsed.insert(path.to_path_buf(), (digest, raw.clone()));
                }
                diags.errors.extend(read_diags.errors);
                diags.warnings.extend(read_diags.warnings);
                raw
            }
        };
        raws.push(raw);
    }
    cache.raws = parsed;
    let dirs = Dirs {
        templates: resolved.templates_dir(),
        files: resolved.files_dir(),
    };
    let t1 = std::time::Instant::now();
    let model = compile(&raws, &dirs, &mut diags);
    let t2 = std::time::Instant::now();
    let renderer = Renderer::new(&dirs.templates, resolved.settings.listen.http.port());
    let configs = render_all_cached(&renderer, &model, &mut diags, &mut cache.renders);
    let t3 = std::time::Instant::now();
    let hub = read_hub(resolved, &mut diags);
    let routes = crate::telemetry::routing::load::load(resolved, &mut diags);
    let (scripts, problems) =
        crate::ztp::bootstrap::render_all_cached(resolved, &model, &mut cache.bootstrap);
    for p in problems {
        diags.push(
            Diagnostic::error("template::bootstrap", format!("bootstrap template: {p}")).help(
                "fix the template, or delete the file to serve the built-in bootstrap script",
            ),
        );
    }
    tracing::debug!(
        read_ms = (t1 - t0).as_millis() as u64,
        compile_ms = (t2 - t1).as_millis() as u64,
        render_ms = (t3 - t2).as_millis() as u64,
        reused = cache.renders.reused(),
        bootstrap_ms = t3.elapsed().as_millis() as u64,
        "plans loaded"
    );
    Loaded {
        model,
        configs,
        bootstrap: scripts.by_profile,
        bootstrap6: scripts.ipv6,
        diagnostics: diags,
        files,
        hub,
        routes,
    }
}

fn read_source(path: &Path, diags: &mut Diagnostics) -> Option<std::sync::Arc<SourceFile>> {
    match crate::limits::read_capped(path, crate::limits::PLAN_BYTES, "plan") {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(SourceFile::new(path, text)),
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        "plan::not_utf8",
                        format!(
                            "{} is not UTF-8 (invalid byte at offset {})",
                            path.display(),
                            e.utf8_error().valid_up_to()
                        ),
                    )
                    .help("save the plan as UTF-8"),
                );
                None
            }
        },
        Err(e) if crate::limits::is_too_large(&e) => {
            diags.push(
                Diagnostic::error("plan::too_large", format!("{}: {e}", path.display()))
                    .help("split the plan into one file per site"),
            );
            None
        }
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    "plan::not_found",
                    format!("cannot read {}: {e}", path.display()),
                )
                .help("check the path and its permissions"),
            );
            None
        }
    }
}

/// hub.toml, read with the plans so that `validate` checks it and a reload
/// takes a bad edit of it as it takes a bad plan: refused whole.
fn read_hub(
    resolved: &Resolved,
    diags: &mut Diagnostics,
) -> Option<Arc<crate::credentials::hub::Hub>> {
    match crate::credentials::hub::read_file(resolved) {
        Ok(hub) => hub.map(Arc::new),
        Err(e) => {
            diags.push(
                Diagnostic::error("hub::invalid", e.to_string()).help(format!(
                    "fix {} (see azure_mqtt_credentials/hub.toml.example: hostname, broker, \
                     and one of enrollment_key, enrollment_key_env, enrollment_key_file), \
                     or remove it to run the local hub",
                    resolved.hub_file().display()
                )),
            );
            None
        }
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
