//! Progress inferred from what ztpd observes, for devices that never report
//! back (Cisco AutoInstall, Juniper): a DHCP lease on a planned address
//! moves the device to `dhcp`; an approved device that fetched its config
//! (the transfer ledger) is `downloading`. Runs as a small periodic scan: one lock of the
//! lease table per tick, whatever the fleet size.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Ztp;

/// How often observations are turned into state.
pub const TICK: Duration = Duration::from_secs(1);

/// Planned devices holding a live lease on their planned address: (name, serial, ip).
pub fn leased_devices(ztp: &Ztp) -> Vec<(String, String, std::net::Ipv4Addr)> {
    let Some(leases) = &ztp.leases else {
        return Vec::new();
    };
    let snap = ztp.snapshot.load();
    let now = crate::clock::unix_now();
    let Ok(table) = leases.table.lock() else {
        return Vec::new();
    };
    snap.model
        .devices()
        .filter_map(|(_, d)| {
            let ip = d.ip?;
            let l = table.get(ip)?;
            (l.state == crate::dhcp::leases::LeaseState::Bound && l.expires > now)
                .then(|| (d.name.clone(), d.serial.clone(), ip))
        })
        .collect()
}

pub async fn run(
    ztp: Arc<Ztp>,
    ledger: Option<Arc<crate::files::ledger::Ledger>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut seen_transfer = 0u64;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        // Refusals counted in a minute that has ended: one event each.
        for (name, message) in ztp.refusals.flush(std::time::Instant::now()) {
            if let Err(e) = ztp.tracker.note(&name, message).await {
                tracing::warn!(device = %name, "refusal summary not stored: {e}");
            }
        }
        // Clients that claimed a planned device they are not: its events.
        if let Some(leases) = &ztp.leases {
            for (name, message) in leases.take_conflicts() {
                if let Err(e) = ztp.tracker.note(&name, message).await {
                    tracing::warn!(device = %name, "identity conflict event not stored: {e}");
                }
            }
        }
        for (name, serial, ip) in leased_devices(&ztp) {
            let known = ztp.tracker.get(&name).and_then(|r| r.leased_ip);
            if known != Some(ip) {
                ztp.tracker.observe_lease(&name, &serial, ip).await;
            }
        }
        if let Some(ledger) = &ledger {
            let snap = ztp.snapshot.load();
            for t in ledger.transfers() {
                if t.id <= seen_transfer {
                    continue;
                }
                seen_transfer = t.id;
                let Some(name) = &t.device else { continue };
                if t.path.starts_with("credentials/") {
                    if let Some((_, d)) = snap.model.device(name) {
                        ztp.actions.credential_fetched(&d.name).await;
                    }
                    continue;
                }
                if !t.path.starts_with("configs/") {
                    continue;
                }
                if let Some((_, d)) = snap.model.device(name) {
                    ztp.tracker.observe_fetch(&d.name, &d.serial, &t.path).await;
                }
            }
        }
    }
}
