//! ONIE as its own code behaves (opencomputeproject/onie, `rootconf/default`):
//! the DHCP request of `udhcpc_args` in `lib/onie/functions` (option 60
//! `onie_vendor:<platform>`, client-id 0x00 + serial, user class 77, option
//! 125 under enterprise 42623 with machine/arch/revision, asking for 7, 43,
//! 54, 66, 67, 72, 114, 125), option 125 read as `import_vivso` and
//! `import_vendoropts` read it, the installer downloaded with ONIE's
//! `ONIE-*` headers by busybox wget, and run as `exec_installer` runs it: a
//! child process under busybox sh, with no machine.conf in its environment.
//!
//! `onie-sysinfo` and `onie-nos-install` are stand-ins written for this test
//! (ONIE's read the EEPROM and run exec_installer, which need an ONIE box):
//! the first answers -s/-p/-e as ONIE's does and refuses other flags; the
//! second records the URL it was given and downloads it with busybox wget,
//! as exec_installer would. Real ONIE code is not in the repository; the
//! closing note of issue #16 says how it was run against ztpd by hand.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::netns::{hex, unhex, Lab, SERVER};
use support::tools::have;

const PLATFORM: &str = "x86_64-kvm_x86_64-r0";
const PLANNED_MAC: &str = "02:00:00:00:01:09";
const PLANNED_SERIAL: &str = "ONIEKVM0001";
const STRANGER_MAC: &str = "02:00:00:00:01:0a";
const STRANGER_SERIAL: &str = "ONIEKVM0999";
const IMAGE: &[u8] = b"#!/bin/sh\n# a NOS installer image for the test\nexit 0\n";

fn plan() -> String {
    format!(
        "{}\n[approval]\nmode = \"manual\"\n\n\
         [models.whitebox]\nvendor = \"onie\"\nmatch = \"x86_64-kvm_x86_64\"\n\
         software = {{ image = \"images/onie-nos.bin\", version = \"1.0\" }}\n\n\
         [[devices]]\nname = \"wb1\"\nmodel = \"whitebox\"\nserial = \"{PLANNED_SERIAL}\"\n\
         mac = \"{PLANNED_MAC}\"\nip = \"10.201.0.21\"\n",
        Lab::plan()
    )
}

/// The DHCP lab with the ONIE model, its image in `files/` before the start.
fn lab(tag: &str) -> Option<Lab> {
    Lab::build(tag, "fsync", &plan(), |root, b| {
        fs::create_dir_all(root.join("files/images")).unwrap();
        fs::write(root.join("files/images/onie-nos.bin"), IMAGE).unwrap();
        b
    })
}

/// udhcpc arguments as ONIE's `udhcpc_args` and `sd_dhcp4` build them.
fn onie_udhcpc_args(serial: &str) -> Vec<String> {
    let sub = |code: u8, v: &str| format!("{code:02X}{:02X}{}", v.len(), hex(v.as_bytes()));
    let payload = format!(
        "{}{}{}",
        sub(3, "kvm_x86_64"),
        sub(4, "x86_64"),
        sub(5, "0")
    );
    let user_class = "onie_dhcp_user_class";
    let mut a = vec![
        "-V".to_string(),
        format!("onie_vendor:{PLATFORM}"),
        "-x".into(),
        format!("77:{:02X}{}", user_class.len(), hex(user_class.as_bytes())),
        "-x".into(),
        format!("61:00{}", hex(serial.as_bytes())),
        "-x".into(),
        format!("125:{:08X}{:02X}{payload}", 42623, payload.len() / 2),
    ];
    for o in ["7", "54", "72", "114", "125"] {
        a.push("-O".into());
        a.push(o.into());
    }
    a
}

/// `import_vivso` + `import_vendoropts`: only enterprise 42623's block, its
/// type-length-value entries; type 1 is the installer URL.
fn onie_url_from_vivso(bytes: &[u8]) -> Option<String> {
    let mut rest = bytes;
    while rest.len() >= 5 {
        let ent = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(rest[4]);
        let block = rest.get(5..5 + len)?;
        if ent == 42623 {
            let mut b = block;
            while b.len() >= 2 {
                let l = usize::from(b[1]);
                let v = b.get(2..2 + l)?;
                if b[0] == 1 {
                    return Some(String::from_utf8_lossy(v).into_owned());
                }
                b = &b[2 + l..];
            }
        }
        rest = &rest[5 + len..];
    }
    None
}

/// The device's runtime: busybox for sh and wget, the two ONIE stand-ins.
fn onie_runtime(dir: &Path, serial: &str, mac: &str) {
    fs::create_dir_all(dir).unwrap();
    for tool in ["sh", "wget"] {
        std::os::unix::fs::symlink("/usr/bin/busybox", dir.join(tool)).unwrap();
    }
    let sysinfo = format!(
        "#!/bin/sh\n# Stand-in for ONIE's onie-sysinfo: -s serial, -p platform, -e MAC.\n\
         case \"$1\" in\n  -s) echo {serial} ;;\n  -p) echo {PLATFORM} ;;\n  -e) echo {mac} ;;\n\
         \x20 *) echo \"onie-sysinfo stand-in: unexpected $*\" >&2; exit 2 ;;\nesac\n"
    );
    let nos_install = format!(
        "#!/bin/sh\n# Stand-in for ONIE's onie-nos-install <URL>: record, then download as exec_installer does.\n\
         [ $# -ge 1 ] || {{ echo 'Error: Installer URL not specified.'; exit 1; }}\n\
         echo \"$1\" > {dir}/nos-install.url\n\
         exec wget -O {dir}/nos-image \"$1\"\n",
        dir = dir.display()
    );
    for (name, text) in [("onie-sysinfo", sysinfo), ("onie-nos-install", nos_install)] {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Download the installer with ONIE's headers and run it as a child with a
/// clean environment (no onie_* variables): `exec_installer`'s way.
fn run_installer(lab: &Lab, url: &str, dir: &Path, serial: &str, mac: &str) -> std::process::Child {
    let fetch = Command::new("ip")
        .args(["netns", "exec", &lab.cli, "busybox", "wget", "-q", "-O"])
        .arg(dir.join("installer"))
        .args([
            "--header",
            &format!("ONIE-SERIAL-NUMBER: {serial}"),
            "--header",
            &format!("ONIE-ETH-ADDR: {mac}"),
            "--header",
            "ONIE-VENDOR-ID: 42623",
            "--header",
            "ONIE-MACHINE: kvm_x86_64",
            "--header",
            "ONIE-MACHINE-REV: 0",
            "--header",
            "ONIE-ARCH: x86_64",
            "--header",
            "ONIE-OPERATION: os-install",
            url,
        ])
        .status()
        .unwrap();
    assert!(fetch.success(), "busybox wget of the installer {url}");
    let path = format!("{}:/usr/bin:/bin", dir.display());
    Command::new("ip")
        .args(["netns", "exec", &lab.cli, "env", "-i"])
        .arg(format!("PATH={path}"))
        .arg("ZTP_APPROVAL_WAIT=60")
        .arg(dir.join("sh"))
        .arg(dir.join("installer"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_exit(child: std::process::Child, within: Duration) -> (i32, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(Ok(o)) => (
            o.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        _ => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("installer still running after {within:?}");
        }
    }
}

fn device(lab: &Lab, name: &str) -> serde_json::Value {
    lab.api("devices")
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} not in /api/v1/devices"))
}

#[test]
fn onie_installs_the_planned_image_only_after_hello_and_approval() {
    if !have("busybox") {
        panic!("busybox missing: run scripts/install-test-deps.sh");
    }
    let Some(lab) = lab("onie") else {
        return;
    };

    // DHCP exactly as ONIE asks.
    let args = onie_udhcpc_args(PLANNED_SERIAL);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = lab
        .udhcpc(PLANNED_MAC, &a)
        .expect("ONIE's DHCP request answered");
    assert_eq!(env.get("ip").map(String::as_str), Some("10.201.0.21"));
    let installer = format!("http://{SERVER}:{}/files/bootstrap/onie", lab.http_port);
    // Debian's busybox names unknown options optNNN (ONIE's patch calls 125
    // `vivso` and 114 `url`); the bytes are the same.
    let vivso = unhex(
        env.get("opt125")
            .expect("option 125 answered, requested or not"),
    );
    assert_eq!(
        onie_url_from_vivso(&vivso).as_deref(),
        Some(installer.as_str())
    );
    let url114 = String::from_utf8(unhex(env.get("opt114").expect("option 114"))).unwrap();
    assert_eq!(url114, installer);
    lab.add_client_address("10.201.0.21/24");

    // The installer: hello as the machine onie-sysinfo names, pending approval.
    let work = lab.daemon.path("onie-box");
    onie_runtime(&work, PLANNED_SERIAL, PLANNED_MAC);
    let child = run_installer(&lab, &installer, &work, PLANNED_SERIAL, PLANNED_MAC);
    let t0 = Instant::now();
    // Pending, not topology_mismatch: the model it reported (onie-sysinfo -p
    // without -r0) is the plan's `match`, or the hello would get wrong_model.
    while device(&lab, "wb1")["state"] != "pending_approval" {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no hello: {}",
            device(&lab, "wb1")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !work.join("nos-install.url").exists(),
        "nothing installed before approval"
    );
    let (code, body) = lab.daemon.api_post("/api/v1/devices/wb1/approve", "{}");
    assert_eq!(code, 200, "{body}");
    let (status, out) = wait_exit(child, Duration::from_secs(60));
    assert_eq!(status, 0, "installer output:\n{out}");
    let image_url = format!(
        "http://{SERVER}:{}/files/images/onie-nos.bin",
        lab.http_port
    );
    assert_eq!(
        fs::read_to_string(work.join("nos-install.url"))
            .unwrap()
            .trim(),
        image_url,
        "{out}"
    );
    assert_eq!(fs::read(work.join("nos-image")).unwrap(), IMAGE);
    let d = device(&lab, "wb1");
    assert_eq!(d["problems"], serde_json::json!([]), "{d}");
    // Handing the image to ONIE is not deployment: the NOS's own ZTP reports that.
    assert_eq!(d["state"], "installing", "{d}");
}

#[test]
fn an_unplanned_onie_box_of_a_planned_platform_installs_nothing() {
    if !have("busybox") {
        panic!("busybox missing: run scripts/install-test-deps.sh");
    }
    let Some(lab) = lab("onix") else {
        return;
    };
    let args = onie_udhcpc_args(STRANGER_SERIAL);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = lab.udhcpc(STRANGER_MAC, &a).expect("answered");
    let ip = env.get("ip").cloned().expect("a pool address");
    assert!(ip.starts_with("10.201.0.10"), "pool address, got {ip}");
    let installer = format!("http://{SERVER}:{}/files/bootstrap/onie", lab.http_port);
    let vivso = unhex(&env["opt125"]);
    assert_eq!(
        onie_url_from_vivso(&vivso).as_deref(),
        Some(installer.as_str())
    );
    lab.add_client_address(&format!("{ip}/24"));
    let work = lab.daemon.path("stranger-box");
    onie_runtime(&work, STRANGER_SERIAL, STRANGER_MAC);
    let child = run_installer(&lab, &installer, &work, STRANGER_SERIAL, STRANGER_MAC);
    let (status, out) = wait_exit(child, Duration::from_secs(30));
    assert_eq!(status, 1, "refused at hello:\n{out}");
    assert!(out.contains("not in ztpd's plan"), "{out}");
    assert!(
        !work.join("nos-install.url").exists(),
        "onie-nos-install was called:\n{out}"
    );
    // The box is listed with what it announced.
    let unplanned = lab.api("unplanned").to_string();
    assert!(unplanned.contains(STRANGER_SERIAL), "{unplanned}");
    assert!(unplanned.contains("x86_64-kvm_x86_64"), "{unplanned}");
}
