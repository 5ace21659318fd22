//! Bootstrap scripts (SPEC §7): one per vendor profile, served as
//! `bootstrap/<profile>`. Built-in defaults are compiled in; a file
//! `templates/bootstrap/<profile>` replaces the default. Both are minijinja
//! templates seeing `server` (ip, http, files, ztp, tftp URLs), `site` and
//! `devices` (every planned device with its vendor, image and patch).
//!
//! On a dual-stack site the scripts are rendered twice: on `server_ip` for
//! devices that fetch them over IPv4 and on `server_ip6` for those that
//! fetch them over IPv6 (SPEC §11: every URL for the family the device came
//! in on).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use md5::{Digest, Md5};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{json, Value};

use crate::plan::model::Model;
use crate::settings::Resolved;
use crate::template::ServerUrls;

/// (profile, built-in template). Juniper (option 43) and Cisco AutoInstall
/// (TFTP `network-confg`) need no script.
pub const BUILTIN: [(&str, &str); 8] = [
    ("generic", include_str!("bootstrap/generic.sh")),
    ("arista", include_str!("bootstrap/arista.py")),
    ("cisco-iosxe", include_str!("bootstrap/cisco-iosxe.py")),
    ("cisco-nxos", include_str!("bootstrap/cisco-nxos.py")),
    ("sonic", include_str!("bootstrap/sonic.json")),
    ("cumulus", include_str!("bootstrap/cumulus.sh")),
    ("huawei", include_str!("bootstrap/huawei.ini")),
    ("onie", include_str!("bootstrap/onie.sh")),
];

/// The scripts of one load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scripts {
    /// By profile, on the site's IPv4 address (its IPv6 one when it has no
    /// IPv4).
    pub by_profile: BTreeMap<String, String>,
    /// By profile, on the site's IPv6 address: only on a dual-stack site.
    pub ipv6: BTreeMap<String, String>,
}

/// `ipv6`: the server as a device that came in over IPv6 reaches it, on a
/// site that has both addresses.
fn context(model: &Model, http_port: u16, ipv6: bool) -> Value {
    let server = match model.sites.first() {
        Some(site) => {
            let ip = match site.server_ip6 {
                Some(v6) if ipv6 => std::net::IpAddr::V6(v6),
                _ => site.server_v4_first(),
            };
            serde_json::to_value(ServerUrls::on(ip, http_port)).unwrap_or_default()
        }
        None => {
            let base = format!("http://127.0.0.1:{http_port}");
            json!({"ip": "127.0.0.1", "http": base, "files": format!("{base}/files"),
                   "ztp": format!("{base}/ztp/v1"), "tftp": "127.0.0.1"})
        }
    };
    let devices: Vec<Value> = model
        .devices()
        .map(|(site, d)| {
            let m = site.model_of(d);
            json!({
                "name": d.name, "serial": d.serial, "mac": d.mac_string(),
                "ip": d.ip.map(|i| i.to_string()), "vendor": m.vendor.name(),
                "model": m.match_model,
                "image": m.software.as_ref().map(|s| s.image.clone()),
                "version": m.software.as_ref().map(|s| s.version.clone()),
                "patch": m.patch,
            })
        })
        .collect();
    let site = model.sites.first().map(|s| {
        json!({"name": s.name, "server_ip": s.server_ip.map(|i| i.to_string()),
                        "server_ip6": s.server_ip6.map(|i| i.to_string())})
    });
    json!({"server": server, "site": site, "devices": devices})
}

/// A digest of everything [`context`] holds, hashed from the model without
/// building it: a fleet's context is large, and most reloads leave it as is.
/// Keep it in step with `context`.
fn context_digest(model: &Model, http_port: u16) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    http_port.hash(&mut h);
    model
        .sites
        .first()
        .map(|s| (&s.name, s.server_ip, s.server_ip6))
        .hash(&mut h);
    for (site, d) in model.devices() {
        let m = site.model_of(d);
        (
            &d.name,
            &d.serial,
            d.mac,
            d.ip,
            m.vendor.name(),
            &m.match_model,
        )
            .hash(&mut h);
        m.software
            .as_ref()
            .map(|s| (&s.image, &s.version))
            .hash(&mut h);
        m.patch.hash(&mut h);
    }
    h.finish()
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // The same bound as config templates: a bootstrap template that loops
    // without end must not pin a core and hold every later reload.
    env.set_fuel(Some(crate::template::TEMPLATE_FUEL));
    env
}

/// Render a user's template (`templates/bootstrap/<profile>`, which may
/// change between loads): parsed for each render.
fn render(source: &str, ctx: &Value) -> Result<String, String> {
    environment().render_str(source, ctx).map_err(|e| {
        if e.kind() == minijinja::ErrorKind::OutOfFuel {
            format!(
                "the template did more than {} steps of work (a loop that never ends, or \
                 nested ranges?)",
                crate::template::TEMPLATE_FUEL
            )
        } else {
            e.to_string()
        }
    })
}

/// Render the built-in script of `profile`. The eight built-ins are parsed
/// once per process, not on every load: re-parsing them was 12-18 % of a
/// plan-loader fuzz run's time (docs/benchmarks.md) and is wasted on every
/// reload. One that does not parse keeps its error for every render.
fn render_builtin(profile: &str, ctx: &Value) -> Result<String, String> {
    type Parsed = (Environment<'static>, BTreeMap<&'static str, String>);
    static PARSED: OnceLock<Parsed> = OnceLock::new();
    let (env, broken) = PARSED.get_or_init(|| {
        let mut env = environment();
        let mut broken = BTreeMap::new();
        for (profile, text) in BUILTIN {
            if let Err(e) = env.add_template(profile, text) {
                broken.insert(profile, e.to_string());
            }
        }
        (env, broken)
    });
    if let Some(e) = broken.get(profile) {
        return Err(e.clone());
    }
    env.get_template(profile)
        .and_then(|t| t.render(ctx))
        .map_err(|e| e.to_string())
}

/// NX-OS POAP checks `#md5sum="..."` against the script without that line.
pub fn with_poap_md5(script: &str) -> String {
    let body: String = script
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("#md5sum="))
        .collect();
    let sum = Md5::digest(body.as_bytes());
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    let line = format!("#md5sum=\"{hex}\"\n");
    match body.find('\n') {
        Some(i) if body.starts_with("#!") => format!("{}{line}{}", &body[..=i], &body[i + 1..]),
        _ => format!("{line}{body}"),
    }
}

/// Huawei ZTP checks `#sha256sum="..."` on the first line of an `.ini`
/// intermediate file against the SHA-256 of the rest of the file (from
/// `;BEGIN ROUTER` to `;END ROUTER`).
pub fn with_huawei_sha256(ini: &str) -> String {
    let body = match ini.split_once('\n') {
        Some((first, rest)) if first.starts_with("#sha256sum=") => rest,
        _ => ini,
    };
    let hex: String = <sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("#sha256sum=\"{hex}\"\n{body}")
}

/// Names a profile's file is served under besides `bootstrap/<profile>`:
/// Huawei's option 67 names `bootstrap/huawei.ini`, and the device reads the
/// intermediate file's format from that suffix.
pub const ALIASES: [(&str, &str); 1] = [("huawei", "huawei.ini")];

/// Render every profile's script. A user template that does not render is
/// reported (returned as a message) and the built-in default put in its
/// place; the plan loader turns the messages into errors, so such a plan is
/// refused by `validate`, at start and on reload, like a broken config template.
pub fn render_all(resolved: &Resolved, model: &Model) -> (Scripts, Vec<String>) {
    render_all_cached(resolved, model, &mut BootstrapCache::default())
}

/// The scripts of the last load, with a digest of what they were made from
/// (the context and every profile's user template), so a reload that
/// changes neither renders nothing.
#[derive(Debug, Default)]
pub struct BootstrapCache(Option<(u64, Scripts, Vec<String>)>);

/// [`render_all`], reusing the last load's scripts when their inputs are
/// unchanged.
pub fn render_all_cached(
    resolved: &Resolved,
    model: &Model,
    cache: &mut BootstrapCache,
) -> (Scripts, Vec<String>) {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let port = resolved.settings.listen.http.port();
    let dir = resolved.templates_dir().join("bootstrap");
    let users: Vec<(std::path::PathBuf, Option<String>)> = BUILTIN
        .iter()
        .map(|(profile, _)| {
            let p = dir.join(profile);
            let text = crate::template::read_template(&p).ok();
            (p, text)
        })
        .collect();
    let mut h = DefaultHasher::new();
    context_digest(model, port).hash(&mut h);
    users.hash(&mut h);
    let digest = h.finish();
    if let Some((d, out, problems)) = &cache.0 {
        if *d == digest {
            return (out.clone(), problems.clone());
        }
    }
    let (by_profile, mut problems) = render_with(&context(model, port, false), &users);
    let dual_stack = model
        .sites
        .first()
        .is_some_and(|s| s.server_ip.is_some() && s.server_ip6.is_some());
    let ipv6 = if dual_stack {
        let (ipv6, more) = render_with(&context(model, port, true), &users);
        for p in more {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
        ipv6
    } else {
        BTreeMap::new()
    };
    let out = Scripts { by_profile, ipv6 };
    cache.0 = Some((digest, out.clone(), problems.clone()));
    (out, problems)
}

fn render_with(
    ctx: &Value,
    users: &[(std::path::PathBuf, Option<String>)],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for ((profile, _), (user_path, user)) in BUILTIN.iter().zip(users) {
        let text = match user.as_deref().map(|u| render(u, ctx)) {
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                problems.push(format!("{}: {e}", user_path.display()));
                None
            }
            None => None,
        };
        let text = match text {
            Some(t) => t,
            None => match render_builtin(profile, ctx) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("built-in bootstrap/{profile}: {e}"));
                    continue;
                }
            },
        };
        let text = match *profile {
            "cisco-nxos" => with_poap_md5(&text),
            "huawei" => with_huawei_sha256(&text),
            _ => text,
        };
        for (p, alias) in ALIASES {
            if p == *profile {
                out.insert(alias.to_string(), text.clone());
            }
        }
        out.insert(profile.to_string(), text);
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(root: &std::path::Path) -> Resolved {
        crate::settings::resolve(None, &[root.join("plans/lab.toml")]).unwrap()
    }

    #[test]
    fn a_bootstrap_template_that_works_without_end_is_stopped() {
        let started = std::time::Instant::now();
        let e = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            &Value::from(()),
        )
        .expect_err("out of fuel");
        assert!(e.contains("steps of work"), "{e}");
        // Not a timing assertion on speed: without the bound this render
        // would run for hours; with it, it ends.
        eprintln!("stopped after {:?}", started.elapsed());
    }

    #[test]
    fn every_builtin_renders_with_the_server_url() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolved(dir.path());
        let (scripts, problems) = render_all(&r, &Model::default());
        assert!(problems.is_empty(), "{problems:?}");
        assert!(scripts.ipv6.is_empty(), "no dual-stack site");
        let out = scripts.by_profile;
        assert_eq!(out.len(), BUILTIN.len() + ALIASES.len());
        assert_eq!(out["huawei.ini"], out["huawei"]);
        assert!(out["generic"].contains("SERVER=\"${ZTP_SERVER:-http://127.0.0.1:8080}\""));
        assert!(out["cumulus"].contains("CUMULUS-AUTOPROVISIONING"));
        let v: serde_json::Value = serde_json::from_str(&out["sonic"]).unwrap();
        let sections: Vec<&String> = v["ztp"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.is_object())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            sections,
            [
                "01-ztpd-hello",
                "02-firmware",
                "03-configdb-json",
                "04-ztpd-deployed"
            ]
        );
        assert_eq!(
            v["ztp"]["01-ztpd-hello"]["plugin"]["dynamic-url"]["source"]["prefix"],
            "http://127.0.0.1:8080/files/bootstrap/sonic/"
        );
    }

    #[test]
    fn a_dual_stack_site_gets_its_scripts_on_each_address() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolved(dir.path());
        let dual = crate::dhcp::fixture::lab_model6();
        let (scripts, problems) = render_all(&r, &dual);
        assert!(problems.is_empty(), "{problems:?}");
        let v4 = "SERVER=\"${ZTP_SERVER:-http://10.10.0.1:8080}\"";
        let v6 = "SERVER=\"${ZTP_SERVER:-http://[2001:db8:10::1]:8080}\"";
        assert!(scripts.by_profile["generic"].contains(v4));
        assert!(scripts.ipv6["generic"].contains(v6));
        assert_eq!(scripts.ipv6.len(), scripts.by_profile.len());
        // An IPv4-only site has one rendering, an IPv6-only one its IPv6 one.
        let mut v4_only = dual.clone();
        v4_only.sites[0].server_ip6 = None;
        assert!(render_all(&r, &v4_only).0.ipv6.is_empty());
        let mut v6_only = dual;
        v6_only.sites[0].server_ip = None;
        let (s6, _) = render_all(&r, &v6_only);
        assert!(s6.ipv6.is_empty());
        assert!(s6.by_profile["generic"].contains(v6));
    }

    #[test]
    fn huawei_ini_lists_huawei_devices() {
        let ctx = json!({"server": {"files": "http://10.0.0.1:8080/files", "tftp": "10.0.0.1"}, "devices": [
            {"vendor": "huawei", "serial": "21500101", "mac": "00:e0:fc:00:00:01",
             "image": "images/V200.cc", "version": "V200R021", "patch": null},
            {"vendor": "arista", "serial": "JPE1", "mac": null, "image": null, "version": null, "patch": null}]});
        let text = render(BUILTIN[6].1, &ctx).unwrap();
        assert!(
            text.contains("[DEVICE1 DESCRIPTION]\nESN=21500101\nMAC=00e0-fc00-0001\n"),
            "{text}"
        );
        assert!(text.contains("FILESERVER=tftp://10.0.0.1/\n"), "{text}");
        assert!(text.contains("SYSTEM-SOFTWARE=images/V200.cc"));
        assert!(text.contains("SYSTEM-CONFIG=configs/21500101.cfg"));
        assert!(!text.contains("JPE1"));
        assert!(text.starts_with(";BEGIN ROUTER") && text.trim_end().ends_with(";END ROUTER"));
        let signed = with_huawei_sha256(&text);
        let (first, rest) = signed.split_once('\n').unwrap();
        let want: String = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(first, format!("#sha256sum=\"{want}\""));
        assert_eq!(rest, text);
        assert_eq!(with_huawei_sha256(&signed), signed, "idempotent");
    }

    #[test]
    fn poap_md5_matches_the_script_without_its_line() {
        let s = with_poap_md5("#!/bin/env python\n#md5sum=\"x\"\nprint(1)\n");
        let mut lines = s.lines();
        assert_eq!(lines.next(), Some("#!/bin/env python"));
        let md5_line = lines.next().unwrap();
        let rest = "#!/bin/env python\nprint(1)\n";
        let want: String = Md5::digest(rest.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(md5_line, format!("#md5sum=\"{want}\""));
        // Idempotent: the sum of a stamped script is the same.
        assert_eq!(with_poap_md5(&s), s);
    }

    #[test]
    fn a_user_template_replaces_the_default_and_a_broken_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates/bootstrap")).unwrap();
        std::fs::write(
            dir.path().join("templates/bootstrap/generic"),
            "echo {{ server.ztp }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("templates/bootstrap/arista"),
            "{{ nope.x }}",
        )
        .unwrap();
        let r = resolved(dir.path());
        let (scripts, problems) = render_all(&r, &Model::default());
        let out = scripts.by_profile;
        assert_eq!(out["generic"], "echo http://127.0.0.1:8080/ztp/v1\n");
        assert!(out["arista"].contains("FastCli"), "built-in kept");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("templates/bootstrap/arista"));
    }
}
