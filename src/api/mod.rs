//! Operator API (`/api/v1`, SPEC §8). Every request needs
//! `Authorization: Bearer <operator token>`; the token lives 0600 in the
//! state directory and is created on first start.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use std::sync::Arc;

use crate::dhcp::unplanned::Unplanned;
use crate::reload::SharedStatus;
use crate::snapshot::SnapshotHandle;
use crate::ztp::Ztp;

pub mod bindings;
pub mod devices;
pub mod groups;
pub mod hub;
pub mod rollouts;
pub mod routes;
pub mod session;

/// What the operator API reads and changes. The daemon builds it once; the
/// API sees nothing else of the daemon.
pub struct OperatorApi {
    pub snapshot: SnapshotHandle,
    /// Device states, approvals and the event stream.
    pub ztp: Arc<Ztp>,
    /// Last reload outcome, for `/api/v1/status`.
    pub status: SharedStatus,
    /// The operator token every request must carry; a reload that names
    /// another `api.token_file` swaps it (and ends every session).
    pub token: OperatorToken,
    /// DHCP clients that are no planned device (`GET /api/v1/unplanned`).
    pub unplanned: Arc<Unplanned>,
    /// GUI sessions (cookies traded for the token).
    pub sessions: Arc<session::Sessions>,
    /// Plan and runtime groups (SPEC §8).
    pub groups: Arc<crate::rollout::groups::GroupStore>,
    /// Rollouts of groups (SPEC §8).
    pub rollouts: Arc<crate::rollout::service::Rollouts>,
    /// The local hub, for devices' reported twin properties.
    pub hub: Option<Arc<crate::broker::LocalHub>>,
    /// The state store's writer: `/api/v1/status` shows the durability in force.
    pub state: crate::state::Writer,
}

/// The operator token in force, shared by the API and the reloader.
pub type OperatorToken = Arc<arc_swap::ArcSwap<String>>;

/// Read the operator token, creating it (0600, atomically) when absent.
pub fn load_or_create_token(path: &Path) -> std::io::Result<String> {
    match crate::limits::read_capped_string(path, crate::limits::SECRET_BYTES, "token file") {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        // an operator's oversized file is reported, not replaced
        Err(e) if crate::limits::is_too_large(&e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
        }
        _ => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let token = random_hex(32);
    crate::secret_file::write(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// A random operator token: 32 bytes from the OS, as hex.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// The credentials of an `Authorization: Bearer <token>` header. The
/// scheme is case-insensitive (RFC 7235 §2.1): `bearer` and `BEARER` count.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("Bearer").then(|| rest.trim())
}

/// Whether the request carries the operator token.
pub(crate) fn has_token(api: &OperatorApi, headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .is_some_and(|t| same(t.as_bytes(), api.token.load().as_bytes()))
}

async fn require_token(State(api): State<Arc<OperatorApi>>, req: Request, next: Next) -> Response {
    if has_token(&api, req.headers()) {
        return next.run(req).await;
    }
    let by_cookie = session::cookie(req.headers()).is_some_and(|id| api.sessions.check(id));
    if by_cookie {
        if let Some(refused) = session::needs_json(req.method(), req.headers()) {
            return refused;
        }
        return next.run(req).await;
    }
    unauthorized()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({"error": "missing or wrong operator token: send Authorization: Bearer <token from state/operator.token>"})),
    )
        .into_response()
}

/// `POST /api/v1/session`: the token itself, never a cookie, buys a session.
async fn login(State(api): State<Arc<OperatorApi>>, headers: axum::http::HeaderMap) -> Response {
    if !has_token(&api, &headers) {
        return unauthorized();
    }
    session::login(&api.sessions)
}

async fn logout(State(api): State<Arc<OperatorApi>>, headers: axum::http::HeaderMap) -> Response {
    session::logout(&api.sessions, &headers)
}

/// `/api/v1` routes behind the token check.
pub fn router(api: Arc<OperatorApi>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/stages", get(stages))
        .route("/api/v1/devices", get(devices::devices))
        .route("/api/v1/devices/{name}/approve", post(devices::approve))
        .route("/api/v1/devices/{name}/replace", post(bindings::replace))
        .route("/api/v1/bindings", get(bindings::list))
        .route("/api/v1/topology", get(devices::topology))
        .route("/api/v1/events", get(devices::events))
        .route("/api/v1/unplanned", get(unplanned))
        .route("/api/v1/session", axum::routing::delete(logout))
        .route("/api/v1/groups", get(groups::list).post(groups::create))
        .route(
            "/api/v1/groups/{name}",
            get(groups::one).delete(groups::delete),
        )
        .route("/api/v1/groups/{name}/toml", get(groups::toml))
        .route(
            "/api/v1/rollouts",
            get(rollouts::list).post(rollouts::create),
        )
        .route("/api/v1/rollouts/{id}", get(rollouts::one))
        .route("/api/v1/rollouts/{id}/pause", post(rollouts::pause))
        .route("/api/v1/rollouts/{id}/resume", post(rollouts::resume))
        .route("/api/v1/rollouts/{id}/abort", post(rollouts::abort))
        .route("/api/v1/routes", get(routes::list))
        .route("/api/v1/hub/devices", get(hub::devices))
        .route(
            "/api/v1/hub/devices/{id}/twin",
            get(hub::twin).patch(hub::patch_twin),
        )
        .route(
            "/api/v1/hub/devices/{id}/methods/{method}",
            post(hub::invoke),
        )
        // route_layer: unknown paths stay 404 instead of asking for a token.
        .route_layer(middleware::from_fn_with_state(api.clone(), require_token))
        // Outside the layer: the token itself is checked by the handler.
        .route("/api/v1/session", post(login))
        .with_state(api)
}

async fn status(State(api): State<Arc<OperatorApi>>) -> impl IntoResponse {
    let snap = api.snapshot.load();
    let last = api.status.read().map(|s| s.clone()).ok();
    // A reload that runs is not an outcome yet: shown apart, with its start.
    let reloading = last
        .as_ref()
        .and_then(|s| s.running_since.clone())
        .map(|since| serde_json::json!({ "since": since }));
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "snapshot_version": snap.version,
        "sites": snap.model.sites.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "devices": snap.model.devices().count(),
        "last_reload": last,
        "reloading": reloading,
        "state": { "durability": api.state.durability() },
        // Whether the hub's API answers (`[broker] enabled`, fixed at start):
        // the GUI asks it for twins only then.
        "hub_running": api.hub.is_some(),
        // The routes in force (a refused edit of routes.toml leaves these,
        // its diagnostics are in `last_reload`).
        "routes": {
            "file": snap.routes.file.as_ref().map(|f| f.display().to_string()),
            "names": snap.routes.routes.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        },
    }))
}

/// Every stage a device can be in, in the state machine's order, with the
/// tone the GUI colours it by: the GUI's filter and colours come from here.
async fn stages() -> impl IntoResponse {
    use crate::ztp::state::Stage;
    let list: Vec<serde_json::Value> = Stage::ALL
        .into_iter()
        .map(|s| serde_json::json!({"name": s, "tone": s.tone(), "reportable": s.reportable()}))
        .collect();
    Json(list)
}

/// Devices seen that are no planned device: DHCP clients (`source: "dhcp"`)
/// and hellos that fit no place (`source: "hello"`, with the `[[devices]]`
/// entry to add), each most recently seen first.
async fn unplanned(State(api): State<Arc<OperatorApi>>) -> impl IntoResponse {
    let mut out: Vec<serde_json::Value> = Vec::new();
    for s in api.ztp.strangers.list() {
        out.push(serde_json::to_value(s).unwrap_or_default());
    }
    let snap = api.snapshot.load();
    for r in api.unplanned.list() {
        let entry = crate::ztp::strangers::entry(
            &snap,
            r.model.as_deref(),
            r.serial.as_deref(),
            r.mac.as_deref(),
        );
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("source".into(), "dhcp".into());
            o.insert("entry".into(), entry.into());
        }
        out.push(v);
    }
    Json(out)
}
