//! Vendor boot profiles (SPEC §4): which options tell a device of each family
//! where its bootstrap, config and image are. These options are always sent,
//! requested or not, because many boot loaders never ask for them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::plan::model::{Device, DeviceModel, OptionValue};
use crate::vendor::Vendor;

/// ONIE's IANA enterprise number in option 125: `onie_iana_enterprise` in
/// ONIE's `rootconf/default/lib/onie/functions`, the only number its
/// `import_vivso` reads (SPEC once said 40310, which ONIE ignores).
pub const ONIE_ENTERPRISE: u32 = 42623;

/// Boot options for one device (or one unplanned vendor/model), ready to encode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// Option code -> wire value, in code order.
    pub options: BTreeMap<u8, Vec<u8>>,
}

impl BootOptions {
    /// The BOOTP `file` field: option 67 when it fits (128 bytes with the NUL).
    pub fn file(&self) -> Option<&[u8]> {
        self.options
            .get(&67)
            .map(Vec::as_slice)
            .filter(|f| f.len() < 128)
    }
}

/// Where the device reaches ztpd.
#[derive(Debug, Clone, Copy)]
pub struct ServerAddrs {
    pub server_ip: Ipv4Addr,
    pub http_port: u16,
}

impl ServerAddrs {
    /// `http://<server>:<port>/files/<path>`: the HTTP view of the file tree.
    pub fn url(&self, path: &str) -> String {
        crate::addr::files_url(self.server_ip.into(), self.http_port, path)
    }
}

/// The boot options a profile gives, for a planned device (`device` set) or an
/// unplanned one of a recognised vendor, then the model's overrides on top.
pub fn boot_options(
    vendor: Vendor,
    srv: ServerAddrs,
    device: Option<&Device>,
    model: Option<&DeviceModel>,
) -> Result<BootOptions, String> {
    let mut o = BTreeMap::new();
    let text = |s: &str| s.as_bytes().to_vec();
    let tftp_server = text(&srv.server_ip.to_string());
    let config_path = device.map(|d| format!("configs/{}.cfg", d.name));
    // An image goes only to a planned device: a box ztpd does not know is
    // never told where a NOS is (Juniper installs option 43's image before
    // anything else runs).
    let image_path = device
        .and(model)
        .and_then(|m| m.software.as_ref())
        .map(|s| s.image.clone());
    let bootstrap = |p: &str| format!("bootstrap/{p}");
    match vendor {
        Vendor::Generic | Vendor::Arista | Vendor::CiscoIosxe | Vendor::Sonic => {
            o.insert(67, text(&srv.url(&bootstrap(vendor.name()))));
        }
        Vendor::CiscoIos => {
            // AutoInstall fetches network-confg then <hostname>-confg from option 150/66.
            o.insert(150, srv.server_ip.octets().to_vec());
            o.insert(66, tftp_server.clone());
            o.insert(67, text("network-confg"));
        }
        Vendor::CiscoNxos => {
            o.insert(150, srv.server_ip.octets().to_vec());
            o.insert(66, tftp_server.clone());
            o.insert(67, text(&bootstrap("cisco-nxos")));
        }
        Vendor::Juniper => {
            o.insert(150, srv.server_ip.octets().to_vec());
            o.insert(66, tftp_server.clone());
            o.insert(
                43,
                juniper_43(srv, config_path.as_deref(), image_path.as_deref()),
            );
        }
        Vendor::Huawei => {
            // No option 148: Huawei documents it as the address of a cloud
            // management platform (iMaster NCE) that the device switches to
            // cloud-managed mode for and registers with. ztpd is not one; a
            // plan with a controller sets 148 in the model's `dhcp_options`.
            o.insert(66, tftp_server.clone());
            o.insert(67, text(&bootstrap("huawei.ini")));
        }
        Vendor::Cumulus => {
            o.insert(239, text(&srv.url(&bootstrap("cumulus"))));
        }
        Vendor::Onie => {
            // Always ztpd's installer, never the NOS image itself: the
            // installer says hello, and only an approved device whose
            // cabling matches gets the image, through `onie-nos-install`.
            let installer = srv.url(&bootstrap("onie"));
            o.insert(114, text(&installer));
            o.insert(125, onie_125(&installer));
        }
    }
    if let Some(m) = model {
        for (code, v) in &m.dhcp_options {
            let wire = encode_value(*code, v)
                .map_err(|e| format!("model {}: option {code}: {e}", m.name))?;
            o.insert(*code, wire);
        }
    }
    Ok(BootOptions { options: o })
}

/// Juniper option 43: 00 image, 01 config, 03 transfer mode, 05 HTTP port.
/// With transfer mode `http` the file names are paths on the HTTP server,
/// so they carry the `files/` prefix.
fn juniper_43(srv: ServerAddrs, config: Option<&str>, image: Option<&str>) -> Vec<u8> {
    let mut v = Vec::new();
    let mut sub = |code: u8, s: &str| {
        let b = s.as_bytes();
        let n = b.len().min(255);
        v.push(code);
        v.push(n as u8);
        v.extend_from_slice(&b[..n]);
    };
    if let Some(img) = image {
        sub(0, &format!("files/{img}"));
    }
    // An unplanned box has no config here: no file name at all, rather than
    // one that does not exist.
    if let Some(config) = config {
        sub(1, &format!("files/{config}"));
    }
    sub(3, "http");
    sub(5, &srv.http_port.to_string());
    v
}

/// Option 125 (RFC 3925), enterprise 42623, sub-option 1 = installer URL, as
/// ONIE's `import_vendoropts` reads it (type, length, text).
fn onie_125(url: &str) -> Vec<u8> {
    let b = url.as_bytes();
    let n = b.len().min(250);
    let mut v = ONIE_ENTERPRISE.to_be_bytes().to_vec();
    v.push((n + 2) as u8);
    v.push(1);
    v.push(n as u8);
    v.extend_from_slice(&b[..n]);
    v
}

/// Options whose value is one or more IPv4 addresses.
fn is_address_option(code: u8) -> bool {
    matches!(
        code,
        1 | 3 | 4 | 5 | 6 | 7 | 9 | 16 | 28 | 32 | 41 | 42 | 44 | 45 | 48 | 49 | 54 | 65 | 68
            ..=76 | 150
    )
}

/// Options whose integer value is 32 bits (times); other integers are 8 bits
/// when they fit, else 16, else 32.
fn is_u32_option(code: u8) -> bool {
    matches!(code, 2 | 24 | 35 | 38 | 51 | 58 | 59)
}

/// Encode a plan's option override by its code: addresses for 3/6/150...,
/// `0x`-prefixed hex for raw blocks (43, 125), text otherwise.
pub fn encode_value(code: u8, v: &OptionValue) -> Result<Vec<u8>, String> {
    let addr = |s: &str| {
        s.trim()
            .parse::<Ipv4Addr>()
            .map(|ip| ip.octets().to_vec())
            .map_err(|_| format!("expected an IPv4 address, found {s:?}"))
    };
    match v {
        OptionValue::Int(n) => Ok(if is_u32_option(code) || *n > 0xffff {
            n.to_be_bytes().to_vec()
        } else if *n > 0xff {
            (*n as u16).to_be_bytes().to_vec()
        } else {
            vec![*n as u8]
        }),
        OptionValue::Text(s) if is_address_option(code) => {
            let mut out = Vec::new();
            for part in s.split(',') {
                out.extend(addr(part)?);
            }
            Ok(out)
        }
        OptionValue::Text(s) => match s.strip_prefix("0x") {
            Some(hex) => decode_hex(hex),
            None => Ok(s.as_bytes().to_vec()),
        },
        OptionValue::List(items) if is_address_option(code) => {
            let mut out = Vec::new();
            for s in items {
                out.extend(addr(s)?);
            }
            Ok(out)
        }
        OptionValue::List(items) => Ok(items.join(",").into_bytes()),
    }
    .and_then(|b| {
        if b.len() > 1020 {
            Err(format!(
                "value is {} bytes; at most 1020 fit in a reply",
                b.len()
            ))
        } else {
            Ok(b)
        }
    })
}

fn decode_hex(h: &str) -> Result<Vec<u8>, String> {
    let clean: String = h
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if clean.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in 0x{h}"));
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&clean[i..i + 2], 16)
                .map_err(|_| format!("expected hex digits after 0x, found {h:?}"))
        })
        .collect()
}

#[cfg(test)]
#[path = "profiles_tests.rs"]
mod tests;
