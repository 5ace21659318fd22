//! The large-plan generator (`examples/gen_plan.rs`) must write a plan that is
//! valid by construction, or the validate benchmark measures error reporting
//! instead of validation. These checks read the generated TOML independently
//! of the plan loader.

#[path = "../examples/gen_plan.rs"]
#[allow(dead_code)]
mod gen_plan;

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use ztpd::plan::ports;
use ztpd::vendor::Vendor;

fn generate(devices: u32, links: u32, models: u32) -> (tempfile::TempDir, toml::Table) {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = gen_plan::Options {
        out: dir.path().to_path_buf(),
        devices,
        links,
        models,
    };
    gen_plan::generate(&opts).expect("generator succeeds");
    let text = std::fs::read_to_string(dir.path().join("plans/big.toml")).expect("plan written");
    let plan: toml::Table = toml::from_str(&text).expect("generated plan is TOML");
    (dir, plan)
}

fn s<'a>(v: &'a toml::Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("`{key}` missing or not a string in {v}"))
}

fn parse_subnet(text: &str) -> (u32, u32) {
    let (addr, len) = text.split_once('/').expect("subnet a.b.c.d/len");
    let addr: Ipv4Addr = addr.parse().expect("subnet address");
    let len: u32 = len.parse().expect("prefix length");
    let mask = u32::MAX << (32 - len);
    (u32::from(addr) & mask, mask)
}

#[test]
fn default_sized_plan_has_the_requested_counts_and_unique_identities() {
    let (_dir, plan) = generate(10_000, 20_000, 50);
    let devices = plan["devices"].as_array().expect("devices");
    let links = plan["links"].as_array().expect("links");
    let models = plan["models"].as_table().expect("models");
    assert_eq!(devices.len(), 10_000);
    assert_eq!(links.len(), 20_000);
    assert_eq!(models.len(), 50);

    for key in ["name", "serial", "mac", "ip"] {
        let mut seen = HashSet::new();
        for d in devices {
            assert!(seen.insert(s(d, key)), "duplicate {key} {}", s(d, key));
        }
    }
    for d in devices {
        for key in ["name", "serial"] {
            assert!(
                s(d, key)
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{key} {} has characters outside [A-Za-z0-9._-]",
                s(d, key)
            );
        }
    }
}

#[test]
fn addresses_sit_in_the_subnet_outside_the_pool_and_server() {
    let (_dir, plan) = generate(10_000, 20_000, 50);
    let dhcp = &plan["dhcp"];
    let (net, mask) = parse_subnet(s(dhcp, "subnet"));
    let (lo, hi) = s(dhcp, "pool").split_once('-').expect("pool lo-hi");
    let lo = u32::from(lo.parse::<Ipv4Addr>().expect("pool start"));
    let hi = u32::from(hi.parse::<Ipv4Addr>().expect("pool end"));
    let server = u32::from(
        s(&plan["site"], "server_ip")
            .parse::<Ipv4Addr>()
            .expect("server"),
    );
    assert!(lo <= hi);
    assert_eq!(lo & mask, net, "pool start outside subnet");
    assert_eq!(hi & mask, net, "pool end outside subnet");
    assert!(hi < net | !mask, "pool includes the broadcast address");
    for d in plan["devices"].as_array().expect("devices") {
        let ip = u32::from(s(d, "ip").parse::<Ipv4Addr>().expect("device ip"));
        assert_eq!(ip & mask, net, "{} outside the subnet", s(d, "ip"));
        assert!(!(lo..=hi).contains(&ip), "{} inside the pool", s(d, "ip"));
        assert_ne!(ip, server, "device on the server address");
        assert_ne!(ip, net, "device on the network address");
    }
}

#[test]
fn every_link_uses_real_distinct_ports_and_every_reference_exists() {
    let (dir, plan) = generate(10_000, 20_000, 50);
    let models = plan["models"].as_table().expect("models");
    let mut model_ports: BTreeMap<&str, (Vendor, HashSet<String>)> = BTreeMap::new();
    for (name, m) in models {
        let vendor = Vendor::from_name(s(m, "vendor")).expect("known vendor");
        let mut set = HashSet::new();
        for spec in m["ports"].as_array().expect("ports") {
            let spec = spec.as_str().expect("port spec");
            for p in ports::expand(vendor, spec).expect("port spec expands") {
                assert!(set.insert(p.clone()), "model {name} lists {p} twice");
            }
        }
        let template = dir.path().join("templates").join(s(m, "template"));
        assert!(template.is_file(), "missing {}", template.display());
        if let Some(sw) = m.get("software") {
            let image = dir.path().join("files").join(s(sw, "image"));
            assert!(image.is_file(), "missing {}", image.display());
        }
        model_ports.insert(name, (vendor, set));
    }
    let model_of: BTreeMap<&str, &str> = plan["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| (s(d, "name"), s(d, "model")))
        .collect();

    let mut used = HashSet::new();
    for link in plan["links"].as_array().expect("links") {
        let mut devices = Vec::new();
        for end in ["a", "b"] {
            let (device, port) = s(link, end).split_once(':').expect("device:port");
            let model = model_of
                .get(device)
                .unwrap_or_else(|| panic!("unknown device {device}"));
            let (vendor, ports) = &model_ports[model];
            let canonical = ports::canonical(*vendor, port);
            assert!(
                ports.contains(&canonical),
                "{device} ({model}) has no port {port}"
            );
            assert!(
                used.insert(format!("{device}:{canonical}")),
                "{device}:{canonical} used by two links"
            );
            devices.push(device);
        }
        assert_ne!(devices[0], devices[1], "link from {} to itself", devices[0]);
    }
}

#[test]
fn output_is_deterministic() {
    let (a, _) = generate(300, 700, 12);
    let (b, _) = generate(300, 700, 12);
    for file in [
        "plans/big.toml",
        "templates/model-00.j2",
        "templates/model-11.j2",
    ] {
        let x = std::fs::read(a.path().join(file)).expect("first run");
        let y = std::fs::read(b.path().join(file)).expect("second run");
        assert!(x == y, "{file} differs between two runs");
    }
}

#[test]
fn impossible_sizes_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = gen_plan::generate(&gen_plan::Options {
        out: dir.path().to_path_buf(),
        devices: 2,
        links: 10_000,
        models: 1,
    })
    .expect_err("10,000 links between 2 devices need more ports than a range allows");
    assert!(err.contains("ports per device"), "{err}");
}

/// The loader itself accepts what the generator writes (at a tenth of the
/// benchmark size, to keep the debug-build test quick).
#[test]
fn generated_plan_passes_ztpd_validate_without_warnings() {
    let (dir, _) = generate(1_000, 2_000, 50);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .args(["validate", "--deny-warnings", "--format", "json"])
        .arg(dir.path().join("plans/big.toml"))
        .output()
        .expect("run ztpd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "ztpd validate rejected the generated plan:\n{}\n{}",
        stdout.chars().take(4000).collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["valid"], true);
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(0));
}
