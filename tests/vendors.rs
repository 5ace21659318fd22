//! Every vendor profile but ONIE and SONiC, against its runtime's contract
//! (docs/vendors.md). Each test starts `ztpd run` on the `vendors` fixture,
//! asks for the device's DHCP options as a relay would (when this process may
//! bind port 67), fetches the bootstrap script or files the way the device
//! does (HTTP, or TFTP from the TFTP listener), and runs the script under a
//! stand-in for the vendor's closed runtime from `tests/vendors/<profile>/`:
//! each stand-in says in its header what it checks, and refuses what the
//! real runtime refuses (wrong call shapes, a bad `#md5sum`, a missing
//! marker...). The device must then be where the profile leaves it in the
//! API (`deployed`, or `rebooting` where the vendor's own reload follows).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::tools::text;
use support::Daemon;

fn vendors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vendors")
}

fn daemon() -> Daemon {
    Daemon::builder()
        .fixture("vendors")
        .access("configs = \"open\"")
        .start()
}

/// The box a stand-in pretends to be.
struct Box_ {
    serial: &'static str,
    model: &'static str,
    mac: &'static str,
    /// `local,remote_device,remote_port;...`
    neighbors: &'static str,
    root: tempfile::TempDir,
}

impl Box_ {
    fn new(
        serial: &'static str,
        model: &'static str,
        mac: &'static str,
        neighbors: &'static str,
    ) -> Self {
        Box_ {
            serial,
            model,
            mac,
            neighbors,
            root: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        let p = self.path(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// `python3 tests/vendors/<args...>` with the box's STANDIN_* environment.
    fn python(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new("python3")
            .args(args.iter().map(|a| {
                if a.ends_with(".py") && !a.starts_with('/') {
                    vendors_dir().join(a).into_os_string()
                } else {
                    a.into()
                }
            }))
            .env("STANDIN_SERIAL", self.serial)
            .env("STANDIN_MODEL", self.model)
            .env("STANDIN_MAC", self.mac)
            .env("STANDIN_NEIGHBORS", self.neighbors)
            .env("STANDIN_ROOT", self.root.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(env.iter().copied())
            .output()
            .expect("run python3")
    }

    /// Write `bytes` into the box (a downloaded script) and return its path.
    fn put(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write into the box");
        p.to_string_lossy().into_owned()
    }
}

/// A DHCPDISCOVER relayed from `giaddr` (each test its own 127.0.0.x) with
/// the device's MAC and identity options; the OFFER as
/// `{"yiaddr", "file", "options": {code: hex}}`. None (with a SKIP line)
/// when this process may not bind port 67.
fn dhcp(d: &Daemon, b: &Box_, giaddr: &str, opts: &[(u8, &[u8])]) -> Option<Value> {
    let server = d.dhcp.to_string();
    let mut args = vec![
        "dhcp_relay.py".to_string(),
        server,
        giaddr.to_string(),
        b.mac.to_string(),
    ];
    for (code, v) in opts {
        let hex: String = v.iter().map(|x| format!("{x:02x}")).collect();
        args.push(format!("{code}={hex}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = b.python(&args, &[]);
    if o.status.code() == Some(77) {
        eprintln!("SKIP the DHCP half: {}", text(&o).trim());
        return None;
    }
    assert!(o.status.success(), "dhcp_relay.py: {}", text(&o));
    Some(serde_json::from_slice(&o.stdout).expect("offer JSON"))
}

fn option_text(offer: &Value, code: u8) -> Option<String> {
    let hex = offer["options"][code.to_string()].as_str()?;
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    Some(String::from_utf8(bytes).expect("text option"))
}

/// Save an offer where the stand-ins read it.
fn save_offer(b: &Box_, offer: &Value) -> String {
    b.put("offer.json", offer.to_string().as_bytes())
}

fn http_bytes(d: &Daemon, path: &str) -> Vec<u8> {
    let (code, body) = d.get(path);
    assert_eq!(code, 200, "GET {path}: {body}");
    body.into_bytes()
}

fn tftp_bytes(d: &Daemon, b: &Box_, name: &str) -> Vec<u8> {
    let code = format!(
        "import sys; sys.path.insert(0, {dir:?}); import tftp; \
         sys.stdout.buffer.write(tftp.get('127.0.0.1', {port}, {name:?}))",
        dir = vendors_dir().to_string_lossy(),
        port = d.tftp.port(),
    );
    let o = b.python(&["-c", &code], &[]);
    assert!(o.status.success(), "TFTP {name}: {}", text(&o));
    o.stdout
}

fn state_of(d: &Daemon, name: &str) -> String {
    let (_, v) = d.api("/api/v1/devices");
    v.as_array()
        .expect("device list")
        .iter()
        .find(|x| x["name"] == name)
        .map(|x| x["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no device {name} in {v}"))
}

fn config_of(d: &Daemon, name: &str) -> Vec<u8> {
    http_bytes(d, &format!("/files/configs/{name}.cfg"))
}

#[test]
fn arista_eos_zerotouch_runs_the_script_with_fastcli_and_flash() {
    let d = daemon();
    let b = Box_::new(
        "JPE00000001",
        "DCS-7050SX-64",
        "00:1c:73:00:00:01",
        "Ethernet1,spine1,swp1",
    );
    let url = format!("http://127.0.0.1:{}/files/bootstrap/arista", d.http.port());
    let vc = b"Arista;DCS-7050SX-64;11.00;JPE00000001";
    if let Some(offer) = dhcp(&d, &b, "127.0.0.2", &[(60, vc)]) {
        assert_eq!(offer["yiaddr"], "127.0.0.11", "{offer}");
        assert_eq!(option_text(&offer, 67).as_deref(), Some(url.as_str()));
    }
    let script = b.put("ztp-script", &http_bytes(&d, "/files/bootstrap/arista"));
    let o = b.python(&["arista/zerotouch.py", &script], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(b.read("startup-config"), config_of(&d, "eos1"));
    assert_eq!(b.read("boot-config"), b"SWI=flash:EOS-4.30.1F.swi\n");
    assert_eq!(b.read("EOS-4.30.1F.swi"), d.file("images/EOS-4.30.1F.swi"));
    assert_eq!(state_of(&d, "eos1"), "rebooting");

    // The stand-in refuses what EOS refuses: no `-p`, an unknown command.
    let fastcli = vendors_dir().join("arista/FastCli");
    let fastcli = fastcli.to_str().unwrap();
    let o = b.python(&[fastcli, "-c", "show version | json"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = b.python(&[fastcli, "-p", "15", "-c", "show runing-config"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("% Invalid input"));
    // A file without `#!` would be applied as a startup-config, not run.
    let plain = b.put("plain", b"hostname x\n");
    let o = b.python(&["arista/zerotouch.py", &plain], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn cisco_iosxe_ztp_runs_the_script_with_the_guestshell_cli_module() {
    let d = daemon();
    let b = Box_::new(
        "FOC00000003",
        "C9300-24P",
        "00:1a:2b:00:00:03",
        "GigabitEthernet1/0/1,spine1,swp3",
    );
    let url = format!(
        "http://127.0.0.1:{}/files/bootstrap/cisco-iosxe",
        d.http.port()
    );
    if let Some(offer) = dhcp(&d, &b, "127.0.0.3", &[(60, b"cisco C9300-24P")]) {
        assert_eq!(offer["yiaddr"], "127.0.0.13", "{offer}");
        assert_eq!(option_text(&offer, 67).as_deref(), Some(url.as_str()));
    }
    let script = b.put("ztp.py", &http_bytes(&d, "/files/bootstrap/cisco-iosxe"));
    let o = b.python(&["cisco-iosxe/ztp.py", &script], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(b.read("startup-config"), config_of(&d, "xe1"));
    assert_eq!(state_of(&d, "xe1"), "deployed");

    // The stand-in `cli` module refuses the call shapes IOS-XE's refuses.
    let check = r#"
import cli
for f, a, e in ((cli.execute, "show version ; show clock", ValueError),
                (cli.configure, 42, TypeError),
                (cli.configure, ["no such command"], cli.CLISyntaxError),
                (cli.execute, "show runing-config", cli.CLISyntaxError)):
    try:
        f(a)
    except e:
        continue
    raise SystemExit("accepted %r" % (a,))
"#;
    let dir = vendors_dir().join("cisco-iosxe");
    let o = b.python(&["-c", check], &[("PYTHONPATH", dir.to_str().unwrap())]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn cisco_nxos_poap_checks_the_md5sum_line_and_runs_the_script() {
    let d = daemon();
    let b = Box_::new(
        "FDO00000004",
        "N9K-C93180YC-EX",
        "00:1a:2b:00:00:04",
        "Ethernet1/1,spine1,swp4",
    );
    let vc = b"Cisco N9K-C93180YC-EX";
    if let Some(offer) = dhcp(&d, &b, "127.0.0.4", &[(60, vc)]) {
        assert_eq!(offer["yiaddr"], "127.0.0.14", "{offer}");
        assert_eq!(option_text(&offer, 66).as_deref(), Some("127.0.0.1"));
        assert_eq!(offer["options"]["150"], "7f000001");
        assert_eq!(
            option_text(&offer, 67).as_deref(),
            Some("bootstrap/cisco-nxos")
        );
    }
    // POAP fetches the script over TFTP from option 66/150.
    let bytes = tftp_bytes(&d, &b, "bootstrap/cisco-nxos");
    let script = b.put("script.py", &bytes);
    let o = b.python(&["cisco-nxos/poap_run.py", &script], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(b.read("scheduled-config"), config_of(&d, "nx1"));
    assert_eq!(b.read("poap_ztpd.cfg"), config_of(&d, "nx1"));
    assert_eq!(state_of(&d, "nx1"), "rebooting");

    // One changed byte and POAP refuses the script.
    let tampered =
        String::from_utf8(bytes)
            .unwrap()
            .replacen("LLDP_WAIT = 60", "LLDP_WAIT = 61", 1);
    let tampered = b.put("tampered.py", tampered.as_bytes());
    let o = b.python(&["cisco-nxos/poap_run.py", &tampered], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("md5 mismatch"), "{}", text(&o));
}

#[test]
fn cisco_ios_autoinstall_finds_its_host_file_through_network_confg() {
    let d = daemon();
    let b = Box_::new("FOC00000002", "C2960", "00:1a:2b:00:00:02", "");
    let client_id = b"cisco-001a.2b00.0002-Vl1";
    let offer = match dhcp(&d, &b, "127.0.0.5", &[(61, client_id)]) {
        Some(offer) => {
            assert_eq!(offer["yiaddr"], "127.0.0.12", "{offer}");
            assert_eq!(offer["options"]["150"], "7f000001");
            assert_eq!(option_text(&offer, 67).as_deref(), Some("network-confg"));
            offer
        }
        // What profiles.rs sends a planned cisco-ios device, without 12.
        None => serde_json::json!({"yiaddr": "127.0.0.12", "file": "network-confg",
            "options": {"150": "7f000001", "67": "6e6574776f726b2d636f6e6667"}}),
    };
    let offer = save_offer(&b, &offer);
    let port = d.tftp.port().to_string();
    let o = b.python(&["cisco-ios/autoinstall.py", &offer, &port], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let got: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(got["hostname"], "ios1");
    assert_eq!(b.read("startup-config"), config_of(&d, "ios1"));
}

#[test]
fn juniper_ztp_decodes_option_43_and_fetches_what_it_names() {
    let d = daemon();
    let b = Box_::new("PE0000000005", "ex4300-48t", "00:05:86:00:00:05", "");
    let vc = b"Juniper-ex4300-48t-PE0000000005";
    let Some(offer) = dhcp(&d, &b, "127.0.0.6", &[(60, vc)]) else {
        eprintln!("SKIP juniper: option 43 can only be read off the wire");
        return;
    };
    assert_eq!(offer["yiaddr"], "127.0.0.15", "{offer}");
    let offer = save_offer(&b, &offer);
    let o = b.python(&["juniper/ztp.py", &offer], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let got: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(got["port"], d.http.port());
    assert_eq!(got["config"], "files/configs/jun1.cfg");
    assert_eq!(got["image"], "files/images/jinstall-ex-4300-21.4R3.tgz");
    assert_eq!(b.read("config"), config_of(&d, "jun1"));
    assert_eq!(
        b.read("image"),
        d.file("images/jinstall-ex-4300-21.4R3.tgz")
    );
}

#[test]
fn huawei_ztp_reads_the_ini_intermediate_file_and_fetches_its_files() {
    let d = daemon();
    let b = Box_::new(
        "2102350000000006",
        "S5735-L24T4S-A",
        "00:e0:fc:00:00:06",
        "",
    );
    let vc = b"HUAWEI S5735-L24T4S-A";
    let offer = match dhcp(&d, &b, "127.0.0.7", &[(60, vc), (61, b.serial.as_bytes())]) {
        Some(offer) => {
            assert_eq!(offer["yiaddr"], "127.0.0.16", "{offer}");
            assert_eq!(option_text(&offer, 66).as_deref(), Some("127.0.0.1"));
            assert_eq!(
                option_text(&offer, 67).as_deref(),
                Some("bootstrap/huawei.ini")
            );
            offer
        }
        None => serde_json::json!({"yiaddr": "127.0.0.16", "file": "bootstrap/huawei.ini",
            "options": {"66": "3132372e302e302e31",
                        "67": "626f6f7473747261702f6875617765692e696e69"}}),
    };
    let offer = save_offer(&b, &offer);
    let port = d.tftp.port().to_string();
    let o = b.python(&["huawei/ztp.py", &offer, &port], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let got: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(got["section"], "DEVICE1 DESCRIPTION");
    assert_eq!(
        b.read("SYSTEM-CONFIG"),
        http_bytes(&d, "/files/configs/2102350000000006.cfg")
    );
    assert_eq!(
        b.read("SYSTEM-SOFTWARE"),
        d.file("images/S5735-V200R022C00.cc")
    );
}

#[test]
fn cumulus_ztp_runs_the_marked_script_with_its_headers() {
    let d = daemon();
    let b = Box_::new(
        "MT0000000007",
        "MSN2700",
        "44:38:39:00:00:07",
        "swp1,spine1,swp7",
    );
    let url = format!("http://127.0.0.1:{}/files/bootstrap/cumulus", d.http.port());
    if let Some(offer) = dhcp(&d, &b, "127.0.0.8", &[(60, b"cumulus-linux x86_64")]) {
        assert_eq!(offer["yiaddr"], "127.0.0.17", "{offer}");
        assert_eq!(option_text(&offer, 239).as_deref(), Some(url.as_str()));
    }
    let cfg = b.path("startup-config");
    let env = [
        ("ZTP_CONFIG_PATH", cfg.to_str().unwrap()),
        ("ZTP_MAC", b.mac),
        ("ZTP_LLDP_WAIT", "5"),
        ("ZTP_IMAGE_DIR", b.root.path().to_str().unwrap()),
    ];
    let o = b.python(&["cumulus/ztp.py", &url], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(b.read("startup-config"), config_of(&d, "cl1"));
    assert_eq!(state_of(&d, "cl1"), "deployed");

    // A script without the marker is not run.
    let generic = format!("http://127.0.0.1:{}/files/bootstrap/generic", d.http.port());
    let o = b.python(&["cumulus/ztp.py", &generic], &env);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
}

#[test]
fn generic_linux_host_runs_the_option_67_script_with_lldpd() {
    let d = daemon();
    let b = Box_::new(
        "H0000000008",
        "linux-host",
        "02:00:00:00:00:08",
        "eth1,spine1,swp8",
    );
    let url = format!("http://127.0.0.1:{}/files/bootstrap/generic", d.http.port());
    if let Some(offer) = dhcp(&d, &b, "127.0.0.9", &[]) {
        assert_eq!(offer["yiaddr"], "127.0.0.18", "{offer}");
        assert_eq!(option_text(&offer, 67).as_deref(), Some(url.as_str()));
    }
    let script = b.put("generic.sh", &http_bytes(&d, "/files/bootstrap/generic"));
    let lldpcli = vendors_dir().join("generic/lldpcli");
    let cfg = b.path("startup-config");
    let o = Command::new("sh")
        .arg(&script)
        .env("STANDIN_NEIGHBORS", b.neighbors)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("ZTP_SERIAL", b.serial)
        .env("ZTP_MODEL", b.model)
        .env("ZTP_MAC", b.mac)
        .env("ZTP_LLDPCLI", lldpcli)
        .env("ZTP_LLDP_WAIT", "5")
        .env("ZTP_CONFIG_PATH", &cfg)
        .env("ZTP_IMAGE_DIR", b.root.path())
        .output()
        .expect("run sh");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(b.read("startup-config"), config_of(&d, "host1"));
    assert_eq!(state_of(&d, "host1"), "deployed");
}
