//! Test roots from `tests/fixtures/`: whole plans live there as files, and a
//! test copies one into a temp dir before it edits or serves it.

use std::path::{Path, PathBuf};

/// `tests/fixtures/<name>` (a directory or a file), from the crate root.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The text of `tests/fixtures/<name>`.
pub fn read(name: &str) -> String {
    let p = fixture(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Copy a directory tree (files and directories; `.keep` markers included).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for e in entries {
        let e = e.expect("directory entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst)
                .unwrap_or_else(|err| panic!("copy {}: {err}", e.path().display()));
        }
    }
}

/// A fresh temp dir holding a copy of fixture `name` (e.g. "good").
pub fn temp_root(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(name), dir.path());
    dir
}

/// A temp copy of fixture `name` with `edit` applied to `plans/lab.toml`:
/// the small per-test variations of a whole fixture plan.
pub fn temp_root_with_plan(name: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = temp_root(name);
    let p = dir.path().join("plans/lab.toml");
    let text = std::fs::read_to_string(&p).expect("fixture plan");
    std::fs::write(&p, edit(text)).expect("write plan");
    dir
}
