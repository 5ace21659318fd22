//! Typed reading of a parsed TOML document that keeps every span and reports
//! every problem.
//!
//! Why not serde with `deny_unknown_fields`: serde stops at the first error in
//! a file, and users asked for all problems at once. This reader walks the
//! span-carrying `toml::de::DeTable` and pushes a diagnostic for each unknown
//! key, wrong type or missing key, then carries on.

use std::ops::Range;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics, SourceFile};

/// A value with the byte range it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub v: T,
    pub span: Range<usize>,
}

impl<T> Sp<T> {
    pub fn new(v: T, span: Range<usize>) -> Self {
        Sp { v, span }
    }
}

pub type Val<'i> = Spanned<DeValue<'i>>;

/// Where diagnostics go while reading one file.
pub struct Ctx<'a> {
    pub file: &'a Arc<SourceFile>,
    pub diags: &'a mut Diagnostics,
}

impl Ctx<'_> {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
    pub fn error(
        &mut self,
        code: &str,
        span: Range<usize>,
        msg: impl Into<String>,
    ) -> DiagBuilder<'_> {
        DiagBuilder {
            diags: self.diags,
            d: Some(Diagnostic::error(code, msg).at(self.file, span)),
        }
    }
    pub fn warning(
        &mut self,
        code: &str,
        span: Range<usize>,
        msg: impl Into<String>,
    ) -> DiagBuilder<'_> {
        DiagBuilder {
            diags: self.diags,
            d: Some(Diagnostic::warning(code, msg).at(self.file, span)),
        }
    }
}

/// Pushes its diagnostic when dropped, so `ctx.error(..).help(..);` reads well.
pub struct DiagBuilder<'a> {
    diags: &'a mut Diagnostics,
    d: Option<Diagnostic>,
}

impl DiagBuilder<'_> {
    pub fn help(mut self, h: impl Into<String>) -> Self {
        self.d = self.d.take().map(|d| d.help(h));
        self
    }
    pub fn label(mut self, l: impl Into<String>) -> Self {
        self.d = self.d.take().map(|d| d.label(l));
        self
    }
    pub fn related(mut self, span: Range<usize>, l: impl Into<String>) -> Self {
        self.d = self.d.take().map(|d| d.related(span, l));
        self
    }
}

impl Drop for DiagBuilder<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.d.take() {
            self.diags.push(d);
        }
    }
}

pub fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The keys of one TOML table, consumed as they are read; what is left at
/// [`Table::finish`] is unknown.
pub struct Table<'t, 'i> {
    /// Dotted path for messages, e.g. `devices[2]` or `models.spine`.
    pub path: String,
    pub span: Range<usize>,
    entries: Vec<(&'t str, Range<usize>, &'t Val<'i>, bool)>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn from_detable(t: &'t DeTable<'i>, span: Range<usize>, path: impl Into<String>) -> Self {
        Table {
            path: path.into(),
            span,
            entries: t
                .iter()
                .map(|(k, v)| (&**k.get_ref(), k.span(), v, false))
                .collect(),
        }
    }

    /// Read `v` as a table, or report that a table was expected.
    pub fn from_value(ctx: &mut Ctx, v: &'t Val<'i>, path: impl Into<String>) -> Option<Self> {
        let path = path.into();
        match v.get_ref() {
            DeValue::Table(t) => Some(Table::from_detable(t, v.span(), path)),
            other => {
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!("`{path}` must be a table, found {}", type_name(other)),
                )
                .label("expected a table");
                None
            }
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Take a key's value (marking it known).
    pub fn take(&mut self, key: &str) -> Option<&'t Val<'i>> {
        self.entries.iter_mut().find(|e| e.0 == key).map(|e| {
            e.3 = true;
            e.2
        })
    }

    /// Span of a key (for "defined here" labels).
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.0 == key)
            .map(|e| e.1.clone())
    }

    fn missing(&self, ctx: &mut Ctx, key: &str, what: &str) {
        ctx.error(
            "plan::missing_key",
            self.span.start..self.span.start.saturating_add(1).min(self.span.end),
            format!(
                "`{}` is missing required key `{key}`",
                if self.path.is_empty() {
                    "plan"
                } else {
                    &self.path
                }
            ),
        )
        .label(format!("this table needs `{key}`"))
        .help(format!("add `{key} = {what}`"));
    }

    pub fn str(&mut self, ctx: &mut Ctx, key: &str) -> Option<Sp<String>> {
        let v = self.take(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), v.span())),
            other => {
                let p = self.key_path(key);
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!("`{p}` must be a string, found {}", type_name(other)),
                )
                .label("expected a string")
                .help(format!("quote it: {key} = \"...\""));
                None
            }
        }
    }

    pub fn req_str(&mut self, ctx: &mut Ctx, key: &str, example: &str) -> Option<Sp<String>> {
        if self.key_span(key).is_none() {
            self.missing(ctx, key, example);
            return None;
        }
        self.str(ctx, key)
    }

    pub fn int(&mut self, ctx: &mut Ctx, key: &str) -> Option<Sp<i64>> {
        let v = self.take(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(Sp::new(n, v.span())),
                    Err(_) => {
                        ctx.error(
                            "plan::wrong_type",
                            v.span(),
                            format!("`{}` is out of range", self.key_path(key)),
                        )
                        .label("too large");
                        None
                    }
                }
            }
            other => {
                let p = self.key_path(key);
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!("`{p}` must be an integer, found {}", type_name(other)),
                )
                .label("expected an integer");
                None
            }
        }
    }

    pub fn bool(&mut self, ctx: &mut Ctx, key: &str) -> Option<Sp<bool>> {
        let v = self.take(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, v.span())),
            other => {
                let p = self.key_path(key);
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!("`{p}` must be true or false, found {}", type_name(other)),
                )
                .label("expected a boolean");
                None
            }
        }
    }

    /// An array of strings (a single string is accepted as a one-element list
    /// only when `allow_single`).
    pub fn str_list(&mut self, ctx: &mut Ctx, key: &str) -> Option<Vec<Sp<String>>> {
        let v = self.take(key)?;
        let p = self.key_path(key);
        match v.get_ref() {
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(Sp::new(s.to_string(), item.span())),
                        other => {
                            ctx.error(
                                "plan::wrong_type",
                                item.span(),
                                format!(
                                    "items of `{p}` must be strings, found {}",
                                    type_name(other)
                                ),
                            )
                            .label("expected a string");
                        }
                    }
                }
                Some(out)
            }
            other => {
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!(
                        "`{p}` must be an array of strings, found {}",
                        type_name(other)
                    ),
                )
                .label("expected an array")
                .help(format!("write {key} = [\"...\", \"...\"]"));
                None
            }
        }
    }

    pub fn table(&mut self, ctx: &mut Ctx, key: &str) -> Option<Table<'t, 'i>> {
        let v = self.take(key)?;
        let p = self.key_path(key);
        Table::from_value(ctx, v, p)
    }

    /// Every entry of a sub-table `[key.<name>]` as (name, name span, value).
    pub fn named_tables(&mut self, ctx: &mut Ctx, key: &str) -> Vec<(Sp<String>, Table<'t, 'i>)> {
        let Some(t) = self.table(ctx, key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, span, v, _) in t.entries {
            let path = format!("{key}.{name}");
            if let Some(sub) = Table::from_value(ctx, v, path) {
                out.push((Sp::new(name.to_string(), span), sub));
            }
        }
        out
    }

    /// An array of tables `[[key]]`.
    pub fn table_array(&mut self, ctx: &mut Ctx, key: &str) -> Vec<Table<'t, 'i>> {
        let Some(v) = self.take(key) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(a) => a
                .iter()
                .enumerate()
                .filter_map(|(i, item)| Table::from_value(ctx, item, format!("{key}[{i}]")))
                .collect(),
            other => {
                ctx.error(
                    "plan::wrong_type",
                    v.span(),
                    format!(
                        "`{key}` must be an array of tables, found {}",
                        type_name(other)
                    ),
                )
                .label("expected [[...]] entries")
                .help(format!("write each entry as a [[{key}]] section"));
                Vec::new()
            }
        }
    }

    /// Report every key not taken; `known` feeds the help line.
    pub fn finish(self, ctx: &mut Ctx, known: &[&str]) {
        let where_ = if self.path.is_empty() {
            "the plan".to_string()
        } else {
            format!("`{}`", self.path)
        };
        for (key, span, _, used) in &self.entries {
            if *used {
                continue;
            }
            let mut help = format!("valid keys here: {}", known.join(", "));
            if let Some(s) = closest(key, known) {
                help = format!("did you mean `{s}`? {help}");
            }
            ctx.error(
                "plan::unknown_key",
                span.clone(),
                format!("unknown key `{key}` in {where_}"),
            )
            .label("not a known key")
            .help(help);
        }
    }
}

/// `help`, led by "did you mean `x`?" when `word` is a plausible typo of a
/// known name.
pub fn suggest(word: &str, known: &[&str], help: String) -> String {
    match closest(word, known) {
        Some(c) => format!("did you mean `{c}`? {help}"),
        None => help,
    }
}

/// Parse one TOML file, recovering after errors: each syntax error becomes a
/// `code` diagnostic at its span with `help`, and what could be read is
/// returned for the checks that follow.
pub fn parse_toml<'i>(
    file: &'i Arc<SourceFile>,
    code: &str,
    help: &str,
    diags: &mut Diagnostics,
) -> Spanned<DeTable<'i>> {
    let (doc, errors) = DeTable::parse_recoverable(&file.text);
    for e in &errors {
        diags.push(
            Diagnostic::error(code, format!("TOML syntax error: {}", e.message().trim()))
                .at(file, e.span().unwrap_or(0..0))
                .help(help),
        );
    }
    doc
}

/// The known name closest to `word`, if it is a plausible typo.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let len = word.chars().count();
    known
        .iter()
        .filter_map(|k| {
            let limit = 2.max(k.len() / 4);
            // The distance is at least the difference in length: a long
            // unknown key is not compared character by character with
            // every known one.
            if len.abs_diff(k.chars().count()) > limit {
                return None;
            }
            let d = edit_distance(word, k);
            (d <= limit && d > 0).then_some((d, *k))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = Vec::with_capacity(b.len() + 1);
    for (i, ca) in a.chars().enumerate() {
        cur.clear();
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_typo_is_matched_and_a_stranger_is_not() {
        let known = ["interval", "fields", "signal_date"];
        assert_eq!(closest("intervl", &known), Some("interval"));
        assert_eq!(closest("feilds", &known), Some("fields"));
        assert_eq!(
            closest("interval", &known),
            None,
            "an exact name is no typo"
        );
        assert_eq!(closest("colour", &known), None);
        assert_eq!(closest(&"x".repeat(10_000), &known), None);
        // Characters, not bytes, count: one accented letter is one edit.
        assert_eq!(closest("fiélds", &known), Some("fields"));
    }
}
