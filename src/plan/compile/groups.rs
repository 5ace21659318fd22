//! `[groups.*]`: members listed by name or selected by model and name glob,
//! and each group's rollout policy (batch size, canary, failure limit, pause,
//! window).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::values::{bad_identifier, duration};
use crate::identifier::is_identifier;
use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::model::{FailureLimit, Group, Policy, Site};
use crate::plan::raw::{RawGroup, RawOption, RawPlan, RawPolicy};
use crate::plan::reader::{closest, Sp};

pub(super) fn compile_groups(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    site: &Site,
) -> BTreeMap<String, Group> {
    let mut out = BTreeMap::new();
    let names: Vec<&str> = site.devices.iter().map(|d| d.name.as_str()).collect();
    // Devices refused by the device checks are still known by name: naming
    // one in a group is not reported a second time.
    let raw_names: Vec<&str> = raw
        .devices
        .iter()
        .filter_map(|d| d.name.as_ref().map(|n| n.v.as_str()))
        .collect();
    for (gname, g) in &raw.groups {
        if !is_identifier(&gname.v) {
            bad_identifier(diags, file, gname, "group name");
        }
        let mut members = listed_members(diags, file, gname, g, &names, &raw_names);
        if g.select_model.is_some() || g.select_name.is_some() {
            select_members(diags, file, gname, g, site, &mut members);
        }
        if members.is_empty() {
            diags.push(
                Diagnostic::warning(
                    "plan::empty_group",
                    format!("group `{}` has no devices", gname.v),
                )
                .at(file, gname.span.clone())
                .help("list devices = [...] or select = { model = \"...\", name = \"leaf*\" }"),
            );
        }
        check_one_model(diags, file, gname, &members, site);
        let policy = compile_policy(diags, file, &gname.v, g.policy.as_ref(), members.len());
        out.insert(
            gname.v.clone(),
            Group {
                name: gname.v.clone(),
                members,
                policy,
            },
        );
    }
    out
}

/// A group is the unit a software image fits: one model.
fn check_one_model(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    gname: &Sp<String>,
    members: &[String],
    site: &Site,
) {
    // By name, once: a scan per member was quadratic in a 10,000-device group.
    let models: std::collections::HashMap<&str, &String> = site
        .devices
        .iter()
        .map(|d| (d.name.as_str(), &d.model))
        .collect();
    let model_of = |n: &String| models.get(n.as_str()).copied();
    let Some(first) = members.first() else { return };
    let Some(m0) = model_of(first) else { return };
    if let Some(other) = members
        .iter()
        .find(|n| model_of(n).is_some_and(|m| m != m0))
    {
        let m1 = model_of(other).cloned().unwrap_or_default();
        diags.push(
            Diagnostic::error(
                "plan::group_mixed_models",
                format!(
                    "group `{}` mixes models: `{first}` is {m0}, `{other}` is {m1}",
                    gname.v
                ),
            )
            .at(file, gname.span.clone())
            .label("devices of more than one model")
            .help("a group is devices of one model (the unit an image fits): split it, or select = { model = \"...\" }"),
        );
    }
}

/// `devices = [...]`, each once, in the order written.
fn listed_members(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    gname: &Sp<String>,
    g: &RawGroup,
    names: &[&str],
    raw_names: &[&str],
) -> Vec<String> {
    let mut members: Vec<String> = Vec::new();
    let Some(list) = &g.devices else {
        return members;
    };
    let known: std::collections::HashSet<&str> = names.iter().copied().collect();
    let refused: std::collections::HashSet<&str> = raw_names.iter().copied().collect();
    let mut seen = std::collections::HashSet::new();
    for m in list {
        if known.contains(m.v.as_str()) {
            if seen.insert(m.v.as_str()) {
                members.push(m.v.clone());
            }
        } else if !refused.contains(m.v.as_str()) {
            let mut help = "group members are device names of this plan".to_string();
            if let Some(c) = closest(&m.v, names) {
                help = format!("did you mean `{c}`? {help}");
            }
            diags.push(
                Diagnostic::error(
                    "plan::unknown_group_member",
                    format!("group `{}` names unknown device `{}`", gname.v, m.v),
                )
                .at(file, m.span.clone())
                .label("no such device")
                .help(help),
            );
        }
    }
    members
}

/// `select = { model, name }`: devices of the site matching both, appended
/// after the listed ones.
fn select_members(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    gname: &Sp<String>,
    g: &RawGroup,
    site: &Site,
    members: &mut Vec<String>,
) {
    if let Some(sm) = &g.select_model {
        if !site.models.contains_key(&sm.v) {
            let known: Vec<&str> = site.models.keys().map(String::as_str).collect();
            diags.push(
                Diagnostic::error(
                    "plan::unknown_model",
                    format!("group `{}` selects unknown model `{}`", gname.v, sm.v),
                )
                .at(file, sm.span.clone())
                .label("no such model")
                .help(format!("models in this plan: {}", known.join(", "))),
            );
        }
    }
    if let Some(n) = &g.select_name {
        if let Some(problem) = glob_problem(&n.v) {
            diags.push(
                Diagnostic::error(
                    "plan::glob_too_long",
                    format!("group `{}`: {problem}", gname.v),
                )
                .at(file, n.span.clone())
                .label("this glob")
                .help(format!(
                    "a name glob is at most {GLOB_MAX_BYTES} bytes: `*` matches any run of \
                     characters, `?` one, e.g. name = \"leaf*\""
                )),
            );
            return;
        }
    }
    let listed: std::collections::HashSet<String> = members.iter().cloned().collect();
    for d in &site.devices {
        let model_ok = g.select_model.as_ref().is_none_or(|m| m.v == d.model);
        let name_ok = g
            .select_name
            .as_ref()
            .is_none_or(|n| glob_match(&n.v, &d.name));
        if model_ok && name_ok && !listed.contains(&d.name) {
            members.push(d.name.clone());
        }
    }
}

/// The longest `select.name` glob accepted, in bytes. Device names become
/// file names (at most 255 bytes), so a longer glob only adds `*`s; the cap
/// keeps a hostile pattern from costing more than a few kilobytes of work
/// per device.
pub const GLOB_MAX_BYTES: usize = 1024;

/// Why `pattern` cannot be a `select.name` glob (it is longer than
/// [`GLOB_MAX_BYTES`]), or None when it can.
pub fn glob_problem(pattern: &str) -> Option<String> {
    (pattern.len() > GLOB_MAX_BYTES).then(|| {
        format!(
            "the name glob is {} bytes; at most {GLOB_MAX_BYTES} allowed",
            pattern.len()
        )
    })
}

/// `*` matches any run of characters, `?` one character; nothing else is
/// special. Two pointers: on a mismatch only the last `*` seen takes one
/// more character, so the work is at most pattern length times name length
/// and nothing recurses (a recursive matcher backtracked exponentially on
/// `***...x` and overflowed the stack on a long pattern).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    // The position after the last `*` and the name position it resumes at.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, si));
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The group's policy; a bad key is reported and keeps its default.
fn compile_policy(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    group: &str,
    p: Option<&RawPolicy>,
    size: usize,
) -> Policy {
    let mut policy = crate::rollout::policy::default_policy();
    let Some(p) = p else { return policy };
    if let Some(b) = &p.batch_size {
        if b.v < 1 {
            diags.push(
                Diagnostic::error(
                    "plan::bad_policy",
                    format!(
                        "group `{group}`: batch_size {} would never upgrade anything",
                        b.v
                    ),
                )
                .at(file, b.span.clone())
                .label("must be at least 1")
                .help("set batch_size to 1 or more"),
            );
        } else {
            policy.batch_size = u32::try_from(b.v).unwrap_or(u32::MAX);
        }
    }
    if let Some(c) = &p.canary {
        if c.v < 0 {
            diags.push(
                Diagnostic::error(
                    "plan::bad_policy",
                    format!("group `{group}`: canary cannot be negative"),
                )
                .at(file, c.span.clone())
                .label("must be 0 or more")
                .help("canary is how many devices go first; 0 means none"),
            );
        } else if c.v as u64 > size as u64 {
            diags.push(
                Diagnostic::error(
                    "plan::canary_too_large",
                    format!(
                        "group `{group}`: canary {} is larger than the group ({size} devices)",
                        c.v
                    ),
                )
                .at(file, c.span.clone())
                .label("larger than the group")
                .help(format!("use a canary of at most {size}")),
            );
        } else {
            policy.canary = c.v as u32;
        }
    }
    if let Some(m) = &p.max_failures {
        match failure_limit(&m.v) {
            Some(x) => policy.max_failures = x,
            None => diags.push(
                Diagnostic::error(
                    "plan::bad_policy",
                    format!("group `{group}`: max_failures must be a count or a percentage"),
                )
                .at(file, m.span.clone())
                .label("expected e.g. 0, 2 or \"10%\"")
                .help("write max_failures = 1 (devices) or max_failures = \"10%\" (of the group)"),
            ),
        }
    }
    if let Some(d) = &p.pause_between {
        if let Some(x) = duration(diags, file, d, "pause_between") {
            policy.pause_between = x;
        }
    }
    if let Some(w) = &p.window {
        match crate::rollout::window::Window::parse(&w.v) {
            Err(e) => diags.push(
                Diagnostic::error(
                    "plan::bad_policy",
                    format!("group `{group}`: window `{}`: {e}", w.v),
                )
                .at(file, w.span.clone())
                .label("expected [DAYS ]HH:MM-HH:MM")
                .help(
                    "write window = \"22:00-04:00\" or \"Sat,Sun 01:00-05:00\" \
                     (local time; may cross midnight)",
                ),
            ),
            Ok(_) => policy.window = Some(w.v.clone()),
        }
    }
    if let Some(d) = &p.device_timeout {
        if let Some(x) = duration(diags, file, d, "device_timeout") {
            policy.device_timeout = x;
        }
    }
    if let Some(o) = &p.order {
        match crate::rollout::policy::parse_order(&o.v) {
            Ok(x) => policy.order = x,
            Err(e) => diags.push(
                Diagnostic::error("plan::bad_policy", format!("group `{group}`: {e}"))
                    .at(file, o.span.clone())
                    .label("unknown order")
                    .help("write order = \"topology\" or order = \"plan\""),
            ),
        }
    }
    policy
}

/// A device count (`2`) or a share of the group (`"10%"`).
fn failure_limit(v: &RawOption) -> Option<FailureLimit> {
    match v {
        RawOption::Int(n) if *n >= 0 => {
            Some(FailureLimit::Count(u32::try_from(*n).unwrap_or(u32::MAX)))
        }
        RawOption::Text(s) => s
            .trim()
            .strip_suffix('%')
            .and_then(|x| x.trim().parse::<f64>().ok())
            .filter(|x| (0.0..=100.0).contains(x))
            .map(FailureLimit::Percent),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("leaf*", "leaf12"));
        assert!(!glob_match("leaf*", "spine1"));
        assert!(glob_match("l?af1", "leaf1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("**", "x"));
        assert!(!glob_match("?", ""));
        assert!(glob_match("*f*1", "leaf1"));
        assert!(!glob_match("*f*2", "leaf1"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("*?", "a"));
        assert!(!glob_match("leaf", "leaf1"));
        // Nothing but `*` and `?` is special.
        assert!(glob_match("le[a]f", "le[a]f"));
        assert!(!glob_match("le[a]f", "leaf"));
        assert!(glob_match("l\\*", "l\\x"));
    }

    /// The reference: today's meaning of `*` and `?`, by recursion.
    fn slow(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => slow(&p[1..], s) || (!s.is_empty() && slow(p, &s[1..])),
            (Some(b'?'), Some(_)) => slow(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => slow(&p[1..], &s[1..]),
            _ => false,
        }
    }

    #[test]
    fn globs_agree_with_the_recursive_meaning() {
        let alphabet = [b'a', b'b', b'*', b'?'];
        let words: Vec<Vec<u8>> = (0..4usize)
            .flat_map(|len| {
                (0..4usize.pow(len as u32)).map(move |mut n| {
                    (0..len)
                        .map(|_| {
                            let c = alphabet[n % 4];
                            n /= 4;
                            c
                        })
                        .collect()
                })
            })
            .collect();
        for p in &words {
            for s in words
                .iter()
                .filter(|w| !w.contains(&b'*') && !w.contains(&b'?'))
            {
                let (ps, ss) = (
                    std::str::from_utf8(p).unwrap(),
                    std::str::from_utf8(s).unwrap(),
                );
                assert_eq!(glob_match(ps, ss), slow(p, s), "{ps:?} on {ss:?}");
            }
        }
    }

    #[test]
    fn hostile_globs_finish() {
        let stars = format!("{}x", "*".repeat(400));
        assert!(!glob_match(&stars, &"a".repeat(255)));
        assert!(glob_match(&stars, "leafx"));
        let huge = "*a".repeat(1 << 19);
        assert!(!glob_match(&huge, &"a".repeat(255)));
        assert!(glob_problem(&stars).is_none());
        assert!(glob_problem(&huge).unwrap().contains("1048576 bytes"));
    }
}
