//! Config templates: minijinja (Jinja2 syntax) with strict undefined, so a
//! missing variable is an error naming the device and the variable instead of
//! an empty string in a switch config.
//!
//! `validate` and the daemon both call [`render_all_cached`] (through the plan loader); the daemon keeps the
//! output in its snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::plan::diagnostic::{Diagnostics, SourceFile};
use crate::plan::model::{Device, Model, Site};

mod cache;
mod context;
mod diagnostics;

pub use cache::RenderCache;
use context::{device_context, site_context, SiteContext};
use diagnostics::template_diagnostic;

/// ztpd's URLs as devices see them, for templates.
#[derive(Debug, Clone, Serialize)]
pub struct ServerUrls {
    pub ip: String,
    pub http: String,
    pub files: String,
    pub ztp: String,
    pub tftp: String,
}

impl ServerUrls {
    /// On the site's IPv4 address, or its IPv6 one for an IPv6-only site.
    pub fn new(site: &Site, http_port: u16) -> Self {
        Self::on(site.server_v4_first(), http_port)
    }

    /// On one address of ztpd.
    pub fn on(server: std::net::IpAddr, http_port: u16) -> Self {
        let base = crate::addr::http_base(server, http_port);
        ServerUrls {
            ip: server.to_string(),
            files: crate::addr::files_base(server, http_port),
            ztp: format!("{base}/ztp/v1"),
            http: base,
            tftp: server.to_string(),
        }
    }
}

/// Read a template file whole, capped at [`crate::limits::TEMPLATE_BYTES`].
pub fn read_template(path: &Path) -> std::io::Result<String> {
    crate::limits::read_capped_string(path, crate::limits::TEMPLATE_BYTES, "template")
}

/// minijinja's `path_loader`, reading through [`read_template`]: a name is
/// joined segment by segment, and hidden or parent segments and backslashes
/// are not found (as in `path_loader`).
fn capped_loader(
    dir: PathBuf,
) -> impl Fn(&str) -> Result<Option<String>, minijinja::Error> + Send + Sync + 'static {
    move |name| {
        let mut path = dir.clone();
        for segment in name.split('/') {
            if segment.starts_with('.') || segment.contains('\\') {
                return Ok(None);
            }
            path.push(segment);
        }
        match read_template(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("cannot read template {}: {e}", path.display()),
            )),
        }
    }
}

/// The work one render may do, in minijinja's fuel (about one unit per
/// instruction). A table of the 10,000-device example plan takes a few
/// hundred thousand; a loop that never ends, or three nested `range(10000)`,
/// would pin a core and hold every later reload.
pub const TEMPLATE_FUEL: u64 = 10_000_000;

pub struct Renderer {
    env: Environment<'static>,
    templates_dir: PathBuf,
    http_port: u16,
}

impl Renderer {
    pub fn new(templates_dir: &Path, http_port: u16) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_loader(capped_loader(templates_dir.to_path_buf()));
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(TEMPLATE_FUEL));
        Renderer {
            env,
            templates_dir: templates_dir.to_path_buf(),
            http_port,
        }
    }

    pub fn templates_dir(&self) -> &Path {
        &self.templates_dir
    }

    /// Render one template by name with a context (bootstrap scripts and
    /// other non-device templates use this).
    ///
    /// The output is capped at [`RENDERED_BYTES`]: past it the render stops
    /// with an error saying so (a loop emitting a gigabyte is refused after
    /// 16 MiB, not held whole in memory).
    pub fn render_named(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        let t = self.env.get_template(name)?;
        let mut out = CappedOutput::default();
        match t.render_captured_to(ctx, &mut out) {
            Ok(_) => Ok(String::from_utf8_lossy(&out.buf).into_owned()),
            Err(_) if out.full => Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!(
                    "the rendered output passed {} MiB; a config is far smaller: bound the \
                     loops that emit it",
                    RENDERED_BYTES >> 20
                ),
            )),
            Err(e) => Err(e),
        }
    }
}

/// The largest rendered config or bootstrap script: far above any device
/// config (a few hundred KiB at most), as [`crate::limits::TEMPLATE_BYTES`]
/// is for templates.
pub const RENDERED_BYTES: usize = 16 << 20;

/// Render output that refuses to grow past [`RENDERED_BYTES`].
#[derive(Default)]
struct CappedOutput {
    buf: Vec<u8>,
    full: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > RENDERED_BYTES {
            self.full = true;
            return Err(std::io::Error::other("rendered output too large"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Render every device whose model has a template; errors become
/// diagnostics pointing into the template, naming the device. A device's
/// config is taken from `cache` when its inputs are those it was rendered
/// from (see `cache`), and `cache` then holds this load's configs: the output
/// is the same as a cold render's (an empty cache).
pub fn render_all_cached(
    renderer: &Renderer,
    model: &Model,
    diags: &mut Diagnostics,
    cache: &mut RenderCache,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut next = RenderCache::default();
    let mut sources: HashMap<String, Arc<SourceFile>> = HashMap::new();
    // One report per (template, problem line): a missing variable in a shared
    // template would otherwise repeat for each of 10 000 devices.
    let mut reported: HashSet<(String, usize, String)> = HashSet::new();
    let mut scan = cache::TemplateScan::new(&renderer.templates_dir);
    // Rendering is most of a large plan's load time and devices are
    // independent: split them over the cores (results merged in order).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    for site in &model.sites {
        let sc = site_context(site, renderer.http_port);
        let inputs: HashMap<&str, Option<cache::TemplateInputs>> = site
            .models
            .values()
            .filter_map(|m| m.template.as_deref())
            .map(|t| (t, scan.inputs(t)))
            .collect();
        let exhausted = std::sync::Mutex::new(HashSet::new());
        let job = Job {
            renderer,
            site,
            sc: &sc,
            inputs: &inputs,
            cache,
            exhausted: &exhausted,
        };
        let chunk = site.devices.len().div_ceil(threads).max(256);
        let parts: Vec<Vec<Rendered>> = std::thread::scope(|scope| {
            let handles: Vec<_> = site
                .devices
                .chunks(chunk)
                .enumerate()
                .map(|(c, devices)| {
                    let job = &job;
                    scope.spawn(move || job.render_chunk(c * chunk, devices))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for r in parts.into_iter().flatten() {
            match r {
                Rendered::Ok(name, text, digest, from_cache) => {
                    next.reused += usize::from(from_cache);
                    if let Some(d) = digest {
                        next.by_device.insert(name.clone(), (d, text.clone()));
                    }
                    out.insert(name, text);
                }
                Rendered::Err {
                    device,
                    template,
                    err,
                    ctx,
                } => {
                    let diag =
                        template_diagnostic(renderer, &mut sources, &template, device, &err, &ctx);
                    let key = (
                        template.clone(),
                        err.line().unwrap_or(0),
                        diag.message.replace(&device.name, ""),
                    );
                    if reported.insert(key) {
                        diags.push(diag);
                    }
                }
            }
        }
    }
    *cache = next;
    out
}

enum Rendered<'a> {
    /// A config, with the digest of its inputs when it may be cached, and
    /// whether it came from the cache.
    Ok(String, String, Option<u64>, bool),
    Err {
        device: &'a Device,
        template: String,
        err: minijinja::Error,
        ctx: Value,
    },
}

/// One site's render, shared by its worker threads.
struct Job<'a> {
    renderer: &'a Renderer,
    site: &'a Site,
    sc: &'a SiteContext<'a>,
    inputs: &'a HashMap<&'a str, Option<cache::TemplateInputs>>,
    cache: &'a RenderCache,
    /// Templates that ran out of fuel for one device: not rendered for the
    /// others (the load is refused anyway), so 10,000 devices of an endless
    /// template cost one render's work, not 10,000.
    exhausted: &'a std::sync::Mutex<HashSet<String>>,
}

impl Job<'_> {
    fn render_chunk<'d>(
        &self,
        first: usize,
        devices: &'d [std::sync::Arc<Device>],
    ) -> Vec<Rendered<'d>> {
        let mut out = Vec::with_capacity(devices.len());
        for (k, d) in devices.iter().enumerate() {
            let m = self.site.model_of(d);
            let Some(tname) = &m.template else { continue };
            let digest = self
                .inputs
                .get(tname.as_str())
                .copied()
                .flatten()
                .map(|t| self.digest(first + k, d, t));
            if let Some(text) = digest.and_then(|dg| self.cache.get(&d.name, dg)) {
                out.push(Rendered::Ok(d.name.clone(), text.to_string(), digest, true));
                continue;
            }
            let spent = |t: &str| self.exhausted.lock().is_ok_and(|e| e.contains(t));
            if spent(tname) {
                continue;
            }
            let ctx = device_context(self.sc, first + k, d);
            match self.renderer.render_named(tname, ctx.clone()) {
                Ok(text) => out.push(Rendered::Ok(d.name.clone(), text, digest, false)),
                Err(err) => {
                    if err.kind() == minijinja::ErrorKind::OutOfFuel {
                        if let Ok(mut e) = self.exhausted.lock() {
                            e.insert(tname.clone());
                        }
                    }
                    out.push(Rendered::Err {
                        device: d,
                        template: tname.clone(),
                        err,
                        ctx,
                    })
                }
            }
        }
        out
    }

    /// Everything device `d`'s config is made from (see `cache`).
    fn digest(&self, index: usize, d: &Device, t: cache::TemplateInputs) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.renderer.templates_dir.hash(&mut h);
        t.digest.hash(&mut h);
        self.sc.site_digest.hash(&mut h);
        self.sc.device_digests[index].hash(&mut h);
        self.sc.link_digests.get(&d.name).hash(&mut h);
        if t.reads_plan {
            self.sc.plan_digest.hash(&mut h);
        }
        h.finish()
    }
}
