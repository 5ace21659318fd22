//! Transfer ledger and counters: which client fetched what, when, and how far.
//!
//! The ledger keeps the most recent [`LEDGER_CAPACITY`] transfers in memory;
//! ZTP progress inference reads it (e.g. "leaf1 fetched 80% of its image").
//! A transfer's byte count is an atomic updated by the sender without taking
//! the ledger lock, which is held only to append or to copy entries out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::access::Refusal;
use crate::metrics::{write_metric, MetricsSource};

/// Enough for every device of a large site to fetch config, image and patch
/// a few times over, while staying a few MB at most.
pub const LEDGER_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tftp,
    Http,
}

impl Proto {
    pub fn label(self) -> &'static str {
        match self {
            Proto::Tftp => "tftp",
            Proto::Http => "http",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    InProgress,
    Complete,
    /// The client went away, timed out or sent an error.
    Aborted,
}

const IN_PROGRESS: u8 = 0;
const COMPLETE: u8 = 1;
const ABORTED: u8 = 2;

#[derive(Debug)]
struct Record {
    id: u64,
    started: SystemTime,
    client: SocketAddr,
    proto: Proto,
    path: String,
    device: Option<String>,
    total: u64,
    bytes: AtomicU64,
    outcome: AtomicU8,
    /// Milliseconds since the epoch; 0 while in progress.
    finished_ms: AtomicU64,
}

/// A copy of one ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: u64,
    pub started: SystemTime,
    pub finished: Option<SystemTime>,
    pub client: SocketAddr,
    pub proto: Proto,
    /// Normalised path inside the file tree.
    pub path: String,
    /// The planned device the path belongs to (its config or credential), if any.
    pub device: Option<String>,
    pub bytes: u64,
    /// Bytes the transfer should have carried (the range length for HTTP).
    pub total: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
pub struct Stats {
    started: [AtomicU64; 2],
    complete: [AtomicU64; 2],
    aborted: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
    not_found: [AtomicU64; 2],
    refused: [[AtomicU64; Refusal::ALL.len()]; 2],
    tftp_retransmits: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    records: Mutex<VecDeque<Arc<Record>>>,
    next_id: AtomicU64,
    pub stats: Stats,
}

impl Ledger {
    pub fn new() -> Self {
        Ledger::default()
    }

    /// Record the start of a transfer; the handle counts bytes and marks the
    /// end (aborted if dropped before [`TransferHandle::complete`]).
    pub fn begin(
        self: &Arc<Self>,
        client: SocketAddr,
        proto: Proto,
        path: &str,
        device: Option<String>,
        total: u64,
    ) -> TransferHandle {
        let client = crate::addr::canonical_socket(client);
        let rec = Arc::new(Record {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            started: SystemTime::now(),
            client,
            proto,
            path: path.to_string(),
            device,
            total,
            bytes: AtomicU64::new(0),
            outcome: AtomicU8::new(IN_PROGRESS),
            finished_ms: AtomicU64::new(0),
        });
        {
            let mut q = self.records.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= LEDGER_CAPACITY {
                q.pop_front();
            }
            q.push_back(rec.clone());
        }
        self.stats.started[proto.index()].fetch_add(1, Ordering::Relaxed);
        TransferHandle {
            ledger: self.clone(),
            rec,
        }
    }

    /// The recorded transfers, oldest first.
    pub fn transfers(&self) -> Vec<Transfer> {
        let q = self.records.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().map(|r| snapshot_of(r)).collect()
    }

    /// Transfers of one planned device, oldest first.
    pub fn for_device(&self, device: &str) -> Vec<Transfer> {
        let q = self.records.lock().unwrap_or_else(|p| p.into_inner());
        q.iter()
            .filter(|r| r.device.as_deref() == Some(device))
            .map(|r| snapshot_of(r))
            .collect()
    }

    pub fn count_refusal(&self, proto: Proto, why: Refusal) {
        self.stats.refused[proto.index()][why.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_not_found(&self, proto: Proto) {
        self.stats.not_found[proto.index()].fetch_add(1, Ordering::Relaxed);
    }
}

fn snapshot_of(r: &Record) -> Transfer {
    let finished_ms = r.finished_ms.load(Ordering::Acquire);
    Transfer {
        id: r.id,
        started: r.started,
        finished: (finished_ms != 0)
            .then(|| UNIX_EPOCH + std::time::Duration::from_millis(finished_ms)),
        client: r.client,
        proto: r.proto,
        path: r.path.clone(),
        device: r.device.clone(),
        bytes: r.bytes.load(Ordering::Relaxed),
        total: r.total,
        outcome: match r.outcome.load(Ordering::Acquire) {
            COMPLETE => Outcome::Complete,
            ABORTED => Outcome::Aborted,
            _ => Outcome::InProgress,
        },
    }
}

/// Held by the task sending one transfer.
#[derive(Debug)]
pub struct TransferHandle {
    ledger: Arc<Ledger>,
    rec: Arc<Record>,
}

impl TransferHandle {
    /// Count bytes that reached the client (acknowledged for TFTP, written for HTTP).
    pub fn add_bytes(&self, n: u64) {
        self.rec.bytes.fetch_add(n, Ordering::Relaxed);
        self.ledger.stats.bytes[self.rec.proto.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// TFTP blocks sent again after a timeout or a partial window ACK.
    pub fn count_retransmits(&self, n: u64) {
        if n > 0 {
            self.ledger
                .stats
                .tftp_retransmits
                .fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn complete(self) {
        self.finish(COMPLETE);
    }

    fn finish(&self, outcome: u8) {
        if self
            .rec
            .outcome
            .compare_exchange(IN_PROGRESS, outcome, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let ms = crate::clock::unix_millis().max(1);
        self.rec.finished_ms.store(ms, Ordering::Release);
        let i = self.rec.proto.index();
        let counter = if outcome == COMPLETE {
            &self.ledger.stats.complete[i]
        } else {
            &self.ledger.stats.aborted[i]
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for TransferHandle {
    fn drop(&mut self) {
        self.finish(ABORTED);
    }
}

impl MetricsSource for Ledger {
    fn write_metrics(&self, out: &mut String) {
        let s = &self.stats;
        let per_proto = |a: &[AtomicU64; 2]| -> Vec<(String, u64)> {
            [Proto::Tftp, Proto::Http]
                .iter()
                .map(|p| {
                    (
                        format!("proto=\"{}\"", p.label()),
                        a[p.index()].load(Ordering::Relaxed),
                    )
                })
                .collect()
        };
        let mut transfers = Vec::new();
        for (outcome, arr) in [("complete", &s.complete), ("aborted", &s.aborted)] {
            for (labels, v) in per_proto(arr) {
                transfers.push((format!("{labels},outcome=\"{outcome}\""), v));
            }
        }
        let active: Vec<(String, u64)> = [Proto::Tftp, Proto::Http]
            .iter()
            .map(|p| {
                let i = p.index();
                let done =
                    s.complete[i].load(Ordering::Relaxed) + s.aborted[i].load(Ordering::Relaxed);
                let started = s.started[i].load(Ordering::Relaxed);
                (
                    format!("proto=\"{}\"", p.label()),
                    started.saturating_sub(done),
                )
            })
            .collect();
        let mut refused = Vec::new();
        for p in [Proto::Tftp, Proto::Http] {
            for r in Refusal::ALL {
                let v = s.refused[p.index()][r.index()].load(Ordering::Relaxed);
                refused.push((
                    format!("proto=\"{}\",reason=\"{}\"", p.label(), r.label()),
                    v,
                ));
            }
        }
        let emit = |out: &mut String, name: &str, kind: &str, help: &str, v: &[(String, u64)]| {
            let samples: Vec<(&str, u64)> = v.iter().map(|(l, n)| (l.as_str(), *n)).collect();
            write_metric(out, name, kind, help, &samples);
        };
        emit(
            out,
            "ztpd_files_transfers_total",
            "counter",
            "Finished file transfers by protocol and outcome.",
            &transfers,
        );
        emit(
            out,
            "ztpd_files_transfers_active",
            "gauge",
            "File transfers in progress.",
            &active,
        );
        emit(
            out,
            "ztpd_files_bytes_total",
            "counter",
            "File bytes delivered to clients.",
            &per_proto(&s.bytes),
        );
        emit(
            out,
            "ztpd_files_not_found_total",
            "counter",
            "Requests for paths that do not exist.",
            &per_proto(&s.not_found),
        );
        let rt = [(String::new(), s.tftp_retransmits.load(Ordering::Relaxed))];
        emit(
            out,
            "ztpd_files_tftp_retransmits_total",
            "counter",
            "TFTP data blocks sent more than once.",
            &rt,
        );
        emit(
            out,
            "ztpd_files_refusals_total",
            "counter",
            "Refused file requests by reason.",
            &refused,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_record_progress_and_aborts_on_drop() {
        let l = Arc::new(Ledger::new());
        let addr: SocketAddr = "10.0.0.11:4000".parse().expect("addr");
        let a = l.begin(addr, Proto::Tftp, "images/x.bin", None, 100);
        let b = l.begin(
            addr,
            Proto::Http,
            "configs/leaf1.cfg",
            Some("leaf1".into()),
            10,
        );
        a.add_bytes(40);
        b.add_bytes(10);
        b.complete();
        let t = l.transfers();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].bytes, t[0].outcome), (40, Outcome::InProgress));
        assert!(t[0].finished.is_none());
        drop(a);
        let t = l.transfers();
        assert_eq!(t[0].outcome, Outcome::Aborted);
        assert_eq!(
            (t[1].outcome, t[1].bytes, t[1].total),
            (Outcome::Complete, 10, 10)
        );
        assert!(t[1].finished.is_some());
        assert_eq!(l.for_device("leaf1").len(), 1);
        let mut m = String::new();
        l.write_metrics(&mut m);
        assert!(
            m.contains("ztpd_files_transfers_total{proto=\"tftp\",outcome=\"aborted\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("ztpd_files_transfers_active{proto=\"http\"} 0"),
            "{m}"
        );
        assert!(
            m.contains("ztpd_files_bytes_total{proto=\"tftp\"} 40"),
            "{m}"
        );
    }

    #[test]
    fn ledger_is_bounded() {
        let l = Arc::new(Ledger::new());
        let addr: SocketAddr = "10.0.0.11:4000".parse().expect("addr");
        for _ in 0..LEDGER_CAPACITY + 10 {
            l.begin(addr, Proto::Tftp, "x", None, 0).complete();
        }
        let t = l.transfers();
        assert_eq!(t.len(), LEDGER_CAPACITY);
        assert_eq!(t[0].id, 11);
    }
}
