//! Direct-method calls waiting for their device's answer, by request id:
//! the API's call and the device's session meet here (SPEC §13).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::oneshot;

/// What a session tells a waiting call.
pub enum Outcome {
    Answered { status: u16, payload: Value },
    NotSubscribed,
}

/// Calls waiting for an answer, by request id.
#[derive(Default)]
pub struct Calls {
    pub(super) next: AtomicU64,
    pub(super) waiting: Mutex<HashMap<String, (String, oneshot::Sender<Outcome>)>>,
}

impl Calls {
    /// A device's answer (or its session's refusal) for request `rid`;
    /// ignored unless a call to that device waits for it.
    pub fn resolve(&self, device_id: &str, rid: &str, outcome: Outcome) {
        let Ok(mut w) = self.waiting.lock() else {
            return;
        };
        if w.get(rid).is_some_and(|(d, _)| d == device_id) {
            if let Some((_, tx)) = w.remove(rid) {
                let _ = tx.send(outcome);
            }
        }
    }

    pub fn forget(&self, rid: &str) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(rid);
        }
    }
}
