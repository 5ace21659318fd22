//! What a planned device gets from ztpd's DHCP, for `ztpd render`: the real
//! handler answers a DISCOVER and a REQUEST from the device's planned MAC
//! (in memory, no socket, no lease saved), and every option of the ACK is
//! listed with its code, name and decoded value.

use std::net::Ipv4Addr;

use super::handler::{handle, Arrival};
use super::leases::LeaseTable;
use super::packet::{parse, MessageType};
use super::suboptions::{printable, tlvs};
use super::view::DhcpView;
use super::wire::{DecodedReply, RequestBuilder};
use crate::plan::model::Model;

/// A client that says how much it can take, as the boot loaders of switches
/// do; without it a reply over 576 bytes keeps only the options asked for.
const MAX_MESSAGE: u16 = 1500;

/// One option of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub code: u8,
    pub name: &'static str,
    pub value: String,
}

/// The ACK a device would get, or why there is none.
#[derive(Debug)]
pub struct Preview {
    pub address: Ipv4Addr,
    pub server: Ipv4Addr,
    /// BOOTP `file` field.
    pub file: String,
    pub options: Vec<Shown>,
}

/// DISCOVER + REQUEST from `device`'s planned MAC against `model`'s DHCP.
pub fn preview(model: &Model, device: &str, http_port: u16) -> Result<Preview, String> {
    let (site, d) = model
        .device(device)
        .ok_or_else(|| format!("no device `{device}` in the plan"))?;
    let dhcp = site.dhcp.as_ref().ok_or_else(|| {
        format!(
            "site {} has no [dhcp]: ztpd serves no DHCPv4 there",
            site.name
        )
    })?;
    // The plan compiler requires server_ip with [dhcp].
    let server_ip = site
        .server_ip
        .ok_or_else(|| format!("site {} has no server_ip", site.name))?;
    let mac = d.mac.ok_or_else(|| {
        format!(
            "{} has no mac in the plan: ztpd knows it by the serial its DHCP client sends \
             (option 60/61), and it gets its vendor's boot options then",
            d.name
        )
    })?;
    let (view, _) = DhcpView::build(model, http_port);
    let mut leases = LeaseTable::new();
    // Through a relay on the subnet: the subnet is chosen by giaddr, so no
    // interface of this machine matters.
    let giaddr = dhcp.pool.0;
    let arrival = Arrival {
        ifname: "",
        addrs: &[],
    };
    let ask = |b: RequestBuilder, leases: &mut LeaseTable| -> Result<DecodedReply, String> {
        let b = b
            .giaddr(giaddr)
            .option(57, MAX_MESSAGE.to_be_bytes().to_vec());
        let req = parse(&b.encode()).map_err(|e| format!("{e:?}"))?;
        let out = handle(&view, leases, &req, arrival, 0);
        out.reply
            .as_ref()
            .and_then(|r| DecodedReply::decode(&r.bytes))
            .ok_or_else(|| format!("ztpd's DHCP would not answer {}: {:?}", d.name, out.dropped))
    };
    let offer = ask(
        RequestBuilder::new(MessageType::Discover, mac, 1),
        &mut leases,
    )?;
    let ack = ask(
        RequestBuilder::new(MessageType::Request, mac, 2)
            .requested(offer.yiaddr)
            .server_id(server_ip),
        &mut leases,
    )?;
    Ok(Preview {
        address: ack.yiaddr,
        server: ack.siaddr,
        file: ack.file.clone(),
        options: ack
            .options
            .iter()
            .map(|(&code, v)| Shown {
                code,
                name: name(code),
                value: decode(code, v),
            })
            .collect(),
    })
}

/// How an option's bytes read.
enum Kind {
    Ip,
    Ips,
    Seconds,
    Text,
    MessageType,
    SubOptions,
    Enterprise,
    Other,
}

/// Names from the IANA BOOTP/DHCP registry, and what vendors use the
/// site-specific ones for.
fn describe(code: u8) -> (&'static str, Kind) {
    match code {
        1 => ("subnet-mask", Kind::Ip),
        3 => ("router", Kind::Ips),
        6 => ("domain-name-server", Kind::Ips),
        12 => ("host-name", Kind::Text),
        15 => ("domain-name", Kind::Text),
        28 => ("broadcast-address", Kind::Ip),
        42 => ("ntp-servers", Kind::Ips),
        43 => ("vendor-specific", Kind::SubOptions),
        51 => ("lease-time", Kind::Seconds),
        53 => ("message-type", Kind::MessageType),
        54 => ("server-identifier", Kind::Ip),
        58 => ("renewal-time", Kind::Seconds),
        59 => ("rebinding-time", Kind::Seconds),
        60 => ("vendor-class-identifier", Kind::Text),
        66 => ("tftp-server-name", Kind::Text),
        67 => ("bootfile-name", Kind::Text),
        72 => ("www-server", Kind::Ips),
        114 => ("url (ONIE installer)", Kind::Text),
        125 => ("vendor-identifying", Kind::Enterprise),
        148 => ("huawei-controller", Kind::Text),
        150 => ("tftp-server-address", Kind::Ips),
        239 => ("provisioning-script-url", Kind::Text),
        _ => ("", Kind::Other),
    }
}

fn name(code: u8) -> &'static str {
    match describe(code).0 {
        "" => "unnamed",
        n => n,
    }
}

fn ips(v: &[u8]) -> Vec<String> {
    v.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
        .collect()
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

fn text_or_hex(v: &[u8]) -> String {
    printable(v).map_or_else(|| format!("0x{}", hex(v)), |t| format!("{t:?}"))
}

fn sub_options(v: &[u8]) -> String {
    tlvs(v)
        .map(|(c, d)| format!("{c}={}", text_or_hex(d)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The option's value as a person reads it.
fn decode(code: u8, v: &[u8]) -> String {
    match describe(code).1 {
        Kind::Ip | Kind::Ips if v.len() % 4 == 0 && !v.is_empty() => ips(v).join(", "),
        Kind::Seconds if v.len() == 4 => {
            let s = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            format!("{s} s")
        }
        Kind::MessageType if v.len() == 1 => match MessageType::from_code(v[0]) {
            Some(t) => t.name().to_ascii_uppercase(),
            None => hex(v),
        },
        Kind::SubOptions => format!("sub-options {}", sub_options(v)),
        Kind::Enterprise if v.len() >= 5 => {
            let enterprise = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            let len = usize::from(v[4]);
            let data = v.get(5..5 + len).unwrap_or(&v[5..]);
            format!("enterprise {enterprise}: sub-options {}", sub_options(data))
        }
        _ => text_or_hex(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::fixture::{lab_model, HTTP_PORT};

    #[test]
    fn a_planned_device_sees_its_address_and_every_option_decoded() {
        let model = lab_model();
        let (_, d) = model
            .devices()
            .find(|(_, d)| d.mac.is_some() && d.ip.is_some())
            .expect("a device with mac and ip");
        let p = preview(&model, &d.name, HTTP_PORT).unwrap();
        assert_eq!(Some(p.address), d.ip);
        let codes: Vec<u8> = p.options.iter().map(|o| o.code).collect();
        for code in [1, 12, 51, 53, 54] {
            assert!(codes.contains(&code), "{code} missing: {p:?}");
        }
        let host = p.options.iter().find(|o| o.code == 12).unwrap();
        assert_eq!(host.value, format!("{:?}", d.name));
        assert!(p.options.iter().all(|o| !o.value.is_empty()));
    }

    #[test]
    fn values_are_decoded_by_kind() {
        assert_eq!(decode(3, &[10, 0, 0, 1, 10, 0, 0, 2]), "10.0.0.1, 10.0.0.2");
        assert_eq!(decode(51, &3600u32.to_be_bytes()), "3600 s");
        assert_eq!(decode(67, b"http://x/y"), "\"http://x/y\"");
        assert_eq!(decode(43, &[1, 2, b'h', b'i']), "sub-options 1=\"hi\"");
        assert_eq!(
            decode(125, &[0, 0, 0xa6, 0x7f, 4, 1, 2, b'o', b'k']),
            "enterprise 42623: sub-options 1=\"ok\""
        );
        assert_eq!(decode(200, &[0xff]), "0xff");
        assert_eq!(name(200), "unnamed");
    }
}
