//! What a simulated switch is (from the plan) and the faults it can be
//! given: shared by the ZTP flow (`simulate`) and the agent (`agent`).

use clap::ValueEnum;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// Report another model string than the plan's `match`.
    WrongModel,
    /// The first uplink is plugged into an unplanned local port.
    MovePort,
    /// The first two cables are exchanged (needs two planned links).
    Swap,
    /// Agents: an upgrade reports `failed`.
    UpgradeFails,
    /// Agents: never reports after rebooting.
    UpgradeSilent,
    /// Agents: comes back from an upgrade with a port moved.
    UpgradeMiscabled,
}

impl Fault {
    /// Faults of the ZTP flow itself (the first hello), as opposed to
    /// faults of an agent's upgrades.
    pub fn is_cabling(self) -> bool {
        matches!(self, Fault::WrongModel | Fault::MovePort | Fault::Swap)
    }
}

/// `--fault KIND[:DEVICE,DEVICE...]`: a fault for the listed devices (names
/// or serials), or for every device when there is no list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub kind: Fault,
    pub devices: Option<Vec<String>>,
}

impl std::str::FromStr for FaultSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultSpec, String> {
        let (kind, list) = match s.split_once(':') {
            Some((k, l)) => (k, Some(l)),
            None => (s, None),
        };
        let kind = Fault::from_str(kind.trim(), true).map_err(|_| {
            format!(
                "unknown fault {kind:?}; expected one of wrong-model, move-port, swap, \
                 upgrade-fails, upgrade-silent, upgrade-miscabled, optionally :DEVICE,DEVICE..."
            )
        })?;
        let devices = match list {
            None => None,
            Some(l) => {
                let names: Vec<String> = l
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(format!("--fault {s}: expected device names after `:`"));
                }
                Some(names)
            }
        };
        Ok(FaultSpec { kind, devices })
    }
}

/// The faults of `specs` that apply to the device `name` / `serial`.
pub fn faults_for(specs: &[FaultSpec], name: &str, serial: &str) -> Vec<Fault> {
    specs
        .iter()
        .filter(|f| {
            f.devices
                .as_ref()
                .is_none_or(|l| l.iter().any(|d| d == name || d == serial))
        })
        .map(|f| f.kind)
        .collect()
}

/// One simulated switch, from the plan.
#[derive(Debug, Clone)]
pub struct Switch {
    pub name: String,
    pub mac_bytes: Option<[u8; 6]>,
    pub planned_ip: Option<std::net::Ipv4Addr>,
    pub planned_ip6: Option<std::net::Ipv6Addr>,
    /// The planned DUID; without one a DHCPv6 lease uses a DUID-LL of `mac_bytes`.
    pub duid: Option<Vec<u8>>,
    pub serial: String,
    pub mac: String,
    pub model: String,
    pub neighbors: Vec<Value>,
    /// Every fault that applies to this switch.
    pub faults: Vec<Fault>,
    /// With `upgrade-miscabled`: the neighbours it reports after an upgrade.
    pub miscabled: Option<Vec<Value>>,
}

/// The software version a simulated switch runs until an agent upgrades it.
pub const SIM_VERSION: &str = "sim-1";

/// Point a URL ztpd gave (built from `site.server_ip`) at the server we talk to.
pub fn rebase(url: &str, server: &str) -> String {
    match url
        .strip_prefix("http://")
        .and_then(|r| r.find('/').map(|i| &r[i..]))
    {
        Some(path) => format!("{}{path}", server.trim_end_matches('/')),
        None => url.to_string(),
    }
}
