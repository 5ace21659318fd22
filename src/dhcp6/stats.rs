//! DHCPv6 counters for `/metrics` (`ztpd_dhcp6_*`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::handler::Dropped6;
use super::leases::Leases6;
use crate::metrics::{write_metric, MetricsSource};

/// Drop reasons of the socket loop itself, beside the handler's.
pub const LOOP_REASONS: [&str; 4] = ["malformed", "write_failed", "send_failed", "overload"];
const HANDLER_REASONS: [Dropped6; 6] = [
    Dropped6::NoSubnet,
    Dropped6::ForeignInterface,
    Dropped6::OtherServer,
    Dropped6::NoClientId,
    Dropped6::NotAClientMessage,
    Dropped6::NothingToConfirm,
];

#[derive(Debug, Default)]
pub struct Dhcp6Stats {
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub started: AtomicBool,
    handler_drops: [AtomicU64; 6],
    loop_drops: [AtomicU64; 4],
}

impl Dhcp6Stats {
    pub fn dropped(&self, d: Dropped6) {
        if let Some(i) = HANDLER_REASONS.iter().position(|r| *r == d) {
            self.handler_drops[i].fetch_add(1, Relaxed);
        }
    }

    /// One of [`LOOP_REASONS`].
    pub fn dropped_in_loop(&self, reason: &str) {
        if let Some(i) = LOOP_REASONS.iter().position(|r| *r == reason) {
            self.loop_drops[i].fetch_add(1, Relaxed);
        }
    }

    pub fn dropped_count(&self, reason: &str) -> u64 {
        if let Some(i) = LOOP_REASONS.iter().position(|r| *r == reason) {
            return self.loop_drops[i].load(Relaxed);
        }
        HANDLER_REASONS
            .iter()
            .position(|r| r.label() == reason)
            .map_or(0, |i| self.handler_drops[i].load(Relaxed))
    }
}

pub struct Dhcp6Metrics {
    pub stats: Arc<Dhcp6Stats>,
    pub leases: Arc<Leases6>,
}

impl MetricsSource for Dhcp6Metrics {
    fn write_metrics(&self, out: &mut String) {
        if !self.stats.started.load(Relaxed) {
            return;
        }
        let s = &self.stats;
        write_metric(
            out,
            "ztpd_dhcp6_received_total",
            "counter",
            "DHCPv6 datagrams received.",
            &[("", s.received.load(Relaxed))],
        );
        write_metric(
            out,
            "ztpd_dhcp6_sent_total",
            "counter",
            "DHCPv6 replies sent.",
            &[("", s.sent.load(Relaxed))],
        );
        let labels: Vec<String> = LOOP_REASONS
            .iter()
            .copied()
            .chain(HANDLER_REASONS.iter().map(|r| r.label()))
            .map(|r| format!("reason=\"{r}\""))
            .collect();
        let samples: Vec<(&str, u64)> = labels
            .iter()
            .map(|l| {
                let reason = &l[8..l.len() - 1];
                (l.as_str(), s.dropped_count(reason))
            })
            .collect();
        write_metric(
            out,
            "ztpd_dhcp6_dropped_total",
            "counter",
            "DHCPv6 datagrams dropped without a reply, by reason.",
            &samples,
        );
        let now = crate::clock::unix_now();
        let bound = self
            .leases
            .table
            .lock()
            .map(|t| t.bound(now).count() as u64)
            .unwrap_or(0);
        write_metric(
            out,
            "ztpd_dhcp6_leases",
            "gauge",
            "DHCPv6 addresses bound and unexpired.",
            &[("", bound)],
        );
    }
}
