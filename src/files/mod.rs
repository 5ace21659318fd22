//! Deployment files over TFTP and HTTP (SPEC §5): one virtual tree
//! ([`vfs`]), one access hook ([`access`]), one ledger ([`ledger`]).
//!
//! [`FileService::open`] is the only way either protocol gets bytes: it
//! resolves the path against the current snapshot, asks the access hook,
//! counts and logs refusals with the client address, and opens the content.

pub mod access;
mod file_chunks;
pub mod http;
pub mod ledger;
pub mod tftp;
pub mod tftp_clients;
pub mod tftp_packet;
mod tftp_session;
pub mod vfs;

#[cfg(test)]
pub(crate) mod testutil;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use access::{AccessFacts, Refusal};
use ledger::{Ledger, Proto, TransferHandle};
use vfs::{Content, Kind, LookupError, PathError};

use crate::snapshot::SnapshotHandle;

/// Shared by the TFTP and HTTP servers.
pub struct FileService {
    snapshot: SnapshotHandle,
    facts: Arc<dyn AccessFacts>,
    pub ledger: Arc<Ledger>,
}

/// A path that may be served, with its content opened.
#[derive(Debug)]
pub struct Served {
    pub path: String,
    pub kind: Kind,
    pub content: Content,
    pub len: u64,
    /// Modification time of a disk file; `None` for generated content.
    pub modified: Option<SystemTime>,
    /// Strong validator: content hash for generated content, size and
    /// modification time for disk files.
    pub etag: String,
    /// The planned device the path belongs to (its config, or its
    /// credential; an unplanned credential keeps its device id), for the ledger.
    pub device: Option<String>,
}

impl Served {
    pub fn begin(
        &self,
        ledger: &Arc<Ledger>,
        client: SocketAddr,
        proto: Proto,
        total: u64,
    ) -> TransferHandle {
        ledger.begin(client, proto, &self.path, self.device.clone(), total)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    NotFound,
    Refused(Refusal),
}

impl FileService {
    pub fn new(snapshot: SnapshotHandle, facts: Arc<dyn AccessFacts>) -> Self {
        FileService {
            snapshot,
            facts,
            ledger: Arc::new(Ledger::new()),
        }
    }

    /// Count and log one refusal with the client address.
    pub fn refuse(
        &self,
        proto: Proto,
        client: SocketAddr,
        raw: &str,
        why: Refusal,
        detail: &dyn std::fmt::Display,
    ) {
        self.ledger.count_refusal(proto, why);
        tracing::warn!(
            client = %client, proto = proto.label(), path = %raw.escape_debug(),
            reason = why.label(), "file request refused: {detail}"
        );
    }

    /// Resolve, authorise and open `raw` for `client`. Every refusal is
    /// counted and logged here, so both protocols behave the same.
    pub async fn open(
        &self,
        raw: &str,
        client: SocketAddr,
        authorization: Option<&str>,
        proto: Proto,
    ) -> Result<Served, OpenError> {
        // Rules and records see an IPv4 client of a dual-stack listener as IPv4.
        let client = crate::addr::canonical_socket(client);
        let snap = self.snapshot.load();
        let refuse = |why: Refusal, detail: &dyn std::fmt::Display| {
            self.refuse(proto, client, raw, why, detail);
            OpenError::Refused(why)
        };
        let not_found = || {
            self.ledger.count_not_found(proto);
            tracing::debug!(client = %client, proto = proto.label(), path = %raw.escape_debug(), "file not found");
            OpenError::NotFound
        };
        let target = match vfs::resolve(&snap, raw, client.ip()) {
            Ok(t) => t,
            Err(LookupError::Refused(e)) => return Err(refuse(path_refusal(e), &e)),
            Err(LookupError::NotFound) => return Err(not_found()),
        };
        let req = access::Request {
            kind: &target.kind,
            client: client.ip(),
            authorization,
        };
        let mode = snap.resolved.settings.access.configs;
        if let Err(why) = access::decide(&req, mode, &snap.model, self.facts.as_ref()) {
            return Err(refuse(why, &"access table (SPEC §5)"));
        }
        let snap2 = snap.clone();
        let t2 = target.clone();
        let opened = tokio::task::spawn_blocking(move || vfs::open(&snap2, &t2))
            .await
            .map_err(|_| not_found())?;
        let opened = match opened {
            Ok(o) => o,
            Err(LookupError::Refused(e)) => return Err(refuse(path_refusal(e), &e)),
            Err(LookupError::NotFound) => return Err(not_found()),
        };
        let etag = match (&opened.content, opened.modified) {
            (Content::Memory(b), _) => format!("\"g{:016x}\"", fnv1a(b)),
            (Content::Disk(_), Some(m)) => {
                let ns = m
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                format!("\"f{:x}-{:x}\"", opened.len, ns)
            }
            (Content::Disk(_), None) => format!("\"f{:x}\"", opened.len),
        };
        let device = match &target.kind {
            Kind::Config { device } => Some(device.clone()),
            Kind::Credential { device_id } => Some(
                snap.model
                    .device(device_id)
                    .map_or_else(|| device_id.clone(), |(_, d)| d.name.clone()),
            ),
            Kind::Bootstrap | Kind::File => None,
        };
        Ok(Served {
            device,
            path: target.path,
            kind: target.kind,
            content: opened.content,
            len: opened.len,
            modified: opened.modified,
            etag,
        })
    }
}

fn path_refusal(e: PathError) -> Refusal {
    match e {
        PathError::SymlinkEscape => Refusal::SymlinkEscape,
        _ => Refusal::Traversal,
    }
}

/// FNV-1a: a stable content hash for ETags of generated files (not security).
fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
