//! Interface names: range expansion (`Ethernet1-48`, `ge-0/0/0-23`, `swp1-8`)
//! and per-vendor canonical names, so that `Et1` and `Ethernet1` are one port.
//!
//! LLDP reports whatever the peer's OS calls a port, often abbreviated; the
//! plan may use either form. Everything compares canonical names.

use crate::vendor::Vendor;

/// Largest range one port spec may expand to; a typo like `Ethernet1-48000`
/// should be an error, not 48 000 ports.
pub const MAX_RANGE: u32 = 4096;

/// Canonical name of `port` on a device of `vendor`.
///
/// The alphabetic prefix is looked up (case-insensitively) in the vendor's
/// alias table; the rest (slot/port numbers) is kept. Unknown prefixes are
/// kept as written, so Linux names (`swp1`, `eth0`) pass through.
pub fn canonical(vendor: Vendor, port: &str) -> String {
    let port = port.trim();
    let split = port
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(port.len());
    let (prefix, rest) = port.split_at(split);
    if prefix.is_empty() || prefix.contains('-') {
        // Juniper-style `ge-0/0/0`: lower-case, no aliases.
        if vendor == Vendor::Juniper {
            return port.to_ascii_lowercase();
        }
        return port.to_string();
    }
    let key = prefix.trim_end_matches([' ', '-']).to_ascii_lowercase();
    match alias(vendor, &key) {
        Some(long) => format!("{long}{rest}"),
        None => port.to_string(),
    }
}

fn alias(vendor: Vendor, key: &str) -> Option<&'static str> {
    let table: &[(&[&str], &str)] = match vendor {
        Vendor::Arista => &[
            (&["et", "eth", "ethernet"], "Ethernet"),
            (&["ma", "mgmt", "management"], "Management"),
            (&["po", "port-channel", "portchannel"], "Port-Channel"),
            (&["lo", "loopback"], "Loopback"),
            (&["vl", "vlan"], "Vlan"),
        ],
        Vendor::CiscoIos | Vendor::CiscoIosxe | Vendor::CiscoNxos => &[
            (&["fa", "fastethernet"], "FastEthernet"),
            (&["gi", "ge", "gig", "gigabitethernet"], "GigabitEthernet"),
            (
                &["te", "ten", "tengigabitethernet", "tengige"],
                "TenGigabitEthernet",
            ),
            (
                &["twe", "twentyfivegige", "twentyfivegigabitethernet"],
                "TwentyFiveGigE",
            ),
            (
                &["fo", "fortygigabitethernet", "fortygige"],
                "FortyGigabitEthernet",
            ),
            (
                &["hu", "hundredgige", "hundredgigabitethernet"],
                "HundredGigE",
            ),
            (&["eth", "et", "ethernet"], "Ethernet"),
            (&["mgmt", "management"], "mgmt"),
            (&["po", "port-channel", "portchannel"], "Port-channel"),
            (&["lo", "loopback"], "Loopback"),
            (&["vl", "vlan"], "Vlan"),
        ],
        Vendor::Huawei => &[
            (&["ge", "gigabitethernet"], "GigabitEthernet"),
            (&["xge", "xgigabitethernet"], "XGigabitEthernet"),
            (&["meth"], "MEth"),
            (&["eth-trunk"], "Eth-Trunk"),
        ],
        // Not `eth`: SONiC's management port is `eth0`, distinct from `Ethernet0`.
        Vendor::Sonic => &[(&["ethernet"], "Ethernet")],
        Vendor::Juniper | Vendor::Cumulus | Vendor::Generic | Vendor::Onie => &[],
    };
    table
        .iter()
        .find(|(keys, _)| keys.contains(&key))
        .map(|(_, long)| *long)
}

/// Expand one plan port spec into canonical port names.
///
/// A spec ending in `<lo>-<hi>` (both decimal) is a range over its last
/// number: `Ethernet1-48`, `ge-0/0/0-23`, `Ethernet1/1-4`.
pub fn expand(vendor: Vendor, spec: &str) -> Result<Vec<String>, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("a port name cannot be empty".into());
    }
    if let Some((stem, lo, hi)) = split_range(spec) {
        if lo > hi {
            return Err(format!(
                "range `{spec}` runs backwards ({lo} > {hi}); write `{stem}{hi}-{lo}`"
            ));
        }
        if hi - lo >= MAX_RANGE {
            return Err(format!(
                "range `{spec}` has {} ports; at most {MAX_RANGE} are allowed in one range",
                hi - lo + 1
            ));
        }
        return Ok((lo..=hi)
            .map(|n| canonical(vendor, &format!("{stem}{n}")))
            .collect());
    }
    Ok(vec![canonical(vendor, spec)])
}

/// `("Ethernet", 1, 48)` for `Ethernet1-48`; `None` when not a range.
fn split_range(spec: &str) -> Option<(&str, u32, u32)> {
    let (head, hi) = spec.rsplit_once('-')?;
    if hi.is_empty() || !hi.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = head.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (stem, lo) = head.split_at(head.len() - digits);
    Some((stem, lo.parse().ok()?, hi.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arista_abbreviations_are_one_port() {
        assert_eq!(canonical(Vendor::Arista, "Et1"), "Ethernet1");
        assert_eq!(canonical(Vendor::Arista, "eth1"), "Ethernet1");
        assert_eq!(canonical(Vendor::Arista, "Ethernet1/1"), "Ethernet1/1");
        assert_eq!(canonical(Vendor::Arista, "Ma1"), "Management1");
    }

    #[test]
    fn cisco_and_huawei_abbreviations() {
        assert_eq!(
            canonical(Vendor::CiscoIosxe, "Gi1/0/1"),
            "GigabitEthernet1/0/1"
        );
        assert_eq!(
            canonical(Vendor::CiscoIos, "Te1/1"),
            "TenGigabitEthernet1/1"
        );
        assert_eq!(canonical(Vendor::Huawei, "GE0/0/1"), "GigabitEthernet0/0/1");
    }

    #[test]
    fn sonic_management_port_is_not_a_front_panel_port() {
        assert_eq!(canonical(Vendor::Sonic, "eth0"), "eth0");
        assert_eq!(canonical(Vendor::Sonic, "ethernet0"), "Ethernet0");
    }

    #[test]
    fn linux_and_juniper_names_pass_through() {
        assert_eq!(canonical(Vendor::Cumulus, "swp1"), "swp1");
        assert_eq!(canonical(Vendor::Juniper, "GE-0/0/1"), "ge-0/0/1");
        assert_eq!(canonical(Vendor::Generic, "eth0"), "eth0");
    }

    #[test]
    fn ranges_expand_on_the_last_number() {
        assert_eq!(
            expand(Vendor::Arista, "Et1-3").unwrap(),
            ["Ethernet1", "Ethernet2", "Ethernet3"]
        );
        let j = expand(Vendor::Juniper, "ge-0/0/0-23").unwrap();
        assert_eq!(j.len(), 24);
        assert_eq!(j[0], "ge-0/0/0");
        assert_eq!(j[23], "ge-0/0/23");
        assert_eq!(expand(Vendor::Cumulus, "swp1-8").unwrap().len(), 8);
        assert_eq!(
            expand(Vendor::Arista, "Ethernet1/1-4").unwrap()[3],
            "Ethernet1/4"
        );
        assert_eq!(expand(Vendor::Juniper, "ge-0/0/5").unwrap(), ["ge-0/0/5"]);
    }

    #[test]
    fn bad_ranges_say_why() {
        assert!(expand(Vendor::Arista, "Ethernet9-1")
            .unwrap_err()
            .contains("backwards"));
        assert!(expand(Vendor::Arista, "Ethernet1-99999")
            .unwrap_err()
            .contains("at most"));
        assert!(expand(Vendor::Arista, " ").is_err());
    }
}
