//! SONiC as its own ZTP code drives a box (sonic-net/sonic-ztp): DHCP as
//! SONiC's dhclient.conf asks (user class `SONiC-ZTP`, client-id
//! `SONiC##<product>##<serial>`, option 60 `<vendor>:<product>`), then the
//! `ztp.json` named by option 67 processed by the engine's rules, which this
//! test carries out itself (the engine is not in the repository; the closing
//! note of #16 says how the real one was run against ztpd):
//! - sections in sorted order; only object values are sections;
//! - a section's plugin is `plugin.dynamic-url` / `plugin.url` (downloaded and
//!   run as an executable) or the section name without its `NN-` prefix, one of
//!   SONiC's plugins (`firmware`, `configdb-json`, ...);
//! - `dynamic-url` = `prefix` + the identifier (`serial-number`: the EEPROM
//!   serial) + `suffix`, fetched with the `SERIAL-NUMBER`, `PRODUCT-NAME` and
//!   `BASE-MAC-ADDRESS` headers;
//! - a non-zero exit fails the section, and `halt-on-failure` stops ZTP;
//! - `firmware` runs `install.pre-check` first and installs only when it
//!   exits 0; `configdb-json` loads the downloaded config and copies it to
//!   the startup config.
//!
//! On the box, `decode-syseeprom`, `sonic-installer` and `lldpcli` are
//! stand-ins written for this test: the first two answer as SONiC's tools do
//! for the flags the scripts use and refuse others; `lldpcli` prints a fixed
//! neighbour table in lldpd's JSON form (the generic script's parsing of real
//! lldpd output is tested in tests/ztp_lab_fabric.rs; here the neighbour is
//! what decides whether the engine goes on).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::netns::{hex, unhex, Lab, SERVER};

const SERIAL: &str = "AS7326X9";
const PRODUCT: &str = "AS7326-56X";
const MAC: &str = "02:00:00:00:01:19";
const IMAGE: &[u8] = b"SONiC image bytes for the test\n";
const BUILTIN_PLUGINS: [&str; 6] = [
    "configdb-json",
    "connectivity-check",
    "download",
    "firmware",
    "graphservice",
    "snmp",
];

fn plan() -> String {
    format!(
        "{}\n[models.sonicleaf]\nvendor = \"sonic\"\nmatch = \"{PRODUCT}\"\n\
         ports = [\"Ethernet0-3\"]\ntemplate = \"sonic-leaf.j2\"\n\
         software = {{ image = \"images/sonic.bin\", version = \"202311.1\" }}\n\n\
         [models.spine]\nvendor = \"generic\"\nmatch = \"spine\"\nports = [\"Ethernet1-4\"]\n\n\
         [[devices]]\nname = \"spine1\"\nmodel = \"spine\"\nserial = \"SP1\"\n\n\
         # No MAC: the box is known by the serial in SONiC's client-id.\n\
         [[devices]]\nname = \"leaf9\"\nmodel = \"sonicleaf\"\nserial = \"{SERIAL}\"\nip = \"10.201.0.31\"\n\n\
         [[links]]\na = \"spine1:Ethernet1\"\nb = \"leaf9:Ethernet0\"\n",
        Lab::plan()
    )
}

const TEMPLATE: &str = r#"{"DEVICE_METADATA": {"localhost": {"hostname": "{{ device.name }}", "hwsku": "Accton-AS7326-56X"}}}
"#;

fn lab(tag: &str) -> Option<Lab> {
    Lab::build(tag, "fsync", &plan(), |root, b| {
        fs::create_dir_all(root.join("files/images")).unwrap();
        fs::write(root.join("files/images/sonic.bin"), IMAGE).unwrap();
        fs::write(root.join("templates/sonic-leaf.j2"), TEMPLATE).unwrap();
        b
    })
}

fn script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The box: stand-in tools, and where the engine keeps its files.
fn sonic_box(dir: &Path, neighbour_port: &str) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    script(
        &dir.join("bin/decode-syseeprom"),
        &format!(
            "#!/bin/sh\ncase \"$1\" in -s) echo {SERIAL} ;; -p) echo {PRODUCT} ;; -m) echo {MAC} ;;\n\
             *) echo \"decode-syseeprom stand-in: unexpected $*\" >&2; exit 2 ;; esac\n"
        ),
    );
    script(
        &dir.join("bin/sonic-installer"),
        &format!(
            "#!/bin/sh\ncase \"$1\" in\n  list) printf 'Current: SONiC-OS-202305.1\\nNext: SONiC-OS-202305.1\\nAvailable:\\nSONiC-OS-202305.1\\n' ;;\n\
             \x20 install) [ \"$2\" = -y ] && cp \"$3\" {d}/installed-image ;;\n\
             \x20 *) echo \"sonic-installer stand-in: unexpected $*\" >&2; exit 2 ;;\nesac\n",
            d = dir.display()
        ),
    );
    let table = json!({"lldp": {"interface": {"Ethernet0": {
        "via": "LLDP",
        "chassis": {"spine1": {"id": {"type": "mac", "value": "02:00:00:00:09:01"}}},
        "port": {"id": {"type": "ifname", "value": neighbour_port}, "descr": neighbour_port}
    }}}});
    fs::write(
        dir.join("lldp.json"),
        serde_json::to_string_pretty(&table).unwrap(),
    )
    .unwrap();
    script(
        &dir.join("bin/lldpcli"),
        &format!("#!/bin/sh\ncat {}/lldp.json\n", dir.display()),
    );
}

/// curl in the box's namespace with SONiC's download headers.
fn download(lab: &Lab, url: &str, dest: &Path) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &lab.cli, "curl", "-fsS", "-o"])
        .arg(dest)
        .args(["-H", &format!("SERIAL-NUMBER: {SERIAL}")])
        .args(["-H", &format!("PRODUCT-NAME: {PRODUCT}")])
        .args(["-H", &format!("BASE-MAC-ADDRESS: {MAC}")])
        .arg(url)
        .status()
        .is_ok_and(|s| s.success())
}

/// Run an executable in the box; its exit code.
fn run(lab: &Lab, dir: &Path, exe: &Path) -> i32 {
    fs::set_permissions(exe, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.cli, "env"])
        .arg(format!("PATH={}/bin:/usr/bin:/bin", dir.display()))
        .arg(format!(
            "ZTP_SONIC_CONFIG_DB={}/config_db.json",
            dir.display()
        ))
        .arg("ZTP_LLDP_WAIT=0")
        .arg(exe)
        .output()
        .unwrap();
    eprintln!(
        "{}: {}{}",
        exe.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.code().unwrap_or(-1)
}

fn dynamic_url(v: &Value) -> String {
    let src = &v["source"];
    assert_eq!(src["identifier"], "serial-number", "{v}");
    format!(
        "{}{SERIAL}{}",
        src["prefix"].as_str().unwrap_or(""),
        src["suffix"].as_str().unwrap_or("")
    )
}

/// The engine's pass over the sections; the names of those that succeeded.
fn run_engine(lab: &Lab, ztp: &Value, dir: &Path) -> Vec<String> {
    let sections = ztp["ztp"].as_object().expect("ztp object");
    let mut names: Vec<&String> = sections
        .iter()
        .filter(|(_, v)| v.is_object())
        .map(|(k, _)| k)
        .collect();
    names.sort();
    let mut done = Vec::new();
    for name in names {
        let sec = &sections[name];
        if name.ends_with("-deployed") {
            // Config fetched, image installed: still not deployed until the
            // engine reaches its last section.
            assert_ne!(state(lab)["state"], "deployed", "before {name}");
        }
        let ok = match sec["plugin"]
            .get("dynamic-url")
            .or(sec["plugin"].get("url"))
        {
            Some(u) => {
                let url = if u.is_string() {
                    u.as_str().unwrap().to_string()
                } else {
                    dynamic_url(u)
                };
                let exe = dir.join(format!("{name}.plugin"));
                download(lab, &url, &exe) && run(lab, dir, &exe) == 0
            }
            None => {
                let plugin = name.split_once('-').map_or(name.as_str(), |(_, p)| p);
                assert!(
                    BUILTIN_PLUGINS.contains(&plugin),
                    "{name}: no SONiC plugin {plugin}"
                );
                match plugin {
                    "firmware" => firmware(lab, dir, &sec["install"]),
                    "configdb-json" => configdb_json(lab, dir, sec),
                    other => panic!("the test runs no {other} plugin"),
                }
            }
        };
        if ok {
            done.push(name.clone());
        } else if sec["halt-on-failure"] == true {
            break;
        }
    }
    done
}

fn firmware(lab: &Lab, dir: &Path, install: &Value) -> bool {
    let check = dir.join("pre-check");
    assert!(download(
        lab,
        &dynamic_url(&install["pre-check"]["dynamic-url"]),
        &check
    ));
    if run(lab, dir, &check) != 0 {
        return true; // the plugin skips the install
    }
    let image = dir.join("image");
    download(lab, &dynamic_url(&install["dynamic-url"]), &image)
        && Command::new(dir.join("bin/sonic-installer"))
            .args(["install", "-y"])
            .arg(&image)
            .status()
            .is_ok_and(|s| s.success())
}

fn configdb_json(lab: &Lab, dir: &Path, sec: &Value) -> bool {
    let tmp = dir.join("downloaded_config_db.json");
    if !download(lab, &dynamic_url(&sec["dynamic-url"]), &tmp) {
        return false;
    }
    // `config reload` refuses what is not JSON.
    let text = fs::read_to_string(&tmp).unwrap();
    if serde_json::from_str::<Value>(&text).is_err() {
        return false;
    }
    fs::copy(&tmp, dir.join("config_db.json")).is_ok()
}

fn state(lab: &Lab) -> Value {
    lab.api("devices")
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "leaf9")
        .cloned()
        .unwrap()
}

/// DHCP as SONiC's dhclient.conf sends it; the ztp.json URL (option 67).
fn sonic_dhcp(lab: &Lab) -> String {
    let args = [
        "-V".to_string(),
        format!("Accton:{PRODUCT}"),
        "-x".into(),
        format!("77:{}", hex(b"SONiC-ZTP")),
        "-x".into(),
        format!(
            "61:{}",
            hex(format!("SONiC##{PRODUCT}##{SERIAL}").as_bytes())
        ),
        "-O".into(),
        "239".into(),
    ];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = lab.udhcpc(MAC, &a).expect("SONiC's DHCP request answered");
    assert_eq!(
        env.get("ip").map(String::as_str),
        Some("10.201.0.31"),
        "known by client-id"
    );
    lab.add_client_address("10.201.0.31/24");
    let bootfile = env
        .get("opt67")
        .map(|h| String::from_utf8(unhex(h)).unwrap())
        .or_else(|| env.get("bootfile").cloned())
        .expect("option 67");
    assert_eq!(
        bootfile,
        format!("http://{SERVER}:{}/files/bootstrap/sonic", lab.http_port)
    );
    bootfile
}

fn fetch_ztp_json(lab: &Lab, url: &str, dir: &Path) -> Value {
    let p = dir.join("ztp.json");
    assert!(download(lab, url, &p));
    serde_json::from_str(&fs::read_to_string(p).unwrap()).expect("ztp.json is JSON")
}

#[test]
fn sonic_engine_deploys_only_when_its_last_section_runs() {
    let Some(lab) = lab("son") else { return };
    let url = sonic_dhcp(&lab);
    let dir = lab.daemon.path("sonic-box");
    sonic_box(&dir, "Ethernet1");
    let ztp = fetch_ztp_json(&lab, &url, &dir);
    // One document for every requester: the same bytes without headers.
    let (code, plain) = lab.curl_from("10.201.0.31", "/files/bootstrap/sonic", &[]);
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&plain).unwrap(), ztp);
    for (name, sec) in ztp["ztp"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.is_object())
    {
        assert_eq!(sec["halt-on-failure"], true, "{name}");
    }
    let done = run_engine(&lab, &ztp, &dir);
    assert_eq!(
        done,
        [
            "01-ztpd-hello",
            "02-firmware",
            "03-configdb-json",
            "04-ztpd-deployed"
        ]
    );
    // The image went through `firmware` (the running 202305.1 is not the plan's).
    assert_eq!(fs::read(dir.join("installed-image")).unwrap(), IMAGE);
    let cfg: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config_db.json")).unwrap()).unwrap();
    assert_eq!(cfg["DEVICE_METADATA"]["localhost"]["hostname"], "leaf9");
    let s = state(&lab);
    assert_eq!(s["state"], "deployed", "{s}");
}

#[test]
fn a_topology_mismatch_stops_the_sonic_engine_before_any_config() {
    let Some(lab) = lab("sox") else { return };
    let url = sonic_dhcp(&lab);
    let dir = lab.daemon.path("sonic-box");
    sonic_box(&dir, "Ethernet3"); // cabled to the wrong spine port
    let ztp = fetch_ztp_json(&lab, &url, &dir);
    let done = run_engine(&lab, &ztp, &dir);
    assert!(done.is_empty(), "sections that ran: {done:?}");
    assert!(!dir.join("config_db.json").exists());
    assert!(!dir.join("installed-image").exists());
    let s = state(&lab);
    assert_eq!(s["state"], "topology_mismatch", "{s}");
    // Fetching the config or running the last section by hand changes nothing.
    let (code, _) = lab.curl_from(
        "10.201.0.31",
        &format!("/files/bootstrap/sonic/{SERIAL}/deployed"),
        &[],
    );
    assert_eq!(
        code, 200,
        "the script is open; what it reports is what counts"
    );
    let exe = dir.join("deployed-by-hand");
    assert!(download(
        &lab,
        &format!(
            "http://{SERVER}:{}/files/bootstrap/sonic/{SERIAL}/deployed",
            lab.http_port
        ),
        &exe
    ));
    fs::write(dir.join("config_db.json"), "{}").unwrap();
    assert_ne!(
        run(&lab, &dir, &exe),
        0,
        "ztpd refuses deployed from a refused device"
    );
    assert_ne!(state(&lab)["state"], "deployed");
}
