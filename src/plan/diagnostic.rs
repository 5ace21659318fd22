//! One diagnostic type for every problem a user can make in a plan, a
//! template or a device function: a stable code, the file and the exact span,
//! what was expected, and a help line. Checks push into [`Diagnostics`];
//! nothing stops at the first problem.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

mod render;

/// A file a diagnostic can point into. Shared (`Arc`) by every diagnostic
/// about it.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Path as shown to the user (relative to where the command ran when possible).
    pub display: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: path.to_path_buf(),
            display: display_path(path),
            text,
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn display_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    path.display().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable code, e.g. `ztpd::plan::duplicate_mac`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    pub file: Option<Arc<SourceFile>>,
    pub span: Range<usize>,
    /// Text of the underline label.
    pub label: String,
    /// Further spans in the same file (e.g. "first defined here").
    pub related: Vec<(Range<usize>, String)>,
    /// Spans in other files that belong to the same problem.
    pub elsewhere: Vec<Elsewhere>,
}

/// Where something was written: a span of a source file. Later stages keep
/// it to point back at the plan (e.g. a template error at the device).
#[derive(Debug, Clone)]
pub struct Located {
    pub file: Arc<SourceFile>,
    pub span: Range<usize>,
}

/// A place in another file than the diagnostic's own that belongs to the
/// same problem, e.g. the plan entry of the device whose template failed:
/// the fix is often there. Rendered after the main snippet, with its own
/// file:line:col.
#[derive(Debug, Clone)]
pub struct Elsewhere {
    pub file: Arc<SourceFile>,
    pub span: Range<usize>,
    pub label: String,
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code: format!("ztpd::{code}"),
            severity: Severity::Error,
            message: message.into(),
            help: None,
            file: None,
            span: 0..0,
            label: "here".into(),
            related: Vec::new(),
            elsewhere: Vec::new(),
        }
    }
    pub fn warning(code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }
    pub fn at(mut self, file: &Arc<SourceFile>, span: Range<usize>) -> Self {
        self.file = Some(file.clone());
        self.span = span;
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn related(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }
    /// A related span in another file (see [`Elsewhere`]).
    pub fn related_in(
        mut self,
        file: &Arc<SourceFile>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> Self {
        self.elsewhere.push(Elsewhere {
            file: file.clone(),
            span,
            label: label.into(),
        });
        self
    }

    /// `file:line:col` of the primary span.
    pub fn location(&self) -> Option<(String, usize, usize)> {
        let f = self.file.as_ref()?;
        let (l, c) = f.line_col(self.span.start);
        Some((f.display.clone(), l, c))
    }

    /// Every span besides the primary one, with its file and label: the
    /// related spans in this diagnostic's file, then those in other files.
    fn related_spans(&self) -> impl Iterator<Item = (&Arc<SourceFile>, &Range<usize>, &String)> {
        let same_file = self
            .file
            .iter()
            .flat_map(|f| self.related.iter().map(move |(s, l)| (f, s, l)));
        let other_files = self.elsewhere.iter().map(|e| (&e.file, &e.span, &e.label));
        same_file.chain(other_files)
    }

    pub fn to_json(&self) -> JsonDiagnostic {
        let (file, line, column) = self
            .location()
            .map(|(f, l, c)| (Some(f), Some(l), Some(c)))
            .unwrap_or((None, None, None));
        let related = self
            .related_spans()
            .map(|(f, s, l)| {
                let (line, column) = f.line_col(s.start);
                JsonRelated {
                    file: f.display.clone(),
                    line,
                    column,
                    span: [s.start, s.end],
                    label: l.clone(),
                }
            })
            .collect();
        JsonDiagnostic {
            code: self.code.clone(),
            message: self.message.clone(),
            help: self.help.clone(),
            file,
            line,
            column,
            span: [self.span.start, self.span.end],
            related,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

#[derive(Debug, Clone, Serialize)]
pub struct JsonDiagnostic {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub span: [usize; 2],
    /// Further places that belong to the problem, in this file or others.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<JsonRelated>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonRelated {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub span: [usize; 2],
    pub label: String,
}

/// Every problem found, errors and warnings kept apart.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        match d.severity {
            Severity::Error => self.errors.push(d),
            Severity::Warning => self.warnings.push(d),
        }
    }
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }
    /// Errors then warnings, each in file/position order.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let key = |d: &&Diagnostic| {
            (
                d.severity == Severity::Warning,
                d.file.as_ref().map(|f| f.display.clone()),
                d.span.start,
            )
        };
        let mut all: Vec<&Diagnostic> = self.errors.iter().chain(&self.warnings).collect();
        all.sort_by_key(key);
        all
    }

    /// The first span that does not lie inside its file's text on
    /// character boundaries, described; `None` when every span can be
    /// shown. [`Diagnostics::render`] falls back to the bare message for
    /// such a span, so the user would lose the snippet without any panic:
    /// the fuzz targets assert this instead of relying on the renderer.
    pub fn misplaced_span(&self) -> Option<String> {
        let inside = |file: &SourceFile, span: &Range<usize>| {
            let t = &file.text;
            span.start <= span.end
                && span.end <= t.len()
                && t.is_char_boundary(span.start)
                && t.is_char_boundary(span.end)
        };
        for d in self.errors.iter().chain(&self.warnings) {
            let primary = d.file.iter().map(|f| (f, &d.span));
            let related = d.related_spans().map(|(f, s, _)| (f, s));
            if let Some((file, span)) = primary.chain(related).find(|(f, s)| !inside(f, s)) {
                return Some(format!(
                    "{}: span {span:?} outside {} ({} bytes)",
                    d.code,
                    file.display,
                    file.text.len()
                ));
            }
        }
        None
    }

    pub fn summary(&self) -> String {
        format!(
            "{} error{}, {} warning{}",
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" },
            self.warnings.len(),
            if self.warnings.len() == 1 { "" } else { "s" },
        )
    }

    pub fn to_json(&self, valid: bool) -> serde_json::Value {
        let conv = |v: &Vec<Diagnostic>| -> Vec<JsonDiagnostic> {
            let mut v: Vec<&Diagnostic> = v.iter().collect();
            v.sort_by_key(|d| (d.file.as_ref().map(|f| f.display.clone()), d.span.start));
            v.into_iter().map(Diagnostic::to_json).collect()
        };
        serde_json::json!({
            "valid": valid,
            "errors": conv(&self.errors),
            "warnings": conv(&self.warnings),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_past_the_text_or_inside_a_character_is_reported() {
        let f = SourceFile::new(Path::new("x.toml"), "é = 1\n".into());
        let mut ok = Diagnostics::default();
        ok.push(Diagnostic::error("plan::x", "fine").at(&f, 0..2));
        assert_eq!(ok.misplaced_span(), None);
        // Inside `é`, past the end, and backwards.
        #[allow(clippy::reversed_empty_ranges)]
        let spans = [0..1, 3..99, 4..2];
        for span in spans {
            let mut ds = Diagnostics::default();
            ds.push(Diagnostic::error("plan::x", "bad").at(&f, span));
            let m = ds.misplaced_span().expect("misplaced");
            assert!(m.contains("ztpd::plan::x") && m.contains("x.toml"), "{m}");
        }
        let mut rel = Diagnostics::default();
        rel.push(
            Diagnostic::error("plan::x", "bad")
                .at(&f, 0..2)
                .related(1..2, "in é"),
        );
        assert!(rel.misplaced_span().is_some());
        let other = SourceFile::new(Path::new("t.j2"), "ab".into());
        let mut elsewhere = Diagnostics::default();
        elsewhere.push(Diagnostic::error("plan::x", "bad").related_in(
            &other,
            1..3,
            "past the end",
        ));
        let m = elsewhere.misplaced_span().expect("misplaced");
        assert!(m.contains("t.j2"), "{m}");
    }

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new(Path::new("x.toml"), "a = 1\nbé = 2\n".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        // "bé = " : é is two bytes, one column
        assert_eq!(f.line_col(10), (2, 4));
    }

    #[test]
    fn render_shows_code_location_and_help() {
        let f = SourceFile::new(Path::new("p.toml"), "mac = \"zz\"\n".into());
        let mut ds = Diagnostics::default();
        ds.push(
            Diagnostic::error("plan::bad_mac", "`zz` is not a MAC address")
                .at(&f, 6..10)
                .label("expected six hex octets")
                .help("write it as 00:1c:73:aa:bb:01"),
        );
        let out = ds.render(80, false);
        assert!(out.contains("ztpd::plan::bad_mac"), "{out}");
        assert!(out.contains("p.toml:1:7"), "{out}");
        assert!(out.contains("help: write it as"), "{out}");
    }

    #[test]
    fn a_span_in_another_file_is_rendered_and_serialised_with_its_location() {
        let t = SourceFile::new(Path::new("t.j2"), "a\n{{ x }}\n".into());
        let p = SourceFile::new(Path::new("p.toml"), "[[d]]\nname = \"d1\"\n".into());
        let mut ds = Diagnostics::default();
        ds.push(
            Diagnostic::error("template::undefined_variable", "undefined `x`")
                .at(&t, 5..6)
                .related_in(&p, 13..17, "device `d1` is defined here"),
        );
        let out = ds.render(80, false);
        assert!(out.contains("t.j2:2:4"), "{out}");
        assert!(out.contains("p.toml:2:8"), "{out}");
        assert!(out.contains("device `d1` is defined here"), "{out}");
        let j = ds.to_json(false);
        let r = &j["errors"][0]["related"];
        assert_eq!(r.as_array().map(Vec::len), Some(1), "{j}");
        assert_eq!(r[0]["file"], "p.toml");
        assert_eq!(
            (r[0]["line"].clone(), r[0]["column"].clone()),
            (2.into(), 8.into())
        );
        assert_eq!(r[0]["span"], serde_json::json!([13, 17]));
    }

    #[test]
    fn json_carries_same_file_related_spans_and_omits_an_empty_list() {
        let f = SourceFile::new(Path::new("p.toml"), "a = 1\nb = 1\n".into());
        let mut ds = Diagnostics::default();
        ds.push(
            Diagnostic::error("plan::duplicate_ip", "dup")
                .at(&f, 10..11)
                .related(4..5, "first used here"),
        );
        ds.push(Diagnostic::warning("plan::unused_model", "unused").at(&f, 0..1));
        let j = ds.to_json(false);
        assert_eq!(j["errors"][0]["related"][0]["line"], 1, "{j}");
        assert_eq!(j["errors"][0]["related"][0]["label"], "first used here");
        assert!(j["warnings"][0].get("related").is_none(), "{j}");
    }
}
