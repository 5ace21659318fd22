//! `GET /api/v1/routes`: the routes in force (SPEC §14) with their counts,
//! the endpoints they name (a webhook's password and query values shown as
//! `***`), the fallback, the enrichments and the file they came from.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::OperatorApi;
use crate::telemetry::routing::load::redact_url;
use crate::telemetry::routing::table::{EndpointKind, EnrichmentValue, RouteTable};

pub async fn list(State(api): State<Arc<OperatorApi>>) -> impl IntoResponse {
    Json(describe(&api.snapshot.load().routes))
}

/// The table as the API shows it.
pub fn describe(t: &RouteTable) -> Value {
    let endpoint_names =
        |ids: &[usize]| -> Vec<&str> { ids.iter().map(|&i| t.endpoint(i).name.as_str()).collect() };
    let routes: Vec<Value> = t
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "source": r.source.name(),
                "condition": r.condition_text,
                "endpoints": endpoint_names(&r.endpoints),
                "matched": r.stats.matched.load(Ordering::Relaxed),
                "delivered": r.stats.delivered.load(Ordering::Relaxed),
            })
        })
        .collect();
    let endpoints: Vec<Value> = t
        .endpoints
        .iter()
        .map(|e| {
            let (kind, target) = match &e.kind {
                EndpointKind::Events => ("events", json!({})),
                EndpointKind::Mongodb { collection } => {
                    ("mongodb", json!({ "collection": collection }))
                }
                EndpointKind::Mqtt { topic } => ("mqtt", json!({ "topic": topic })),
                EndpointKind::Webhook { url } => ("webhook", json!({ "url": redact_url(url) })),
            };
            let mut v = json!({ "name": e.name, "kind": kind });
            if let (Some(o), Value::Object(target)) = (v.as_object_mut(), target) {
                o.extend(target);
            }
            v
        })
        .collect();
    let enrichments: Vec<Value> = t
        .enrichments
        .iter()
        .map(|e| {
            let value = match &e.value {
                EnrichmentValue::Literal(s) => s.clone(),
                EnrichmentValue::HubName => "$iothubname".into(),
                EnrichmentValue::Twin(path) => twin_path_text(path),
            };
            json!({ "key": e.key, "value": value, "endpoints": endpoint_names(&e.endpoints) })
        })
        .collect();
    json!({
        "file": t.file.as_ref().map(|f| f.display().to_string()),
        "routes": routes,
        "endpoints": endpoints,
        "fallback": t.fallback,
        "enrichments": enrichments,
    })
}

/// `$twin.tags.site`, as written.
fn twin_path_text(path: &[crate::telemetry::routing::condition::Step]) -> String {
    use crate::telemetry::routing::condition::Step;
    let mut s = String::from("$twin");
    for step in path {
        match step {
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}
