//! A plan model with one device of every vendor profile, for unit tests,
//! the fuzz target and load tools. Not part of the public contract.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::plan::model::{
    ApprovalMode, Device, DeviceModel, DhcpPlan, Model, OptionValue, Role, Site, Software,
};
use crate::vendor::Vendor;

pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
pub const HTTP_PORT: u16 = 8080;

fn model(name: &str, vendor: Vendor, matches: &str) -> DeviceModel {
    DeviceModel {
        name: name.into(),
        vendor,
        match_model: matches.into(),
        ports: Vec::new(),
        template: None,
        software: None,
        patch: None,
        dhcp_options: BTreeMap::new(),
    }
}

/// The MAC of planned device number `n` (1-based).
pub fn planned_mac(n: u8) -> [u8; 6] {
    [0x02, 0x1c, 0x73, 0, 0, n]
}

/// Site `lab`: subnet 10.10.0.0/24, pool .100-.109 (small, to test exhaustion),
/// and one planned device per vendor at 10.10.0.<n>, named `<vendor>1`, serial
/// `SER-<vendor>`, MAC `planned_mac(n)`.
pub fn lab_model() -> Model {
    let mut models = BTreeMap::new();
    for v in Vendor::ALL {
        let mut m = model(v.name(), v, &format!("MODEL-{}", v.name()));
        if v == Vendor::Juniper || v == Vendor::Onie {
            m.software = Some(Software {
                image: format!("images/{}.bin", v.name()),
                version: "1.0".into(),
            });
        }
        models.insert(v.name().to_string(), m);
    }
    let mut overridden = model("arista-custom", Vendor::Arista, "DCS-CUSTOM");
    overridden.dhcp_options.insert(
        67,
        OptionValue::Text("http://example.invalid/custom.sh".into()),
    );
    overridden.dhcp_options.insert(
        150,
        OptionValue::List(vec!["10.10.0.1".into(), "10.10.0.2".into()]),
    );
    overridden
        .dhcp_options
        .insert(43, OptionValue::Text("0x0102ab".into()));
    models.insert("arista-custom".into(), overridden);
    let mut devices: Vec<Device> = Vendor::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| device(&format!("{}1", v.name()), v.name(), i as u8 + 2))
        .collect();
    devices.push(device("custom1", "arista-custom", 20));
    // A planned device with no address: pool address, but its options.
    let mut sensor = device("sensor1", "generic", 21);
    sensor.ip = None;
    devices.push(sensor);
    Model {
        sites: vec![Site {
            name: "lab".into(),
            file: "plans/lab.toml".into(),
            server_ip: Some(SERVER),
            server_ip6: None,
            dhcp6: None,
            dhcp: Some(DhcpPlan {
                interface: None,
                subnet: "10.10.0.0/24".parse().expect("literal subnet"),
                pool: (Ipv4Addr::new(10, 10, 0, 100), Ipv4Addr::new(10, 10, 0, 109)),
                router: Some(SERVER),
                dns: vec![SERVER],
                domain: Some("lab.example".into()),
                lease_time: Duration::from_secs(3600),
            }),
            approval: ApprovalMode::Auto,
            replacement: ApprovalMode::Manual,
            snmp: None,
            models,
            devices: devices.into_iter().map(Arc::new).collect(),
            links: Default::default(),
            groups: BTreeMap::new(),
        }],
        ..Default::default()
    }
}

fn device(name: &str, model: &str, n: u8) -> Device {
    let serial = format!("SER-{name}");
    Device {
        name: name.into(),
        model: model.into(),
        serial,
        mac: Some(planned_mac(n)),
        ip: Some(Ipv4Addr::new(10, 10, 0, n)),
        ip6: None,
        duid: None,
        role: Role::Device,
        vars: serde_json::Map::new(),
        device_function: None,
        tags: serde_json::Map::new(),
        bound: None,
        defined_at: None,
    }
}

/// ztpd's IPv6 address in [`lab_model6`].
pub const SERVER6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 1);

/// The planned DUID (a DUID-LL) of the SONiC device in [`lab_model6`].
pub const SONIC_DUID: [u8; 10] = [0, 3, 0, 1, 0x02, 0xaa, 0, 0, 0, 0x11];

/// [`lab_model`] made dual-stack: `[dhcp6]` 2001:db8:10::/64, pool
/// ::1000-::1003 (small, to test exhaustion), every planned device at
/// 2001:db8:10::<n>, and the SONiC one with a planned DUID.
pub fn lab_model6() -> Model {
    let mut m = lab_model();
    let site = &mut m.sites[0];
    site.server_ip6 = Some(SERVER6);
    site.dhcp6 = Some(crate::plan::model::Dhcp6Plan {
        interface: None,
        subnet: "2001:db8:10::/64".parse().expect("literal"),
        pool: (
            "2001:db8:10::1000".parse().expect("literal"),
            "2001:db8:10::1003".parse().expect("literal"),
        ),
        dns: vec![SERVER6],
        domain: Some("lab.example".into()),
        lease_time: Duration::from_secs(3600),
        preferred_time: Duration::from_secs(2250),
        advertise: false,
        router6: None,
    });
    for d in site.devices.iter_mut().map(Arc::make_mut) {
        if let Some(ip) = d.ip {
            let n = ip.octets()[3];
            d.ip6 = Some(std::net::Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x10,
                0,
                0,
                0,
                0,
                n.into(),
            ));
        }
        if d.name == "sonic1" {
            d.duid = Some(SONIC_DUID.to_vec());
        }
    }
    m
}
