//! Operator API of the local hub (SPEC §13): `GET /api/v1/hub/devices`,
//! `GET`/`PATCH /api/v1/hub/devices/<id>/twin`,
//! `POST /api/v1/hub/devices/<id>/methods/<method>`. Behind the operator token,
//! as every `/api/v1` route.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::OperatorApi;
use crate::broker::twins::{PatchError, FUNCTION_KEY};

/// Every device identity the hub knows; 404 when the hub does not run.
pub async fn devices(State(api): State<Arc<OperatorApi>>) -> Response {
    let Some(hub) = api.hub.clone() else {
        return not_running();
    };
    let snap = api.snapshot.load();
    let list = tokio::task::spawn_blocking(move || hub.devices(&snap))
        .await
        .unwrap_or_default();
    Json(list).into_response()
}

fn not_running() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "the local hub does not run ([broker] enabled = false)"})),
    )
        .into_response()
}

/// A device the hub knows: planned, or with a credential file.
fn known(api: &OperatorApi, id: &str) -> bool {
    let snap = api.snapshot.load();
    crate::credentials::validate_device_id(id).is_ok()
        && (snap.model.devices().any(|(_, d)| d.serial == id)
            || crate::credentials::Store::new(snap.resolved.credentials_dir())
                .read(id)
                .ok()
                .flatten()
                .is_some())
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

/// Who owns what a PATCH may not change: the plan file of a planned
/// device, else its credential file.
fn owner(api: &OperatorApi, id: &str) -> String {
    let snap = api.snapshot.load();
    let plan = snap
        .model
        .devices()
        .find(|(_, d)| d.serial == id)
        .map(|(site, _)| site.file.display().to_string());
    match plan {
        Some(file) => format!("the plan {file}"),
        None => format!(
            "its credential {} (`ztpd credentials create {id} --function NAME`)",
            crate::credentials::Store::new(snap.resolved.credentials_dir())
                .path_of(id)
                .display()
        ),
    }
}

/// `GET /api/v1/hub/devices/<id>/twin`: `{desired, reported, tags?}`.
pub async fn twin(State(api): State<Arc<OperatorApi>>, Path(id): Path<String>) -> Response {
    let Some(hub) = api.hub.clone() else {
        return not_running();
    };
    if !known(&api, &id) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no device `{}` on the local hub", id.escape_debug()),
        );
    }
    match hub.twin(&id).await {
        Ok(mut doc) => {
            // The read-only tags of a planned device, as routing reads them.
            if let Some(p) = hub.view().planned.get(&id) {
                doc["tags"] = p.tags.clone();
            }
            Json(doc).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `PATCH /api/v1/hub/devices/<id>/twin` `{desired: {...}}`: merged as IoT
/// Hub merges (`null` removes a key), committed, pushed to the device.
pub async fn patch_twin(
    State(api): State<Arc<OperatorApi>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(hub) = api.hub.clone() else {
        return not_running();
    };
    if !known(&api, &id) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no device `{}` on the local hub", id.escape_debug()),
        );
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON object `{\"desired\": {...}}`".into(),
        );
    };
    if body.contains_key("tags") {
        return error(
            StatusCode::CONFLICT,
            format!("tags are read-only: they come from {}", owner(&api, &id)),
        );
    }
    let Some(Value::Object(patch)) = body.remove("desired") else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON object `{\"desired\": {...}}`".into(),
        );
    };
    if let Some(k) = body.keys().next() {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown key `{}`; expected only `desired`",
                k.escape_debug()
            ),
        );
    }
    if patch.contains_key(FUNCTION_KEY) {
        return error(
            StatusCode::CONFLICT,
            format!("desired.{FUNCTION_KEY} is owned by {}", owner(&api, &id)),
        );
    }
    match hub.patch_desired(&id, patch).await {
        Ok(_) => twin(State(api), Path(id)).await,
        Err(e @ PatchError::TooLarge) => error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Method call timeouts accepted (SPEC §13): 5 s to 300 s, default 30 s.
const METHOD_TIMEOUT: (u64, u64, u64) = (5, 30, 300);

/// `POST /api/v1/hub/devices/<id>/methods/<method>` `{payload, timeout?}`:
/// `200 {status, payload}` with the device's answer; 404 when it is not
/// connected or not subscribed, 504 when it does not answer in time, 413
/// when the payload is over 128 KB.
pub async fn invoke(
    State(api): State<Arc<OperatorApi>>,
    Path((id, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    use crate::broker::handlers::methods::{self, Called};
    let Some(hub) = api.hub.clone() else {
        return not_running();
    };
    if crate::identifier::check(&method).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "method name `{}` is not [A-Za-z0-9._-]+",
                method.escape_debug()
            ),
        );
    }
    let Ok(Value::Object(mut req)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON object `{\"payload\": ..., \"timeout\": \"30s\"}`".into(),
        );
    };
    let (min, default, max) = METHOD_TIMEOUT;
    let timeout = match req.remove("timeout") {
        None => std::time::Duration::from_secs(default),
        Some(Value::String(t)) => match crate::duration::parse(&t) {
            Ok(d) if (min..=max).contains(&d.as_secs()) => d,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "timeout `{}`: expected a duration from {min}s to {max}s",
                        t.escape_debug()
                    ),
                )
            }
        },
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "timeout: expected a duration such as \"30s\"".into(),
            )
        }
    };
    let payload = req.remove("payload").unwrap_or(Value::Null);
    match methods::invoke(&hub, &id, &method, &payload, timeout).await {
        Called::Answered { status, payload } => {
            Json(json!({"status": status, "payload": payload})).into_response()
        }
        Called::NotConnected => error(
            StatusCode::NOT_FOUND,
            format!(
                "device `{}` is not connected, or not subscribed to direct methods",
                id.escape_debug()
            ),
        ),
        Called::TimedOut => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "device `{}` did not answer `{method}` within {}",
                id.escape_debug(),
                crate::duration::format(timeout)
            ),
        ),
        Called::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the payload is over {} bytes", methods::MAX_PAYLOAD_BYTES),
        ),
    }
}
