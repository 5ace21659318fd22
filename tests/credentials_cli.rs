//! `ztpd credentials` against the real binary: concurrent creates, regenerate,
//! a crash (SIGKILL) in the middle of a bulk write, placeholder hub keys.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::daemon::BIN;
use support::tools::ChildGuard as Guard;
use ztpd::credentials::{function, hub, CredentialFile, Store};

/// A repository root with an empty `ztpd.toml` (every default).
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ztpd.toml"), "").unwrap();
        Root { dir }
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("ztpd.toml")
    }
    fn creds(&self) -> PathBuf {
        self.dir.path().join("device_credentials")
    }
    fn ztpd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(self.config()).args(args);
        // Run from elsewhere: paths must resolve through --config.
        c.current_dir(std::env::temp_dir());
        c.env("ZTPD_LOG", "warn");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.ztpd(args).output().unwrap()
    }
    fn read_all(&self) -> HashMap<String, CredentialFile> {
        let store = Store::new(self.creds());
        store
            .list_ids()
            .unwrap()
            .into_iter()
            .map(|id| {
                let c = store.read(&id).unwrap().unwrap();
                (id, c)
            })
            .collect()
    }
    fn history(&self) -> Vec<String> {
        std::fs::read_to_string(self.creds().join("historical_credentials.csv"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn fifty_concurrent_creates_never_share_a_name_and_regenerate_keeps_them() {
    let root = Root::new();
    let children: Vec<Guard> = (0..50)
        .map(|i| {
            let id = format!("dev-{i:02}");
            let c = root
                .ztpd(&["credentials", "create", &id])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            Guard(Some(c))
        })
        .collect();
    for mut g in children {
        let out = g.0.take().unwrap().wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let creds = root.read_all();
    assert_eq!(creds.len(), 50);
    let names: BTreeSet<u64> = creds.values().map(|c| c.device_name).collect();
    assert_eq!(names.len(), 50, "duplicate device_name among {names:?}");
    assert_eq!(names, (1_000_001..=1_000_050).collect());
    // All processes agreed on one local hub key.
    let resolved = ztpd::settings::resolve(Some(&root.config()), &[]).unwrap();
    let hub = hub::load(&resolved).unwrap();
    for c in creds.values() {
        let key = ztpd::credentials::device_key(&hub.key, &c.device_id);
        assert!(c.connection_str_pub.ends_with(key.expose_base64()));
    }
    assert_eq!(root.history().len(), 51);
    let no_temps = std::fs::read_dir(root.creds()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp-")
    });
    assert!(no_temps);

    let out = root.run(&["credentials", "regenerate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("regenerated 50 credentials"));
    let after = root.read_all();
    for (id, c) in &creds {
        assert_eq!(
            after[id].device_name, c.device_name,
            "{id} changed its name"
        );
    }
    assert_eq!(root.history().len(), 101);

    // A new device after all that takes max + 1.
    let out = root.run(&["credentials", "create", "--new"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("device_name=1000051"), "{stdout}");
}

#[test]
fn sigkill_during_regenerate_leaves_every_file_whole() {
    let root = Root::new();
    let resolved = ztpd::settings::resolve(Some(&root.config()), &[]).unwrap();
    let hub = hub::load(&resolved).unwrap();
    let store = Store::new(root.creds());
    let f = function::to_json("default", function::BUILTIN_DEFAULT).unwrap();
    let devices: Vec<(String, serde_json::Value)> = (0..2000)
        .map(|i| (format!("sn{i:05}"), f.clone()))
        .collect();
    store.create_missing(&hub, devices).unwrap();
    let before = root.read_all();
    let before_bytes: HashMap<String, Vec<u8>> = before
        .keys()
        .map(|id| (id.clone(), std::fs::read(store.path_of(id)).unwrap()))
        .collect();

    let mut caught = false;
    for _attempt in 0..5 {
        let mut g = Guard(Some(
            root.ztpd(&["credentials", "regenerate"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        // Poll until the writer has temp files on disk, then kill it there.
        loop {
            if has_temp_files(&root.creds()) {
                g.0.as_mut().unwrap().kill().unwrap();
                g.0.take().unwrap().wait().unwrap();
                caught = true;
                break;
            }
            if g.0.as_mut().unwrap().try_wait().unwrap().is_some() {
                g.0 = None;
                break;
            }
        }
        if caught {
            break;
        }
    }
    assert!(
        caught,
        "never caught regenerate between write and rename in 5 tries"
    );

    // Every credential is the old file or a complete new one, same name.
    let mut unchanged = 0;
    for (id, old) in &before {
        let bytes = std::fs::read(store.path_of(id)).unwrap();
        let now: CredentialFile = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{id}: torn file after SIGKILL: {e}"));
        assert_eq!(now.device_name, old.device_name);
        assert_eq!(now.connection_str_pub, old.connection_str_pub);
        if bytes == before_bytes[id] {
            unchanged += 1;
        }
    }
    assert!(
        unchanged > 0,
        "the kill came after every rename; nothing was tested"
    );

    // The next run cleans up and completes.
    let out = root.run(&["credentials", "regenerate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!has_temp_files(&root.creds()));
    let after = root.read_all();
    assert_eq!(after.len(), before.len());
    for (id, old) in &before {
        assert_eq!(after[id].device_name, old.device_name);
    }
}

fn has_temp_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        })
        .unwrap_or(false)
}

#[test]
fn placeholder_hub_key_is_refused_with_exit_78() {
    let root = Root::new();
    let dir = root.dir.path().join("azure_mqtt_credentials");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hub.toml"),
        "hostname = \"myhub.azure-devices.net\"\nbroker = \"mqtts://myhub.azure-devices.net:8883\"\nenrollment_key = \"REPLACE_ME\"\n",
    )
    .unwrap();
    let out = root.run(&["credentials", "create", "dev1"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("placeholder"), "{err}");
    assert!(!root.creds().join("device_dev1.json").exists());
}

#[test]
fn bad_device_id_is_invalid_input() {
    let root = Root::new();
    let out = root.run(&["credentials", "create", "a;b"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected only letters"));
}
