//! SONiC's own ZTP engine (sonic-net/sonic-ztp, `ztp-engine.py`) as ztpd
//! drives it. Option 67 names `bootstrap/sonic`, one `ztp.json` for every
//! requester (`bootstrap/sonic.json`); its sections reach per-device URLs
//! through the engine's `dynamic-url`, keyed on the serial number the engine
//! reads from the box's EEPROM (`decode-syseeprom -s`):
//!
//! - `01-ztpd-hello`: `bootstrap/sonic/<serial>/hello`, the generic bootstrap
//!   script stopped after the hello. It fails (and `halt-on-failure` stops
//!   ZTP) unless the device is approved, so the topology check gates every
//!   section after it.
//! - `02-firmware`: SONiC's `firmware` plugin; its `pre-check` script
//!   (`.../image-check`) installs only when the running image is not the
//!   planned version; the image itself is `.../image`.
//! - `03-configdb-json`: SONiC's `configdb-json` plugin with the rendered
//!   config (`configs/<serial>.cfg`, guarded like every config), which the
//!   plugin loads and copies to `/etc/sonic/config_db.json`.
//! - `04-ztpd-deployed`: `.../deployed` reports `deployed`. A device is
//!   deployed when its own engine got there, not when a file was fetched.
//!
//! The resources are made here from the snapshot, as pure functions.

use crate::plan::model::Model;

/// What `bootstrap/sonic/<serial>/<step>` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A script the engine runs.
    Script(String),
    /// The planned image, a path under `paths.files`.
    Image(String),
}

/// The resource of `step` for `serial`. `generic` is the rendered generic
/// bootstrap script (the hello step is that script, stopped after the hello);
/// `server` the base URL (`http://host:port`). The hello step is served for
/// any serial, so an unplanned box says hello and is told why it is refused;
/// the other steps exist only for planned SONiC devices.
pub fn resource(
    model: &Model,
    generic: &str,
    server: &str,
    serial: &str,
    step: &str,
) -> Option<Resource> {
    if step == "hello" {
        return Some(Resource::Script(hello(generic, serial)));
    }
    let (site, device) = model.device(serial)?;
    let planned = site.model_of(device);
    if device.serial != serial || planned.vendor != crate::vendor::Vendor::Sonic {
        return None;
    }
    let software = planned.software.as_ref();
    match step {
        "image-check" => Some(Resource::Script(image_check(
            server,
            serial,
            software.map(|s| s.version.as_str()),
        ))),
        "image" => software.map(|s| Resource::Image(s.image.clone())),
        "deployed" => Some(Resource::Script(deployed(server, serial))),
        _ => None,
    }
}

/// The generic script with the box's identity from SONiC's own tools, and
/// `ZTP_STEPS=hello`: it exits 0 once approved, 1 when refused, 3 when no
/// approval came in time. SONiC runs lldpd in its `lldp` container.
fn hello(generic: &str, serial: &str) -> String {
    let preamble = format!(
        "#!/bin/sh\n\
         # ztpd: section 01-ztpd-hello of SONiC ZTP for serial {serial}.\n\
         export ZTP_SERIAL='{serial}'\n\
         ZTP_MODEL=\"${{ZTP_MODEL:-$(decode-syseeprom -p 2>/dev/null)}}\"; export ZTP_MODEL\n\
         ZTP_MAC=\"${{ZTP_MAC:-$(decode-syseeprom -m 2>/dev/null)}}\"; export ZTP_MAC\n\
         if [ -z \"${{ZTP_LLDPCLI:-}}\" ] && ! command -v lldpcli >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then\n\
         \x20 export ZTP_LLDPCLI='docker exec lldp lldpcli'\n\
         fi\n\
         export ZTP_STEPS=hello\n"
    );
    let body = generic
        .strip_prefix("#!")
        .and_then(|s| s.split_once('\n'))
        .map_or(generic, |(_, rest)| rest);
    format!("{preamble}{body}")
}

/// `POST /ztp/v1/devices/<serial>/progress` with curl, as the generic script
/// does; `$code` holds the HTTP status afterwards.
fn progress(server: &str, serial: &str, stage: &str, percent: u8, message: &str) -> String {
    format!(
        "code=$(curl -sS -o /tmp/ztpd-progress.out -w '%{{http_code}}' -X POST \
         -H 'Content-Type: application/json' \
         --data '{{\"stage\":\"{stage}\",\"percent\":{percent},\"message\":\"{message}\"}}' \
         '{server}/ztp/v1/devices/{serial}/progress' 2>/dev/null || echo 000)\n"
    )
}

/// The `firmware` plugin's pre-check: exit 0 = install the planned image.
/// The plugin's own `version` field cannot be used, since one `ztp.json` serves
/// every model; this is the version check, against `sonic-installer list`.
fn image_check(server: &str, serial: &str, version: Option<&str>) -> String {
    let Some(version) = version else {
        return format!(
            "#!/bin/sh\n\
             # ztpd: pre-check of SONiC's firmware plugin for serial {serial}.\n\
             echo 'ztpd: the plan gives this device no image: nothing to install'\n\
             exit 1\n"
        );
    };
    format!(
        "#!/bin/sh\n\
         # ztpd: pre-check of SONiC's firmware plugin for serial {serial}:\n\
         # exit 0 installs the planned image, anything else skips the install.\n\
         want={}\n\
         current=$(sonic-installer list 2>/dev/null | sed -n 's/^Current: *//p')\n\
         case \"$current\" in\n\
         \x20 *\"$want\") echo \"ztpd: running $current, the planned version\"; exit 1 ;;\n\
         esac\n\
         echo \"ztpd: running ${{current:-an unknown image}}, installing $want\"\n\
         {}\
         exit 0\n",
        sh_quote(version),
        progress(
            server,
            serial,
            "downloading",
            30,
            "SONiC firmware plugin: installing the planned image"
        )
    )
}

/// `s` as one single-quoted shell word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The last section: the engine got here, so every section before it
/// succeeded (each has `halt-on-failure`).
fn deployed(server: &str, serial: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # ztpd: section 04-ztpd-deployed of SONiC ZTP for serial {serial}.\n\
         cfg=\"${{ZTP_SONIC_CONFIG_DB:-/etc/sonic/config_db.json}}\"\n\
         if [ ! -s \"$cfg\" ]; then\n\
         \x20 echo \"ztpd: $cfg is missing after configdb-json\" >&2\n\
         \x20 {}\
         \x20 exit 1\n\
         fi\n\
         {}\
         [ \"$code\" = 200 ] && {{ echo 'ztpd: deployed'; exit 0; }}\n\
         echo \"ztpd: deployed not accepted (HTTP $code): $(cat /tmp/ztpd-progress.out 2>/dev/null)\" >&2\n\
         exit 1\n",
        progress(server, serial, "failed", 90, "SONiC ZTP: /etc/sonic/config_db.json missing after configdb-json"),
        progress(server, serial, "deployed", 100, "SONiC ZTP reached its last section: config_db.json applied"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_is_the_generic_script_stopped_after_the_hello() {
        let s = hello("#!/bin/sh\nset -u\necho generic\n", "AS7326X1");
        assert!(s.starts_with("#!/bin/sh\n"));
        assert_eq!(s.matches("#!/bin/sh").count(), 1);
        assert!(s.contains("export ZTP_SERIAL='AS7326X1'"));
        assert!(s.contains("export ZTP_STEPS=hello\nset -u\necho generic\n"));
    }

    #[test]
    fn steps_other_than_hello_exist_only_for_planned_sonic_devices() {
        let m = crate::dhcp::fixture::lab_model();
        let step =
            |serial: &str, step: &str| resource(&m, "#!/bin/sh\n", "http://s:1", serial, step);
        assert!(matches!(
            step("SER-sonic1", "deployed"),
            Some(Resource::Script(_))
        ));
        assert_eq!(step("SER-arista1", "deployed"), None);
        assert_eq!(step("SER-onie1", "image"), None, "another vendor's image");
        assert_eq!(step("NOT-PLANNED", "image-check"), None);
        assert!(matches!(
            step("NOT-PLANNED", "hello"),
            Some(Resource::Script(_))
        ));
    }

    #[test]
    fn image_check_skips_a_device_without_software_and_names_the_version() {
        let none = image_check("http://s:1", "X1", None);
        assert!(none.contains("exit 1") && !none.contains("exit 0"));
        let some = image_check("http://s:1", "X1", Some("202305.1"));
        assert!(some.contains("want='202305.1'"));
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        assert!(some.contains("http://s:1/ztp/v1/devices/X1/progress"));
    }
}
