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

pub fn router(s: HttpServices) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(s.health)
        .merge(crate::ztp::api::routes().with_state(s.ztp))
        .merge(crate::files::http::routes().with_state(s.files))
        .merge(crate::api::router(s.api))
        .merge(crate::web::routes())
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    services: HttpServices,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = router(services).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn healthz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    format!("ok version={}\n", h.snapshot.load().version)
}

async fn metrics(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let mut out = String::new();
    for m in h.metrics.iter() {
        m.write_metrics(&mut out);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
