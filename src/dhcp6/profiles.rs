//! What each vendor profile sends over DHCPv6 (SPEC §11), always, asked for
//! or not: option 59 (boot-file-url, RFC 5970) with the URL the profile's
//! DHCPv4 boot option carries, built on `server_ip6` in brackets, and the
//! vendor's own IPv6 option where it documents one. docs/dhcp.md lists them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use crate::vendor::Vendor;

/// Option 59, OPT_BOOTFILE_URL (RFC 5970).
pub const BOOTFILE_URL: u16 = 59;
/// Option 239: the provisioning-script URL SONiC's dhclient configuration
/// declares for DHCPv6 (`option dhcp6.provisioning-script-url code 239`).
pub const SONIC_SCRIPT_URL: u16 = 239;

/// Option code -> wire value, in code order.
pub type BootOptions6 = BTreeMap<u16, Vec<u8>>;

/// The options for a device of `vendor`. Empty for vendors with no DHCPv6
/// provisioning path (Cisco IOS AutoInstall, Juniper, Cumulus, ONIE).
pub fn boot_options6(vendor: Vendor, server: Ipv6Addr, http_port: u16) -> BootOptions6 {
    let url = |p: &str| {
        crate::addr::files_url(IpAddr::V6(server), http_port, &format!("bootstrap/{p}"))
            .into_bytes()
    };
    let mut o = BTreeMap::new();
    match vendor {
        Vendor::Generic
        | Vendor::Arista
        | Vendor::CiscoIosxe
        | Vendor::CiscoNxos
        | Vendor::Huawei => {
            let file = if vendor == Vendor::Huawei {
                "huawei.ini"
            } else {
                vendor.name()
            };
            o.insert(BOOTFILE_URL, url(file));
        }
        Vendor::Sonic => {
            // 59 = the rendered ztp.json, 239 = a script SONiC runs when it
            // has no ztp.json: the generic bootstrap.
            o.insert(BOOTFILE_URL, url("sonic"));
            o.insert(SONIC_SCRIPT_URL, url("generic"));
        }
        Vendor::CiscoIos | Vendor::Juniper | Vendor::Cumulus | Vendor::Onie => {}
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sonic_gets_ztp_json_in_59_and_a_script_in_239_on_a_bracketed_address() {
        let o = boot_options6(Vendor::Sonic, "2001:db8:10::1".parse().unwrap(), 8080);
        assert_eq!(
            o[&59],
            b"http://[2001:db8:10::1]:8080/files/bootstrap/sonic".to_vec()
        );
        assert_eq!(
            o[&239],
            b"http://[2001:db8:10::1]:8080/files/bootstrap/generic".to_vec()
        );
        assert!(boot_options6(Vendor::Onie, "2001:db8::1".parse().unwrap(), 80).is_empty());
    }
}
