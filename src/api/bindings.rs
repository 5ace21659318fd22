//! Identity at run time (SPEC §12): `GET /api/v1/bindings` (the serials
//! bound by position or replacement, with the plan file each belongs in) and
//! `POST /api/v1/devices/<name>/replace {serial}` (accept a new box at a
//! planned device's place).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::OperatorApi;

pub async fn list(State(api): State<Arc<OperatorApi>>) -> Json<Value> {
    let snap = api.snapshot.load();
    let out: Vec<Value> = api
        .ztp
        .bindings
        .list()
        .into_iter()
        .map(|b| {
            let file = snap
                .model
                .devices()
                .find(|(_, d)| d.name == b.device)
                .map(|(s, _)| s.file.display().to_string());
            json!({
                "device": b.device,
                "serial": b.serial,
                "kind": b.kind,
                "since": b.since,
                "file": file,
                "mac": b.mac,
                "replaces": b.replaces,
            })
        })
        .collect();
    Json(Value::Array(out))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceBody {
    serial: String,
    /// The new box's MAC, when it has not said hello yet.
    mac: Option<String>,
}

pub async fn replace(
    State(api): State<Arc<OperatorApi>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let b: ReplaceBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("{e}; expected {{\"serial\": \"NEW-SERIAL\"}}")})),
            )
                .into_response()
        }
    };
    let mac = match b.mac.as_deref().map(crate::mac::Mac::parse) {
        None => None,
        Some(Some(m)) => Some(m.to_string()),
        Some(None) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "`mac` is not a MAC address"})),
            )
                .into_response()
        }
    };
    match api.ztp.accept_replacement(&name, &b.serial, mac).await {
        Ok(v) => Json(v).into_response(),
        Err((code, e)) => (code, Json(json!({"error": e}))).into_response(),
    }
}
