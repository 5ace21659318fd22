//! `/api/v1/rollouts` (SPEC §8, §10): start, list, show, pause, resume, abort.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::groups::error;
use super::OperatorApi;
use crate::rollout::create::NewRollout;
use crate::rollout::decide::Operator;
use crate::rollout::service::RolloutError;

fn rollout_error(e: RolloutError) -> Response {
    let code = match &e {
        RolloutError::Invalid(_) => StatusCode::BAD_REQUEST,
        RolloutError::Conflict(_) => StatusCode::CONFLICT,
        RolloutError::NotFound(_) => StatusCode::NOT_FOUND,
        RolloutError::Write(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(code, e.to_string())
}

pub async fn create(State(api): State<Arc<OperatorApi>>, body: Bytes) -> Response {
    let req: NewRollout = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{e}; expected {{\"group\", \"kind\": \"software\"|\"config\"|\"method\", \
                     \"software\"?: {{\"image\", \"version\"}}, \"method\"?: {{\"name\", \"payload\"}}, \
                     \"policy\"?}}"
                ),
            )
        }
    };
    match api.rollouts.create(req).await {
        Ok(r) => (StatusCode::CREATED, Json(r.to_json())).into_response(),
        Err(e) => rollout_error(e),
    }
}

pub async fn list(State(api): State<Arc<OperatorApi>>) -> Json<Value> {
    Json(Value::Array(
        api.rollouts.list().iter().map(|r| r.to_json()).collect(),
    ))
}

pub async fn one(State(api): State<Arc<OperatorApi>>, Path(id): Path<String>) -> Response {
    match api.rollouts.get(&id) {
        Some(r) => Json(r.to_json()).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no rollout {id}")),
    }
}

async fn operate(api: &OperatorApi, id: &str, op: Operator) -> Response {
    match api.rollouts.operate(id, op).await {
        Ok(r) => Json(r.to_json()).into_response(),
        Err(e) => rollout_error(e),
    }
}

pub async fn pause(State(api): State<Arc<OperatorApi>>, Path(id): Path<String>) -> Response {
    operate(&api, &id, Operator::Pause).await
}

pub async fn resume(State(api): State<Arc<OperatorApi>>, Path(id): Path<String>) -> Response {
    operate(&api, &id, Operator::Resume).await
}

pub async fn abort(State(api): State<Arc<OperatorApi>>, Path(id): Path<String>) -> Response {
    operate(&api, &id, Operator::Abort).await
}
