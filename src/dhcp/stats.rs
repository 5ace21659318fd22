//! DHCP counters for `/metrics` and the pool-exhaustion log limiter (the
//! "unplanned device seen" register is `unplanned.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::leases::Leases;
use super::packet::MessageType;
use super::view::ViewSource;
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

/// Why a request got no reply: the handler's decisions
/// ([`super::handler::Dropped`]) and the socket loop's own, typed once; the
/// label is the `reason` of `ztpd_dhcp_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed,
    NoSubnet,
    ForeignInterface,
    OtherServer,
    PoolExhausted,
    NotAClientMessage,
    Overload,
    Timeout,
    WriteFailed,
    SendFailed,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed,
        DropReason::NoSubnet,
        DropReason::ForeignInterface,
        DropReason::OtherServer,
        DropReason::PoolExhausted,
        DropReason::NotAClientMessage,
        DropReason::Overload,
        DropReason::Timeout,
        DropReason::WriteFailed,
        DropReason::SendFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NoSubnet => "no_subnet",
            DropReason::ForeignInterface => "foreign_interface",
            DropReason::OtherServer => "other_server",
            DropReason::PoolExhausted => "pool_exhausted",
            DropReason::NotAClientMessage => "not_a_client_message",
            DropReason::Overload => "overload",
            DropReason::Timeout => "timeout",
            DropReason::WriteFailed => "write_failed",
            DropReason::SendFailed => "send_failed",
        }
    }
}

/// How often pool exhaustion of one subnet is logged at most.
const EXHAUSTION_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// (device, MAC) conflicts remembered for that interval at most: a flood
/// of spoofed MACs must stay bounded.
const CONFLICTS_TRACKED: usize = 1024;

/// A planned device and the MAC of the client that claimed it.
type ConflictKey = (String, Option<[u8; 6]>);

pub struct DhcpStats {
    received: [AtomicU64; 8],
    sent: [AtomicU64; 8],
    dropped: [AtomicU64; DropReason::ALL.len()],
    skipped_options: AtomicU64,
    identity_conflicts: AtomicU64,
    /// When each (device, MAC) conflict was last reported.
    conflicts_noted: Mutex<HashMap<ConflictKey, Instant>>,
    exhausted_logged: Mutex<HashMap<usize, Instant>>,
    /// Set when DHCP first serves; counters are exposed from then on.
    started: AtomicBool,
}

impl Default for DhcpStats {
    fn default() -> Self {
        DhcpStats {
            received: Default::default(),
            sent: Default::default(),
            dropped: Default::default(),
            skipped_options: AtomicU64::new(0),
            identity_conflicts: AtomicU64::new(0),
            conflicts_noted: Mutex::new(HashMap::new()),
            exhausted_logged: Mutex::new(HashMap::new()),
            started: AtomicBool::new(false),
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
    pub fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Relaxed);
    }
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Relaxed)
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

    /// Count a client claiming a device it is not; true when it should be
    /// reported now (once a minute per device and MAC: a client retries).
    pub fn identity_conflict(&self, c: &super::conflict::Conflict) -> bool {
        self.identity_conflicts.fetch_add(1, Relaxed);
        let Ok(mut m) = self.conflicts_noted.lock() else {
            return false;
        };
        let now = Instant::now();
        if m.len() >= CONFLICTS_TRACKED {
            m.retain(|_, t| now.duration_since(*t) < EXHAUSTION_LOG_INTERVAL);
        }
        let key = (c.device.clone(), c.mac);
        match m.get(&key) {
            Some(t) if now.duration_since(*t) < EXHAUSTION_LOG_INTERVAL => false,
            _ => {
                m.insert(key, now);
                true
            }
        }
    }

    /// DHCP serves (from now on its metrics are exposed).
    pub fn mark_started(&self) {
        self.started.store(true, Relaxed);
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
        if !self.stats.started.load(Relaxed) {
            // No plan has served DHCP yet: no DHCP series at all.
            return;
        }
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
        let drops: Vec<(String, u64)> = DropReason::ALL
            .iter()
            .map(|r| {
                (
                    format!("reason=\"{}\"", r.label()),
                    self.stats.dropped_count(*r),
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
        emit(
            out,
            "ztpd_dhcp_identity_conflicts_total",
            "counter",
            "Requests naming a planned device they are not (another MAC, or its address held by another client).",
            vec![(String::new(), self.stats.identity_conflicts.load(Relaxed))],
        );
        let view = self.views.current();
        let now = crate::clock::unix_now();
        let (mut used, mut size) = (Vec::new(), Vec::new());
        if let Ok(t) = self.leases.table.lock() {
            for s in &view.subnets {
                let label = format!("site=\"{}\",subnet=\"{}\"", s.site, s.net);
                used.push((
                    label.clone(),
                    t.used_in((s.pool.0.into(), s.pool.1.into()), now),
                ));
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
