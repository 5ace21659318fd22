//! Twin requests: a device's GET of its twin and its reported-property
//! patches (SPEC §9), answered on `$iothub/twin/res/<status>/?$rid=R`.

use bytes::Bytes;

use super::Reply;
use crate::broker::acl::Subscription;
use crate::broker::hub::LocalHub;
use crate::topics::{twin_response, Status};

fn reply(status: Status, rid: &str, version: Option<u64>, body: Bytes) -> Reply {
    Reply {
        topic: twin_response(status, rid, version),
        body,
        subscription: Subscription::TwinResponses,
    }
}

/// The answer to a device over its twin-request rate (IoT Hub's 429).
pub fn throttled(rid: &str) -> Reply {
    reply(Status::TooManyRequests, rid, None, Bytes::new())
}

/// `$iothub/twin/GET`: the whole twin document, desired brought up to date.
pub async fn get(hub: &LocalHub, device_id: &str, rid: &str) -> Reply {
    match hub.twin(device_id).await {
        Ok(d) => reply(Status::Ok, rid, None, Bytes::from(d.to_string())),
        Err(e) => {
            tracing::warn!(device_id, "twin read failed: {e}");
            reply(Status::InternalError, rid, None, Bytes::new())
        }
    }
}

/// `$iothub/twin/PATCH/properties/reported`: merged and committed, then 204.
pub async fn reported(hub: &LocalHub, device_id: &str, rid: &str, patch: &[u8]) -> Reply {
    match hub.twins.patch_reported(device_id, patch).await {
        Ok(v) => {
            let patch: serde_json::Value = serde_json::from_slice(patch).unwrap_or_default();
            hub.ingest.route_event(
                crate::telemetry::routing::Source::TwinChangeEvents,
                device_id,
                "updateTwin",
                &serde_json::json!({"version": v, "properties": {"reported": patch}}),
            );
            reply(Status::NoContent, rid, Some(v), Bytes::new())
        }
        Err(e) => {
            tracing::debug!(device_id, "reported patch refused: {e}");
            reply(Status::BadRequest, rid, None, Bytes::new())
        }
    }
}
