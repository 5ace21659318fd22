//! Telemetry: a device's message goes to the store pipeline; its PUBACK
//! waits until the batch holding it is committed.

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::broker::hub::LocalHub;

/// Hand a message to the store; the receiver completes once it is
/// committed. `None`: the pipeline stopped.
pub async fn submit(
    hub: &LocalHub,
    topic: String,
    payload: Bytes,
) -> Option<oneshot::Receiver<()>> {
    hub.stats
        .messages
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    hub.ingest.submit_local(topic, payload).await
}
