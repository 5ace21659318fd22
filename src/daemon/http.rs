//! The shared HTTP listener: `/healthz`, `/metrics`, and the routers of the
//! services that live on HTTP, each with its own state: files
//! (`files::http`), the ZTP device API (`ztp::api`) and the operator API
//! (`api`), and the topology GUI (`web`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::api::OperatorApi;
use crate::files::FileService;
use crate::metrics::MetricsSource;
use crate::snapshot::SnapshotHandle;
use crate::ztp::Ztp;

use super::http_listener::{self, ConnStats};

/// What `/healthz` and `/metrics` read.
pub struct Health {
    pub snapshot: SnapshotHandle,
    pub metrics: Vec<Arc<dyn MetricsSource>>,
}

/// The services that answer on the HTTP listener.
pub struct HttpServices {
    pub health: Arc<Health>,
    pub files: Arc<FileService>,
    pub ztp: Arc<Ztp>,
    pub api: Arc<OperatorApi>,
}

pub fn router(s: HttpServices, conns: Arc<ConnStats>) -> Router {
    let probe = Arc::new(Probe {
        health: s.health,
        conns,
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(probe)
        .merge(crate::ztp::api::routes().with_state(s.ztp))
        .merge(crate::files::http::routes().with_state(s.files))
        .merge(crate::api::router(s.api))
        .merge(crate::web::routes())
}

/// What `/healthz` and `/metrics` read: the services' sources and the
/// listener's own counters.
struct Probe {
    health: Arc<Health>,
    conns: Arc<ConnStats>,
}

/// Serve HTTP on `listener` with the limits of `limits.http_connections`
/// (lowered to fit the descriptor limit `nofile`) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: HttpServices,
    nofile: u64,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let limits = services
        .health
        .snapshot
        .load()
        .resolved
        .settings
        .limits
        .clone();
    let cap = crate::limits::fit_cap(
        "limits.http_connections",
        limits.http_connections,
        crate::settings::Limits::default().http_connections,
        nofile,
        limits.tftp_transfers as u64,
    );
    let conns = Arc::new(ConnStats::default());
    let app = router(services, conns.clone());
    http_listener::serve(listener, app, cap, conns, shutdown).await
}

async fn healthz(State(p): State<Arc<Probe>>) -> impl IntoResponse {
    format!("ok version={}\n", p.health.snapshot.load().version)
}

async fn metrics(State(p): State<Arc<Probe>>) -> impl IntoResponse {
    let mut out = String::new();
    for m in p.health.metrics.iter() {
        m.write_metrics(&mut out);
    }
    p.conns.write_metrics(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
