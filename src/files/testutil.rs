//! A hand-built plan snapshot for unit tests of the file services.

use std::collections::BTreeMap;
use std::path::Path;

use crate::plan::model::{ApprovalMode, Device, DeviceModel, Model, Role, Site};
use crate::settings::{Resolved, Settings};
use crate::snapshot::Snapshot;
use crate::vendor::Vendor;

fn device_model(name: &str, vendor: Vendor) -> DeviceModel {
    DeviceModel {
        name: name.into(),
        vendor,
        match_model: name.to_uppercase(),
        ports: vec!["Ethernet1".into()],
        template: Some(format!("{name}.j2")),
        software: None,
        patch: None,
        dhcp_options: BTreeMap::new(),
    }
}

fn device(name: &str, model: &str, serial: &str, ip: [u8; 4]) -> Device {
    Device {
        name: name.into(),
        model: model.into(),
        serial: serial.into(),
        mac: None,
        ip: Some(ip.into()),
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

/// leaf1 (arista, SER1, 10.0.0.11) and rtr1 (cisco-ios, CIS1, 10.0.0.21).
pub fn model() -> Model {
    let mut models = BTreeMap::new();
    models.insert("leaf".into(), device_model("leaf", Vendor::Arista));
    models.insert("rtr".into(), device_model("rtr", Vendor::CiscoIos));
    Model {
        sites: vec![Site {
            name: "lab".into(),
            file: "plans/lab.toml".into(),
            server_ip: Some([10, 0, 0, 1].into()),
            server_ip6: None,
            dhcp: None,
            dhcp6: None,
            approval: ApprovalMode::Auto,
            replacement: ApprovalMode::Manual,
            snmp: None,
            models,
            devices: vec![
                device("leaf1", "leaf", "SER1", [10, 0, 0, 11]).into(),
                device("rtr1", "rtr", "CIS1", [10, 0, 0, 21]).into(),
            ],
            links: Default::default(),
            groups: BTreeMap::new(),
        }],
        ..Default::default()
    }
}

/// A snapshot rooted at `root` (which holds `files/` and `device_credentials/`).
pub fn snapshot(root: &Path) -> Snapshot {
    let resolved = Resolved {
        root: root.to_path_buf(),
        file: None,
        settings: Settings::default(),
    };
    let mut s = Snapshot::empty(resolved);
    s.model = model();
    s.topology = std::sync::Arc::new(crate::topology::PlannedTopology::from_model(&s.model));
    let configs = std::sync::Arc::make_mut(&mut s.configs);
    configs.insert("leaf1".into(), "hostname leaf1\n".into());
    configs.insert("rtr1".into(), "hostname rtr1\n".into());
    std::sync::Arc::make_mut(&mut s.bootstrap)
        .insert("generic".into(), "#!/bin/sh\necho generic\n".into());
    s.version = 1;
    s
}
