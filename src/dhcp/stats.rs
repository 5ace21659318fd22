//! DHCP counters for `/metrics`, the pool-exhaustion log limiter and the
//! "unplanned device seen" register.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::handler::Seen;
use super::packet::MessageType;
use super::server::{Leases, ViewSource};
use crate::metrics::{write_metric, MetricsSource};

const TYPES: [MessageType; 8] = [
    MessageType::Discover,
    MessageType::Offer,
    MessageType::Request,
    MessageType::Decline,
    MessageType::Ack,
    MessageType::Nak,
    MessageType::Release,
    MessageType::Inform,
];

/// Drop reasons counted; `handler::Dropped` labels plus the socket loop's own.
pub const DROP_REASONS: [&str; 10] = [
    "malformed",
    "no_subnet",
    "foreign_interface",
    "other_server",
    "pool_exhausted",
    "not_a_client_message",
    "overload",
    "timeout",
    "write_failed",
    "send_failed",
];

/// How often pool exhaustion of one subnet is logged at most.
const EXHAUSTION_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Unplanned clients remembered at most (a random-MAC flood must not grow memory).
const SEEN_CAP: usize = 4096;
/// "Unplanned device seen" lines logged at info level per minute at most.
const UNPLANNED_LOGS_PER_MINUTE: u32 = 20;

pub struct DhcpStats {
    received: [AtomicU64; 8],
    sent: [AtomicU64; 8],
    dropped: [AtomicU64; DROP_REASONS.len()],
    skipped_options: AtomicU64,
    exhausted_logged: Mutex<HashMap<usize, Instant>>,
    seen: Mutex<HashMap<Vec<u8>, (Seen, u64)>>,
    /// (start of the current minute, unplanned lines in it).
    unplanned_log: Mutex<(Instant, u32)>,
}

impl Default for DhcpStats {
    fn default() -> Self {
        DhcpStats {
            received: Default::default(),
            sent: Default::default(),
            dropped: Default::default(),
            skipped_options: AtomicU64::new(0),
            exhausted_logged: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            unplanned_log: Mutex::new((Instant::now(), 0)),
        }
    }
}

fn type_index(t: MessageType) -> usize {
    usize::from(t.code() - 1)
}

impl DhcpStats {
    pub fn received(&self, t: MessageType) {
        self.received[type_index(t)].fetch_add(1, Relaxed);
    }
    pub fn sent(&self, t: MessageType) {
        self.sent[type_index(t)].fetch_add(1, Relaxed);
    }
    pub fn dropped(&self, reason: &str) {
        if let Some(i) = DROP_REASONS.iter().position(|r| *r == reason) {
            self.dropped[i].fetch_add(1, Relaxed);
        }
    }
    pub fn dropped_count(&self, reason: &str) -> u64 {
        DROP_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.dropped[i].load(Relaxed))
    }
    pub fn skipped_options(&self, n: usize) {
        self.skipped_options.fetch_add(n as u64, Relaxed);
    }

    /// True when exhaustion of `subnet` should be logged now (once per interval).
    pub fn should_log_exhaustion(&self, subnet: usize) -> bool {
        let Ok(mut m) = self.exhausted_logged.lock() else {
            return false;
        };
        let now = Instant::now();
        match m.get(&subnet) {
            Some(t) if now.duration_since(*t) < EXHAUSTION_LOG_INTERVAL => false,
            _ => {
                m.insert(subnet, now);
                true
            }
        }
    }

    /// Remember an unplanned client; true the first time it is seen.
    pub fn record_seen(&self, key: Vec<u8>, seen: Seen) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let Ok(mut m) = self.seen.lock() else {
            return false;
        };
        if let Some(e) = m.get_mut(&key) {
            *e = (seen, now);
            return false;
        }
        if m.len() >= SEEN_CAP {
            // Any entry will do: under a random-MAC flood the register only has
            // to stay bounded and cheap, not exact.
            if let Some(k) = m.keys().next().cloned() {
                m.remove(&k);
            }
        }
        m.insert(key, (seen, now));
        true
    }

    /// True when one more "unplanned device seen" line may be logged at info
    /// level this minute; a flood of new clients must not flood the log.
    pub fn may_log_unplanned(&self) -> bool {
        let Ok(mut w) = self.unplanned_log.lock() else {
            return false;
        };
        let now = Instant::now();
        if now.duration_since(w.0) >= Duration::from_secs(60) {
            if w.1 > UNPLANNED_LOGS_PER_MINUTE {
                tracing::info!(
                    suppressed = w.1 - UNPLANNED_LOGS_PER_MINUTE,
                    "more unplanned devices were seen than logged in the last minute"
                );
            }
            *w = (now, 0);
        }
        w.1 += 1;
        w.1 <= UNPLANNED_LOGS_PER_MINUTE
    }

    /// Unplanned devices seen, with the unix time each was last seen.
    pub fn unplanned(&self) -> Vec<(Seen, u64)> {
        self.seen
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// `/metrics` source: counters plus pool usage read from the live lease table.
pub struct DhcpMetrics {
    pub stats: Arc<DhcpStats>,
    pub leases: Arc<Leases>,
    pub views: Arc<ViewSource>,
}

impl MetricsSource for DhcpMetrics {
    fn write_metrics(&self, out: &mut String) {
        let by_type = |arr: &[AtomicU64; 8]| -> Vec<(String, u64)> {
            TYPES
                .iter()
                .map(|t| {
                    (
                        format!("type=\"{}\"", t.name()),
                        arr[type_index(*t)].load(Relaxed),
                    )
                })
                .collect()
        };
        let samples = |v: &[(String, u64)]| -> Vec<(String, u64)> { v.to_vec() };
        let emit = |out: &mut String, name: &str, kind: &str, help: &str, v: Vec<(String, u64)>| {
            let refs: Vec<(&str, u64)> = v.iter().map(|(l, n)| (l.as_str(), *n)).collect();
            write_metric(out, name, kind, help, &refs);
        };
        emit(
            out,
            "ztpd_dhcp_received_total",
            "counter",
            "DHCP requests received, by message type.",
            by_type(&self.stats.received),
        );
        emit(
            out,
            "ztpd_dhcp_sent_total",
            "counter",
            "DHCP replies sent, by message type.",
            by_type(&self.stats.sent),
        );
        let drops: Vec<(String, u64)> = DROP_REASONS
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    format!("reason=\"{r}\""),
                    self.stats.dropped[i].load(Relaxed),
                )
            })
            .collect();
        emit(
            out,
            "ztpd_dhcp_dropped_total",
            "counter",
            "DHCP requests dropped without a reply, by reason.",
            samples(&drops),
        );
        emit(
            out,
            "ztpd_dhcp_skipped_options_total",
            "counter",
            "Options skipped because they could not be decoded.",
            vec![(String::new(), self.stats.skipped_options.load(Relaxed))],
        );
        let view = self.views.current();
        let now = super::server::unix_now();
        let (mut used, mut size) = (Vec::new(), Vec::new());
        if let Ok(t) = self.leases.table.lock() {
            for s in &view.subnets {
                let label = format!("site=\"{}\",subnet=\"{}\"", s.site, s.net);
                used.push((label.clone(), t.used_in(s.pool, now)));
                size.push((label, u64::from(s.pool_size())));
            }
        }
        emit(
            out,
            "ztpd_dhcp_pool_used",
            "gauge",
            "Pool addresses offered, leased or quarantined.",
            used,
        );
        emit(
            out,
            "ztpd_dhcp_pool_size",
            "gauge",
            "Pool addresses in total.",
            size,
        );
    }
}
