//! The shared HTTP listener: `/healthz`, `/metrics`, and the routers of the
//! services that live on HTTP (files, ZTP device API, operator API).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::daemon::Shared;

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(shared.clone())
        .merge(crate::api::router(shared))
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Shared,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = router(shared).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    let snap = shared.snapshot.load();
    format!("ok version={}\n", snap.version)
}

async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let mut out = String::new();
    for m in shared.metrics.iter() {
        m.write_metrics(&mut out);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
