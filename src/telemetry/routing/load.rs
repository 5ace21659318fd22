//! `routes.toml` (`paths.routes`, SPEC §14) into a [`RouteTable`], with
//! every problem reported at once through the plan diagnostics (file:line:col,
//! a `ztpd::routes::*` code, a help line). Read with the plans
//! (`plan::load`), so `ztpd validate` checks it and a reload refuses a bad
//! edit whole. No file: [`RouteTable::builtin`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use toml::de::DeTable;

use super::condition::{self, Expr};
use super::string_span;
use super::table::{
    always, Endpoint, EndpointId, EndpointKind, Enrichment, EnrichmentValue, Route, RouteTable,
    Source,
};
use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::reader::{closest, Ctx, Sp, Table};
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
    match read_text(&path) {
        Ok(text) => read(&SourceFile::new(&path, text), &Facts::of(resolved), diags),
        Err(d) => {
            diags.push(d);
            RouteTable::builtin()
        }
    }
}

fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let help = "routes.toml is optional: fix it, or remove it to send every device message to \
                the telemetry collection";
    let bytes = crate::limits::read_capped(path, crate::limits::PLAN_BYTES, "routes file")
        .map_err(|e| {
            Diagnostic::error(
                "routes::unreadable",
                format!("cannot read {}: {e}", path.display()),
            )
            .help(help)
        })?;
    String::from_utf8(bytes).map_err(|e| {
        Diagnostic::error(
            "routes::unreadable",
            format!(
                "{} is not UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        )
        .help("save routes.toml as UTF-8")
    })
}

const TOP_KEYS: &[&str] = &["endpoints", "routes", "fallback", "enrichments"];
const ROUTE_KEYS: &[&str] = &["name", "source", "condition", "endpoints"];
const ENRICHMENT_KEYS: &[&str] = &["key", "value", "endpoints"];
const KINDS: &str =
    "mongodb (collection = \"...\"), mqtt (topic = \"...\") or webhook (url = \"http://...\")";

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
    let (doc, errors) = DeTable::parse_recoverable(&file.text);
    for e in &errors {
        diags.push(
            Diagnostic::error(
                "routes::toml_syntax",
                format!("TOML syntax error: {}", e.message().trim()),
            )
            .at(file, e.span().unwrap_or(0..0))
            .help("fix the TOML syntax; strings need quotes, endpoints are [endpoints.<name>], routes [[routes]]"),
        );
    }
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
                    let mut help = format!(
                        "the endpoints are {}; define others as [endpoints.<name>]",
                        self.names.join(", ")
                    );
                    if let Some(c) = closest(&n.v, &self.names) {
                        help = format!("did you mean `{c}`? {help}");
                    }
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

/// Route and endpoint names: what IoT Hub allows, so a name reads the same
/// in the API, the logs and an MQTT topic's `{route}`.
fn check_name(ctx: &mut Ctx, name: &Sp<String>, what: &str) -> bool {
    let n = &name.v;
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        ctx.error(
            "routes::bad_name",
            name.span.clone(),
            format!("`{n}` is not a valid {what} name"),
        )
        .label("expected letters, digits, - _ .")
        .help("use 1 to 64 letters, digits, `-`, `_` or `.`");
    }
    ok
}

fn read_endpoint(
    ctx: &mut Ctx,
    facts: &Facts,
    name: &Sp<String>,
    mut t: Table,
) -> Option<Endpoint> {
    let mut ok = check_name(ctx, name, "endpoint");
    if name.v == RouteTable::EVENTS_NAME {
        ctx.error(
            "routes::reserved_endpoint",
            name.span.clone(),
            "`events` is the built-in telemetry collection and cannot be redefined",
        )
        .label("built in")
        .help("name this endpoint otherwise; routes reach the telemetry collection as \"events\"");
        ok = false;
    }
    let kind = t.req_str(ctx, "kind", "\"mongodb\"");
    let (kind, known): (Option<EndpointKind>, &[&str]) = match kind.as_ref().map(|k| k.v.as_str()) {
        Some("mongodb") => (
            t.req_str(ctx, "collection", "\"alerts\"")
                .filter(|c| check_collection(ctx, facts, c))
                .map(|c| EndpointKind::Mongodb { collection: c.v }),
            &["kind", "collection"],
        ),
        Some("mqtt") => {
            let topic = t.req_str(ctx, "topic", "\"ztpd/alerts/{deviceId}\"");
            let kind_span = kind.as_ref().map_or(0..0, |k| k.span.clone());
            (
                topic
                    .filter(|topic| check_topic(ctx, facts, topic, kind_span))
                    .map(|topic| EndpointKind::Mqtt { topic: topic.v }),
                &["kind", "topic"],
            )
        }
        Some("webhook") => (
            t.req_str(ctx, "url", "\"http://127.0.0.1:9000/ingest\"")
                .filter(|u| check_url(ctx, u))
                .map(|u| EndpointKind::Webhook { url: u.v }),
            &["kind", "url"],
        ),
        Some(other) => {
            let span = kind.as_ref().map_or(0..0, |k| k.span.clone());
            ctx.error(
                "routes::unknown_kind",
                span,
                format!("unknown endpoint kind `{other}`"),
            )
            .label("not an endpoint kind")
            .help(format!("the kinds are {KINDS}"));
            (None, &["kind", "collection", "topic", "url"])
        }
        None => (None, &["kind", "collection", "topic", "url"]),
    };
    t.finish(ctx, known);
    let kind = kind.filter(|_| ok)?;
    Some(Endpoint {
        name: name.v.clone(),
        kind,
    })
}

/// A MongoDB collection name (no `$`, no NUL, not `system.*`, at most 120
/// bytes) that is not the telemetry collection or its rejected one.
fn check_collection(ctx: &mut Ctx, facts: &Facts, c: &Sp<String>) -> bool {
    let n = c.v.as_str();
    let why = if n.is_empty() {
        Some("is empty".to_string())
    } else if n.len() > 120 {
        Some(format!("is {} bytes long; at most 120", n.len()))
    } else if n.contains(['$', '\0']) {
        Some("contains `$` or a NUL".to_string())
    } else if n.starts_with("system.") || n.starts_with('.') || n.ends_with('.') {
        Some("is reserved by MongoDB or starts or ends with `.`".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        ctx.error(
            "routes::bad_collection",
            c.span.clone(),
            format!("collection `{n}` {why}"),
        )
        .label("not a collection name")
        .help("name a collection of the telemetry database, e.g. \"battery_alerts\"");
        return false;
    }
    let rejected = format!("{}_rejected", facts.collection);
    if n == facts.collection || n == rejected {
        ctx.error(
            "routes::telemetry_collection",
            c.span.clone(),
            format!("`{n}` is where ztpd stores telemetry itself (telemetry.collection)"),
        )
        .label("the telemetry collection")
        .help("route to it with endpoints = [\"events\"], or name another collection");
        return false;
    }
    true
}

/// An `mqtt` topic: `telemetry.broker` set, no wildcard, only `{deviceId}`
/// and `{route}`, and not under `devices/+/messages/events/` (the bridge
/// reads those: a loop).
fn check_topic(ctx: &mut Ctx, facts: &Facts, topic: &Sp<String>, kind: Range<usize>) -> bool {
    let mut ok = true;
    if !facts.broker {
        ctx.error(
            "routes::mqtt_without_broker",
            kind,
            "an mqtt endpoint republishes on telemetry.broker, which is not set",
        )
        .label("needs telemetry.broker")
        .help("set [telemetry] broker = \"mqtt://host:1883\" in ztpd.toml, or use a mongodb or webhook endpoint");
        ok = false;
    }
    let t = topic.v.as_str();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let close = after.find('}').map_or(after.len(), |c| c + 1);
        let placeholder = &after[..close];
        if placeholder != "{deviceId}" && placeholder != "{route}" {
            ctx.error(
                "routes::bad_topic",
                topic.span.clone(),
                format!("unknown placeholder `{placeholder}` in topic `{t}`"),
            )
            .label("unknown placeholder")
            .help("the placeholders are {deviceId} and {route}");
            ok = false;
        }
        rest = &after[close..];
    }
    if t.is_empty() || t.contains(['+', '#', '\0']) {
        ctx.error(
            "routes::bad_topic",
            topic.span.clone(),
            format!("`{t}` is not a topic to publish on"),
        )
        .label("empty, or a wildcard")
        .help("write a topic without + or #, e.g. \"ztpd/alerts/{deviceId}\"");
        ok = false;
    }
    let levels: Vec<&str> = t.split('/').collect();
    if levels.len() >= 4 && levels[0] == "devices" && levels[2..4] == ["messages", "events"] {
        ctx.error(
            "routes::mqtt_loop",
            topic.span.clone(),
            format!("`{t}` falls under devices/+/messages/events/, which the bridge reads back"),
        )
        .label("a loop")
        .help("publish elsewhere, e.g. \"ztpd/routed/{route}/{deviceId}\"");
        ok = false;
    }
    ok
}

/// A `webhook` URL ztpd's HTTP client can POST to: `http://host[:port]/path`,
/// with `user:password@` allowed (sent as Basic auth, redacted in the API).
fn check_url(ctx: &mut Ctx, url: &Sp<String>) -> bool {
    let u = url.v.as_str();
    if u.get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    {
        ctx.error(
            "routes::bad_url",
            url.span.clone(),
            "https:// is not supported: ztpd's HTTP client speaks plain http://",
        )
        .label("https")
        .help("POST to a receiver on http:// (e.g. a TLS-terminating proxy on the same host)");
        return false;
    }
    match crate::http_client::parse_url(&without_userinfo(u)) {
        Ok(_) => true,
        Err(e) => {
            ctx.error(
                "routes::bad_url",
                url.span.clone(),
                format!("`{}` is not a webhook URL: {e:#}", redact_url(u)),
            )
            .label("expected http://host[:port]/path")
            .help("write e.g. url = \"http://127.0.0.1:9000/ingest\"");
            false
        }
    }
}

/// `http://user:pw@host/p` as `http://host/p`.
pub fn without_userinfo(url: &str) -> String {
    match split_userinfo(url) {
        Some((scheme, _, rest)) => format!("{scheme}{rest}"),
        None => url.to_string(),
    }
}

/// A URL fit to show: the password of `user:password@` and the values of
/// the query (where receivers take keys: `?code=...`) as `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = match split_userinfo(url) {
        Some((scheme, info, rest)) => match info.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{rest}"),
            None => format!("{scheme}{info}@{rest}"),
        },
        None => url.to_string(),
    };
    if let Some(q) = out.find('?') {
        let query: Vec<String> = out[q + 1..]
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => kv.to_string(),
            })
            .collect();
        out = format!("{}?{}", &out[..q], query.join("&"));
    }
    out
}

/// (`http://`, `user:pw`, `host/path`) when the URL has user information.
fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let at_scheme = url.find("://")? + 3;
    let authority_end = url[at_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| at_scheme + i);
    let at = url[at_scheme..authority_end].rfind('@')? + at_scheme;
    Some((&url[..at_scheme], &url[at_scheme..at], &url[at + 1..]))
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
            let mut help = format!("the sources are {}", names.join(", "));
            if let Some(c) = closest(&s.v, &names) {
                help = format!("did you mean `{c}`? {help}");
            }
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

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
