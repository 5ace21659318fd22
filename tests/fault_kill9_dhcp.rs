//! Fault suite (issue #15): `kill -9` under DHCP load.
//!
//! Kea's perfdhcp, a relay agent in the client namespace, runs DORA
//! exchanges at ztpd (`state.durability = "fsync"`) while the test kills the
//! daemon with SIGKILL five times (by default) and starts it again on the same state.
//! A packet socket on perfdhcp's interface records every DHCPACK that
//! reached it: those are the leases the clients saw acknowledged (perfdhcp
//! itself only prints counts). Afterwards:
//!
//! - no address was acknowledged to two MACs, and no MAC was acknowledged
//!   two addresses (a client keeps its address: a lease lost in a crash
//!   shows up as a client moved, or its address given to another);
//! - after a last SIGKILL, the state store, read with the loader the daemon
//!   itself uses at start, holds every acknowledged lease: bound, to that MAC;
//! - the restarted daemon gives a few of those clients (now real udhcpc
//!   clients with the same MAC) their acknowledged address again.
//!
//! Run with the other netns tests serialised:
//! `flock /tmp/ztpd-netns.lock cargo test --test fault_kill9_dhcp`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::netns::{Lab, SeenFrame, Sniffer, SERVER};
use support::tools::{have_all, must_run, ChildGuard};
use ztpd::dhcp::packet::MessageType;

/// The relay address perfdhcp binds (port 67) and puts in giaddr.
const RELAY: &str = "10.201.0.254";

/// The load and the kills. The defaults keep the test short for CI;
/// `benches/faults/run_faults.sh` runs a longer variant through the
/// environment (`ZTPD_FAULT_KILLS`, `ZTPD_FAULT_ACKS_PER_RUN`,
/// `ZTPD_FAULT_RATE`, `ZTPD_FAULT_CLIENTS`).
struct Load {
    /// Kills during the load; each one after `acks_per_run` new ACKs.
    kills: usize,
    /// ACKs to see from each daemon run before it is killed: enough that
    /// the kill lands while commits are in flight.
    acks_per_run: usize,
    /// DORAs per second offered: below what a debug build sustains with
    /// fsync on a loaded 2-core machine, so most exchanges complete.
    rate: String,
    /// Distinct perfdhcp clients (MACs): most exchanges are new leases.
    /// Keep it below the pool's 65,000 addresses.
    clients: String,
}

impl Load {
    fn from_env() -> Load {
        let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.into());
        Load {
            kills: var("ZTPD_FAULT_KILLS", "5")
                .parse()
                .expect("ZTPD_FAULT_KILLS"),
            acks_per_run: var("ZTPD_FAULT_ACKS_PER_RUN", "300")
                .parse()
                .expect("ZTPD_FAULT_ACKS_PER_RUN"),
            rate: var("ZTPD_FAULT_RATE", "600"),
            clients: var("ZTPD_FAULT_CLIENTS", "20000"),
        }
    }
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The lab plan with a /16 subnet and a pool of 65,000 addresses.
fn plan() -> String {
    Lab::plan()
        .replace("subnet = \"10.201.0.0/24\"", "subnet = \"10.201.0.0/16\"")
        .replace(
            "pool = \"10.201.0.100-10.201.0.104\"",
            "pool = \"10.201.1.1-10.201.254.254\"",
        )
}

/// Drain the sniffer into `acks` (ACKs only).
fn drain(sniffer: &Sniffer, acks: &mut Vec<SeenFrame>) {
    acks.extend(
        sniffer
            .replies()
            .into_iter()
            .filter(|f| f.msg_type == Some(MessageType::Ack)),
    );
}

/// Keep draining until `n` ACKs were seen in all (two minutes at most).
/// Drained every millisecond, not at the harness's poll interval: the kill
/// that follows lands right after an ACK, while the exchanges behind it are
/// between their commit and their reply.
fn wait_acks(lab: &Lab, sniffer: &Sniffer, acks: &mut Vec<SeenFrame>, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acks.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} ACKs seen under load\nmetrics:\n{}",
            acks.len(),
            lab.metrics()
        );
        drain(sniffer, acks);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn kill_9_under_perfdhcp_load_loses_no_acknowledged_lease() {
    if !have_all("kill_9_under_perfdhcp_load", &["perfdhcp"]) {
        return;
    }
    let Some(mut lab) = Lab::with_plan("k9ld", "fsync", &plan()) else {
        return;
    };
    // The server reaches the whole /16 on its veth (leases beyond the /24).
    must_run(&[
        "ip",
        "-n",
        &lab.srv,
        "route",
        "add",
        "10.201.0.0/16",
        "dev",
        "zdk9lds",
    ]);
    lab.add_client_address(&format!("{RELAY}/24"));
    let sniffer = lab.sniff(67);
    let load = Load::from_env();

    let mut perfdhcp = ChildGuard::spawn(
        Command::new("ip")
            .args(["netns", "exec", &lab.cli, "perfdhcp", "-4", "-l", RELAY])
            .args(["-r", &load.rate, "-R", &load.clients, "-p", "3600", SERVER])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    let mut acks: Vec<SeenFrame> = Vec::new();
    let started = std::time::Instant::now();
    for run in 1..=load.kills {
        wait_acks(&lab, &sniffer, &mut acks, run * load.acks_per_run);
        lab.stop(true);
        eprintln!("kill -9 #{run} after {} ACKs", acks.len());
        lab.start();
    }
    wait_acks(
        &lab,
        &sniffer,
        &mut acks,
        (load.kills + 1) * load.acks_per_run,
    );
    // The last crash: what is on disk now is what a restart starts from.
    lab.stop(true);
    perfdhcp.stop();
    drain(&sniffer, &mut acks);
    // Read by benches/faults/run_faults.sh.
    eprintln!(
        "FAULT kill9: {} ACKs seen over {} daemon runs ({} kills) in {:.1} s at {} DORA/s offered",
        acks.len(),
        lab.daemon.runs(),
        load.kills + 1,
        started.elapsed().as_secs_f64(),
        load.rate
    );

    // 1. What the clients saw: one MAC per address, one address per MAC.
    let mut macs_of: BTreeMap<Ipv4Addr, BTreeSet<[u8; 6]>> = BTreeMap::new();
    let mut ips_of: BTreeMap<[u8; 6], BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for a in &acks {
        macs_of.entry(a.yiaddr).or_default().insert(a.chaddr);
        ips_of.entry(a.chaddr).or_default().insert(a.yiaddr);
    }
    let shared: Vec<_> = macs_of.iter().filter(|(_, m)| m.len() > 1).collect();
    assert!(
        shared.is_empty(),
        "addresses acknowledged to two MACs: {shared:?}"
    );
    let moved: Vec<_> = ips_of.iter().filter(|(_, i)| i.len() > 1).collect();
    assert!(
        moved.is_empty(),
        "clients acknowledged two addresses (a lease was lost): {moved:?}"
    );

    // 2. What is on disk: every acknowledged lease, bound, to its MAC.
    let state =
        ztpd::state::StateStore::open(&lab.daemon.path("state"), ztpd::settings::Durability::Fsync)
            .expect("open the state store");
    let stored: BTreeMap<Ipv4Addr, ztpd::dhcp::leases::Lease> =
        ztpd::dhcp::leases::store::open(&state)
            .expect("load the stored leases")
            .into_iter()
            .map(|l| (l.ip, l))
            .collect();
    drop(state);
    let now = ztpd::clock::unix_now();
    let mut missing = Vec::new();
    for (ip, macs) in &macs_of {
        let mac = macs.first().expect("one MAC");
        match stored.get(ip) {
            Some(l)
                if l.mac.as_ref() == Some(mac)
                    && l.state == ztpd::dhcp::leases::LeaseState::Bound
                    && l.expires > now => {}
            other => missing.push(format!("{ip} acked to {}: stored {other:?}", mac_text(mac))),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged leases not in the state store after kill -9:\n{}",
        missing.len(),
        macs_of.len(),
        missing.join("\n")
    );

    // 3. The restarted daemon serves from it: real clients with acknowledged
    //    MACs get their addresses back (both send client-id 01+MAC, the
    //    identity the lease is stored under).
    lab.start();
    for (mac, ips) in ips_of.iter().step_by((ips_of.len() / 3).max(1)).take(3) {
        let want = ips.first().expect("one address").to_string();
        let got = lab
            .udhcpc(&mac_text(mac), &[])
            .unwrap_or_else(|| panic!("udhcpc as {} got no lease", mac_text(mac)));
        assert_eq!(
            got["ip"],
            want,
            "{} got another address; stored: {:?}",
            mac_text(mac),
            stored.get(ips.first().expect("one address"))
        );
    }
    eprintln!(
        "{} distinct leases acknowledged, all stored and owned by one MAC",
        macs_of.len()
    );
}
