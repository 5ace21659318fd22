//! `ztpd device simulate --switch SERIAL|all --server URL [--fault ...] [--fleet N]`:
//! simulated switches running the ZTP flow from the plan: hello with their
//! planned LLDP neighbours (faults injected on request), download of what
//! the approval names, progress to `deployed`.
//!
//! With `--dhcp ADDR` each switch first leases its address from ztpd's DHCP
//! through a simulated relay agent (`--relay`, default 127.0.0.2, port 67:
//! needs root), and checks it got its planned address. With `--dhcp6 ADDR`
//! the same over DHCPv6 (`--relay6`, default ::1, port 547), and the switch
//! then talks to `--server` (an IPv6 URL for a flow over IPv6).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

pub use super::sim_device::{faults_for, rebase, Fault, FaultSpec, Switch, SIM_VERSION};
use crate::http_client;
use crate::plan::model::{Model, Role};

/// How a fleet of simulated switches runs.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// ztpd's HTTP address, e.g. http://127.0.0.1:8080.
    pub server: String,
    /// Switches running at once.
    pub concurrency: usize,
    /// ztpd's DHCP address (`listen.dhcp`); lease through a relay first.
    pub dhcp: Option<std::net::SocketAddr>,
    /// The simulated relay agent's address (giaddr; binds port 67).
    pub relay: std::net::Ipv4Addr,
    /// ztpd's DHCPv6 address (`listen.dhcp6`); lease through a relay first.
    pub dhcp6: Option<std::net::SocketAddr>,
    /// The simulated DHCPv6 relay agent's address (binds port 547).
    pub relay6: std::net::Ipv6Addr,
    /// How long a switch keeps asking while it waits for approval.
    pub approval_wait: Duration,
    /// Stay running after deployment and carry out actions (`--agent`).
    pub agent: bool,
}

/// The hello a planned device would send, with `fault` applied.
pub fn switch_from_plan(model: &Model, key: &str, fault: Option<Fault>) -> anyhow::Result<Switch> {
    let (site, d) = model
        .device(key)
        .ok_or_else(|| anyhow!("{key} is not a planned device (name or serial)"))?;
    let m = site.model_of(d);
    let mut neighbors: Vec<(String, String, String)> = Vec::new();
    for l in site.links.iter() {
        if l.a.device == d.name {
            neighbors.push((l.a.port.clone(), l.b.device.clone(), l.b.port.clone()));
        } else if l.b.device == d.name {
            neighbors.push((l.b.port.clone(), l.a.device.clone(), l.a.port.clone()));
        }
    }
    let mut model_string = m.match_model.clone();
    match fault {
        None | Some(Fault::UpgradeFails | Fault::UpgradeSilent | Fault::UpgradeMiscabled) => {}
        Some(Fault::WrongModel) => model_string = format!("{}-WRONG", m.match_model),
        Some(Fault::MovePort) => {
            let used: Vec<&String> = neighbors.iter().map(|n| &n.0).collect();
            let free = m
                .ports
                .iter()
                .find(|p| !used.contains(p))
                .ok_or_else(|| anyhow!("{}: no free port to move a cable to", d.name))?
                .clone();
            let first = neighbors
                .first_mut()
                .ok_or_else(|| anyhow!("{}: has no planned link to move", d.name))?;
            first.0 = free;
        }
        Some(Fault::Swap) => {
            if neighbors.len() < 2 {
                bail!("{}: --fault swap needs two planned links", d.name);
            }
            let p0 = neighbors[0].0.clone();
            neighbors[0].0 = neighbors[1].0.clone();
            neighbors[1].0 = p0;
        }
    }
    Ok(Switch {
        name: d.name.clone(),
        mac_bytes: d.mac,
        planned_ip: d.ip,
        planned_ip6: d.ip6,
        duid: d.duid.clone(),
        serial: d.serial.clone(),
        mac: d.mac_string().unwrap_or_else(|| "00:00:00:00:00:00".into()),
        model: model_string,
        neighbors: neighbors
            .into_iter()
            .map(|(l, rd, rp)| json!({"local_port": l, "remote_device": rd, "remote_port": rp}))
            .collect(),
        faults: fault.into_iter().collect(),
        miscabled: None,
    })
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    Deployed,
    Refused(Vec<Value>),
}

/// A hello ztpd answered but did not count: it came from an address
/// `access.hello = "leased"` does not trust (SPEC §7).
#[derive(Debug, thiserror::Error)]
#[error("{name}: hello not counted: {why}")]
pub struct NotCounted {
    pub name: String,
    pub why: String,
}

/// What to do about [`NotCounted`] hellos, in one sentence.
pub const NOT_COUNTED_HELP: &str = "ztpd counted none of these hellos: its access.hello = \
\"leased\" (the default) trusts a hello only from the address it leased to the switch or the \
switch's planned ip, and simulated switches all speak from this machine, so for a lab set \
`[access] hello = \"any\"` in the ztpd.toml the daemon reads (examples/tour/ztpd.toml does) \
and restart `ztpd run`.";

const STEP_TIMEOUT: Duration = Duration::from_secs(30);

async fn post(url: &str, body: &Value) -> anyhow::Result<http_client::Response> {
    let b = body.to_string();
    // Retry a busy server a few times.
    for attempt in 0..20u64 {
        let r = http_client::request("POST", url, &[], Some(b.as_bytes()), STEP_TIMEOUT).await?;
        if r.status != 503 {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
    }
    bail!("{url}: server busy")
}

async fn progress(
    server: &str,
    sw: &Switch,
    stage: &str,
    percent: u8,
    msg: &str,
) -> anyhow::Result<()> {
    let url = format!(
        "{}/ztp/v1/devices/{}/progress",
        server.trim_end_matches('/'),
        sw.serial
    );
    let r = post(
        &url,
        &json!({"stage": stage, "percent": percent, "message": msg}),
    )
    .await?;
    if r.status != 200 {
        bail!(
            "{}: progress {stage}: HTTP {} {}",
            sw.name,
            r.status,
            r.json()
        );
    }
    Ok(())
}

async fn fetch(url: &str) -> anyhow::Result<usize> {
    let r = http_client::request("GET", url, &[], None, STEP_TIMEOUT).await?;
    if r.status != 200 {
        bail!("GET {url}: HTTP {}", r.status);
    }
    Ok(r.body.len())
}

/// The simulated relay agents switches lease through before their hello
/// (`--dhcp`, `--dhcp6`); none: no DHCP.
#[derive(Clone, Default)]
pub struct Relays {
    pub v4: Option<Arc<super::sim_dhcp::RelayClient>>,
    pub v6: Option<Arc<super::sim_dhcp6::Relay6Client>>,
}

impl Relays {
    /// Lease `sw`'s address from each relay; an address other than the
    /// planned one is a failure.
    async fn lease(&self, sw: &Switch) -> anyhow::Result<()> {
        if let Some(relay) = &self.v4 {
            let mac = sw
                .mac_bytes
                .ok_or_else(|| anyhow!("{}: the plan gives no mac for DHCP", sw.name))?;
            let ip = relay.lease(mac).await?;
            if Some(ip) != sw.planned_ip {
                bail!("{}: leased {ip}, planned {:?}", sw.name, sw.planned_ip);
            }
        }
        if let Some(relay) = &self.v6 {
            let duid = match (&sw.duid, sw.mac_bytes) {
                (Some(d), _) => d.clone(),
                (None, Some(mac)) => super::sim_dhcp6::duid_ll(mac),
                (None, None) => bail!("{}: the plan gives no duid or mac for DHCPv6", sw.name),
            };
            let ip = relay.lease(&duid, 1).await?;
            if Some(ip) != sw.planned_ip6 {
                bail!("{}: leased {ip}, planned {:?}", sw.name, sw.planned_ip6);
            }
        }
        Ok(())
    }
}

/// Run one switch's whole flow.
pub async fn run_switch(
    server: &str,
    sw: &Switch,
    approval_wait: Duration,
    relays: &Relays,
) -> anyhow::Result<Ending> {
    relays.lease(sw).await?;
    let hello_url = format!("{}/ztp/v1/hello", server.trim_end_matches('/'));
    let body = json!({
        "serial": sw.serial, "mac": sw.mac, "model": sw.model, "version": SIM_VERSION,
        "neighbors": sw.neighbors,
    });
    let deadline = Instant::now() + approval_wait;
    let approved = loop {
        let r = post(&hello_url, &body).await?;
        match r.status {
            200 => break r.json(),
            202 if Instant::now() < deadline => tokio::time::sleep(Duration::from_secs(1)).await,
            202 => bail!(
                "{}: still pending approval after {approval_wait:?}",
                sw.name
            ),
            409 => {
                let v = r.json();
                return Ok(Ending::Refused(
                    v["problems"].as_array().cloned().unwrap_or_default(),
                ));
            }
            403 if r.json()["counted"] == false => {
                return Err(NotCounted {
                    name: sw.name.clone(),
                    why: r.json()["error"].as_str().unwrap_or_default().to_string(),
                }
                .into())
            }
            code => bail!("{}: hello: HTTP {code} {}", sw.name, r.json()),
        }
    };
    progress(server, sw, "downloading", 0, "fetching config").await?;
    let mut got = 0usize;
    for key in ["config_url", "image_url", "patch_url"] {
        if let Some(u) = approved[key].as_str() {
            match fetch(&rebase(u, server)).await {
                Ok(n) => got += n,
                Err(e) => {
                    let _ = progress(server, sw, "failed", 0, &format!("{e:#}")).await;
                    return Err(e);
                }
            }
        }
    }
    progress(
        server,
        sw,
        "installing",
        50,
        &format!("{got} bytes fetched"),
    )
    .await?;
    progress(server, sw, "rebooting", 90, "reloading").await?;
    progress(server, sw, "deployed", 100, "simulated switch deployed").await?;
    Ok(Ending::Deployed)
}

/// The switches `key` names: one serial or name, or `all` (every non-root
/// device with links, the first `limit` of them).
pub fn switches(
    model: &Model,
    key: &str,
    limit: Option<usize>,
    faults: &[FaultSpec],
) -> anyhow::Result<Vec<Switch>> {
    let keys: Vec<String> = if key == "all" {
        model
            .sites
            .iter()
            .flat_map(|s| {
                s.devices
                    .iter()
                    .filter(|d| d.role != Role::Root)
                    .filter(|d| {
                        s.links
                            .iter()
                            .any(|l| l.a.device == d.name || l.b.device == d.name)
                    })
                    .map(|d| d.serial.clone())
            })
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    } else {
        vec![key.to_string()]
    };
    for f in faults {
        for n in f.devices.iter().flatten() {
            if model.device(n).is_none() {
                bail!("--fault: {n} is not a planned device (name or serial)");
            }
        }
    }
    keys.iter()
        .map(|k| {
            let (_, d) = model
                .device(k)
                .ok_or_else(|| anyhow!("{k} is not a planned device (name or serial)"))?;
            let cabling = faults_for(faults, &d.name, &d.serial)
                .into_iter()
                .find(|f| f.is_cabling());
            let mut sw = switch_from_plan(model, k, cabling)?;
            sw.faults = faults_for(faults, &d.name, &d.serial);
            if faults_for(faults, &d.name, &d.serial).contains(&Fault::UpgradeMiscabled) {
                sw.miscabled = Some(switch_from_plan(model, k, Some(Fault::MovePort))?.neighbors);
            }
            Ok(sw)
        })
        .collect()
}

/// Run every switch (at most `concurrency` at once); each one's ending, in
/// the order given.
pub async fn fleet(
    args: &FleetOptions,
    switches: Vec<Switch>,
    link: Option<std::net::Ipv4Addr>,
    link6: Option<std::net::Ipv6Addr>,
) -> anyhow::Result<Vec<(String, anyhow::Result<Ending>)>> {
    let mut relay = Relays::default();
    if let Some(server) = args.dhcp {
        let link = link.ok_or_else(|| anyhow!("--dhcp: the plan has no [dhcp] subnet"))?;
        relay.v4 = Some(super::sim_dhcp::RelayClient::bind(args.relay, server, link).await?);
    }
    if let Some(server) = args.dhcp6 {
        let link = link6.ok_or_else(|| anyhow!("--dhcp6: the plan has no [dhcp6] subnet"))?;
        relay.v6 = Some(super::sim_dhcp6::Relay6Client::bind(args.relay6, server, link).await?);
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let total = switches.len();
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (i, sw) in switches.into_iter().enumerate() {
        let limit = limit.clone();
        let server = args.server.clone();
        let wait = args.approval_wait;
        let relay = relay.clone();
        let agent = args.agent;
        let ready = ready.clone();
        tasks.spawn(async move {
            let p = limit.acquire_owned().await;
            let r = run_switch(&server, &sw, wait, &relay).await;
            drop(p);
            if agent && matches!(r, Ok(Ending::Deployed)) {
                // Agents run until the process ends; a line says when all
                // of them are listening.
                let n = ready.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if total <= 20 {
                    println!("{}: deployed; agent waiting for actions", sw.name);
                }
                if n == total {
                    println!("agents ready: {n}");
                }
                super::agent::run(&server, &sw).await;
            }
            (i, sw.name, r)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.0);
    Ok(out.into_iter().map(|(_, n, r)| (n, r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_name_their_devices() {
        let f: FaultSpec = "upgrade-fails:leaf3,SER4".parse().unwrap();
        assert_eq!(f.kind, Fault::UpgradeFails);
        assert_eq!(
            faults_for(std::slice::from_ref(&f), "leaf3", "x"),
            [Fault::UpgradeFails]
        );
        assert_eq!(
            faults_for(std::slice::from_ref(&f), "leaf4", "SER4"),
            [Fault::UpgradeFails]
        );
        assert!(faults_for(&[f], "leaf1", "SER1").is_empty());
        let all: FaultSpec = "swap".parse().unwrap();
        assert_eq!(all.devices, None);
        assert_eq!(faults_for(&[all], "any", "x"), [Fault::Swap]);
        assert!("melt:leaf1"
            .parse::<FaultSpec>()
            .unwrap_err()
            .contains("unknown fault"));
        assert!("swap:"
            .parse::<FaultSpec>()
            .unwrap_err()
            .contains("device names"));
    }

    #[test]
    fn rebase_keeps_the_path() {
        assert_eq!(
            rebase(
                "http://10.10.0.1:8080/files/configs/leaf1.cfg",
                "http://127.0.0.1:9/"
            ),
            "http://127.0.0.1:9/files/configs/leaf1.cfg"
        );
    }
}
