//! Admission before CONNECT: how many connections one address may hold
//! open without having sent a CONNECT (`limits.hub_unauthenticated_per_client`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Connections per address that have not finished CONNECT yet, over both
/// listeners (`limits.hub_unauthenticated_per_client`): so one host cannot
/// take every slot with idle sockets, as `tftp_transfers_per_client` does
/// for TFTP. Authenticated connections do not count: many devices behind
/// one NAT stay connected.
pub struct Unauthenticated {
    counts: Mutex<HashMap<std::net::IpAddr, usize>>,
    cap: usize,
}

/// One connection counted in [`Unauthenticated`] until it is dropped (when
/// its CONNECT is read, or it ends).
pub struct Counted {
    table: Arc<Unauthenticated>,
    ip: std::net::IpAddr,
}

impl Unauthenticated {
    /// Count a connection from `ip`, or None when the address has `cap`
    /// already.
    pub fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<Counted> {
        let mut m = self.counts.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Counted {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Ok(mut m) = self.table.counts.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

impl Unauthenticated {
    /// At most `cap` (at least 1) connections per address before CONNECT.
    pub fn new(cap: usize) -> Unauthenticated {
        Unauthenticated {
            counts: Mutex::default(),
            cap: cap.max(1),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}
