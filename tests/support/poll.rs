//! Waiting for a condition by polling it. Tests never sleep to wait for
//! readiness: they poll, with a generous limit that only a broken (or very
//! loaded) run reaches.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Pause between two polls: short enough not to slow tests down, long
/// enough not to load a shared 2-core machine when a poll is expensive
/// (a MongoDB query or a `ztpd analyze` process each time).
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Poll `f` until it returns `Some`, or `None` once `limit` has passed.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(INTERVAL);
    }
}

/// Poll `f` until it returns `Some`; panic naming `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll(limit, f).unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Poll `f` until it holds; panic naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, limit, || f().then_some(()))
}

/// Does something accept TCP connections on `addr` within 20 s?
pub fn wait_tcp(addr: SocketAddr) -> bool {
    poll(Duration::from_secs(20), || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()
    })
    .is_some()
}
