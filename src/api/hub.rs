//! Operator API of the local hub (SPEC §13): `GET /api/v1/hub/devices`.
//! Behind the operator token, as every `/api/v1` route.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::OperatorApi;

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
