//! Arbitrary bytes into the ZTP device protocol's JSON handlers (hello,
//! neighbours, progress) and, for hellos that parse, the hello decision on a
//! small plan (with the hello also stored as another device's report, through
//! the neighbourhood index): they must answer Ok or a message, never panic, and whatever
//! they accept must respect the documented limits (and hold no control
//! character: device strings are printed in terminals).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ztpd::plan::model::{ApprovalMode, Model};
use ztpd::settings::{Resolved, Settings};
use ztpd::topology::ReportIndex;
use ztpd::topology::{PlannedTopology, Reported};
use ztpd::ztp::hello;

const PLAN: &str = r#"
[site]
name = "fuzz"
server_ip = "10.10.0.1"
[models.spine]
vendor = "arista"
match = "DCS-7280SR-48C6"
ports = ["Ethernet1-8"]
[models.leaf]
vendor = "arista"
match = "DCS-7050SX-64"
ports = ["Ethernet1-52"]
[[devices]]
name = "spine1"
model = "spine"
serial = "S1"
role = "root"
[[devices]]
name = "leaf1"
model = "leaf"
serial = "L1"
[[devices]]
name = "leaf2"
model = "leaf"
serial = "L2"
[[links]]
a = "spine1:Ethernet1"
b = "leaf1:Ethernet49"
[[links]]
a = "spine1:Ethernet2"
b = "leaf2:Ethernet49"
"#;

fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let resolved = Resolved {
            root: Path::new("/nonexistent-ztpd-fuzz-root").to_path_buf(),
            file: None,
            settings: Settings::default(),
        };
        ztpd::plan::load_texts(&resolved, [(Path::new("plans/fuzz.toml"), PLAN)]).model
    })
}

fn topology() -> &'static PlannedTopology {
    static T: OnceLock<PlannedTopology> = OnceLock::new();
    T.get_or_init(|| PlannedTopology::from_model(model()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 | 1 => {
            let header = (which % 4 == 1).then_some("L1");
            if let Ok(h) = hello::parse_hello(body, header) {
                assert!(h.serial.len() <= 128 && h.model.len() <= hello::MAX_FIELD);
                assert!(h.neighbors.len() <= hello::MAX_NEIGHBORS);
                // Device strings reach terminals: no control character.
                let printable = |v: &str| !v.chars().any(char::is_control);
                assert!(printable(&h.model) && h.version.as_deref().is_none_or(printable));
                assert!(h.neighbors.iter().all(|n| {
                    printable(&n.local_port)
                        && printable(&n.remote_device)
                        && printable(&n.remote_port)
                }));
                if let Some((_, d)) = model().devices().find(|(_, d)| d.serial == h.serial) {
                    // The hello as a stored report of another device too, so
                    // the neighbourhood index sees fuzzed ports and names.
                    let mine = Reported {
                        device: d.name.clone(),
                        model: Some(h.model.clone()),
                        neighbors: h.neighbors.clone(),
                    };
                    let mut index = ReportIndex::default();
                    let other = if d.name == "leaf1" { "leaf2" } else { "leaf1" };
                    index.rebuild(
                        topology(),
                        1,
                        vec![Reported {
                            device: other.into(),
                            ..mine.clone()
                        }],
                    );
                    let others = index
                        .near(topology(), &mine)
                        .unwrap_or_else(|| index.all_but(topology(), &d.name));
                    for mode in [ApprovalMode::Auto, ApprovalMode::Manual] {
                        let _ = hello::decide(topology(), &d.name, &h, &others, false, mode);
                    }
                }
            }
        }
        2 => {
            if let Ok(n) = hello::parse_neighbors(body) {
                assert!(n.neighbors.len() <= hello::MAX_NEIGHBORS);
            }
        }
        _ => {
            if let Ok(p) = hello::parse_progress(body) {
                assert!(p.stage.reportable());
                assert!(p.percent.is_none_or(|p| p <= 100));
                assert!(p.message.len() <= hello::MAX_MESSAGE);
                assert!(!p.message.chars().any(char::is_control));
                for v in [&p.version, &p.action].into_iter().flatten() {
                    assert!(!v.trim().is_empty() && v.len() <= hello::MAX_FIELD);
                }
            }
        }
    }
});
