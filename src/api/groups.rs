//! `/api/v1/groups` (SPEC §8): list, create (400 / 409 as specified),
//! delete runtime groups, and export one as a plan table.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::OperatorApi;
use crate::rollout::groups::{GroupError, NewGroup};

pub fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

fn group_error(e: GroupError) -> Response {
    let code = match &e {
        GroupError::Invalid(_) => StatusCode::BAD_REQUEST,
        GroupError::Conflict(_) => StatusCode::CONFLICT,
        GroupError::NotFound(_) => StatusCode::NOT_FOUND,
        GroupError::Write(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(code, e.to_string())
}

pub async fn list(State(api): State<Arc<OperatorApi>>) -> Json<Value> {
    let snap = api.snapshot.load();
    let all: Vec<Value> = api
        .groups
        .list(&snap.model)
        .iter()
        .map(|g| g.to_json())
        .collect();
    Json(Value::Array(all))
}

pub async fn create(State(api): State<Arc<OperatorApi>>, body: Bytes) -> Response {
    let req: NewGroup = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{e}; expected {{\"name\", \"devices\": [names]}} or \
                     {{\"name\", \"select\": {{\"model\", \"name\"?}}}}, with an optional \"policy\""
                ),
            )
        }
    };
    let snap = api.snapshot.load();
    let cap = snap.resolved.settings.limits.runtime_groups;
    match api.groups.create(&snap.model, req, cap).await {
        Ok(g) => (StatusCode::CREATED, Json(g.to_json())).into_response(),
        Err(e) => group_error(e),
    }
}

pub async fn one(State(api): State<Arc<OperatorApi>>, Path(name): Path<String>) -> Response {
    let snap = api.snapshot.load();
    match api.groups.get(&snap.model, &name) {
        Some(g) => Json(g.to_json()).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no group named `{name}`")),
    }
}

pub async fn delete(State(api): State<Arc<OperatorApi>>, Path(name): Path<String>) -> Response {
    let snap = api.snapshot.load();
    match api.groups.delete(&snap.model, &name).await {
        Ok(()) => Json(json!({"deleted": name})).into_response(),
        Err(e) => group_error(e),
    }
}

pub async fn toml(State(api): State<Arc<OperatorApi>>, Path(name): Path<String>) -> Response {
    let snap = api.snapshot.load();
    match api.groups.get(&snap.model, &name) {
        Some(g) => ([(header::CONTENT_TYPE, "application/toml")], g.to_toml()).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no group named `{name}`")),
    }
}
