//! `packaging/ztpd.service`: systemd accepts it (`systemd-analyze verify`),
//! it grants only the capabilities ztpd needs, its `ExecStart` is a command
//! line the real binary accepts, and its `ExecReload` really reloads a
//! running daemon. The Debian package (`cargo deb`): its man page and
//! completions match the CLI, and it installs, runs, removes and purges.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::tools::which;
use support::Daemon;

const UNIT: &str = "packaging/ztpd.service";

fn unit_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(UNIT))
        .unwrap_or_else(|e| panic!("read {UNIT}: {e}"))
}

/// Every `Key=value` of the unit's `[Service]` section, in order (a key may
/// repeat).
fn service_entries(text: &str) -> Vec<(String, String)> {
    let mut in_service = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{UNIT}: not a Key=value line: {line}"));
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

fn service(text: &str, key: &str) -> String {
    let values: Vec<String> = service_entries(text)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values.len(),
        1,
        "{UNIT}: expected one {key}=, found {values:?}"
    );
    values.into_iter().next().unwrap()
}

fn words(v: &str) -> Vec<&str> {
    v.split_whitespace().collect()
}

#[test]
fn the_unit_keeps_ztpd_to_the_capabilities_and_paths_it_needs() {
    let t = unit_text();
    // 67/69 need CAP_NET_BIND_SERVICE; unicast DHCP replies to clients without
    // an address need CAP_NET_ADMIN (SIOCSARP, src/dhcp/sock.rs). Nothing
    // opens a raw socket, so CAP_NET_RAW stays out.
    let caps = ["CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"];
    assert_eq!(words(&service(&t, "AmbientCapabilities")), caps);
    assert_eq!(words(&service(&t, "CapabilityBoundingSet")), caps);
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "ztpd"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),
    ] {
        assert_eq!(service(&t, key), want, "{UNIT}: {key}");
    }
    assert!(
        service_entries(&t)
            .iter()
            .all(|(k, _)| k != "ReadWritePaths"),
        "{UNIT}: ztpd writes only under its StateDirectory"
    );
}

#[test]
fn the_units_exec_start_is_a_command_line_ztpd_accepts() {
    let t = unit_text();
    let exec = service(&t, "ExecStart");
    let argv = words(&exec);
    assert_eq!(argv[0], "/usr/bin/ztpd", "{exec}");
    // The same arguments to the real binary, asking clap for the help of the
    // command they select: exit 0 only when every flag and the command exist.
    let o = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .args(&argv[1..])
        .arg("--help")
        .output()
        .expect("run ztpd");
    assert!(
        o.status.success(),
        "{exec}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: ztpd run"));
}

/// `systemctl reload` runs ExecReload with `$MAINPID` set: run it the same
/// way against a real `ztpd run` and see the reload happen.
#[test]
fn the_units_exec_reload_reloads_a_running_daemon() {
    let t = unit_text();
    let reload = service(&t, "ExecReload");
    let d = Daemon::start("good", "", &["--watch", "off"]);
    let version = |d: &Daemon| {
        let (code, v) = d.api("/api/v1/status");
        assert_eq!(code, 200, "{v}");
        v["snapshot_version"].as_u64().expect("snapshot_version")
    };
    assert_eq!(version(&d), 1);
    let pid = d.pid().to_string();
    let argv: Vec<String> = words(&reload)
        .iter()
        .map(|w| w.replace("$MAINPID", &pid))
        .collect();
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .unwrap_or_else(|e| panic!("{reload}: {e}"));
    assert!(status.success(), "{reload}: {status}");
    d.wait_for(
        "the reload ExecReload asked for",
        Duration::from_secs(15),
        || (version(&d) == 2).then_some(()),
    );
    assert!(d.log().contains("SIGHUP: reloading"), "{}", d.log());
}

/// `systemd-analyze verify` checks the unit the way systemd loads it,
/// including that its programs exist. It runs on a scratch root holding the
/// unit, the distribution's own units (for the dependencies) and the
/// programs the unit names (the built ztpd as /usr/bin/ztpd), so the check
/// does not depend on what is installed here. Warnings (unknown keys, bad
/// values) leave the exit code 0, so any line about the unit fails too.
#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!("SKIP systemd_analyze_verify_accepts_the_unit: systemd-analyze is not installed");
        return;
    };
    let system_units = Path::new("/usr/lib/systemd/system");
    if !system_units.join("sysinit.target").is_file() {
        eprintln!(
            "SKIP systemd_analyze_verify_accepts_the_unit: no systemd units in {}",
            system_units.display()
        );
        return;
    }
    let t = unit_text();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_dir(system_units, &root.join("usr/lib/systemd/system"));
    let unit_dir = root.join("etc/systemd/system");
    std::fs::create_dir_all(&unit_dir).unwrap();
    std::fs::write(unit_dir.join("ztpd.service"), &t).unwrap();
    for key in ["ExecStart", "ExecReload"] {
        let program = PathBuf::from(words(&service(&t, key))[0]);
        let source = if program.ends_with("ztpd") {
            PathBuf::from(env!("CARGO_BIN_EXE_ztpd"))
        } else {
            program.clone()
        };
        let target = root.join(program.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target)
            .unwrap_or_else(|e| panic!("copy {} for {key}: {e}", source.display()));
    }
    let o = Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("/etc/systemd/system/ztpd.service")
        .output()
        .expect("run systemd-analyze");
    let out = support::tools::text(&o);
    assert!(o.status.success(), "systemd-analyze verify failed:\n{out}");
    let about_unit: Vec<&str> = out.lines().filter(|l| l.contains("ztpd.service")).collect();
    assert!(
        about_unit.is_empty(),
        "systemd-analyze verify warns about the unit:\n{}",
        about_unit.join("\n")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = std::fs::symlink_metadata(&src).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if meta.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The generated files the package ships, with what each must hold for the
/// CLI of this build: a man page per command (clap_mangen: `ztpd.1`,
/// `ztpd-run.1`, ...) and the shell completions.
fn generated() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let pages = tempfile::tempdir().unwrap();
    clap_mangen::generate_to(ztpd::cli::Cli::command(), pages.path()).expect("man pages");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(pages.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (
                format!("{MAN_DIR}/{name}"),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    let completion = |shell: Shell| {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut ztpd::cli::Cli::command(), "ztpd", &mut text);
        text
    };
    for (file, shell) in [
        ("ztpd.bash", Shell::Bash),
        ("_ztpd", Shell::Zsh),
        ("ztpd.fish", Shell::Fish),
    ] {
        out.push((format!("packaging/completions/{file}"), completion(shell)));
    }
    out
}

/// The man pages `cargo deb` packages (`packaging/man/*.1`).
const MAN_DIR: &str = "packaging/man";

/// `UPDATE_PACKAGING=1 cargo test --test packaging man_page` rewrites them.
#[test]
fn the_packaged_man_pages_and_completions_match_the_cli() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = generated();
    let pages = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| format!("{MAN_DIR}/{}", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let redo =
        "run `UPDATE_PACKAGING=1 cargo test --test packaging man_page` and commit the result";
    if std::env::var_os("UPDATE_PACKAGING").is_some() {
        let _ = std::fs::remove_dir_all(repo.join(MAN_DIR));
        std::fs::create_dir_all(repo.join(MAN_DIR)).unwrap();
        for (rel, text) in &want {
            std::fs::write(repo.join(rel), text).unwrap();
        }
        return;
    }
    let wanted_pages: Vec<String> = want
        .iter()
        .map(|(rel, _)| rel.clone())
        .filter(|rel| rel.starts_with(MAN_DIR))
        .collect();
    assert_eq!(pages(&repo.join(MAN_DIR)), wanted_pages, "{redo}");
    for (rel, text) in want {
        let have = std::fs::read(repo.join(&rel)).unwrap_or_default();
        assert!(have == text, "{rel} is not what this CLI generates: {redo}");
    }
}

/// What the package touches outside /usr, which a purge deletes.
const PACKAGE_DIRS: [&str; 2] = ["/etc/ztpd", "/var/lib/ztpd"];

/// Purges the package when the test ends, passing or not.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "ztpd"]).output();
    }
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        support::tools::text(&o)
    );
    o
}

/// `cargo deb` on the binary this test run built (`--no-build`: no second
/// build; cargo-deb warns that the dev profile is meant for releases), then
/// dpkg: install, run from /usr/bin, remove (settings and state stay), purge
/// (both go).
#[test]
fn the_deb_installs_runs_removes_and_purges() {
    if !support::tools::is_root() {
        eprintln!("SKIP the_deb_installs_runs_removes_and_purges: dpkg -i needs root");
        return;
    }
    let cargo_deb = Command::new("cargo").args(["deb", "--version"]).output();
    if !cargo_deb.is_ok_and(|o| o.status.success()) || which("dpkg").is_none() {
        eprintln!(
            "SKIP the_deb_installs_runs_removes_and_purges: cargo-deb or dpkg is missing \
             (scripts/install-test-deps.sh installs cargo-deb)"
        );
        return;
    }
    let installed = Command::new("dpkg").args(["-s", "ztpd"]).output();
    if installed.is_ok_and(|o| o.status.success())
        || PACKAGE_DIRS.iter().any(|d| Path::new(d).exists())
    {
        eprintln!(
            "SKIP the_deb_installs_runs_removes_and_purges: ztpd is installed here already \
             (or {PACKAGE_DIRS:?} exist); the test would purge it"
        );
        return;
    }
    // The binary cargo-deb packages is target/debug/ztpd: the one this run built.
    let bin = Path::new(support::daemon::BIN);
    assert!(bin.ends_with("debug/ztpd"), "{}", bin.display());
    let out = tempfile::tempdir().unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    let o = Command::new("cargo")
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
        ])
        .arg(out.path())
        .current_dir(repo)
        .output()
        .expect("cargo deb");
    assert!(
        o.status.success(),
        "cargo deb: {}",
        support::tools::text(&o)
    );
    let deb = out
        .path()
        .join(format!("ztpd_{}-1_amd64.deb", env!("CARGO_PKG_VERSION")));
    assert!(
        deb.is_file(),
        "no {}: {}",
        deb.display(),
        support::tools::text(&o)
    );

    let _purge = Purge;
    run("dpkg", &["-i", deb.to_str().unwrap()]);
    let o = run("/usr/bin/ztpd", &["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("ztpd {}", env!("CARGO_PKG_VERSION"))
    );
    let o = run(
        "/usr/bin/ztpd",
        &["--config", "/etc/ztpd/ztpd.toml", "validate"],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 site"),
        "{}",
        support::tools::text(&o)
    );
    run("getent", &["passwd", "ztpd"]);
    let state = std::fs::metadata("/var/lib/ztpd").expect("/var/lib/ztpd");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(state.permissions().mode() & 0o777, 0o700);
    let uid = String::from_utf8(run("id", &["-u", "ztpd"]).stdout).unwrap();
    assert_eq!(state.uid().to_string(), uid.trim());
    // enabled, not started
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/ztpd.service").exists(),
        "the service is not enabled"
    );
    let conffiles = String::from_utf8(
        run(
            "dpkg-query",
            &["--showformat=${Conffiles}", "--show", "ztpd"],
        )
        .stdout,
    )
    .unwrap();
    assert!(conffiles.contains("/etc/ztpd/ztpd.toml"), "{conffiles}");
    let files = String::from_utf8(run("dpkg", &["-L", "ztpd"]).stdout).unwrap();
    for f in [
        "/usr/bin/ztpd",
        "/usr/share/man/man1/ztpd.1.gz",
        "/usr/share/man/man1/ztpd-run.1.gz",
        "/usr/share/bash-completion/completions/ztpd",
        "/usr/share/zsh/vendor-completions/_ztpd",
        "/usr/share/fish/vendor_completions.d/ztpd.fish",
    ] {
        assert!(
            files.lines().any(|l| l == f),
            "{f} is not in the package:\n{files}"
        );
    }
    assert!(files.contains("systemd/system/ztpd.service"), "{files}");

    run("dpkg", &["--remove", "ztpd"]);
    assert!(!Path::new("/usr/bin/ztpd").exists());
    assert!(
        Path::new("/etc/ztpd/ztpd.toml").is_file(),
        "remove keeps the settings"
    );
    assert!(
        Path::new("/var/lib/ztpd").is_dir(),
        "remove keeps the state"
    );
    run("dpkg", &["--purge", "ztpd"]);
    for d in PACKAGE_DIRS {
        assert!(!Path::new(d).exists(), "purge leaves {d}");
    }
}
