//! The registry of connected devices: the listener's sessions register
//! here and get a [`Handle`]; the rest of the hub reaches a connected
//! device only by sending it a [`Push`] message (rumqttd's router and links
//! are the model). It knows nothing of sockets or sessions, so neither
//! `server` nor `session` is imported here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::acl::Subscription;

/// Messages pushed to one connection beyond this are dropped (twin
/// patches, method calls: the caller sees no answer) or wait in the outbox
/// for the next acknowledgement (devicebound).
const PUSH_QUEUE: usize = 64;

/// What a device subscribed to on this connection (or kept in its
/// persistent session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subs(u8);

impl Subs {
    fn bit(s: Subscription) -> u8 {
        match s {
            Subscription::Devicebound => 1,
            Subscription::TwinResponses => 2,
            Subscription::DesiredPatches => 4,
            Subscription::Methods => 8,
            Subscription::DpsResponses => 16,
        }
    }
    pub fn add(&mut self, s: Subscription) {
        self.0 |= Self::bit(s);
    }
    pub fn remove(&mut self, s: Subscription) {
        self.0 &= !Self::bit(s);
    }
    pub fn has(&self, s: Subscription) -> bool {
        self.0 & Self::bit(s) != 0
    }
}

/// Something for a connected device.
pub enum Push {
    /// New messages wait in the outbox.
    Devicebound,
    /// A QoS 0 message for subscribers of `subscription`.
    Publish {
        topic: String,
        payload: Bytes,
        subscription: Subscription,
    },
}

struct Connected {
    conn: u64,
    tx: mpsc::Sender<Push>,
    /// Cancelled when another connection of the device takes over (a
    /// token, not a message: it works even when the push queue is full).
    kick: CancellationToken,
}

#[derive(Default)]
struct Sessions {
    connected: HashMap<String, Connected>,
    /// Subscriptions of persistent sessions (`clean_session = false`) of
    /// devices that are offline; memory only, so a restart of ztpd starts
    /// every session fresh (and CONNACK says so).
    kept: HashMap<String, Subs>,
    /// When each device last connected or disconnected (RFC 3339), since
    /// ztpd started.
    last_seen: HashMap<String, String>,
}

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<Sessions>,
    next_conn: AtomicU64,
}

/// What a new connection gets from [`Registry::register`]: its messages,
/// and the handle that unregisters it when dropped.
pub struct Registered {
    pub handle: Handle,
    pub pushes: mpsc::Receiver<Push>,
    /// Cancelled when a newer connection of the same device takes over.
    pub kicked: CancellationToken,
    /// Whether a persistent session was kept (CONNACK's session present).
    pub present: bool,
    pub subs: Subs,
}

/// A session's registration; dropping it ends the registration, keeping
/// the subscriptions set with [`Handle::keep`].
pub struct Handle {
    registry: Arc<Registry>,
    device_id: String,
    conn: u64,
    keep: Option<Subs>,
}

impl Handle {
    /// Keep `subs` for the device's next connection (a persistent session).
    pub fn keep(&mut self, subs: Subs) {
        self.keep = Some(subs);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.registry
            .unregister(&self.device_id, self.conn, self.keep.take());
    }
}

impl Registry {
    /// A device connected: its messages, whether its persistent session
    /// was kept, and that session's subscriptions. An earlier connection of
    /// the same device is closed (MQTT 3.1.1 §3.1.4: the server disconnects
    /// the existing client).
    pub fn register(self: &Arc<Self>, device_id: &str, clean: bool) -> Registered {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(PUSH_QUEUE);
        let kick = CancellationToken::new();
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let new = Connected {
            conn,
            tx,
            kick: kick.clone(),
        };
        s.last_seen
            .insert(device_id.to_string(), crate::clock::rfc3339_millis());
        if let Some(old) = s.connected.insert(device_id.to_string(), new) {
            old.kick.cancel();
        }
        let kept = s.kept.remove(device_id);
        let (present, subs) = match (clean, kept) {
            (false, Some(subs)) => (true, subs),
            _ => (false, Subs::default()),
        };
        Registered {
            handle: Handle {
                registry: self.clone(),
                device_id: device_id.to_string(),
                conn,
                keep: None,
            },
            pushes: rx,
            kicked: kick,
            present,
            subs,
        }
    }

    fn unregister(&self, device_id: &str, conn: u64, keep: Option<Subs>) {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if s.connected.get(device_id).is_some_and(|c| c.conn == conn) {
            s.connected.remove(device_id);
            s.last_seen
                .insert(device_id.to_string(), crate::clock::rfc3339_millis());
            if let Some(subs) = keep {
                s.kept.insert(device_id.to_string(), subs);
            }
        }
    }

    /// Send `p` to the device when it is connected; false when it is not
    /// (or its queue is full).
    pub fn push(&self, device_id: &str, p: Push) -> bool {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match s.connected.get(device_id) {
            Some(c) => c.tx.try_send(p).is_ok(),
            None => false,
        }
    }

    /// Whether the device has a connection now, and when it was last seen
    /// (it connected, or its connection ended).
    pub fn presence(&self, device_id: &str) -> (bool, Option<String>) {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        (
            s.connected.contains_key(device_id),
            s.last_seen.get(device_id).cloned(),
        )
    }
}
