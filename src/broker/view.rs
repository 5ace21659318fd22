//! What the hub needs to know from the daemon, resolved once per snapshot
//! (and after hub.toml changes) and handed to it whole: the hub settings,
//! the provisioning settings with the id scope resolved, and each planned
//! device's device function. Sessions read one `Arc<HubView>`; nothing is
//! looked up through a callback on a device's request.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::credentials::dps::Allow;
use crate::credentials::Hub;

#[derive(Debug, Clone, Default)]
pub struct HubView {
    /// Whose enrollment key signs device tokens; `None`: no usable hub
    /// settings (every device is refused, as before).
    pub hub: Option<Arc<Hub>>,
    /// The id scope registering devices name (hub.toml's, or the one kept
    /// in `state/`).
    pub id_scope: String,
    /// The host name devices register at (in the server certificate).
    pub provisioning_host: String,
    /// Planned devices by device id, with the device function the plan
    /// gives them (`None`: no function), and the plan file naming them.
    pub planned: HashMap<String, Planned>,
    /// The function a registration of an unplanned id gets
    /// (`templates/device_function/default.toml`, as `ztpd credentials create`).
    pub default_function: Value,
    /// `paths.credentials`: where registrations write identities.
    pub credentials_dir: PathBuf,
}

/// A planned device as the hub sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planned {
    pub function: Option<Value>,
    /// The twin's read-only tags (SPEC §13): `{site, name, model}` and the
    /// plan's `tags`, for the twin GET and `$twin.tags.*` in routes.
    pub tags: Value,
}

impl HubView {
    /// The hub a registration id is assigned to (SPEC §13 `[[dps.hubs]]`;
    /// absent: this hub).
    pub fn assigned_hub(&self, registration_id: &str) -> Option<&str> {
        let hub = self.hub.as_deref()?;
        Some(
            crate::credentials::dps::assign(&hub.dps.hubs, registration_id)
                .unwrap_or(hub.hostname.as_str()),
        )
    }

    /// Whether `registration_id` may register under `[dps] allow`.
    pub fn may_register(&self, registration_id: &str) -> bool {
        let allow = self.hub.as_ref().map(|h| h.dps.allow).unwrap_or_default();
        allow == Allow::Any || self.planned.contains_key(registration_id)
    }

    /// The device function a device's twin carries when the plan gives one.
    pub fn planned_function(&self, device_id: &str) -> Option<&Value> {
        self.planned.get(device_id)?.function.as_ref()
    }
}
