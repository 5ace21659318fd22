//! The provisioning service (Azure DPS's MQTT protocol, SPEC §13): a
//! registering device's `iotdps-register` and `iotdps-get-operationstatus`.
//!
//! A registration writes the device identity as `ztpd credentials create`
//! does (credential file 0600 and history row; a known device keeps its
//! `device_name`) and stores the payload. A registration written within
//! [`ANSWER_WITHIN`] is answered at once (`200 assigned`); one that is not
//! (the credentials directory locked by another writer, a slow disk) gets
//! `202 assigning` with `retry-after`, the write goes on, and the device's
//! polls are answered `assigning` until the identity is on disk, then
//! `assigned`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use super::Reply;
use crate::broker::acl::Subscription;
use crate::broker::hub::LocalHub;
use crate::broker::registrations::{Outcome, Polled, Registration};
use crate::broker::view::HubView;
use crate::topics::{dps_response, Status};

/// Seconds a device is told to wait before it polls (`retry-after`): the
/// SDKs take whole seconds; an identity is written well within one.
const RETRY_AFTER_SECS: u64 = 1;
/// How long a registration waits for its identity before it is answered
/// `assigning`: a write takes milliseconds (a group of 512 in a burst, tens
/// of them); a device told to poll waits `retry-after`, a whole second.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(1000);
/// Largest registration payload kept (as a reported-properties document).
pub const MAX_PAYLOAD_BYTES: usize = 32 * 1024;

fn reply(status: Status, rid: &str, retry_after: Option<u64>, body: Value) -> Reply {
    Reply {
        topic: dps_response(status, rid, retry_after),
        body: Bytes::from(body.to_string()),
        subscription: Subscription::DpsResponses,
    }
}

/// Every answer under status 300 and every error is JSON with `status`.
fn failed(status: Status, rid: &str, message: &str) -> Reply {
    reply(
        status,
        rid,
        None,
        json!({"errorCode": status.code(), "status": "failed", "message": message}),
    )
}

/// What a register request carries, checked: its payload. Public for
/// the `hub_packets` fuzz target.
pub fn parse_request(registration_id: &str, body: &[u8]) -> Result<Value, String> {
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(body) else {
        return Err("the request body is not a JSON object `{registrationId, payload}`".into());
    };
    match m.get("registrationId") {
        Some(Value::String(id)) if id == registration_id => {}
        Some(Value::String(id)) => {
            crate::credentials::validate_device_id(id)?;
            return Err(format!(
                "registrationId `{}` is not the registration id `{registration_id}` this connection authenticated as",
                id.escape_debug()
            ));
        }
        _ => return Err("the request body has no string `registrationId`".into()),
    }
    let payload = m.remove("payload").unwrap_or(Value::Null);
    if payload.to_string().len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "the registration payload is over {MAX_PAYLOAD_BYTES} bytes"
        ));
    }
    Ok(payload)
}

/// `$dps/registrations/PUT/iotdps-register/?$rid=R`.
pub async fn register(hub: &Arc<LocalHub>, registration_id: &str, rid: &str, body: &[u8]) -> Reply {
    let payload = match parse_request(registration_id, body) {
        Ok(p) => p,
        Err(why) => return failed(Status::BadRequest, rid, &why),
    };
    let Some(operation_id) = hub.registrations.start(registration_id) else {
        return reply(
            Status::TooManyRequests,
            rid,
            Some(RETRY_AFTER_SECS),
            json!({"errorCode": 429, "status": "failed", "message": "too many registrations in progress"}),
        );
    };
    let work = provision(
        hub.clone(),
        hub.view(),
        registration_id.to_string(),
        payload,
    );
    let mut work = tokio::spawn(work);
    let outcome = match tokio::time::timeout(ANSWER_WITHIN, &mut work).await {
        Ok(done) => done.unwrap_or_else(|e| Outcome::Failed(e.to_string())),
        Err(_) => {
            tracing::info!(
                registration_id,
                operation_id,
                "identity not written yet: answered assigning"
            );
            let (h, op) = (hub.clone(), operation_id.clone());
            tokio::spawn(async move {
                let outcome = work
                    .await
                    .unwrap_or_else(|e| Outcome::Failed(e.to_string()));
                h.registrations.finish(&op, outcome);
            });
            return reply(
                Status::Accepted,
                rid,
                Some(RETRY_AFTER_SECS),
                json!({"operationId": operation_id, "status": "assigning"}),
            );
        }
    };
    take(hub, registration_id, rid, &operation_id, outcome)
}

/// `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=R&operationId=O`.
pub fn status(hub: &LocalHub, registration_id: &str, rid: &str, operation_id: &str) -> Reply {
    match hub.registrations.poll(registration_id, operation_id) {
        Polled::Pending => reply(
            Status::Accepted,
            rid,
            Some(RETRY_AFTER_SECS),
            json!({"operationId": operation_id, "status": "assigning"}),
        ),
        Polled::Finished(o) => take(hub, registration_id, rid, operation_id, o),
        Polled::Unknown => failed(
            Status::NotFound,
            rid,
            &format!("no registration operation `{operation_id}` for `{registration_id}`"),
        ),
    }
}

/// The answer for a finished operation (which is forgotten).
fn take(hub: &LocalHub, registration_id: &str, rid: &str, operation_id: &str, o: Outcome) -> Reply {
    hub.registrations.forget(operation_id);
    match o {
        Outcome::Done(state) => reply(
            Status::Ok,
            rid,
            None,
            json!({"operationId": operation_id, "status": "assigned", "registrationState": state}),
        ),
        Outcome::Failed(why) => {
            tracing::warn!(registration_id, "registration failed: {why}");
            reply(
                Status::Ok,
                rid,
                None,
                json!({"operationId": operation_id, "status": "failed",
                       "registrationState": {"registrationId": registration_id, "status": "failed",
                                             "errorCode": 500, "errorMessage": why}}),
            )
        }
        Outcome::Pending => failed(Status::InternalError, rid, "registration did not finish"),
    }
}

/// Write the identity and the registration; the `registrationState`.
async fn provision(hub: Arc<LocalHub>, view: Arc<HubView>, id: String, payload: Value) -> Outcome {
    let Some(settings) = view.hub.clone() else {
        return Outcome::Failed("no hub settings loaded".into());
    };
    let assigned = view
        .assigned_hub(&id)
        .unwrap_or(&settings.hostname)
        .to_string();
    let identity = crate::credentials::store::NewIdentity {
        device_id: id.clone(),
        planned: view.planned_function(&id).cloned(),
        default: view.default_function.clone(),
    };
    let credential = match hub
        .identities
        .create(&view.credentials_dir, settings, identity)
        .await
    {
        Ok(c) => c,
        Err(why) => return Outcome::Failed(why),
    };
    let now = crate::clock::rfc3339_millis();
    let before = hub.registrations.get(&id);
    let substatus = if before.is_some() {
        "reprovisionedToInitialAssignment"
    } else {
        "initialAssignment"
    };
    let before_was_new = before.is_none();
    let created = before.map(|b| b.created).unwrap_or_else(|| now.clone());
    let row = Registration {
        registration_id: id.clone(),
        payload,
        assigned_hub: assigned.clone(),
        created: created.clone(),
        updated: now.clone(),
    };
    if let Err(e) = hub.registrations.save(row).await {
        return Outcome::Failed(format!("registration not saved: {e}"));
    }
    tracing::info!(registration_id = %id, device_name = credential.device_name, assigned_hub = %assigned, substatus, "device registered");
    if before_was_new {
        hub.ingest.route_event(
            crate::telemetry::routing::Source::DeviceLifecycleEvents,
            &id,
            "createDeviceIdentity",
            &json!({"deviceId": id, "createdDateTimeUtc": created, "assignedHub": assigned}),
        );
    }
    Outcome::Done(json!({
        "registrationId": id,
        "createdDateTimeUtc": created,
        "assignedHub": assigned,
        "deviceId": id,
        "status": "assigned",
        "substatus": substatus,
        "lastUpdatedDateTimeUtc": now,
        "etag": format!("\"{}\"", credential.device_name),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_requests_are_checked() {
        assert_eq!(
            parse_request("sn-1", br#"{"registrationId":"sn-1","payload":{"a":1}}"#),
            Ok(json!({"a": 1}))
        );
        assert_eq!(
            parse_request("sn-1", br#"{"registrationId":"sn-1"}"#),
            Ok(Value::Null)
        );
        for (body, want) in [
            (&b"[]"[..], "not a JSON object"),
            (br#"{"payload":1}"#, "no string `registrationId`"),
            (
                br#"{"registrationId":"sn-2"}"#,
                "is not the registration id",
            ),
            (br#"{"registrationId":"a b"}"#, "contains ' '"),
        ] {
            let e = parse_request("sn-1", body).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let big = format!(
            r#"{{"registrationId":"sn-1","payload":"{}"}}"#,
            "x".repeat(MAX_PAYLOAD_BYTES)
        );
        assert!(parse_request("sn-1", big.as_bytes())
            .unwrap_err()
            .contains("over"));
    }
}
