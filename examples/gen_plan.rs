//! Writes a large synthetic plan and everything it references, so that
//! `ztpd validate OUT_DIR/plans/big.toml` has real work to do: every template
//! renders for every device, every image exists, every link names real ports.
//!
//! ```text
//! cargo run --release --example gen_plan -- OUT_DIR [--devices 10000] [--links 20000] [--models 50]
//! ```
//!
//! The plan is valid by construction: unique names, serials, MACs and IPs in a
//! subnet sized to fit, a dynamic pool above every planned address, and each
//! port used by at most one link. Output is deterministic (no randomness), so
//! two runs give byte-identical files and benchmark numbers stay comparable.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Addresses kept free at the bottom of the subnet (network, server, router,
/// room for infrastructure) before the first planned device.
const RESERVED_LOW: u32 = 16;
/// Size of the dynamic pool at the top of the subnet.
const POOL_SIZE: u32 = 256;
/// Every model gets at least this many front-panel ports; more when the
/// link count needs them.
const MIN_PORTS: u32 = 48;

/// Public so that `tests/gen_plan.rs` can include this file and check that
/// what it writes really is valid.
pub struct Options {
    pub out: PathBuf,
    pub devices: u32,
    pub links: u32,
    pub models: u32,
}

/// A vendor family: how its ports are named and how its config looks.
#[derive(Clone, Copy)]
struct Family {
    vendor: &'static str,
    match_prefix: &'static str,
    /// Port name for front-panel port `n` (0-based index).
    port: fn(u32) -> String,
    /// An abbreviation of the same port, to exercise canonical names.
    short: Option<fn(u32) -> String>,
    /// The range spec covering ports `0..count`.
    range: fn(u32) -> String,
    mgmt: &'static str,
    comment: &'static str,
    image: Option<&'static str>,
}

const FAMILIES: [Family; 7] = [
    Family {
        vendor: "arista",
        match_prefix: "DCS-7050SX",
        port: |n| format!("Ethernet{}", n + 1),
        short: Some(|n| format!("Et{}", n + 1)),
        range: |c| format!("Ethernet1-{c}"),
        mgmt: "Management1",
        comment: "!",
        image: Some("swi"),
    },
    Family {
        vendor: "juniper",
        match_prefix: "QFX5120",
        port: |n| format!("xe-0/0/{n}"),
        short: None,
        range: |c| format!("xe-0/0/0-{}", c - 1),
        mgmt: "em0",
        comment: "#",
        image: Some("tgz"),
    },
    Family {
        vendor: "cisco",
        match_prefix: "C9300",
        port: |n| format!("GigabitEthernet1/0/{}", n + 1),
        short: Some(|n| format!("Gi1/0/{}", n + 1)),
        range: |c| format!("GigabitEthernet1/0/1-{c}"),
        mgmt: "GigabitEthernet0/0",
        comment: "!",
        image: Some("bin"),
    },
    Family {
        vendor: "huawei",
        match_prefix: "CE6881",
        port: |n| format!("10GE1/0/{}", n + 1),
        short: None,
        range: |c| format!("10GE1/0/1-{c}"),
        mgmt: "MEth0/0/0",
        comment: "#",
        image: None,
    },
    Family {
        vendor: "sonic",
        match_prefix: "AS7326",
        port: |n| format!("Ethernet{n}"),
        short: None,
        range: |c| format!("Ethernet0-{}", c - 1),
        mgmt: "Management0",
        comment: "#",
        image: None,
    },
    Family {
        vendor: "cumulus",
        match_prefix: "AS4610",
        port: |n| format!("swp{}", n + 1),
        short: None,
        range: |c| format!("swp1-{c}"),
        mgmt: "eth0",
        comment: "#",
        image: None,
    },
    Family {
        vendor: "generic",
        match_prefix: "linux-box",
        port: |n| format!("eth{}", n + 1),
        short: None,
        range: |c| format!("eth1-{c}"),
        mgmt: "eth0",
        comment: "#",
        image: None,
    },
];

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gen_plan: {e}");
            eprintln!(
                "usage: gen_plan OUT_DIR [--devices N] [--links N] [--models N]  (defaults 10000, 20000, 50)"
            );
            return ExitCode::from(2);
        }
    };
    match generate(&opts) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_plan: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut out = None;
    let (mut devices, mut links, mut models) = (10_000u32, 20_000u32, 50u32);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u32, String> {
            let v = args
                .next()
                .ok_or_else(|| format!("{name} needs a number"))?;
            v.parse()
                .map_err(|_| format!("{name} expects a whole number, got `{v}`"))
        };
        match arg.as_str() {
            "--devices" => devices = number("--devices")?,
            "--links" => links = number("--links")?,
            "--models" => models = number("--models")?,
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s if out.is_none() => out = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    let out = out.ok_or("missing OUT_DIR")?;
    if devices < 2 {
        return Err("--devices must be at least 2 (links join two devices)".into());
    }
    if models == 0 || models > devices {
        return Err(format!(
            "--models must be between 1 and --devices ({devices})"
        ));
    }
    if devices > 4_000_000 {
        return Err("--devices above 4,000,000 do not fit in 10.0.0.0/8".into());
    }
    Ok(Options {
        out,
        devices,
        links,
        models,
    })
}

/// Smallest prefix length whose subnet holds every planned address plus the
/// reserved low addresses, the pool and the broadcast address.
fn prefix_for(devices: u32) -> u8 {
    let needed = u64::from(devices) + u64::from(RESERVED_LOW) + u64::from(POOL_SIZE) + 1;
    let mut prefix = 24u8;
    while (1u64 << (32 - prefix)) < needed {
        prefix -= 1;
    }
    prefix
}

/// Endpoints of link `j`: round `r = j / n` joins each device `a` to
/// `a + r + 1`, so there are no self-links and rounds never repeat a pair
/// while `r + 1 < n`.
fn link_ends(j: u32, n: u32) -> (u32, u32) {
    let a = j % n;
    let offset = 1 + (j / n) % (n - 1);
    (a, (a + offset) % n)
}

pub fn generate(o: &Options) -> Result<String, String> {
    let n = o.devices;
    let prefix = prefix_for(n);
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let size = 1u32 << (32 - prefix);
    let server = Ipv4Addr::from(base + 1);
    let pool_lo = Ipv4Addr::from(base + size - POOL_SIZE);
    let pool_hi = Ipv4Addr::from(base + size - 2);
    let model_of = |i: u32| i % o.models;
    let family_of = |m: u32| FAMILIES[(m as usize) % FAMILIES.len()];

    // First pass: which port each link end takes, so every model gets enough.
    let mut next_port = vec![0u32; n as usize];
    let mut ends = Vec::with_capacity(o.links as usize);
    for j in 0..o.links {
        let (a, b) = link_ends(j, n);
        let pa = next_port[a as usize];
        next_port[a as usize] += 1;
        let pb = next_port[b as usize];
        next_port[b as usize] += 1;
        ends.push((a, pa, b, pb));
    }
    let mut ports_needed = vec![MIN_PORTS; o.models as usize];
    for (i, used) in next_port.iter().enumerate() {
        let m = model_of(i as u32) as usize;
        ports_needed[m] = ports_needed[m].max(*used);
    }
    // A plan port range may expand to at most 4096 ports (plan::ports::MAX_RANGE).
    if let Some(most) = ports_needed.iter().copied().filter(|&p| p > 4096).max() {
        return Err(format!(
            "{most} ports per device needed: raise --devices or lower --links (at most 4096 per device)"
        ));
    }

    let mut plan = String::with_capacity(n as usize * 220 + o.links as usize * 60);
    let _ = writeln!(
        plan,
        "# Generated by `cargo run --release --example gen_plan -- OUT_DIR --devices {} --links {} --models {}`.\n\
         # A benchmark input for `ztpd validate`; valid by construction.\n",
        o.devices,
        o.links,
        o.models
    );
    let _ = writeln!(
        plan,
        "[site]\nname = \"big\"\nserver_ip = \"{server}\"\n\n\
         [dhcp]\nsubnet = \"{}/{prefix}\"\npool = \"{pool_lo}-{pool_hi}\"\nrouter = \"{server}\"\n\
         dns = [\"{server}\"]\ndomain = \"big.example\"\nlease_time = \"12h\"\n\n\
         [approval]\nmode = \"auto\"\n",
        Ipv4Addr::from(base)
    );

    let mut images = Vec::new();
    for m in 0..o.models {
        let f = family_of(m);
        let _ = writeln!(
            plan,
            "[models.model-{m:02}]\nvendor = \"{}\"\nmatch = \"{}-{m:02}\"\n\
             ports = [\"{}\", \"{}\"]\ntemplate = \"model-{m:02}.j2\"",
            f.vendor,
            f.match_prefix,
            (f.range)(ports_needed[m as usize]),
            f.mgmt
        );
        if let Some(ext) = f.image {
            let image = format!("images/model-{m:02}-1.0.{ext}");
            let _ = writeln!(
                plan,
                "software = {{ image = \"{image}\", version = \"1.0.{m}\" }}"
            );
            images.push(image);
        }
        plan.push('\n');
    }

    for i in 0..n {
        let m = model_of(i);
        let ip = Ipv4Addr::from(base + RESERVED_LOW + i);
        let mac = [
            0x02,
            0x5a,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ];
        let _ = writeln!(
            plan,
            "[[devices]]\nname = \"dev{i:07}\"\nmodel = \"model-{m:02}\"\nserial = \"SN{:010X}\"\n\
             mac = \"{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\"\nip = \"{ip}\"{}\n\
             vars = {{ loopback = \"{}\", asn = {} }}\n",
            // A multiplicative hash keeps serials unique but not sequential.
            u64::from(i).wrapping_mul(2_654_435_761) & 0xff_ffff_ffff,
            mac[0],
            mac[1],
            mac[2],
            mac[3],
            mac[4],
            mac[5],
            if i == 0 { "\nrole = \"root\"" } else { "" },
            Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + i),
            4_200_000_000u64 + u64::from(i)
        );
    }

    for (j, &(a, pa, b, pb)) in ends.iter().enumerate() {
        let port_name = |dev: u32, p: u32| {
            let f = family_of(model_of(dev));
            match f.short {
                // Every other link uses the abbreviation: Et1 == Ethernet1.
                Some(short) if j % 2 == 1 => short(p),
                _ => (f.port)(p),
            }
        };
        let _ = writeln!(
            plan,
            "[[links]]\na = \"dev{a:07}:{}\"\nb = \"dev{b:07}:{}\"\n",
            port_name(a, pa),
            port_name(b, pb)
        );
    }

    for m in 0..o.models.min(10) {
        let _ = writeln!(
            plan,
            "[groups.model-{m:02}]\nselect = {{ model = \"model-{m:02}\" }}\n\
             policy = {{ batch_size = 10, canary = 1, max_failures = 5, pause_between = \"1m\" }}\n"
        );
    }

    write(&o.out.join("plans/big.toml"), &plan)?;
    for m in 0..o.models {
        let f = family_of(m);
        write(
            &o.out.join(format!("templates/model-{m:02}.j2")),
            &template(f),
        )?;
    }
    for image in &images {
        write(
            &o.out.join("files").join(image),
            "placeholder image for the validate benchmark\n",
        )?;
    }
    Ok(format!(
        "wrote {} ({} devices, {} links, {} models, subnet 10.0.0.0/{prefix}, {} bytes)",
        o.out.join("plans/big.toml").display(),
        n,
        o.links,
        o.models,
        plan.len()
    ))
}

/// A short config in the family's comment style: hostname, management
/// address, one description per link, routing from `vars`.
fn template(f: Family) -> String {
    let c = f.comment;
    format!(
        "{c} {{{{ device.name }}}} ({{{{ device.model }}}}, serial {{{{ device.serial }}}}) in {{{{ site.name }}}}\n\
         hostname {{{{ device.name }}}}\n\
         interface {mgmt}\n  ip address {{{{ device.ip }}}}/{{{{ dhcp.prefix_len }}}}\n\
         {{%- for link in links %}}\n\
         interface {{{{ link.local_port }}}}\n  description {{{{ link.peer }}}}:{{{{ link.peer_port }}}}\n\
         {{%- endfor %}}\n\
         router bgp {{{{ device.vars.asn }}}}\n  router-id {{{{ device.vars.loopback }}}}\n\
         {c} {{{{ links | length }}}} planned neighbours, {vendor} syntax\n",
        mgmt = f.mgmt,
        vendor = f.vendor,
    )
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
