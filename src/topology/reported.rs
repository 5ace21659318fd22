//! What devices report over LLDP: the JSON of a hello's neighbours, of a
//! root's report and of `ztpd topology diff REPORTED.json` (SPEC §7, §10).

use serde::{Deserialize, Serialize};

/// What one device reports: `{device, model, neighbors: [...]}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reported {
    /// Name, serial or MAC of the reporting device.
    pub device: String,
    /// The model string it reports; absent: not checked.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub neighbors: Vec<Neighbor>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbor {
    pub local_port: String,
    /// The peer's hostname, serial or chassis MAC, as LLDP gives it.
    pub remote_device: String,
    pub remote_port: String,
}
