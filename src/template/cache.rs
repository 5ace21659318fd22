//! Incremental rendering: a reload re-renders only the devices whose render
//! inputs changed. A device's config is a pure function of its template
//! (and the templates it includes) and its context, so each rendered config
//! is kept with a digest of exactly those inputs:
//!
//! - its own context: its `device` entry (name, serial, MAC, IP, model,
//!   vendor, vars, role, device function, software, patch) and its `links`;
//! - its site's `site`, `dhcp` and `server` values;
//! - the text of its template and of every template that one names in an
//!   `include`, `extends`, `import` or `from` tag, transitively;
//! - `plan` (every device of the site) only when one of those templates
//!   mentions `plan`.
//!
//! A tag whose template name is not a string literal could load any
//! template: such a template depends on every file under `templates/` and
//! is taken to read `plan`. Mistakes in this scan can only make the digest
//! cover more than it must (a device rendered again for nothing), never less.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

/// Rendered configs of the last load by device name, each with the digest
/// of the inputs that made it.
#[derive(Debug, Default)]
pub struct RenderCache {
    pub(super) by_device: HashMap<String, (u64, String)>,
    /// How many configs the last render took from the cache.
    pub(super) reused: usize,
}

impl RenderCache {
    /// The config rendered from exactly these inputs last time, if any.
    pub(super) fn get(&self, device: &str, digest: u64) -> Option<&str> {
        match self.by_device.get(device) {
            Some((d, text)) if *d == digest => Some(text),
            _ => None,
        }
    }

    /// How many configs the last render took from the cache instead of
    /// rendering them.
    pub fn reused(&self) -> usize {
        self.reused
    }
}

/// What a template's output depends on besides the context.
#[derive(Debug, Clone, Copy)]
pub(super) struct TemplateInputs {
    /// Digest of its text and of every template it loads.
    pub digest: u64,
    /// Whether any of them mentions `plan`.
    pub reads_plan: bool,
}

/// Template inputs by name, worked out once per load.
pub(super) struct TemplateScan<'a> {
    dir: &'a Path,
    memo: HashMap<String, Option<TemplateInputs>>,
    everything: Option<u64>,
}

impl<'a> TemplateScan<'a> {
    pub fn new(dir: &'a Path) -> Self {
        TemplateScan {
            dir,
            memo: HashMap::new(),
            everything: None,
        }
    }

    /// `None` when the template cannot be read: it is rendered (and its
    /// error reported) every time, never cached.
    pub fn inputs(&mut self, name: &str) -> Option<TemplateInputs> {
        if let Some(known) = self.memo.get(name) {
            return *known;
        }
        let found = self.scan(name);
        self.memo.insert(name.to_string(), found);
        found
    }

    fn scan(&mut self, root: &str) -> Option<TemplateInputs> {
        let mut h = DefaultHasher::new();
        let mut reads_plan = false;
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![root.to_string()];
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let text = super::read_template(&self.dir.join(&name)).ok()?;
            name.hash(&mut h);
            text.hash(&mut h);
            reads_plan |= mentions(&text, "plan");
            match loaded_names(&text) {
                Some(names) => todo.extend(names),
                None => {
                    // A computed name: any template may be loaded.
                    self.everything(&mut h);
                    reads_plan = true;
                }
            }
        }
        Some(TemplateInputs {
            digest: h.finish(),
            reads_plan,
        })
    }

    /// Every file under the templates directory, by path and content.
    fn everything(&mut self, h: &mut DefaultHasher) {
        let d = *self.everything.get_or_insert_with(|| {
            let mut files = Vec::new();
            collect_files(self.dir, &mut files);
            files.sort();
            let mut all = DefaultHasher::new();
            for f in files {
                f.hash(&mut all);
                crate::limits::read_capped(&f, crate::limits::TEMPLATE_BYTES, "template")
                    .unwrap_or_default()
                    .hash(&mut all);
            }
            all.finish()
        });
        d.hash(h);
    }
}

/// Every regular file under `dir`, following directory symlinks once each:
/// a directory already visited (by device and inode) is not entered again,
/// so `ln -s . templates/a` cannot make the walk endless. Anything else
/// that is not a regular file (a FIFO, a device) is left out: reading it
/// could block forever.
fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    collect_files_once(dir, out, &mut seen);
}

fn collect_files_once(
    dir: &Path,
    out: &mut Vec<std::path::PathBuf>,
    seen: &mut std::collections::HashSet<(u64, u64)>,
) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    if !seen.insert((meta.dev(), meta.ino())) {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => collect_files_once(&p, out, seen),
            Ok(m) if m.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Whether `word` occurs in `text` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    text.match_indices(word).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + word.len()).copied();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The template names `text` loads through `include`, `extends`, `import`
/// and `from` tags; `None` when one of them is not a string literal.
fn loaded_names(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        let tag = &rest[start + 2..];
        let end = tag.find("%}").unwrap_or(tag.len());
        let body = tag[..end].trim_start_matches(['-', '+']).trim();
        rest = &tag[end..];
        let mut words = body.splitn(2, char::is_whitespace);
        let keyword = words.next().unwrap_or("");
        if !matches!(keyword, "include" | "extends" | "import" | "from") {
            continue;
        }
        let arg = words.next().unwrap_or("").trim_start();
        let quote = arg.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let name = arg[1..].split(quote).next()?;
        let after = arg[1 + name.len()..].strip_prefix(quote)?;
        // `include "a" ~ x` or `include "a" if c else "b"`: not one literal.
        let after = after.trim_start();
        let literal_only = after.is_empty()
            || after.starts_with("import")
            || after.starts_with("as ")
            || after.starts_with("ignore missing")
            || after.starts_with("with")
            || after.starts_with("without")
            || after.starts_with('-');
        if !literal_only {
            return None;
        }
        out.push(name.to_string());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_loads_are_followed_and_computed_ones_are_not() {
        assert_eq!(
            loaded_names("a {% include 'x.j2' %} {%- extends \"base.j2\" -%} {% from 'm.j2' import f %} {% import \"n.j2\" as n %}"),
            Some(vec!["x.j2".into(), "base.j2".into(), "m.j2".into(), "n.j2".into()])
        );
        assert_eq!(
            loaded_names("{% include 'a' ignore missing %}"),
            Some(vec!["a".into()])
        );
        assert_eq!(loaded_names("{% if x %}{% endif %}"), Some(vec![]));
        assert_eq!(loaded_names("{% include device.vars.t %}"), None);
        assert_eq!(loaded_names("{% include 'a' ~ x %}"), None);
        assert_eq!(loaded_names("{% include ['a', 'b'] %}"), None);
    }

    #[test]
    fn plan_is_found_as_a_word_only() {
        assert!(mentions("{% for d in plan.devices %}", "plan"));
        assert!(!mentions(
            "description planned uplink {{ device.name }}",
            "plan"
        ));
        assert!(!mentions("{{ myplan }}", "plan"));
    }

    #[test]
    fn a_template_depends_on_what_it_includes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("t.j2"), "{% include 'inc.j2' %}").unwrap();
        std::fs::write(d.path().join("inc.j2"), "one").unwrap();
        std::fs::write(d.path().join("other.j2"), "x").unwrap();
        let before = TemplateScan::new(d.path()).inputs("t.j2").unwrap();
        assert!(!before.reads_plan);
        std::fs::write(d.path().join("other.j2"), "y").unwrap();
        let unrelated = TemplateScan::new(d.path()).inputs("t.j2").unwrap();
        assert_eq!(
            before.digest, unrelated.digest,
            "an unrelated template changed"
        );
        std::fs::write(d.path().join("inc.j2"), "two {{ plan.site }}").unwrap();
        let after = TemplateScan::new(d.path()).inputs("t.j2").unwrap();
        assert_ne!(before.digest, after.digest, "the included template changed");
        assert!(after.reads_plan, "the include reads plan");
        assert!(TemplateScan::new(d.path()).inputs("missing.j2").is_none());
    }

    #[test]
    fn directory_symlink_loops_are_walked_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("t.j2"), "x").unwrap();
        std::os::unix::fs::symlink(".", d.path().join("a")).unwrap();
        std::os::unix::fs::symlink(".", d.path().join("b")).unwrap();
        let mut files = Vec::new();
        collect_files(d.path(), &mut files);
        assert_eq!(files, vec![d.path().join("t.j2")]);
    }
}
