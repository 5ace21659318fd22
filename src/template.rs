//! Config templates: minijinja (Jinja2 syntax) with strict undefined, so a
//! missing variable is an error naming the device and the variable instead of
//! an empty string in a switch config.
//!
//! `validate` and the daemon both call [`render_all`]; the daemon keeps the
//! output in its snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use serde_json::json;

use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::model::{Device, Model, Site};

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
    pub fn new(site: &Site, http_port: u16) -> Self {
        let base = format!("http://{}:{}", site.server_ip, http_port);
        ServerUrls {
            ip: site.server_ip.to_string(),
            files: format!("{base}/files"),
            ztp: format!("{base}/ztp/v1"),
            http: base,
            tftp: site.server_ip.to_string(),
        }
    }
}

pub struct Renderer {
    env: Environment<'static>,
    templates_dir: PathBuf,
    http_port: u16,
}

impl Renderer {
    pub fn new(templates_dir: &Path, http_port: u16) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_loader(minijinja::path_loader(templates_dir));
        env.set_keep_trailing_newline(true);
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
    pub fn render_named(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

fn device_json(site: &Site, d: &Device) -> serde_json::Value {
    let m = site.model_of(d);
    json!({
        "name": d.name,
        "serial": d.serial,
        "mac": d.mac_string(),
        "ip": d.ip.map(|i| i.to_string()),
        "model": d.model,
        "model_match": m.match_model,
        "vendor": m.vendor.name(),
        "vars": d.vars,
        "role": match d.role { crate::plan::model::Role::Root => "root", crate::plan::model::Role::Device => "device" },
        "device_function": d.device_function,
        "software": m.software.as_ref().map(|s| json!({"image": s.image, "version": s.version})),
        "patch": m.patch,
    })
}

/// Context values shared by every device of a site, built once: `plan`
/// holds every device, and per-device values are shared between `plan` and
/// `device` (minijinja values are reference-counted, so cloning is cheap).
struct SiteContext {
    site: Value,
    dhcp: Value,
    plan: Value,
    server: Value,
    devices: Vec<Value>,
    links: HashMap<String, Vec<Value>>,
}

fn link_value(local_port: &str, peer: &str, peer_port: &str) -> Value {
    Value::from_iter([
        ("local_port", Value::from(local_port)),
        ("peer", Value::from(peer)),
        ("peer_port", Value::from(peer_port)),
    ])
}

fn site_context(site: &Site, http_port: u16) -> SiteContext {
    let mut links: HashMap<String, Vec<Value>> = HashMap::new();
    for l in &site.links {
        links
            .entry(l.a.device.clone())
            .or_default()
            .push(link_value(&l.a.port, &l.b.device, &l.b.port));
        links
            .entry(l.b.device.clone())
            .or_default()
            .push(link_value(&l.b.port, &l.a.device, &l.a.port));
    }
    let devices: Vec<Value> = site
        .devices
        .iter()
        .map(|d| Value::from_serialize(device_json(site, d)))
        .collect();
    let dhcp = match &site.dhcp {
        Some(d) => json!({
            "interface": d.interface,
            "subnet": d.subnet.to_string(),
            "netmask": d.subnet.netmask().to_string(),
            "prefix_len": d.subnet.prefix_len(),
            "pool": format!("{}-{}", d.pool.0, d.pool.1),
            "router": d.router.map(|r| r.to_string()),
            "dns": d.dns.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            "domain": d.domain,
            "lease_time": d.lease_time.as_secs(),
        }),
        None => serde_json::Value::Null,
    };
    SiteContext {
        site: Value::from_serialize(
            json!({"name": site.name, "server_ip": site.server_ip.to_string()}),
        ),
        dhcp: Value::from_serialize(dhcp),
        plan: Value::from_iter([
            ("devices", Value::from(devices.clone())),
            ("site", Value::from(site.name.clone())),
        ]),
        server: Value::from_serialize(ServerUrls::new(site, http_port)),
        devices,
        links,
    }
}

fn device_context(sc: &SiteContext, index: usize, d: &Device) -> Value {
    let links = sc.links.get(&d.name).cloned().unwrap_or_default();
    minijinja::context! {
        device => sc.devices[index].clone(),
        site => sc.site.clone(),
        dhcp => sc.dhcp.clone(),
        links => Value::from(links),
        server => sc.server.clone(),
        plan => sc.plan.clone(),
    }
}

/// Render every device whose model has a template. Errors become
/// diagnostics pointing into the template, naming the device.
pub fn render_all(
    renderer: &Renderer,
    model: &Model,
    diags: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut sources: HashMap<String, Arc<SourceFile>> = HashMap::new();
    // One report per (template, problem line): a missing variable in a shared
    // template would otherwise repeat for each of 10 000 devices.
    let mut reported: HashSet<(String, usize, String)> = HashSet::new();
    // Rendering is most of a large plan's load time and devices are
    // independent: split them over the cores (results merged in order).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    for site in &model.sites {
        let sc = site_context(site, renderer.http_port);
        let chunk = site.devices.len().div_ceil(threads).max(256);
        let parts: Vec<Vec<Rendered>> = std::thread::scope(|scope| {
            let handles: Vec<_> = site
                .devices
                .chunks(chunk)
                .enumerate()
                .map(|(c, devices)| {
                    let sc = &sc;
                    scope.spawn(move || render_chunk(renderer, site, sc, c * chunk, devices))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for r in parts.into_iter().flatten() {
            match r {
                Rendered::Ok(name, text) => {
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
    out
}

enum Rendered<'a> {
    Ok(String, String),
    Err {
        device: &'a Device,
        template: String,
        err: minijinja::Error,
        ctx: Value,
    },
}

fn render_chunk<'a>(
    renderer: &Renderer,
    site: &Site,
    sc: &SiteContext,
    first: usize,
    devices: &'a [Device],
) -> Vec<Rendered<'a>> {
    let mut out = Vec::with_capacity(devices.len());
    for (k, d) in devices.iter().enumerate() {
        let m = site.model_of(d);
        let Some(tname) = &m.template else { continue };
        let ctx = device_context(sc, first + k, d);
        match renderer.render_named(tname, ctx.clone()) {
            Ok(text) => out.push(Rendered::Ok(d.name.clone(), text)),
            Err(err) => out.push(Rendered::Err {
                device: d,
                template: tname.clone(),
                err,
                ctx,
            }),
        }
    }
    out
}

fn template_diagnostic(
    renderer: &Renderer,
    sources: &mut HashMap<String, Arc<SourceFile>>,
    tname: &str,
    dev: &Device,
    err: &minijinja::Error,
    ctx: &Value,
) -> Diagnostic {
    use minijinja::ErrorKind;
    let device = dev.name.as_str();
    let path = renderer.templates_dir.join(tname);
    let src = sources
        .entry(tname.to_string())
        .or_insert_with(|| {
            SourceFile::new(&path, std::fs::read_to_string(&path).unwrap_or_default())
        })
        .clone();
    let span = match (err.range(), err.line()) {
        (Some(r), _) => r,
        (None, Some(line)) => line_span(&src.text, line),
        _ => 0..0,
    };
    let detail = err.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let d = match err.kind() {
        ErrorKind::UndefinedError => {
            let var = err
                .line()
                .and_then(|l| missing_variable(&src.text, l, ctx))
                .unwrap_or_else(|| "a variable".into());
            let help = match var.strip_prefix("device.vars.") {
                Some(v) => format!("add `{v}` to the vars of device `{device}` in the plan, or guard it: {{% if device.vars.{v} is defined %}}"),
                None => "the context has device, site, dhcp, links, server and plan; check the spelling".into(),
            };
            let d = Diagnostic::error("template::undefined_variable", format!("template `{tname}`: undefined variable `{var}` when rendering device `{device}`"))
                .label("undefined here")
                .help(help);
            // The fix is usually in the plan (a missing var): show the
            // device's entry too.
            match &dev.defined_at {
                Some(at) => d.related_in(&at.file, at.span.clone(), format!("device `{device}` is defined here")),
                None => d,
            }
        }
        ErrorKind::TemplateNotFound => Diagnostic::error("plan::unknown_template", format!("template `{tname}` not found for device `{device}`"))
            .help(format!("templates resolve against {}", renderer.templates_dir.display())),
        ErrorKind::SyntaxError => Diagnostic::error("template::syntax", format!("template `{tname}`: syntax error{detail}"))
            .label("here")
            .help("templates use Jinja2 syntax: {{ var }}, {% if %}...{% endif %}, {% for x in xs %}...{% endfor %}"),
        _ => Diagnostic::error("template::render_error", format!("template `{tname}` failed for device `{device}`: {}{detail}", err.kind()))
            .label("here")
            .help("fix the template expression, or the device's vars it uses"),
    };
    if src.text.is_empty() {
        d
    } else {
        d.at(&src, span)
    }
}

fn line_span(text: &str, line: usize) -> std::ops::Range<usize> {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return start..start + l.trim_end().len();
        }
        start += l.len();
    }
    0..0
}

/// The first dotted name on `line` of the template that is undefined in `ctx`.
fn missing_variable(text: &str, line: usize, ctx: &Value) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let mut i = 0;
    let b = l.as_bytes();
    while i < b.len() {
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let name = l[start..i].trim_end_matches('.');
            let prev_dot = start > 0 && b[start - 1] == b'.';
            if !prev_dot && name.contains('.') {
                if let Some(missing) = undefined_prefix(ctx, name) {
                    return Some(missing);
                }
            }
        } else {
            i += 1;
        }
    }
    None
}

fn undefined_prefix(ctx: &Value, dotted: &str) -> Option<String> {
    let mut cur = ctx.clone();
    let mut path = Vec::new();
    for part in dotted.split('.') {
        path.push(part);
        let next = cur.get_attr(part).ok()?;
        if next.is_undefined() {
            return Some(path.join("."));
        }
        cur = next;
    }
    None
}
