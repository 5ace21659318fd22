//! The validated plan model. Built only by `plan::compile` from raw types that
//! passed every check; nothing downstream sees a raw type.
//!
//! Fields are public for reading (services build their own views from them);
//! the invariants hold because the only constructor is the compiler. We chose
//! public fields over getters to keep the many small view builders short.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use super::diagnostic::Located;
use crate::hinted_index::HintedIndex;
use crate::mac::Mac;
use crate::vendor::Vendor;

/// All plans the daemon serves: one [`Site`] per plan file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Model {
    pub sites: Vec<Site>,
    /// Every device function a planned device names, read once by the plan
    /// loader, as the JSON object its credential carries.
    #[serde(skip)]
    pub device_functions: BTreeMap<String, serde_json::Value>,
    /// Where each device is, by name and by serial: built at the first
    /// lookup, once per model (a snapshot's model is never changed after).
    /// A scan per lookup made a 10,000-member group cost 10^8 comparisons.
    /// Shared with the models bindings make from this one, which add the
    /// bound serial as a hint instead of building it again.
    #[serde(skip)]
    pub(crate) index: std::sync::OnceLock<Arc<HintedIndex<String, (usize, usize)>>>,
}

impl Model {
    pub fn devices(&self) -> impl Iterator<Item = (&Site, &Device)> {
        self.sites
            .iter()
            .flat_map(|s| s.devices.iter().map(move |d| (s, &**d)))
    }

    /// Look a device up by name or serial (names and serials are unique
    /// across all plans; where a name equals another device's serial, the
    /// device first in plan order, as a scan would find it).
    pub fn device(&self, name_or_serial: &str) -> Option<(&Site, &Device)> {
        let named =
            |d: &Device| d.name == name_or_serial || (d.has_serial() && d.serial == name_or_serial);
        // The index is the answer, a miss included: a scan per miss made
        // every hello of a new serial (identification by position) cost
        // the fleet. Whoever changes `sites` after a lookup resets the
        // index (`Bindings::overlay` does).
        self.index()
            .find(name_or_serial, |at| self.at(at).is_some_and(named))
            .map(|(si, di)| (&self.sites[si], &*self.sites[si].devices[di]))
    }

    /// Where the device named `name` is: (site, device) indexes into
    /// `sites`, for a caller that changes it (a binding laid over the plan).
    pub fn position_of(&self, name: &str) -> Option<(usize, usize)> {
        self.index()
            .find(name, |at| self.at(at).is_some_and(|d| d.name == name))
    }

    /// This model with the device at `at` (from [`Model::position_of`])
    /// replaced by `d`, whose name is the same: the other devices, the
    /// links and the name/serial index are shared, not copied, and `d`'s
    /// serial is added to the index. What a binding costs: O(sites), not
    /// O(fleet) (each site's device list is a list of pointers).
    pub fn with_device(&self, at: (usize, usize), d: Device) -> Model {
        let index = self.index().clone();
        if d.has_serial() {
            index.hint(d.serial.clone(), at);
        }
        let mut next = self.clone();
        next.sites[at.0].devices[at.1] = Arc::new(d);
        next.index = std::sync::OnceLock::from(index);
        next
    }

    fn at(&self, (si, di): (usize, usize)) -> Option<&Device> {
        self.sites.get(si)?.devices.get(di).map(|d| &**d)
    }

    /// Names and serials to (site, device) indexes, built at the first
    /// lookup of this model.
    fn index(&self) -> &Arc<HintedIndex<String, (usize, usize)>> {
        self.index.get_or_init(|| {
            let mut m = std::collections::HashMap::new();
            for (si, site) in self.sites.iter().enumerate() {
                for (di, d) in site.devices.iter().enumerate() {
                    m.entry(d.name.clone()).or_insert((si, di));
                    // A device known by position has no serial until bound.
                    if d.has_serial() {
                        m.entry(d.serial.clone()).or_insert((si, di));
                    }
                }
            }
            Arc::new(HintedIndex::new(m))
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub name: String,
    /// The plan file this site came from.
    pub file: PathBuf,
    /// Address IPv4 devices use to reach ztpd; `None` on an IPv6-only site.
    pub server_ip: Option<Ipv4Addr>,
    /// Address IPv6 devices use to reach ztpd (required with `[dhcp6]`).
    pub server_ip6: Option<Ipv6Addr>,
    pub dhcp: Option<DhcpPlan>,
    pub dhcp6: Option<Dhcp6Plan>,
    pub approval: ApprovalMode,
    /// `[approval] replacement`: whether a new serial at a planned device's
    /// place is bound at once (`auto`) or waits for `ztpd replace` (SPEC §12).
    pub replacement: ApprovalMode,
    /// `[snmp]`: how ztpd reads LLDP from this site's deployed devices.
    pub snmp: Option<SnmpPlan>,
    pub models: BTreeMap<String, DeviceModel>,
    /// Shared one by one with the models bindings make from this one
    /// ([`Model::with_device`]): a binding copies pointers, not devices.
    pub devices: Vec<Arc<Device>>,
    /// Shared with the models bindings make (they never change cables).
    pub links: Arc<Vec<Link>>,
    pub groups: BTreeMap<String, Group>,
}

impl Site {
    /// ztpd's address for a client of `peer`'s family, the other family's
    /// when the site has none of that one (the compiler guarantees one).
    pub fn server_for(&self, peer: IpAddr) -> IpAddr {
        match crate::addr::canonical(peer) {
            IpAddr::V6(_) => self.server_v6_first(),
            IpAddr::V4(_) => self.server_v4_first(),
        }
    }

    /// ztpd's address for a device when no request tells the family: IPv6
    /// for a device planned with `ip6` and no `ip`, else IPv4 when the site
    /// has it.
    pub fn server_for_device(&self, d: &Device) -> IpAddr {
        if d.ip.is_none() && d.ip6.is_some() {
            self.server_v6_first()
        } else {
            self.server_v4_first()
        }
    }

    /// The site's IPv4 address, else its IPv6 one.
    pub fn server_v4_first(&self) -> IpAddr {
        match (self.server_ip, self.server_ip6) {
            (Some(v4), _) => IpAddr::V4(v4),
            (None, Some(v6)) => IpAddr::V6(v6),
            (None, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }

    /// The site's address of a client's family (IPv6 or not), else its other one.
    pub fn server_for_family(&self, ipv6: bool) -> IpAddr {
        if ipv6 {
            self.server_v6_first()
        } else {
            self.server_v4_first()
        }
    }

    fn server_v6_first(&self) -> IpAddr {
        match (self.server_ip6, self.server_ip) {
            (Some(v6), _) => IpAddr::V6(v6),
            _ => self.server_v4_first(),
        }
    }

    pub fn model_of(&self, d: &Device) -> &DeviceModel {
        // The compiler refuses devices with an unknown model.
        &self.models[&d.model]
    }
}

/// How ztpd reads a site's SNMP agents (SPEC §12). Communities and keys
/// are secrets: only the version is ever serialised or printed.
#[derive(Clone, Serialize)]
pub struct SnmpPlan {
    /// "2c" or "3".
    pub version: &'static str,
    #[serde(skip)]
    pub access: SnmpAccess,
}

#[derive(Clone)]
pub enum SnmpAccess {
    V2c { community: String },
    V3(SnmpV3),
}

/// SNMP v3 (USM): authentication always, privacy (AES-128) when a key is given.
#[derive(Clone)]
pub struct SnmpV3 {
    pub user: String,
    pub auth: SnmpAuth,
    pub auth_key: String,
    /// The AES privacy passphrase; `None`: authNoPriv.
    pub priv_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpAuth {
    /// usmHMACSHAAuthProtocol (HMAC-SHA-96).
    Sha,
    /// usmHMAC192SHA256AuthProtocol.
    Sha256,
}

impl std::fmt::Debug for SnmpPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SnmpPlan {{ version: {}, <secrets hidden> }}",
            self.version
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DhcpPlan {
    pub interface: Option<String>,
    pub subnet: Ipv4Net,
    /// Inclusive dynamic range.
    pub pool: (Ipv4Addr, Ipv4Addr),
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub lease_time: Duration,
}

/// A site's `[dhcp6]` section (SPEC §11).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dhcp6Plan {
    pub interface: Option<String>,
    pub subnet: Ipv6Net,
    /// Inclusive dynamic range.
    pub pool: (Ipv6Addr, Ipv6Addr),
    pub dns: Vec<Ipv6Addr>,
    pub domain: Option<String>,
    /// Valid lifetime of a lease.
    pub lease_time: Duration,
    /// Preferred lifetime: 5/8 of `lease_time` unless the plan sets it.
    pub preferred_time: Duration,
    /// Send Router Advertisements on served interfaces (links with no router).
    pub advertise: bool,
    /// The default route those advertisements announce, if any.
    pub router6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// Deploy when the topology matches.
    #[default]
    Auto,
    /// Wait for `ztpd approve`.
    Manual,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceModel {
    /// The key under `[models.<name>]`.
    pub name: String,
    pub vendor: Vendor,
    /// The model string the device reports.
    pub match_model: String,
    /// Canonical port names, ranges expanded, in plan order.
    pub ports: Vec<String>,
    /// Relative to `paths.templates`.
    pub template: Option<String>,
    pub software: Option<Software>,
    /// Relative to `paths.files`.
    pub patch: Option<String>,
    /// Per-model DHCP option overrides, by option code.
    pub dhcp_options: BTreeMap<u8, OptionValue>,
}

impl DeviceModel {
    pub fn has_port(&self, canonical: &str) -> bool {
        self.ports.iter().any(|p| p == canonical)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Software {
    /// Relative to `paths.files`.
    pub image: String,
    pub version: String,
}

/// A DHCP option value as the plan writes it; the DHCP encoder decides the
/// wire form from the option code (addresses for 3/6/150, text for 66/67...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OptionValue {
    Text(String),
    Int(u32),
    List(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Already deployed; reports the neighbours of devices below it.
    Root,
    #[default]
    Device,
}

#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub name: String,
    /// Key into the site's `models`.
    pub model: String,
    /// The plan's serial, or the one bound to the device at run time
    /// (`bound`). Empty for a device the plan knows only by its MAC or its
    /// position, until a hello binds one: compare with [`Device::has_serial`].
    pub serial: String,
    pub mac: Option<[u8; 6]>,
    pub ip: Option<Ipv4Addr>,
    /// Planned IPv6 address (`[dhcp6]`).
    pub ip6: Option<Ipv6Addr>,
    /// Planned DHCPv6 client identity (option 1), raw bytes.
    pub duid: Option<Vec<u8>>,
    pub role: Role,
    /// Template variables (`vars = {...}`), as JSON values.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Name of `templates/device_function/<name>.toml`.
    pub device_function: Option<String>,
    /// The plan's read-only twin tags (SPEC §13), besides `{site, name, model}`.
    pub tags: serde_json::Map<String, serde_json::Value>,
    /// How `serial` (and `mac`) came from a run-time binding rather than the
    /// plan (SPEC §12); `None` for what the plan says.
    pub bound: Option<BindKind>,
    /// The device's name in its plan, for diagnostics of later stages
    /// (rendering) that should point at the plan too. Where the device is
    /// written, not what it is: leave it out when comparing devices. `None`
    /// only for devices built by hand in tests.
    #[serde(skip)]
    pub defined_at: Option<Located>,
}

/// How a serial was bound to a planned device at run time (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindKind {
    /// A hello matched the device's place (its planned links).
    Position,
    /// A new box accepted at the place of a device that had a serial.
    Replacement,
}

impl BindKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BindKind::Position => "position",
            BindKind::Replacement => "replacement",
        }
    }
}

impl Device {
    /// Whether the device has a serial (from the plan or a binding).
    pub fn has_serial(&self) -> bool {
        !self.serial.is_empty()
    }

    pub fn mac_string(&self) -> Option<String> {
        self.mac.map(|m| format_mac(&m))
    }
}

/// `00:1c:73:aa:bb:01`, as [`Mac`] prints it.
pub fn format_mac(m: &[u8; 6]) -> String {
    Mac::new(*m).to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub device: String,
    /// Canonical port name.
    pub port: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.device, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    /// Device names, resolved from `devices` or `select`.
    pub members: Vec<String>,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub batch_size: u32,
    pub canary: u32,
    pub max_failures: FailureLimit,
    pub pause_between: Duration,
    /// `"HH:MM-HH:MM"`, optionally after days (checked by `rollout::window`).
    pub window: Option<String>,
    /// How long a notified device has to succeed.
    pub device_timeout: Duration,
    pub order: Order,
}

/// How a rollout orders a group's devices (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Farthest (in planned links) from a root device first, ties in plan order.
    Topology,
    Plan,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureLimit {
    Count(u32),
    Percent(f64),
}
