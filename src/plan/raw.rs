//! The raw plan: a mirror of the file with every user-written value and its
//! span. Only `compile` reads these types.

use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use super::reader::{type_name, Ctx, Sp, Table, Val};

#[derive(Debug, Default)]
pub struct RawPlan {
    pub file: Option<Arc<SourceFile>>,
    pub site: Option<RawSite>,
    pub dhcp: Option<RawDhcp>,
    pub dhcp6: Option<RawDhcp6>,
    pub approval_mode: Option<Sp<String>>,
    pub approval_replacement: Option<Sp<String>>,
    /// `[snmp]`: how LLDP is read from deployed devices (SPEC §12).
    pub snmp: Option<RawSnmp>,
    pub models: Vec<(Sp<String>, RawModel)>,
    pub devices: Vec<RawDevice>,
    pub links: Vec<RawLink>,
    pub groups: Vec<(Sp<String>, RawGroup)>,
}

#[derive(Debug, Default)]
pub struct RawSnmp {
    pub span: std::ops::Range<usize>,
    pub version: Option<Sp<String>>,
    pub community: Option<Sp<String>>,
    pub community_env: Option<Sp<String>>,
    pub community_file: Option<Sp<String>>,
    pub user: Option<Sp<String>>,
    pub auth: Option<Sp<String>>,
    pub auth_key: Option<Sp<String>>,
    pub auth_key_env: Option<Sp<String>>,
    pub auth_key_file: Option<Sp<String>>,
    pub privacy: Option<Sp<String>>,
    pub priv_key: Option<Sp<String>>,
    pub priv_key_env: Option<Sp<String>>,
    pub priv_key_file: Option<Sp<String>>,
}

#[derive(Debug, Default)]
pub struct RawSite {
    pub span: std::ops::Range<usize>,
    pub name: Option<Sp<String>>,
    pub server_ip: Option<Sp<String>>,
    pub server_ip6: Option<Sp<String>>,
}

#[derive(Debug, Default)]
pub struct RawDhcp {
    pub span: std::ops::Range<usize>,
    pub interface: Option<Sp<String>>,
    pub subnet: Option<Sp<String>>,
    pub pool: Option<Sp<String>>,
    pub router: Option<Sp<String>>,
    pub dns: Vec<Sp<String>>,
    pub domain: Option<Sp<String>>,
    pub lease_time: Option<Sp<String>>,
}

#[derive(Debug, Default)]
pub struct RawDhcp6 {
    pub span: std::ops::Range<usize>,
    pub interface: Option<Sp<String>>,
    pub subnet: Option<Sp<String>>,
    pub pool: Option<Sp<String>>,
    pub dns: Vec<Sp<String>>,
    pub domain: Option<Sp<String>>,
    pub lease_time: Option<Sp<String>>,
    pub preferred_time: Option<Sp<String>>,
    pub advertise: Option<Sp<bool>>,
    pub router6: Option<Sp<String>>,
}

#[derive(Debug, Default)]
pub struct RawModel {
    pub span: std::ops::Range<usize>,
    pub vendor: Option<Sp<String>>,
    pub match_model: Option<Sp<String>>,
    pub ports: Vec<Sp<String>>,
    pub template: Option<Sp<String>>,
    pub software: Option<RawSoftware>,
    pub patch: Option<Sp<String>>,
    pub dhcp_options: Vec<(Sp<String>, Sp<RawOption>)>,
}

#[derive(Debug)]
pub struct RawSoftware {
    pub span: std::ops::Range<usize>,
    pub image: Option<Sp<String>>,
    pub version: Option<Sp<String>>,
}

#[derive(Debug, Clone)]
pub enum RawOption {
    Text(String),
    Int(i64),
    List(Vec<String>),
}

#[derive(Debug, Default)]
pub struct RawDevice {
    pub span: std::ops::Range<usize>,
    pub name: Option<Sp<String>>,
    pub model: Option<Sp<String>>,
    pub serial: Option<Sp<String>>,
    pub mac: Option<Sp<String>>,
    pub ip: Option<Sp<String>>,
    pub ip6: Option<Sp<String>>,
    pub duid: Option<Sp<String>>,
    pub role: Option<Sp<String>>,
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub device_function: Option<Sp<String>>,
    /// Read-only twin tags (SPEC §13), checked: scalars only.
    pub tags: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug)]
pub struct RawLink {
    pub span: std::ops::Range<usize>,
    pub a: Option<Sp<String>>,
    pub b: Option<Sp<String>>,
}

#[derive(Debug, Default)]
pub struct RawGroup {
    pub span: std::ops::Range<usize>,
    pub devices: Option<Vec<Sp<String>>>,
    pub select_model: Option<Sp<String>>,
    pub select_name: Option<Sp<String>>,
    pub policy: Option<RawPolicy>,
}

#[derive(Debug, Default)]
pub struct RawPolicy {
    pub span: std::ops::Range<usize>,
    pub batch_size: Option<Sp<i64>>,
    pub canary: Option<Sp<i64>>,
    pub max_failures: Option<Sp<RawOption>>,
    pub pause_between: Option<Sp<String>>,
    pub window: Option<Sp<String>>,
    pub device_timeout: Option<Sp<String>>,
    pub order: Option<Sp<String>>,
}

/// Parse and read one plan file. TOML syntax errors and shape errors become
/// diagnostics; whatever could be read is returned.
pub fn read(file: &Arc<SourceFile>, diags: &mut Diagnostics) -> RawPlan {
    let (doc, errors) = DeTable::parse_recoverable(&file.text);
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        diags.push(
            Diagnostic::error("plan::toml_syntax", format!("TOML syntax error: {}", e.message().trim()))
                .at(file, span)
                .label("here")
                .help("fix the TOML syntax; strings need quotes, tables [name], arrays of tables [[name]]"),
        );
    }
    let mut ctx = Ctx { file, diags };
    let mut top = Table::from_detable(doc.get_ref(), doc.span(), "");
    let mut plan = RawPlan {
        file: Some(file.clone()),
        ..RawPlan::default()
    };
    if let Some(mut t) = top.table(&mut ctx, "site") {
        plan.site = Some(RawSite {
            span: t.span.clone(),
            name: t.req_str(&mut ctx, "name", "\"lab\""),
            // Required unless the site is IPv6-only (checked by compile).
            server_ip: t.str(&mut ctx, "server_ip"),
            server_ip6: t.str(&mut ctx, "server_ip6"),
        });
        t.finish(&mut ctx, &["name", "server_ip", "server_ip6"]);
    }
    if let Some(mut t) = top.table(&mut ctx, "dhcp") {
        plan.dhcp = Some(read_dhcp(&mut ctx, &mut t));
        t.finish(
            &mut ctx,
            &[
                "interface",
                "subnet",
                "pool",
                "router",
                "dns",
                "domain",
                "lease_time",
            ],
        );
    }
    if let Some(mut t) = top.table(&mut ctx, "dhcp6") {
        plan.dhcp6 = Some(read_dhcp6(&mut ctx, &mut t));
        t.finish(
            &mut ctx,
            &[
                "interface",
                "subnet",
                "pool",
                "dns",
                "domain",
                "lease_time",
                "preferred_time",
                "advertise",
                "router6",
            ],
        );
    }
    if let Some(mut t) = top.table(&mut ctx, "approval") {
        plan.approval_mode = t.str(&mut ctx, "mode");
        plan.approval_replacement = t.str(&mut ctx, "replacement");
        t.finish(&mut ctx, &["mode", "replacement"]);
    }
    if let Some(mut t) = top.table(&mut ctx, "snmp") {
        plan.snmp = Some(RawSnmp {
            span: t.span.clone(),
            version: t.str(&mut ctx, "version"),
            community: t.str(&mut ctx, "community"),
            community_env: t.str(&mut ctx, "community_env"),
            community_file: t.str(&mut ctx, "community_file"),
            user: t.str(&mut ctx, "user"),
            auth: t.str(&mut ctx, "auth"),
            auth_key: t.str(&mut ctx, "auth_key"),
            auth_key_env: t.str(&mut ctx, "auth_key_env"),
            auth_key_file: t.str(&mut ctx, "auth_key_file"),
            privacy: t.str(&mut ctx, "priv"),
            priv_key: t.str(&mut ctx, "priv_key"),
            priv_key_env: t.str(&mut ctx, "priv_key_env"),
            priv_key_file: t.str(&mut ctx, "priv_key_file"),
        });
        t.finish(
            &mut ctx,
            &[
                "version",
                "community",
                "community_env",
                "community_file",
                "user",
                "auth",
                "auth_key",
                "auth_key_env",
                "auth_key_file",
                "priv",
                "priv_key",
                "priv_key_env",
                "priv_key_file",
            ],
        );
    }
    for (name, mut t) in top.named_tables(&mut ctx, "models") {
        let m = read_model(&mut ctx, &mut t);
        t.finish(
            &mut ctx,
            &[
                "vendor",
                "match",
                "ports",
                "template",
                "software",
                "patch",
                "dhcp_options",
            ],
        );
        plan.models.push((name, m));
    }
    for mut t in top.table_array(&mut ctx, "devices") {
        let d = read_device(&mut ctx, &mut t);
        t.finish(
            &mut ctx,
            &[
                "name",
                "model",
                "serial",
                "mac",
                "ip",
                "ip6",
                "duid",
                "role",
                "vars",
                "device_function",
                "tags",
            ],
        );
        plan.devices.push(d);
    }
    for mut t in top.table_array(&mut ctx, "links") {
        plan.links.push(RawLink {
            span: t.span.clone(),
            a: t.req_str(&mut ctx, "a", "\"spine1:Ethernet1\""),
            b: t.req_str(&mut ctx, "b", "\"leaf1:Ethernet49\""),
        });
        t.finish(&mut ctx, &["a", "b"]);
    }
    for (name, mut t) in top.named_tables(&mut ctx, "groups") {
        let g = read_group(&mut ctx, &mut t);
        t.finish(&mut ctx, &["devices", "select", "policy"]);
        plan.groups.push((name, g));
    }
    if errors.is_empty() && plan.site.is_none() {
        ctx.error("plan::missing_key", 0..0, "the plan has no [site] section")
            .label("plan starts here")
            .help("add [site] with name = \"...\" and server_ip = \"...\"");
    }
    top.finish(
        &mut ctx,
        &[
            "site", "dhcp", "dhcp6", "approval", "snmp", "models", "devices", "links", "groups",
        ],
    );
    plan
}

fn read_dhcp(ctx: &mut Ctx, t: &mut Table) -> RawDhcp {
    RawDhcp {
        span: t.span.clone(),
        interface: t.str(ctx, "interface"),
        subnet: t.req_str(ctx, "subnet", "\"10.10.0.0/24\""),
        pool: t.req_str(ctx, "pool", "\"10.10.0.100-10.10.0.199\""),
        router: t.str(ctx, "router"),
        dns: t.str_list(ctx, "dns").unwrap_or_default(),
        domain: t.str(ctx, "domain"),
        lease_time: t.str(ctx, "lease_time"),
    }
}

fn read_dhcp6(ctx: &mut Ctx, t: &mut Table) -> RawDhcp6 {
    RawDhcp6 {
        span: t.span.clone(),
        interface: t.str(ctx, "interface"),
        subnet: t.req_str(ctx, "subnet", "\"2001:db8:10::/64\""),
        pool: t.req_str(ctx, "pool", "\"2001:db8:10::1000-2001:db8:10::1fff\""),
        dns: t.str_list(ctx, "dns").unwrap_or_default(),
        domain: t.str(ctx, "domain"),
        lease_time: t.str(ctx, "lease_time"),
        preferred_time: t.str(ctx, "preferred_time"),
        advertise: t.bool(ctx, "advertise"),
        router6: t.str(ctx, "router6"),
    }
}

fn read_model(ctx: &mut Ctx, t: &mut Table) -> RawModel {
    let software = t.table(ctx, "software").map(|mut s| {
        let sw = RawSoftware {
            span: s.span.clone(),
            image: s.req_str(ctx, "image", "\"images/EOS-4.30.1F.swi\""),
            version: s.req_str(ctx, "version", "\"4.30.1F\""),
        };
        s.finish(ctx, &["image", "version"]);
        sw
    });
    let mut dhcp_options = Vec::new();
    if let Some(opts) = t.take("dhcp_options") {
        match opts.get_ref() {
            DeValue::Table(tab) => {
                for (k, v) in tab.iter() {
                    if let Some(o) =
                        read_option(ctx, v, &format!("{}.dhcp_options.{}", t.path, k.get_ref()))
                    {
                        dhcp_options.push((Sp::new(k.get_ref().to_string(), k.span()), o));
                    }
                }
            }
            other => {
                ctx.error(
                    "plan::wrong_type",
                    opts.span(),
                    format!(
                        "`dhcp_options` must be a table of option code = value, found {}",
                        type_name(other)
                    ),
                )
                .help("write dhcp_options = { 66 = \"10.10.0.1\", 150 = [\"10.10.0.1\"] }");
            }
        }
    }
    RawModel {
        span: t.span.clone(),
        vendor: t.req_str(ctx, "vendor", "\"arista\""),
        match_model: t.req_str(ctx, "match", "\"DCS-7050SX-64\""),
        ports: t.str_list(ctx, "ports").unwrap_or_default(),
        template: t.str(ctx, "template"),
        software,
        patch: t.str(ctx, "patch"),
        dhcp_options,
    }
}

/// A DHCP option override or `max_failures`: string, integer or list of strings.
fn read_option(ctx: &mut Ctx, v: &Val, path: &str) -> Option<Sp<RawOption>> {
    let o = match v.get_ref() {
        DeValue::String(s) => RawOption::Text(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => RawOption::Int(n),
            Err(_) => {
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!("`{path}` is out of range"),
                );
                return None;
            }
        },
        DeValue::Array(a) => {
            let mut items = Vec::new();
            for it in a.iter() {
                match it.get_ref() {
                    DeValue::String(s) => items.push(s.to_string()),
                    other => {
                        ctx.error(
                            "plan::wrong_type",
                            it.span(),
                            format!(
                                "items of `{path}` must be strings, found {}",
                                type_name(other)
                            ),
                        );
                    }
                }
            }
            RawOption::List(items)
        }
        other => {
            ctx.error(
                "plan::wrong_type",
                v.span(),
                format!(
                    "`{path}` must be a string, an integer or a list of strings, found {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    Some(Sp::new(o, v.span()))
}

fn read_device(ctx: &mut Ctx, t: &mut Table) -> RawDevice {
    let vars = match t.take("vars") {
        None => serde_json::Map::new(),
        Some(v) => match to_json(v.get_ref()) {
            serde_json::Value::Object(m) => m,
            _ => {
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!(
                        "`{}.vars` must be a table, found {}",
                        t.path,
                        type_name(v.get_ref())
                    ),
                )
                .help("write vars = { loopback = \"10.255.0.1\", asn = 65001 }");
                serde_json::Map::new()
            }
        },
    };
    let tags = t.take("tags");
    let tags = super::tags::read(ctx, &t.path, tags);
    RawDevice {
        span: t.span.clone(),
        name: t.req_str(ctx, "name", "\"leaf1\""),
        model: t.req_str(ctx, "model", "\"access-24\""),
        // Optional: a device may be known by its MAC or its position (SPEC §12).
        serial: t.str(ctx, "serial"),
        mac: t.str(ctx, "mac"),
        ip: t.str(ctx, "ip"),
        ip6: t.str(ctx, "ip6"),
        duid: t.str(ctx, "duid"),
        role: t.str(ctx, "role"),
        vars,
        device_function: t.str(ctx, "device_function"),
        tags,
    }
}

fn read_group(ctx: &mut Ctx, t: &mut Table) -> RawGroup {
    let mut g = RawGroup {
        span: t.span.clone(),
        devices: t.str_list(ctx, "devices"),
        ..RawGroup::default()
    };
    if let Some(mut s) = t.table(ctx, "select") {
        g.select_model = s.str(ctx, "model");
        g.select_name = s.str(ctx, "name");
        s.finish(ctx, &["model", "name"]);
    }
    if let Some(mut p) = t.table(ctx, "policy") {
        let max_failures = match p.take("max_failures") {
            Some(v) => read_option(ctx, v, &format!("{}.max_failures", p.path)),
            None => None,
        };
        g.policy = Some(RawPolicy {
            span: p.span.clone(),
            batch_size: p.int(ctx, "batch_size"),
            canary: p.int(ctx, "canary"),
            max_failures,
            pause_between: p.str(ctx, "pause_between"),
            window: p.str(ctx, "window"),
            device_timeout: p.str(ctx, "device_timeout"),
            order: p.str(ctx, "order"),
        });
        p.finish(
            ctx,
            &[
                "batch_size",
                "canary",
                "max_failures",
                "pause_between",
                "window",
                "device_timeout",
                "order",
            ],
        );
    }
    g
}

/// TOML value -> JSON value (template variables).
pub fn to_json(v: &DeValue<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map(J::from)
            .unwrap_or(J::Null),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(J::Number)
            .unwrap_or(J::Null),
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(a) => J::Array(a.iter().map(|x| to_json(x.get_ref())).collect()),
        DeValue::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref())))
                .collect(),
        ),
    }
}
