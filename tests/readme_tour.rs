//! The README's tour, taken from README.md itself (so the two cannot drift
//! apart) and run line by line in one shell against a fresh copy of the
//! repository (its git-tracked and new files: no `state/`, no credentials),
//! with the `ztpd` this test run built first on `PATH`.
//!
//! Each line must exit 0, or the `exit N` its comment names. The only edits
//! to what a newcomer pastes: the ports of `examples/tour/ztpd.toml` (and the
//! tour's `127.0.0.1:8080`) move to free ones, so the test does not depend on
//! what else runs on this machine.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{poll, ports};

/// The tour's code block: the first ```sh block after this sentence.
const TOUR_MARK: &str = "paste the tour";

/// The tour on a loaded 2-core machine takes well under a minute; this only
/// ends a run that hangs.
const LIMIT: Duration = Duration::from_secs(600);

/// One line of the tour and what it must exit with.
#[derive(Debug)]
struct Step {
    line: String,
    exit: i32,
}

fn tour_steps(readme: &str) -> Vec<Step> {
    let at = readme
        .find(TOUR_MARK)
        .unwrap_or_else(|| panic!("README.md no longer says {TOUR_MARK:?} before the tour"));
    let rest = &readme[at..];
    let open = rest
        .find("```sh\n")
        .expect("a ```sh block after the tour's sentence")
        + 6;
    let len = rest[open..].find("```").expect("the tour's block ends");
    rest[open..open + len]
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| Step {
            line: l.to_string(),
            exit: expected_exit(l),
        })
        .collect()
}

/// `exit N` in the line's comment, else 0.
fn expected_exit(line: &str) -> i32 {
    let Some((_, comment)) = line.split_once(" # ") else {
        return 0;
    };
    comment
        .split("exit ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The repository as a fresh clone has it (plus files not yet committed).
fn fresh_copy(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo)
        .output()
        .expect("git ls-files (the tour test copies the files git knows)");
    assert!(out.status.success(), "git ls-files failed");
    for rel in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 file names"));
        let from = repo.join(rel);
        // a developer's own ./ztpd.toml or a file deleted but not yet committed
        if rel == Path::new("ztpd.toml") || !from.is_file() {
            continue;
        }
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// Move every port of the tour's settings to a free one; returns the new
/// HTTP address for the tour's own lines.
fn free_ports(settings: &Path) -> String {
    let mut text = std::fs::read_to_string(settings).unwrap();
    let http = format!("127.0.0.1:{}", ports::free_tcp());
    for (old, new) in [
        ("\"127.0.0.1:8080\"", format!("\"{http}\"")),
        (
            "\"0.0.0.0:1067\"",
            format!("\"127.0.0.1:{}\"", ports::free_udp()),
        ),
        (
            "\"0.0.0.0:1069\"",
            format!("\"127.0.0.1:{}\"", ports::free_udp()),
        ),
        (
            "\"127.0.0.1:1883\"",
            format!("\"127.0.0.1:{}\"", ports::free_tcp()),
        ),
        (
            "\"127.0.0.1:8883\"",
            format!("\"127.0.0.1:{}\"", ports::free_tcp()),
        ),
    ] {
        assert!(
            text.contains(old),
            "{} no longer holds {old}: update this test",
            settings.display()
        );
        text = text.replace(old, &new);
    }
    std::fs::write(settings, text).unwrap();
    http
}

/// The shell script: each step's output and exit status in its own files.
fn script(steps: &[Step], http: &str) -> String {
    let mut s = String::from("set -u\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n");
    for (i, step) in steps.iter().enumerate() {
        let line = step.line.replace("127.0.0.1:8080", http);
        // the line on a line of its own: its trailing comment ends there
        s.push_str(&format!(
            "{{\n{line}\n}} >\"$TOUR_OUT/{i}.out\" 2>&1 </dev/null\necho $? >\"$TOUR_OUT/{i}.rc\"\n"
        ));
    }
    s
}

/// The shell (and so the daemon it started), killed if the test panics.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: a plain kill(2) of the process group this test created.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let steps = tour_steps(&readme);
    assert!(steps.len() >= 10, "the tour shrank to {steps:?}");
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("ztpd");
    fresh_copy(&repo);
    let http = free_ports(&repo.join("examples/tour/ztpd.toml"));
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();

    let bin_dir = PathBuf::from(support::daemon::BIN)
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let child = Command::new("bash")
        .arg("-c")
        .arg(script(&steps, &http))
        .current_dir(&repo)
        .env("PATH", path)
        .env("TOUR_OUT", &out)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("bash");
    let mut shell = Group(child);
    let status = poll::poll(LIMIT, || shell.0.try_wait().unwrap());
    let elapsed = started.elapsed();

    let output =
        |i: usize| std::fs::read_to_string(out.join(format!("{i}.out"))).unwrap_or_default();
    let mut report = String::new();
    let mut wrong = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let rc = std::fs::read_to_string(out.join(format!("{i}.rc")))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        report.push_str(&format!(
            "$ {}\n[exit {rc:?}, README says {}]\n{}\n",
            step.line,
            step.exit,
            output(i)
        ));
        if rc != Some(step.exit) {
            wrong.push(step.line.clone());
        }
    }
    assert!(
        status.is_some(),
        "the tour did not end within {LIMIT:?}:\n{report}"
    );
    assert!(
        wrong.is_empty(),
        "these lines did not exit as the README says: {wrong:#?}\n{report}"
    );
    eprintln!("the tour took {:.1} s\n{report}", elapsed.as_secs_f64());

    // What the README's comments promise, beyond the exit status.
    let out_of = |needle: &str| {
        let i = steps
            .iter()
            .position(|s| s.line.starts_with(needle))
            .unwrap_or_else(|| panic!("no tour line starts with {needle:?}"));
        output(i)
    };
    let switches = out_of("ztpd device simulate --switch all");
    assert!(switches.contains("9 switch(es): 9 deployed"), "{switches}");
    assert!(
        out_of("ztpd approve leaf3").contains("changes nothing"),
        "{report}"
    );
    let status = out_of("ztpd status");
    let spine1 = status
        .lines()
        .find(|l| l.starts_with("spine1 "))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(spine1.contains(" deployed "), "{status}");
    // The daemon says where its GUI and token are, tells each device's
    // story, and warns of nothing on a default start.
    let daemon = out_of("ztpd run &");
    assert!(
        daemon.contains("topology GUI at http://") && daemon.contains("state/operator.token"),
        "{daemon}"
    );
    assert!(daemon.contains(" -> deployed"), "{daemon}");
    assert!(!daemon.contains(" WARN "), "{daemon}");
    let analyze = out_of("ztpd analyze");
    assert!(analyze.lines().any(|l| l.contains(" 20 ")), "{analyze}");
    let render = out_of("ztpd render plans/lab.toml leaf1");
    assert!(render.contains("67 "), "{render}");
}
