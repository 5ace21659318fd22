//! The direct-method calls of `method` rollouts (SPEC §8, §13). A device
//! the decision notifies gets a [`Call`], which the runner makes through
//! the local hub; how it ended comes back to the rollout as an event
//! ([`Rollouts::answered`]), judged by the pure [`super::method`].

use std::sync::Arc;

use super::decide;
use super::model::Rollout;
use super::service::Rollouts;
use crate::broker::handlers::methods::{self, Called};
use crate::broker::LocalHub;

/// A direct-method call a `method` rollout asks the runner to make.
pub struct Call {
    pub rollout: String,
    /// The device's name in the rollout.
    pub device: String,
    /// Its hub device id (its serial).
    pub device_id: String,
    pub method: super::model::MethodCall,
    pub timeout: std::time::Duration,
}

/// Make one call and wait for its end (the runner's I/O).
pub async fn make(hub: Option<Arc<LocalHub>>, call: Call) -> (Call, Called) {
    let called = match &hub {
        Some(hub) => {
            methods::invoke(
                hub,
                &call.device_id,
                &call.method.name,
                &call.method.payload,
                call.timeout,
            )
            .await
        }
        // The hub no longer runs (a restart with `[broker] enabled = false`).
        None => Called::NotConnected,
    };
    (call, called)
}

impl Rollouts {
    /// The calls decided on since the last time (the runner starts them).
    pub(super) fn take_calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    /// A call of a method rollout ended: record it on the device's step.
    pub(super) async fn answered(&self, rollout: &str, device: &str, called: Called) {
        let _guard = self.changing.lock().await;
        let Some((seq, mut r)) = self.entry(rollout) else {
            return;
        };
        let Some(d) = super::method::answered(&r, device, &called) else {
            return;
        };
        decide::apply(&mut r, &d, self.clock.now().ms);
        if let Err(e) = self.store(seq, r).await {
            tracing::error!("rollout not saved: {e}");
        }
    }

    /// At start: a method call in flight when ztpd stopped is lost; its
    /// device fails rather than be called twice.
    pub(super) async fn fail_lost_calls(&self) {
        let _guard = self.changing.lock().await;
        let now = self.clock.now().ms;
        for (seq, mut r) in self.active() {
            let lost = super::method::calls_lost(&r);
            if lost.is_empty() {
                continue;
            }
            for d in &lost {
                decide::apply(&mut r, d, now);
            }
            tracing::warn!(
                rollout = %r.id,
                "{} method call(s) were in flight when ztpd stopped: failed, not called again",
                lost.len()
            );
            if let Err(e) = self.store(seq, r).await {
                tracing::error!("rollout not saved: {e}");
            }
        }
    }

    /// Hand the runner one call per device of a method rollout. Decided
    /// (and persisted as notified) before it is made: a crash in between
    /// fails the device instead of calling it twice.
    pub(super) fn start_calls(&self, r: &Rollout, names: &[String]) {
        let Some(method) = &r.method else {
            return;
        };
        let snap = self.snapshot.load();
        let timeout = super::method::call_timeout(&r.policy);
        let calls = names.iter().filter_map(|n| {
            let run = r.device(n)?;
            // The serial bound now (a replacement box), else the one planned.
            let device_id = snap
                .model
                .device(n)
                .map(|(_, d)| d.serial.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| run.serial.clone());
            Some(Call {
                rollout: r.id.clone(),
                device: n.clone(),
                device_id,
                method: method.clone(),
                timeout,
            })
        });
        if let Ok(mut c) = self.calls.lock() {
            c.extend(calls);
        }
    }
}
