//! Vendor profiles: which boot flow a device family uses (SPEC §4).

use std::fmt;

/// A vendor profile, chosen by a plan model's `vendor` or recognised from
/// what a DHCP client says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    Generic,
    Arista,
    /// AutoInstall: option 150 + `network-confg` / `<hostname>-confg` over TFTP.
    CiscoIos,
    /// IOS-XE ZTP: option 67 = URL of `bootstrap/cisco-iosxe`.
    CiscoIosxe,
    /// NX-OS POAP: script with a `#md5sum=` line.
    CiscoNxos,
    Juniper,
    Huawei,
    Sonic,
    Cumulus,
    Onie,
}

impl Vendor {
    pub const ALL: [Vendor; 10] = [
        Vendor::Generic,
        Vendor::Arista,
        Vendor::CiscoIos,
        Vendor::CiscoIosxe,
        Vendor::CiscoNxos,
        Vendor::Juniper,
        Vendor::Huawei,
        Vendor::Sonic,
        Vendor::Cumulus,
        Vendor::Onie,
    ];

    /// The profile name used in plans and in `bootstrap/<profile>` paths.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Generic => "generic",
            Vendor::Arista => "arista",
            Vendor::CiscoIos => "cisco-ios",
            Vendor::CiscoIosxe => "cisco-iosxe",
            Vendor::CiscoNxos => "cisco-nxos",
            Vendor::Juniper => "juniper",
            Vendor::Huawei => "huawei",
            Vendor::Sonic => "sonic",
            Vendor::Cumulus => "cumulus",
            Vendor::Onie => "onie",
        }
    }

    /// Parse a plan's `vendor` value. `cisco` means `cisco-iosxe`.
    pub fn from_name(s: &str) -> Option<Vendor> {
        let s = s.trim().to_ascii_lowercase();
        if s == "cisco" {
            return Some(Vendor::CiscoIosxe);
        }
        Vendor::ALL.into_iter().find(|v| v.name() == s)
    }

    /// The valid names, for help lines.
    pub fn valid_names() -> String {
        let mut names: Vec<&str> = Vendor::ALL.iter().map(|v| v.name()).collect();
        names.push("cisco");
        names.join(", ")
    }
}

impl serde::Serialize for Vendor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_cisco_is_iosxe() {
        for v in Vendor::ALL {
            assert_eq!(Vendor::from_name(v.name()), Some(v));
        }
        assert_eq!(Vendor::from_name("Cisco"), Some(Vendor::CiscoIosxe));
        assert_eq!(Vendor::from_name("netgear"), None);
    }
}
