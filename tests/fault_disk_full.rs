//! Fault suite (issue #15): a full disk under `state/` and under
//! `device_credentials/`, each a small tmpfs of its own (`mount -t tmpfs`,
//! root only: the test skips with a message otherwise), filled to the last
//! byte by the test while ztpd runs in the DHCP lab.
//!
//! While full:
//! - the failures are clear: the log names the write and "disk is full" /
//!   "No space left on device", and `ztpd credentials create` fails with it;
//! - nothing old is damaged: the existing credential is byte for byte the
//!   same, every file in `device_credentials/` parses (no half-written
//!   credential, no temp file left), the operator token is unchanged;
//! - ztpd keeps serving what it has: `/healthz`, HTTP files, DHCP offers
//!   (they need no write); an ACK, which needs its lease on disk first
//!   (`durability = "fsync"`), is withheld rather than sent unstored, and a
//!   ZTP hello, which needs its event stored, gets 503 "retry".
//!
//! After the test frees the space, without a restart or another edit: a new
//! client gets its lease, the credential the reload could not write appears,
//! and the CLI writes again.
//!
//! `flock /tmp/ztpd-netns.lock cargo test --test fault_disk_full`

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::netns::Lab;
use support::tools::{must_run, sh, text};
use ztpd::dhcp::packet::MessageType;

/// The source name of our mounts in /proc/mounts: how a killed run's
/// leftovers are found.
const MOUNT_SOURCE: &str = "ztpt-diskfull";
const WAIT: Duration = Duration::from_secs(60);

/// A tmpfs mounted on a directory; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mkdir mount point");
        must_run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            MOUNT_SOURCE,
            dir.to_str().expect("utf-8 path"),
        ]);
        Tmpfs(dir.to_path_buf())
    }

    /// Unmount what a killed run of this test left mounted.
    fn remove_leftovers() {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        for line in mounts.lines() {
            let mut f = line.split_whitespace();
            if let (Some(MOUNT_SOURCE), Some(at)) = (f.next(), f.next()) {
                let _ = sh(&format!("umount -l '{at}'"));
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = sh(&format!("umount -l '{}'", self.0.display()));
    }
}

/// Write `dir/filler` until the filesystem refuses another byte.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create filler");
    for chunk in [1 << 16, 4096, 512, 1] {
        let buf = vec![0xa5u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    let _ = f.sync_all();
    let st = nix_statvfs(dir);
    assert_eq!(st, 0, "{} still has {st} bytes free", dir.display());
    path
}

/// Free bytes for unprivileged writers on the filesystem of `dir`.
fn nix_statvfs(dir: &Path) -> u64 {
    let out = sh(&format!("stat -f -c '%a %S' '{}'", dir.display()));
    let t = String::from_utf8_lossy(&out.stdout);
    let mut it = t.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    it.next().unwrap_or(0) * it.next().unwrap_or(0)
}

/// Append valid history rows (devices `PAD...`) until `path`'s size leaves
/// exactly `slack` bytes in its last 4 KiB page.
fn pad_history(path: &Path, slack: u64) {
    let len = std::fs::metadata(path).expect("history exists").len();
    let mut want = (4096 - slack).saturating_sub(len % 4096);
    let mut out = String::new();
    let mut n = 0;
    while want > 0 {
        n += 1;
        let tail = format!(",{},2026-01-01 00:00:00.000000\n", 2000000 + n);
        let head = format!("PAD{n}-");
        // Rows of at most ~100 bytes; the last one is sized to fit exactly.
        let id_len = (want as usize)
            .min(100)
            .saturating_sub(head.len() + tail.len());
        if id_len == 0 {
            want += 4096; // too little left for a row: fill into the next page
            continue;
        }
        let row = format!("{head}{}{tail}", "x".repeat(id_len));
        want -= row.len() as u64;
        out.push_str(&row);
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open history");
    f.write_all(out.as_bytes()).expect("pad history");
    assert_eq!(
        std::fs::metadata(path).unwrap().len() % 4096,
        4096 - slack,
        "history padded to its page"
    );
}

/// host1 says hello from the server namespace, an address ztpd did not
/// lease to it: normally answered 403 "changed nothing" and recorded as an
/// event.
fn hello(lab: &Lab) -> (u16, String) {
    let body =
        r#"{"serial":"H1","mac":"02:00:00:00:01:01","model":"linux","version":"1","neighbors":[]}"#;
    lab.daemon.request(
        "POST",
        "/ztp/v1/hello",
        &[("Content-Type", "application/json")],
        Some(body),
    )
}

fn plan(sensors: &[&str]) -> String {
    let mut p = Lab::plan();
    p.push_str("\n[models.sensor]\nvendor = \"generic\"\nmatch = \"esp32-gps\"\n");
    for s in sensors {
        p.push_str(&format!(
            "\n[[devices]]\nname = \"{s}\"\nmodel = \"sensor\"\nserial = \"{}\"\ndevice_function = \"default\"\n",
            s.to_uppercase().replace('-', "")
        ));
    }
    p
}

fn cred_path(lab: &Lab, serial: &str) -> PathBuf {
    lab.daemon
        .path(&format!("device_credentials/device_{serial}.json"))
}

/// Every file in `device_credentials/`: a credential that parses, the
/// history, the lock, or the test's filler. Returns the credential count.
fn all_credentials_parse(lab: &Lab) -> usize {
    let dir = lab.daemon.path("device_credentials");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("read device_credentials") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(e.path()).expect("read");
        if name.starts_with("device_") && name.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|err| panic!("{name} is half-written ({err}): {bytes:?}"));
            assert!(v["CONNECTION_STR_PUB"].is_string(), "{name}: {v}");
            n += 1;
        } else if name == "historical_credentials.csv" {
            let t = String::from_utf8(bytes).expect("history is UTF-8");
            let mut rows = t.lines();
            assert_eq!(
                rows.next(),
                Some("device_id,device_name,credential_creation_date")
            );
            for row in rows {
                assert_eq!(row.split(',').count(), 3, "a torn history row: {row:?}");
            }
        } else {
            assert!(
                name == "filler" || name == ".lock",
                "unexpected file in device_credentials: {name}"
            );
        }
    }
    n
}

#[test]
fn a_full_disk_fails_clearly_damages_nothing_and_recovers_without_restart() {
    if !support::tools::root_or_skip("a_full_disk", "mount -t tmpfs, network namespaces") {
        return;
    }
    Tmpfs::remove_leftovers();
    let mounts: Arc<Mutex<Vec<Tmpfs>>> = Arc::default();
    let m = mounts.clone();
    let Some(mut lab) = Lab::build("dful", "fsync", &plan(&["sensor-1"]), move |root, b| {
        let mut m = m.lock().unwrap();
        // Sizes: room for the database, its WAL and the local hub's
        // files; the test fills the rest.
        m.push(Tmpfs::mount(&root.join("state"), "4m"));
        m.push(Tmpfs::mount(&root.join("device_credentials"), "1m"));
        b
    }) else {
        return;
    };
    let state = lab.daemon.path("state");
    let creds = lab.daemon.path("device_credentials");

    // Before: a credential, a lease, a token.
    let first = lab.daemon.wait_for("sensor-1's credential", WAIT, || {
        std::fs::read(cred_path(&lab, "SENSOR1")).ok()
    });
    let token = std::fs::read(state.join("operator.token")).expect("token");
    let a = lab.udhcpc("02:00:00:00:0d:01", &[]).expect("A bound")["ip"].clone();

    // --- the state disk fills up --------------------------------------------
    let state_filler = fill(&state);
    let sniffer = lab.sniff_replies();
    let b_mac = "02:00:00:00:0d:02";
    let b = lab.udhcpc(b_mac, &["-t", "2", "-T", "1"]);
    assert!(
        b.is_none(),
        "an ACK left although its lease was not stored: {b:?}"
    );
    lab.wait_log("leases not stored", 1);
    let log = lab.log();
    assert!(
        log.contains("database or disk is full"),
        "the log says why:\n{log}"
    );
    assert!(
        lab.daemon
            .metric("ztpd_dhcp_dropped_total{reason=\"write_failed\"}")
            >= 1
    );
    let offered = sniffer.replies().iter().any(|f| {
        f.msg_type == Some(MessageType::Offer)
            && ztpd::mac::Mac::parse(b_mac).is_some_and(|m| m.octets() == f.chaddr)
    });
    assert!(offered, "DISCOVER is still answered with an OFFER");
    assert_eq!(lab.daemon.get("/healthz").0, 200);
    let (code, body) = lab.daemon.get("/files/bootstrap/generic");
    assert_eq!(code, 200, "HTTP files still served: {body}");
    // A ZTP hello needs its event stored: refused with a reason to retry,
    // not left hanging or answered as if stored.
    let (code, body) = hello(&lab);
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("disk is full") && body.contains("retry"),
        "{body}"
    );

    // --- the credentials disk fills up too ---------------------------------
    // The history gets rows of other devices until its last page has only
    // 10 bytes free: the next row is then cut short by the full disk
    // (tmpfs takes whole pages), the case that could leave a torn row.
    pad_history(&creds.join("historical_credentials.csv"), 10);
    let cred_filler = fill(&creds);
    let version = lab.api("status")["snapshot_version"].as_u64().unwrap();
    lab.write_plan(&plan(&["sensor-1", "sensor-2"]));
    lab.daemon.wait_for("the reload adding sensor-2", WAIT, || {
        (lab.api("status")["snapshot_version"].as_u64() > Some(version)).then_some(())
    });
    // The keeper's error names the file it could not write, and why.
    lab.wait_log("No space left on device", 1);
    let log = lab.log();
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("device credentials")
            && l.contains("No space left")),
        "the log says what failed:\n{log}"
    );
    let out = lab.daemon.cli(&["credentials", "create", "CLI-DEVICE-1"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("No space left on device"),
        "the CLI says why: {}",
        text(&out)
    );
    // Nothing old damaged, nothing half-written.
    assert_eq!(
        std::fs::read(cred_path(&lab, "SENSOR1")).unwrap(),
        first,
        "the existing credential is untouched"
    );
    assert_eq!(std::fs::read(state.join("operator.token")).unwrap(), token);
    all_credentials_parse(&lab);
    assert_eq!(lab.daemon.get("/healthz").0, 200);

    // --- space returns; no restart, no edit --------------------------------
    std::fs::remove_file(state_filler).unwrap();
    std::fs::remove_file(cred_filler).unwrap();
    let (code, body) = hello(&lab);
    // Its normal answer from an address ztpd did not lease to host1.
    assert_eq!(code, 403, "the hello is answered again: {body}");
    assert!(body.contains("changed nothing"), "{body}");
    let b = lab.udhcpc(b_mac, &[]).expect("B bound once space returned");
    assert_ne!(b["ip"], a);
    let a2 = lab.udhcpc("02:00:00:00:0d:01", &[]).expect("A renews");
    assert_eq!(a2["ip"], a, "A's lease survived the full disk");
    let second = lab
        .daemon
        .wait_for("sensor-2's credential, retried", WAIT, || {
            let t = std::fs::read_to_string(cred_path(&lab, "SENSOR2")).ok()?;
            serde_json::from_str::<serde_json::Value>(&t).ok()
        });
    let first: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_ne!(second["device_name"], first["device_name"], "{second}");
    let out = lab.daemon.cli(&["credentials", "create", "CLI-DEVICE-1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(all_credentials_parse(&lab), 3);
    let history = std::fs::read_to_string(creds.join("historical_credentials.csv")).unwrap();
    for id in ["SENSOR1", "SENSOR2", "CLI-DEVICE-1"] {
        assert_eq!(
            history
                .lines()
                .filter(|l| l.starts_with(&format!("{id},")))
                .count(),
            1,
            "one history row for {id}:\n{history}"
        );
    }
    assert_eq!(lab.daemon.runs(), 1, "no restart was needed");
    // Unmount before the root is removed.
    lab.stop(true);
    drop(mounts);
}
