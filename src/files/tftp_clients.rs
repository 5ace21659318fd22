//! Admission of TFTP read requests: at most `limits.tftp_transfers_per_client`
//! transfers per client address (issue 15 defect 3), and one per address and
//! port (a retransmitted RRQ starts nothing). Checked once per request under
//! one short lock, never on the per-block path.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// A lock that survives a panic elsewhere (the counts stay usable).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a read request may start a transfer.
#[derive(Debug, PartialEq)]
pub enum Admit {
    Yes,
    /// A transfer for this client address and port runs: a retransmitted RRQ.
    Running,
    /// The client's address has its share of transfers running.
    TooMany,
}

/// The clients whose transfers run, by address and port, and how many each
/// address has.
pub struct Clients {
    running: HashSet<SocketAddr>,
    per_ip: HashMap<IpAddr, usize>,
    per_ip_cap: usize,
}

impl Clients {
    pub fn new(per_ip_cap: usize) -> Self {
        Clients {
            running: HashSet::new(),
            per_ip: HashMap::new(),
            per_ip_cap,
        }
    }

    pub fn admit(&mut self, client: SocketAddr) -> Admit {
        if self.running.contains(&client) {
            return Admit::Running;
        }
        let n = self.per_ip.entry(client.ip()).or_default();
        if *n >= self.per_ip_cap {
            return Admit::TooMany;
        }
        *n += 1;
        self.running.insert(client);
        Admit::Yes
    }

    pub fn release(&mut self, client: SocketAddr) {
        if !self.running.remove(&client) {
            return;
        }
        if let Some(n) = self.per_ip.get_mut(&client.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&client.ip());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let mut c = Clients::new(2);
        let a = |p: u16| SocketAddr::from(([10, 0, 0, 1], p));
        let b = SocketAddr::from(([10, 0, 0, 2], 1));
        assert_eq!(c.admit(a(1)), Admit::Yes);
        assert_eq!(c.admit(a(1)), Admit::Running);
        assert_eq!(c.admit(a(2)), Admit::Yes);
        assert_eq!(c.admit(a(3)), Admit::TooMany);
        assert_eq!(c.admit(b), Admit::Yes);
        c.release(a(1));
        c.release(a(1));
        assert_eq!(c.admit(a(3)), Admit::Yes);
        assert_eq!(c.admit(a(4)), Admit::TooMany);
        for p in [2, 3] {
            c.release(a(p));
        }
        c.release(b);
        assert!(c.per_ip.is_empty() && c.running.is_empty());
    }
}
