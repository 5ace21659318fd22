//! A reload through the cache must give exactly what a cold load gives,
//! while rendering only the devices whose inputs changed.

use std::path::Path;

use super::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

struct Lab {
    _dir: tempfile::TempDir,
    root: PathBuf,
    resolved: Resolved,
    cache: LoadCache,
}

impl Lab {
    /// The good fixture, with the spine on its own template that includes
    /// a banner.
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good"),
            &root,
        );
        let plan = root.join("plans/lab.toml");
        let text = std::fs::read_to_string(&plan).unwrap();
        let text = text.replacen("template = \"arista.j2\"", "template = \"spine.j2\"", 1);
        std::fs::write(&plan, text).unwrap();
        std::fs::write(
            root.join("templates/spine.j2"),
            "{% include \"banner.j2\" %}hostname {{ device.name }}\n",
        )
        .unwrap();
        std::fs::write(root.join("templates/banner.j2"), "! banner v1\n").unwrap();
        let resolved = crate::settings::resolve(None, &[plan]).unwrap();
        Lab {
            _dir: dir,
            root,
            resolved,
            cache: LoadCache::default(),
        }
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let p = self.root.join(file);
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.contains(from), "{file} has no `{from}`");
        std::fs::write(&p, t.replacen(from, to, 1)).unwrap();
    }

    /// Reload through the cache and check it against a cold load; the
    /// number of configs taken from the cache.
    fn reload(&mut self) -> usize {
        let warm = load_with(&self.resolved, &[], &mut self.cache);
        let cold = load(&self.resolved, &[]);
        assert!(cold.is_valid(), "{}", cold.diagnostics.render(100, false));
        assert_eq!(
            warm.configs, cold.configs,
            "cached configs differ from a cold load"
        );
        assert_eq!(warm.bootstrap, cold.bootstrap);
        assert_eq!(
            warm.diagnostics.render(100, false),
            cold.diagnostics.render(100, false)
        );
        assert_eq!(
            format!("{:?}", warm.model.sites),
            format!("{:?}", cold.model.sites)
        );
        self.cache.reused_configs()
    }
}

#[test]
fn a_reload_renders_only_what_changed_and_equals_a_cold_load() {
    let mut lab = Lab::new();
    assert_eq!(lab.reload(), 0, "the first load has nothing to reuse");
    assert_eq!(lab.reload(), 3, "nothing changed: every config is reused");

    // An included template: only the spine uses it.
    lab.edit("templates/banner.j2", "v1", "v2");
    assert_eq!(lab.reload(), 2);

    // One device's vars: only that device (arista.j2 does not read `plan`).
    lab.edit("plans/lab.toml", "asn = 65011", "asn = 65111");
    assert_eq!(lab.reload(), 2);

    // The leaves' template now reads every device of the site: a change to
    // the spine's entry re-renders the leaves too.
    lab.edit(
        "templates/arista.j2",
        "hostname {{ device.name }}",
        "hostname {{ device.name }}\n! peers {% for d in plan.devices %}{{ d.name }}={{ d.ip }} {% endfor %}",
    );
    assert_eq!(
        lab.reload(),
        1,
        "the spine is reused; the leaves' template changed"
    );
    lab.edit("plans/lab.toml", "ip = \"10.10.0.2\"", "ip = \"10.10.0.3\"");
    assert_eq!(
        lab.reload(),
        0,
        "the spine changed and the leaves read `plan`"
    );

    // A user bootstrap template: the scripts follow it.
    let before = load(&lab.resolved, &[]).bootstrap;
    std::fs::create_dir_all(lab.root.join("templates/bootstrap")).unwrap();
    std::fs::write(
        lab.root.join("templates/bootstrap/generic"),
        "#!/bin/sh\necho {{ site.name }}\n",
    )
    .unwrap();
    assert_eq!(
        lab.reload(),
        3,
        "configs do not depend on bootstrap templates"
    );
    let after = load(&lab.resolved, &[]).bootstrap;
    assert_ne!(before["generic"], after["generic"]);
    assert_eq!(after["generic"], "#!/bin/sh\necho lab\n");

    // A settings value in every context: the HTTP port (server URLs).
    let before = lab.reload();
    assert_eq!(before, 3);
    lab.resolved.settings.listen.http.set_port(8181);
    assert_eq!(lab.reload(), 0, "server URLs are in every device's context");
}

#[test]
fn a_broken_edit_then_its_fix_still_equals_a_cold_load() {
    let mut lab = Lab::new();
    lab.reload();
    lab.edit("templates/banner.j2", "v1", "{{ device.vars.nope }}");
    let warm = load_with(&lab.resolved, &[], &mut lab.cache);
    let cold = load(&lab.resolved, &[]);
    assert!(!warm.is_valid());
    assert_eq!(
        warm.diagnostics.render(100, false),
        cold.diagnostics.render(100, false)
    );
    lab.edit("templates/banner.j2", "{{ device.vars.nope }}", "v3");
    assert_eq!(lab.reload(), 2);
}
