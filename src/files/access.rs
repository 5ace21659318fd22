//! The one authorisation hook shared by TFTP and HTTP (SPEC §5's table).
//!
//! The hook is a pure function of (what the path names, who asks, the
//! `access.configs` mode, facts about devices). Facts come through
//! [`AccessFacts`]: DHCP leases, ZTP approvals and hello addresses, and SAS
//! verification live in other modules, which implement the trait; the
//! default [`NoFacts`] knows nothing, so it refuses every guarded path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::plan::model::Model;
use crate::settings::ConfigAccess;

use super::vfs::Kind;

/// What the access hook needs to know about devices. Every method has a
/// "knows nothing" default so an implementation supplies only what it has.
pub trait AccessFacts: Send + Sync {
    /// The address ztpd's DHCP leased to the device (by plan name).
    fn leased_ip(&self, _device_name: &str) -> Option<Ipv4Addr> {
        None
    }
    /// The planned IPv6 address, when ztpd's DHCPv6 leased it to the device.
    fn leased_ip6(&self, _device_name: &str) -> Option<Ipv6Addr> {
        None
    }
    /// The source address of the device's last approved hello.
    fn hello_ip(&self, _device_name: &str) -> Option<IpAddr> {
        None
    }
    /// Whether the device was approved (automatically or by an operator).
    fn is_approved(&self, _device_name: &str) -> bool {
        false
    }
    /// Whether `authorization` (the whole header value, e.g.
    /// `SharedAccessSignature sr=...&sig=...&se=...`) is a valid, unexpired
    /// SAS token for `device_id`.
    fn verify_sas(&self, _device_id: &str, _authorization: &str) -> bool {
        false
    }
}

/// No leases, nothing approved, no SAS: only open paths are served.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFacts;

impl AccessFacts for NoFacts {}

/// Why a request was refused; each is its own metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `..`, absolute, encoded, backslash, NUL: refused before lookup.
    Traversal,
    /// A symlink under `files/` points outside it.
    SymlinkEscape,
    /// The client address holds neither the device's lease nor its approved hello.
    NotDeviceAddress,
    /// `access.configs = "approved"` (or a credential) and the device is not approved.
    NotApproved,
    /// An `Authorization` header was given for a credential and did not verify.
    BadSas,
    /// A TFTP write request: the tree is read-only.
    ReadOnly,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::Traversal,
        Refusal::SymlinkEscape,
        Refusal::NotDeviceAddress,
        Refusal::NotApproved,
        Refusal::BadSas,
        Refusal::ReadOnly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::Traversal => "traversal",
            Refusal::SymlinkEscape => "symlink_escape",
            Refusal::NotDeviceAddress => "not_device_address",
            Refusal::NotApproved => "not_approved",
            Refusal::BadSas => "bad_sas",
            Refusal::ReadOnly => "read_only",
        }
    }

    pub fn index(self) -> usize {
        Refusal::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }
}

/// The request being decided.
pub struct Request<'a> {
    pub kind: &'a Kind,
    pub client: IpAddr,
    /// The HTTP `Authorization` header; TFTP has none.
    pub authorization: Option<&'a str>,
}

/// Decide one request. `model` maps a credential's device id (the factory
/// serial) to the planned device whose lease and approval count.
pub fn decide(
    req: &Request<'_>,
    mode: ConfigAccess,
    model: &Model,
    facts: &dyn AccessFacts,
) -> Result<(), Refusal> {
    match req.kind {
        Kind::Bootstrap | Kind::File => Ok(()),
        Kind::Config { device } => match mode {
            ConfigAccess::Open => Ok(()),
            ConfigAccess::Leased => from_device_address(device, req.client, facts),
            ConfigAccess::Approved => {
                if !facts.is_approved(device) {
                    return Err(Refusal::NotApproved);
                }
                from_device_address(device, req.client, facts)
            }
        },
        Kind::Credential { device_id } => {
            if let Some(auth) = req.authorization {
                if facts.verify_sas(device_id, auth) {
                    return Ok(());
                }
            }
            let planned = model
                .device(device_id)
                .map(|(_, d)| d.name.as_str())
                .filter(|name| facts.is_approved(name));
            let by_address = match planned {
                Some(name) => from_device_address(name, req.client, facts),
                None => Err(Refusal::NotApproved),
            };
            match (by_address, req.authorization) {
                (Ok(()), _) => Ok(()),
                (Err(_), Some(_)) => Err(Refusal::BadSas),
                (Err(e), None) => Err(e),
            }
        }
    }
}

fn from_device_address(
    device: &str,
    client: IpAddr,
    facts: &dyn AccessFacts,
) -> Result<(), Refusal> {
    // An IPv4 client of a dual-stack listener arrives v4-mapped.
    let client = crate::addr::canonical(client);
    let known = [
        facts.leased_ip(device).map(IpAddr::V4),
        facts.leased_ip6(device).map(IpAddr::V6),
        facts.hello_ip(device),
    ];
    if known.contains(&Some(client)) {
        Ok(())
    } else {
        Err(Refusal::NotDeviceAddress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Facts {
        lease: Option<Ipv4Addr>,
        hello: Option<Ipv4Addr>,
        approved: bool,
    }
    impl AccessFacts for Facts {
        fn leased_ip(&self, d: &str) -> Option<Ipv4Addr> {
            self.lease.filter(|_| d == "leaf1")
        }
        fn hello_ip(&self, d: &str) -> Option<IpAddr> {
            self.hello.filter(|_| d == "leaf1").map(IpAddr::V4)
        }
        fn is_approved(&self, d: &str) -> bool {
            self.approved && d == "leaf1"
        }
        fn verify_sas(&self, id: &str, auth: &str) -> bool {
            id == "SER1" && auth == "SharedAccessSignature good"
        }
    }

    fn cfg() -> Kind {
        Kind::Config {
            device: "leaf1".into(),
        }
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }
    fn check(
        kind: &Kind,
        client: &str,
        auth: Option<&str>,
        mode: ConfigAccess,
        f: &Facts,
    ) -> Result<(), Refusal> {
        let model = super::super::testutil::model();
        let req = Request {
            kind,
            client: ip(client),
            authorization: auth,
        };
        decide(&req, mode, &model, f)
    }

    const LEASED: Facts = Facts {
        lease: Some(Ipv4Addr::new(10, 0, 0, 11)),
        hello: Some(Ipv4Addr::new(10, 0, 0, 50)),
        approved: false,
    };

    /// The IPv6 lease of leaf1, through `leased_ip6`.
    struct Leased6;
    impl AccessFacts for Leased6 {
        fn leased_ip6(&self, d: &str) -> Option<Ipv6Addr> {
            (d == "leaf1").then(|| "2001:db8::11".parse().expect("literal"))
        }
    }

    #[test]
    fn an_ipv6_lease_counts_and_v4_mapped_clients_are_ipv4() {
        let k = cfg();
        let model = super::super::testutil::model();
        let at = |client: &str, f: &dyn AccessFacts| {
            let req = Request {
                kind: &k,
                client: ip(client),
                authorization: None,
            };
            decide(&req, ConfigAccess::Leased, &model, f)
        };
        assert_eq!(at("2001:db8::11", &Leased6), Ok(()));
        assert_eq!(at("2001:db8::12", &Leased6), Err(Refusal::NotDeviceAddress));
        // An IPv4 client of a dual-stack listener: the same rule as IPv4.
        assert_eq!(at("::ffff:10.0.0.11", &LEASED), Ok(()));
        assert_eq!(
            at("::ffff:10.0.0.12", &LEASED),
            Err(Refusal::NotDeviceAddress)
        );
    }

    #[test]
    fn open_paths_need_nothing() {
        for k in [Kind::Bootstrap, Kind::File] {
            assert_eq!(
                check(&k, "192.0.2.1", None, ConfigAccess::Approved, &LEASED),
                Ok(())
            );
        }
    }

    #[test]
    fn config_modes_follow_the_table() {
        let k = cfg();
        assert_eq!(
            check(&k, "127.0.0.1", None, ConfigAccess::Open, &LEASED),
            Ok(())
        );
        assert_eq!(
            check(&k, "10.0.0.11", None, ConfigAccess::Leased, &LEASED),
            Ok(())
        );
        assert_eq!(
            check(&k, "10.0.0.50", None, ConfigAccess::Leased, &LEASED),
            Ok(())
        );
        assert_eq!(
            check(&k, "10.0.0.12", None, ConfigAccess::Leased, &LEASED),
            Err(Refusal::NotDeviceAddress)
        );
        assert_eq!(
            check(&k, "::ffff:10.0.0.11", None, ConfigAccess::Leased, &LEASED),
            Ok(())
        );
        assert_eq!(
            check(&k, "10.0.0.11", None, ConfigAccess::Approved, &LEASED),
            Err(Refusal::NotApproved)
        );
        let approved = Facts {
            approved: true,
            ..LEASED
        };
        assert_eq!(
            check(&k, "10.0.0.11", None, ConfigAccess::Approved, &approved),
            Ok(())
        );
        assert_eq!(
            check(&k, "10.0.0.99", None, ConfigAccess::Approved, &approved),
            Err(Refusal::NotDeviceAddress)
        );
        assert_eq!(
            check(
                &k,
                "10.0.0.11",
                None,
                ConfigAccess::Leased,
                &Facts {
                    lease: None,
                    hello: None,
                    approved: true
                }
            ),
            Err(Refusal::NotDeviceAddress)
        );
    }

    #[test]
    fn credentials_need_approval_and_address_or_sas() {
        let k = Kind::Credential {
            device_id: "SER1".into(),
        };
        // Leased but not approved: refused, whatever access.configs says.
        assert_eq!(
            check(&k, "10.0.0.11", None, ConfigAccess::Open, &LEASED),
            Err(Refusal::NotApproved)
        );
        let approved = Facts {
            approved: true,
            ..LEASED
        };
        assert_eq!(
            check(&k, "10.0.0.11", None, ConfigAccess::Open, &approved),
            Ok(())
        );
        assert_eq!(
            check(&k, "10.0.0.12", None, ConfigAccess::Open, &approved),
            Err(Refusal::NotDeviceAddress)
        );
        let good = Some("SharedAccessSignature good");
        assert_eq!(
            check(&k, "192.0.2.9", good, ConfigAccess::Open, &LEASED),
            Ok(())
        );
        assert_eq!(
            check(
                &k,
                "192.0.2.9",
                Some("SharedAccessSignature bad"),
                ConfigAccess::Open,
                &LEASED
            ),
            Err(Refusal::BadSas)
        );
        // An unplanned id can only come in with SAS.
        let other = Kind::Credential {
            device_id: "IOT9".into(),
        };
        assert_eq!(
            check(&other, "10.0.0.11", None, ConfigAccess::Open, &approved),
            Err(Refusal::NotApproved)
        );
        // The default facts refuse every guarded path.
        let model = super::super::testutil::model();
        let req = Request {
            kind: &k,
            client: ip("10.0.0.11"),
            authorization: good,
        };
        assert_eq!(
            decide(&req, ConfigAccess::Leased, &model, &NoFacts),
            Err(Refusal::BadSas)
        );
    }
}
