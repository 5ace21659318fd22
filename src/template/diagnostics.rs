//! Render errors as diagnostics pointing into the template, naming the
//! device, and for an undefined variable also at the device's plan entry.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::Value;

use super::Renderer;
use crate::plan::diagnostic::{Diagnostic, SourceFile};
use crate::plan::model::Device;

pub(super) fn template_diagnostic(
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
        .or_insert_with(|| SourceFile::new(&path, super::read_template(&path).unwrap_or_default()))
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
        ErrorKind::OutOfFuel => Diagnostic::error("template::work_limit", format!("template `{tname}` did more than {} steps of work when rendering device `{device}`", super::TEMPLATE_FUEL))
            .label("still running here")
            .help("a render is capped (a loop that never ends, or nested loops far too large): bound the loops over device data"),
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
