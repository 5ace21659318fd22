//! The bridge as a service of `ztpd run`: prepared before the daemon builds
//! its shared state (so its counters join `/metrics`), run with the daemon's
//! shutdown token.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::bridge::{self, BridgeOptions, BridgeStats};
use super::command::bridge_options;
use super::store::AnyStore;
use crate::metrics::MetricsSource;
use crate::settings::Resolved;

pub struct DaemonBridge {
    opts: BridgeOptions,
    store: AnyStore,
    stats: Arc<BridgeStats>,
}

/// The bridge `ztpd run` starts: on `telemetry.broker` when set. (Without
/// it the bridge would use the embedded broker, which this build does not
/// run yet, so none is started and the log says so.)
pub async fn prepare(resolved: &Resolved) -> anyhow::Result<Option<DaemonBridge>> {
    if resolved.settings.telemetry.broker.is_none() {
        tracing::info!("telemetry bridge not started: set telemetry.broker to ingest telemetry");
        return Ok(None);
    }
    let opts = bridge_options(resolved, None).map_err(anyhow::Error::msg)?;
    let store = AnyStore::open(resolved)
        .await
        .context("cannot open the telemetry store")?;
    Ok(Some(DaemonBridge {
        opts,
        store,
        stats: Arc::new(BridgeStats::default()),
    }))
}

impl DaemonBridge {
    pub fn metrics(&self) -> Arc<dyn MetricsSource> {
        self.stats.clone()
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(client_id = %self.opts.client_id, subscription = %self.opts.subscription(), "telemetry bridge starting");
        bridge::run(self.opts, self.store, self.stats, shutdown).await;
        Ok(())
    }
}
