//! The endpoints of routes.toml: `[endpoints.<name>]` read and checked
//! against what ztpd can deliver to (a collection name MongoDB takes, an MQTT
//! topic that is no loop, a URL the HTTP client speaks), and a webhook URL as
//! it may be shown.

use std::ops::Range;

use super::Facts;
use crate::plan::reader::{Ctx, Sp, Table};
use crate::telemetry::routing::table::{Endpoint, EndpointKind, RouteTable};

const KINDS: &str =
    "mongodb (collection = \"...\"), mqtt (topic = \"...\") or webhook (url = \"http://...\")";

/// Route and endpoint names: what IoT Hub allows, so a name reads the same
/// in the API, the logs and an MQTT topic's `{route}`.
pub(super) fn check_name(ctx: &mut Ctx, name: &Sp<String>, what: &str) -> bool {
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

pub(super) fn read_endpoint(
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

/// `Basic <base64 of user:password>` for a URL with user information: how
/// a webhook's `http://user:pw@host/...` is sent (the URL itself goes
/// without it).
pub fn basic_auth(url: &str) -> Option<String> {
    use base64::Engine;
    let (_, info, _) = split_userinfo(url)?;
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(info)
    ))
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
