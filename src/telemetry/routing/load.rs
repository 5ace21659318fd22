//! `routes.toml` (`paths.routes`, SPEC §14) into a [`RouteTable`], with
//! every problem reported at once through the plan diagnostics (file:line:col,
//! a `ztpd::routes::*` code, a help line). Read with the plans
//! (`plan::load`), so `ztpd validate` checks it and a reload refuses a bad
//! edit whole. No file: [`RouteTable::builtin`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::condition::{self, Expr};
use super::string_span;
use super::table::{
    always, Endpoint, EndpointId, EndpointKind, Enrichment, EnrichmentValue, Route, RouteTable,
    Source,
};
use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::reader::{parse_toml, suggest, Ctx, Sp, Table};
use crate::settings::Resolved;

/// What routes.toml is checked against besides itself.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `telemetry.broker` is set (`mqtt` endpoints publish there).
    pub broker: bool,
    /// `telemetry.collection`: neither it nor its `_rejected` may be a
    /// `mongodb` endpoint's collection.
    pub collection: String,
}

impl Facts {
    pub fn of(resolved: &Resolved) -> Facts {
        let t = &resolved.settings.telemetry;
        Facts {
            broker: t.broker.is_some(),
            collection: t.collection.clone(),
        }
    }
}

/// Read `paths.routes`. Any problem is pushed to `diags` (and the built-in
/// table returned, which a load with errors never serves).
pub fn load(resolved: &Resolved, diags: &mut Diagnostics) -> RouteTable {
    let path = resolved.routes_file();
    if !path.exists() {
        return RouteTable::builtin();
    }
    match read_text(&path, diags) {
        Some(text) => read(&SourceFile::new(&path, text), &Facts::of(resolved), diags),
        None => RouteTable::builtin(),
    }
}

/// The file's text; a file that cannot be read or is not UTF-8 is reported.
fn read_text(path: &Path, diags: &mut Diagnostics) -> Option<String> {
    let problem = match crate::limits::read_capped(path, crate::limits::PLAN_BYTES, "routes file") {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => return Some(text),
            Err(e) => Diagnostic::error(
                "routes::unreadable",
                format!(
                    "{} is not UTF-8 (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ),
            )
            .help("save routes.toml as UTF-8"),
        },
        Err(e) => Diagnostic::error(
            "routes::unreadable",
            format!("cannot read {}: {e}", path.display()),
        )
        .help(
            "routes.toml is optional: fix it, or remove it to send every device message to \
             the telemetry collection",
        ),
    };
    diags.push(problem);
    None
}

const TOP_KEYS: &[&str] = &["endpoints", "routes", "fallback", "enrichments"];
const ROUTE_KEYS: &[&str] = &["name", "source", "condition", "endpoints"];
const ENRICHMENT_KEYS: &[&str] = &["key", "value", "endpoints"];

/// Read one routes file's text. Diagnostics the shared TOML reader makes
/// (`plan::unknown_key`, `plan::wrong_type`, ...) are given `routes::` codes,
/// and a help line where they have none.
pub fn read(file: &Arc<SourceFile>, facts: &Facts, diags: &mut Diagnostics) -> RouteTable {
    let mut local = Diagnostics::default();
    let table = read_table(file, facts, &mut local);
    for d in local.errors.iter_mut().chain(&mut local.warnings) {
        if let Some(rest) = d.code.strip_prefix("ztpd::plan::") {
            d.code = format!("ztpd::routes::{rest}");
        }
        if d.help.is_none() {
            d.help = Some(
                "see \"Routing\" in docs/telemetry.md for routes.toml's tables and keys".into(),
            );
        }
    }
    let ok = !local.has_errors();
    diags.extend(local);
    if ok {
        table
    } else {
        RouteTable::builtin()
    }
}

fn read_table(file: &Arc<SourceFile>, facts: &Facts, diags: &mut Diagnostics) -> RouteTable {
    let doc = parse_toml(
        file,
        "routes::toml_syntax",
        "fix the TOML syntax; strings need quotes, endpoints are [endpoints.<name>], routes [[routes]]",
        diags,
    );
    let mut ctx = Ctx { file, diags };
    let mut top = Table::from_detable(doc.get_ref(), doc.span(), "");
    let mut table = RouteTable::builtin();
    table.file = Some(file.path.clone());
    let mut ids: HashMap<String, EndpointId> = HashMap::new();
    ids.insert(RouteTable::EVENTS_NAME.into(), RouteTable::EVENTS);
    for (name, t) in top.named_tables(&mut ctx, "endpoints") {
        let endpoint = read_endpoint(&mut ctx, facts, &name, t);
        if name.v == RouteTable::EVENTS_NAME {
            continue; // reported; routes naming it reach the built-in one
        }
        ids.insert(name.v.clone(), table.endpoints.len());
        // A broken endpoint keeps its place, so routes naming it are not
        // reported too; the table is not served with an error anyway.
        table.endpoints.push(endpoint.unwrap_or(Endpoint {
            name: name.v,
            kind: EndpointKind::Events,
        }));
    }
    let names: Vec<&str> = table.endpoints.iter().map(|e| e.name.as_str()).collect();
    let refs = EndpointNames { ids: &ids, names };
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    for mut t in top.table_array(&mut ctx, "routes") {
        if let Some(r) = read_route(&mut ctx, &refs, &mut seen, &mut t) {
            table.routes.push(r);
        }
        t.finish(&mut ctx, ROUTE_KEYS);
    }
    if let Some(mut t) = top.table(&mut ctx, "fallback") {
        if let Some(b) = t.bool(&mut ctx, "enabled") {
            table.fallback = b.v;
        }
        t.finish(&mut ctx, &["enabled"]);
    }
    let mut keys: Vec<(String, EndpointId, Range<usize>)> = Vec::new();
    for mut t in top.table_array(&mut ctx, "enrichments") {
        if let Some(e) = read_enrichment(&mut ctx, &refs, &mut keys, &mut t) {
            table.enrichments.push(e);
        }
        t.finish(&mut ctx, ENRICHMENT_KEYS);
    }
    top.finish(&mut ctx, TOP_KEYS);
    table
}

/// Endpoint names as routes and enrichments refer to them.
struct EndpointNames<'a> {
    ids: &'a HashMap<String, EndpointId>,
    names: Vec<&'a str>,
}

impl EndpointNames<'_> {
    /// The ids of a list of endpoint names; unknown, repeated or no names
    /// are reported.
    fn resolve(&self, ctx: &mut Ctx, t: &mut Table, what: &str) -> Option<Vec<EndpointId>> {
        let table_span = t.span.clone();
        let list = t.str_list(ctx, "endpoints");
        let Some(list) = list else {
            if t.key_span("endpoints").is_none() {
                ctx.error(
                    "routes::missing_key",
                    table_span.start..table_span.start + 1,
                    format!("{what} names no endpoints"),
                )
                .label("needs `endpoints`")
                .help(format!(
                    "add endpoints = [\"events\"] or the names of [endpoints.<name>] tables ({})",
                    self.names.join(", ")
                ));
            }
            return None;
        };
        if list.is_empty() {
            ctx.error(
                "routes::no_endpoints",
                table_span.start..table_span.start + 1,
                format!("{what} has an empty endpoint list"),
            )
            .help(format!(
                "name at least one endpoint: {}",
                self.names.join(", ")
            ));
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, n) in list.iter().enumerate() {
            match self.ids.get(&n.v) {
                Some(&id) if out.contains(&id) => {
                    let first = list[..i]
                        .iter()
                        .find(|x| x.v == n.v)
                        .map(|x| x.span.clone());
                    let mut d = ctx
                        .error(
                            "routes::duplicate_endpoint",
                            n.span.clone(),
                            format!("endpoint `{}` is listed twice", n.v),
                        )
                        .label("again here")
                        .help("list each endpoint once");
                    if let Some(f) = first {
                        d = d.related(f, "first listed here");
                    }
                    drop(d);
                    ok = false;
                }
                Some(&id) => out.push(id),
                None => {
                    let help = suggest(
                        &n.v,
                        &self.names,
                        format!(
                            "the endpoints are {}; define others as [endpoints.<name>]",
                            self.names.join(", ")
                        ),
                    );
                    ctx.error(
                        "routes::unknown_endpoint",
                        n.span.clone(),
                        format!("no endpoint is named `{}`", n.v),
                    )
                    .label("unknown endpoint")
                    .help(help);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// Which sources carry the device's twin for `$twin` (docs/telemetry.md):
/// device messages and twin changes come from a device that has one;
/// connection-state and lifecycle events are about the identity itself,
/// and IoT Hub routes them without a twin to read.
pub fn source_has_twin(source: Source) -> bool {
    matches!(source, Source::DeviceMessages | Source::TwinChangeEvents)
}

fn read_route(
    ctx: &mut Ctx,
    refs: &EndpointNames,
    seen: &mut HashMap<String, Range<usize>>,
    t: &mut Table,
) -> Option<Route> {
    let name = t.req_str(ctx, "name", "\"low-battery\"");
    let source = t.req_str(ctx, "source", "\"DeviceMessages\"");
    let condition = t.str(ctx, "condition");
    let endpoints = refs.resolve(ctx, t, "a route");
    let mut ok = endpoints.is_some();
    if let Some(n) = &name {
        ok &= check_name(ctx, n, "route");
        if let Some(first) = seen.get(&n.v) {
            ctx.error(
                "routes::duplicate_route",
                n.span.clone(),
                format!("two routes are named `{}`", n.v),
            )
            .label("again here")
            .related(first.clone(), "first here")
            .help("give each route its own name (the API counts by name)");
            ok = false;
        } else {
            seen.insert(n.v.clone(), n.span.clone());
        }
    }
    let source_of = source.as_ref().and_then(|s| {
        let parsed = Source::parse(&s.v);
        if parsed.is_none() {
            let names: Vec<&str> = Source::ALL.iter().map(|s| s.name()).collect();
            let help = suggest(
                &s.v,
                &names,
                format!("the sources are {}", names.join(", ")),
            );
            ctx.error(
                "routes::unknown_source",
                s.span.clone(),
                format!("unknown source `{}`", s.v),
            )
            .label("not a source")
            .help(help);
        }
        parsed
    });
    let expr = match &condition {
        Some(c) => read_condition(ctx, c, source_of),
        None => Some(always()),
    };
    let (name, source, expr, endpoints) = (name?, source_of?, expr?, endpoints?);
    ok.then(|| Route {
        name: name.v,
        source,
        condition_text: condition.map_or_else(|| "true".into(), |c| c.v),
        condition: expr,
        endpoints,
        stats: Arc::default(),
    })
}

/// Parse a condition; its errors point into the string in the file.
fn read_condition(ctx: &mut Ctx, c: &Sp<String>, source: Option<Source>) -> Option<Expr> {
    let file = ctx.file.clone();
    let at = |range: Range<usize>| string_span::file_range(&file.text, c.span.clone(), range);
    match condition::parse(&c.v) {
        Ok(e) => {
            let no_twin = source.filter(|s| e.reads_twin() && !source_has_twin(*s));
            if let Some(s) = no_twin {
                let span = condition::twin_span(&c.v).map_or(c.span.clone(), at);
                ctx.error(
                    "routes::no_twin",
                    span,
                    format!("{} carry no twin to read $twin from", s.name()),
                )
                .label("no twin here")
                .help("$twin is read for DeviceMessages and TwinChangeEvents; route on the event's properties instead");
                return None;
            }
            Some(e)
        }
        Err(e) => {
            let span = at(e.span.clone());
            ctx.error(&format!("routes::{}", e.code), span, e.message)
                .label("in this condition")
                .help(e.help);
            None
        }
    }
}

fn read_enrichment(
    ctx: &mut Ctx,
    refs: &EndpointNames,
    keys: &mut Vec<(String, EndpointId, Range<usize>)>,
    t: &mut Table,
) -> Option<Enrichment> {
    let key = t.req_str(ctx, "key", "\"site\"");
    let value = t.req_str(ctx, "value", "\"$twin.tags.site\"");
    let endpoints = refs.resolve(ctx, t, "an enrichment");
    let mut ok = true;
    if let Some(k) = key.as_ref().filter(|k| k.v.trim().is_empty()) {
        ctx.error(
            "routes::bad_enrichment",
            k.span.clone(),
            "the enrichment key is empty",
        )
        .label("empty")
        .help("name the application property it adds, e.g. key = \"site\"");
        ok = false;
    }
    let value = value.and_then(|v| enrichment_value(ctx, &v));
    let (key, value, endpoints) = (key?, value?, endpoints?);
    for &e in &endpoints {
        if let Some((_, _, first)) = keys.iter().find(|(k, id, _)| *k == key.v && *id == e) {
            ctx.error(
                "routes::duplicate_enrichment",
                key.span.clone(),
                format!(
                    "endpoint `{}` gets enrichment `{}` twice",
                    refs.names[e], key.v
                ),
            )
            .related(first.clone(), "first here")
            .help("one value per key and endpoint");
            ok = false;
        }
        keys.push((key.v.clone(), e, key.span.clone()));
    }
    ok.then_some(Enrichment {
        key: key.v,
        value,
        endpoints,
    })
}

/// `$iothubname`, a `$twin` path, or a literal.
fn enrichment_value(ctx: &mut Ctx, v: &Sp<String>) -> Option<EnrichmentValue> {
    let text = v.v.trim();
    if text == "$iothubname" {
        return Some(EnrichmentValue::HubName);
    }
    if !text.starts_with('$') {
        return Some(EnrichmentValue::Literal(v.v.clone()));
    }
    match condition::parse(text) {
        Ok(Expr::Twin(path)) => Some(EnrichmentValue::Twin(path)),
        _ => {
            ctx.error(
                "routes::bad_enrichment",
                v.span.clone(),
                format!("`{text}` is not an enrichment value"),
            )
            .label("expected a literal, $iothubname or a $twin path")
            .help("write a literal, $iothubname, $twin.tags.<name>, or $twin.properties.desired|reported.<name>");
            None
        }
    }
}

mod endpoint;

pub use endpoint::{basic_auth, redact_url, without_userinfo};
use endpoint::{check_name, read_endpoint};

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
