//! Who a DHCP client says it is: vendor, model and serial from options
//! 60/61/77/124/125 (formats in TESTING.md), and a MAC named in the client-id.

use super::suboptions::{printable, tlvs};
use crate::vendor::Vendor;

/// What a client said about itself, used for identity and "unplanned device seen".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub serial: Option<String>,
    pub model: Option<String>,
    pub vendor: Option<Vendor>,
    /// A MAC named inside the client-id (type 1, or Cisco `cisco-<mac>-<if>`).
    pub client_id_mac: Option<[u8; 6]>,
    /// Option 60 as text, for logs and the unplanned record.
    pub vendor_class: Option<String>,
    /// Option 12.
    pub hostname: Option<String>,
}

/// Serials and models become lookup keys and file names: keep them tame.
fn is_token(s: &str) -> bool {
    s.len() <= 64 && crate::identifier::is_identifier(s)
}

/// Work out vendor, model and serial from the identifying options.
pub fn identify(
    hostname: Option<String>,
    client_id: Option<&[u8]>,
    vendor_class: Option<&[u8]>,
    user_class: Option<&[u8]>,
    vi_class: Option<&[u8]>,
    vi_opts: Option<&[u8]>,
) -> ClientInfo {
    let mut info = ClientInfo {
        hostname,
        ..ClientInfo::default()
    };
    if let Some(vc) = vendor_class.and_then(printable) {
        parse_vendor_class(&vc, &mut info);
        info.vendor_class = Some(vc);
    }
    if let Some(id) = client_id {
        parse_client_id(id, &mut info);
    }
    if let Some(d) = vi_class {
        parse_vi_class(d, &mut info);
    }
    if let Some(d) = vi_opts {
        parse_vi_opts(d, &mut info);
    }
    match user_class.and_then(vendor_from_user_class) {
        // SONiC's dhclient sends user class `SONiC-ZTP` beside an option 60
        // of `<hardware vendor>:<product>` ("Cisco:8101-32H", "Huawei:..."),
        // which must not make it that vendor's NOS.
        Some(Vendor::Sonic) if info.vendor != Some(Vendor::Sonic) => {
            info.vendor = Some(Vendor::Sonic);
            if let Some((_, product)) = info
                .vendor_class
                .as_deref()
                .and_then(|vc| vc.split_once(':'))
            {
                info.model = is_token(product)
                    .then(|| product.to_string())
                    .or(info.model.take());
            }
        }
        Some(Vendor::Sonic) => {}
        Some(v) if info.vendor.is_none() => info.vendor = Some(v),
        _ => {}
    }
    info
}

fn set_if_none(slot: &mut Option<String>, v: &str) {
    if slot.is_none() && is_token(v) {
        *slot = Some(v.to_string());
    }
}

/// Option 60 formats (TESTING.md): Arista, Juniper, ONIE, Cisco, Huawei...
fn parse_vendor_class(vc: &str, info: &mut ClientInfo) {
    let lower = vc.to_ascii_lowercase();
    if let Some(rest) = vc.strip_prefix("Arista;") {
        info.vendor = Some(Vendor::Arista);
        let parts: Vec<&str> = rest.split(';').collect();
        if let Some(m) = parts.first() {
            set_if_none(&mut info.model, m);
        }
        if let Some(s) = parts.get(2) {
            set_if_none(&mut info.serial, s);
        }
    } else if let Some(rest) = vc.strip_prefix("Juniper-") {
        info.vendor = Some(Vendor::Juniper);
        // The model may itself contain dashes: the serial is after the last one.
        if let Some((model, serial)) = rest.rsplit_once('-') {
            set_if_none(&mut info.model, model);
            set_if_none(&mut info.serial, serial);
        } else {
            set_if_none(&mut info.model, rest);
        }
    } else if let Some(rest) = vc.strip_prefix("onie_vendor:") {
        info.vendor = Some(Vendor::Onie);
        // <arch>-<vendor>_<machine>-r<rev>
        let platform = rest.rsplit_once("-r").map_or(rest, |(p, _)| p);
        set_if_none(&mut info.model, platform);
    } else if lower.starts_with("cisco") {
        info.vendor = Some(
            if lower.contains("n9k") || lower.contains("n3k") || lower.contains("nx") {
                Vendor::CiscoNxos
            } else {
                Vendor::CiscoIosxe
            },
        );
        if let Some((_, model)) = vc.split_once([' ', ';', ':']) {
            set_if_none(&mut info.model, model.trim());
        }
    } else if lower.starts_with("huawei") {
        info.vendor = Some(Vendor::Huawei);
        if let Some((_, model)) = vc.split_once([' ', ';', ':', '-']) {
            set_if_none(&mut info.model, model.trim());
        }
    } else if lower.starts_with("sonic") {
        info.vendor = Some(Vendor::Sonic);
    } else if lower.starts_with("cumulus") {
        info.vendor = Some(Vendor::Cumulus);
    }
}

/// Option 61: a MAC (type 1), Cisco `cisco-<mac>-<if>`, or a textual serial
/// such as Huawei's ESN.
fn parse_client_id(id: &[u8], info: &mut ClientInfo) {
    match id {
        [1, m @ ..] if m.len() == 6 => {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(m);
            info.client_id_mac = Some(mac);
        }
        [0, text @ ..] | text => {
            let Some(t) = printable(text) else { return };
            if let Some(rest) = t.strip_prefix("SONiC##") {
                parse_sonic_client_id(rest, info);
            } else if let Some(rest) = t.strip_prefix("cisco-") {
                if let Some(mac) = rest.split('-').next().and_then(crate::mac::Mac::parse) {
                    info.client_id_mac = Some(mac.octets());
                    if info.vendor.is_none() {
                        info.vendor = Some(Vendor::CiscoIos);
                    }
                }
            } else {
                set_if_none(&mut info.serial, &t);
            }
        }
    }
}

/// SONiC's `dhclient.conf` (sonic-buildimage `files/dhcp/dhclient.conf.j2`)
/// sends `SONiC##<product-name>##<serial-no>` as the client-id. It names the
/// box exactly, so it wins over what option 60 suggested: SONiC's option 60 is
/// `<hardware vendor>:<product>`, which may read like another vendor's NOS.
fn parse_sonic_client_id(rest: &str, info: &mut ClientInfo) {
    let Some((product, serial)) = rest.split_once("##") else {
        return;
    };
    info.vendor = Some(Vendor::Sonic);
    if is_token(product) {
        info.model = Some(product.to_string());
    }
    if is_token(serial) {
        info.serial = Some(serial.to_string());
    }
}

fn vendor_from_enterprise(e: u32) -> Option<Vendor> {
    Some(match e {
        9 => Vendor::CiscoIosxe,
        30065 => Vendor::Arista,
        2636 => Vendor::Juniper,
        2011 => Vendor::Huawei,
        crate::dhcp::profiles::ONIE_ENTERPRISE => Vendor::Onie,
        _ => return None,
    })
}

/// Option 124 (RFC 3925): enterprise(4) len(1) then length-prefixed strings.
/// Cisco puts `PID:...,VID:...,SN:...` there; others a model string.
fn parse_vi_class(d: &[u8], info: &mut ClientInfo) {
    let mut at = 0usize;
    while let (Some(e), Some(&len)) = (d.get(at..at + 4), d.get(at + 4)) {
        let ent = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let Some(block) = d.get(at + 5..at + 5 + usize::from(len)) else {
            return;
        };
        if info.vendor.is_none() {
            info.vendor = vendor_from_enterprise(ent);
        }
        let mut i = 0usize;
        while let Some(&l) = block.get(i) {
            let Some(s) = block.get(i + 1..i + 1 + usize::from(l)).and_then(printable) else {
                break;
            };
            parse_key_values(&s, info);
            i += 1 + usize::from(l);
        }
        at += 5 + usize::from(len);
    }
}

/// `SN:abc,PID:xyz` / `serial=abc;model=xyz`; a bare token is a model.
fn parse_key_values(s: &str, info: &mut ClientInfo) {
    let mut any = false;
    for part in s.split([',', ';', ' ']) {
        let Some((k, v)) = part.split_once([':', '=']) else {
            continue;
        };
        any = true;
        match k.trim().to_ascii_lowercase().as_str() {
            "sn" | "serial" | "serialnumber" => set_if_none(&mut info.serial, v.trim()),
            "pid" | "model" => set_if_none(&mut info.model, v.trim()),
            _ => {}
        }
    }
    if !any {
        set_if_none(&mut info.model, s.trim());
    }
}

/// Option 125 (RFC 3925): enterprise(4) len(1) then sub-options; TR-111 uses
/// 4 = serial number, 5 = product class (model). ONIE's own block (enterprise
/// 42623, ONIE's `udhcpc_args`) has 3 = machine, 4 = CPU architecture,
/// 5 = machine revision instead.
fn parse_vi_opts(d: &[u8], info: &mut ClientInfo) {
    let mut at = 0usize;
    while let (Some(e), Some(&len)) = (d.get(at..at + 4), d.get(at + 4)) {
        let ent = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let Some(block) = d.get(at + 5..at + 5 + usize::from(len)) else {
            return;
        };
        if info.vendor.is_none() {
            info.vendor = vendor_from_enterprise(ent);
        }
        if ent == crate::dhcp::profiles::ONIE_ENTERPRISE {
            parse_onie_vi_opts(block, info);
            at += 5 + usize::from(len);
            continue;
        }
        for (code, v) in tlvs(block) {
            let Some(s) = printable(v) else { continue };
            match code {
                4 => set_if_none(&mut info.serial, &s),
                5 | 6 => set_if_none(&mut info.model, &s),
                _ => {}
            }
        }
        at += 5 + usize::from(len);
    }
}

/// ONIE's option 125 block: the platform a plan matches is
/// `<arch>-<machine>`, the same string option 60 gives without `-r<rev>`.
fn parse_onie_vi_opts(block: &[u8], info: &mut ClientInfo) {
    let (mut machine, mut arch) = (None, None);
    for (code, v) in tlvs(block) {
        match code {
            3 => machine = printable(v),
            4 => arch = printable(v),
            _ => {}
        }
    }
    info.vendor = Some(Vendor::Onie);
    if let (Some(arch), Some(machine)) = (arch, machine) {
        set_if_none(&mut info.model, &format!("{arch}-{machine}"));
    }
}

/// Option 77 (RFC 3004 length-prefixed, or a bare string as many clients send).
fn vendor_from_user_class(uc: &[u8]) -> Option<Vendor> {
    let text = String::from_utf8_lossy(uc).to_ascii_lowercase();
    if text.contains("onie") {
        Some(Vendor::Onie)
    } else if text.contains("sonic") {
        Some(Vendor::Sonic)
    } else if text.contains("cumulus") {
        Some(Vendor::Cumulus)
    } else {
        None
    }
}
