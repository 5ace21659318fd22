//! The thin task around the decision: it wakes on device events (the
//! tracker's stream), on the clock (the next deadline the decision named),
//! on operator actions and on the end of a method rollout's call, and runs
//! one tick of every active rollout. It makes the calls the ticks decide
//! on; they end with the runner (a call lost so is failed at the next
//! start, never made twice).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::service::Rollouts;

/// Longest sleep between ticks when nothing is due: a bound on how long a
/// clock jump (or a missed event) can hold a rollout.
const MAX_SLEEP: Duration = Duration::from_secs(5);

pub async fn run(rollouts: Arc<Rollouts>, shutdown: CancellationToken) {
    let mut events = rollouts.ztp.tracker.subscribe();
    rollouts.fail_lost_calls().await;
    let mut calls = tokio::task::JoinSet::new();
    loop {
        let wake = rollouts.tick().await;
        for call in rollouts.take_calls() {
            calls.spawn(super::calls::make(rollouts.hub.clone(), call));
        }
        let now = rollouts.clock.now().ms;
        let sleep = wake
            .map(|w| Duration::from_millis(w.saturating_sub(now)))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = rollouts.wake.notified() => {}
            Some(ended) = calls.join_next(), if !calls.is_empty() => {
                if let Ok((call, called)) = ended {
                    rollouts.answered(&call.rollout, &call.device, called).await;
                }
            }
            _ = tokio::time::sleep(sleep) => {}
            ev = events.recv() => match ev {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    // Take every event already queued: one tick covers them.
                    while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
                        events.try_recv()
                    {}
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}
