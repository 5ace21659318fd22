//! The bridge as a service of `ztpd run`: prepared before the daemon builds
//! its shared state (so its counters join `/metrics`), run with the daemon's
//! shutdown token.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::bridge::{self, BridgeOptions, BridgeStats};
use super::command::bridge_options;
use super::mqtt::BrokerUrl;
use super::store::AnyStore;
use crate::metrics::MetricsSource;
use crate::settings::Resolved;

pub struct DaemonBridge {
    opts: BridgeOptions,
    store: AnyStore,
    stats: Arc<BridgeStats>,
}

/// The bridge `ztpd run` starts: on `telemetry.broker` when set, else on
/// the embedded broker (`embedded`: its loopback URL with the daemon's
/// internal account), else none (the log says so).
pub async fn prepare(
    resolved: &Resolved,
    embedded: Option<BrokerUrl>,
) -> anyhow::Result<Option<DaemonBridge>> {
    let opts = match (&resolved.settings.telemetry.broker, embedded) {
        (Some(_), _) => bridge_options(resolved, None).map_err(anyhow::Error::msg)?,
        (None, Some(url)) => embedded_bridge_options(url),
        (None, None) => {
            tracing::info!("telemetry bridge not started: the embedded broker is disabled and telemetry.broker is not set");
            return Ok(None);
        }
    };
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

/// The bridge on the embedded broker: the only bridge there, so a plain
/// persistent subscription (rumqttd keeps it, and the unacknowledged
/// messages, across the bridge's reconnects) rather than a shared one.
///
/// rumqttd keeps at most [`EMBEDDED_INFLIGHT`] unacknowledged messages in
/// flight to a subscriber, and the bridge acknowledges only after storing:
/// a batch larger than that never fills, so every batch would wait out
/// `batch_latency` (measured: ~4k msg/s). A batch of exactly the window is
/// written as soon as the broker has sent it.
pub fn embedded_bridge_options(url: BrokerUrl) -> BridgeOptions {
    let mut opts = BridgeOptions::new(url, EMBEDDED_BRIDGE_CLIENT_ID);
    opts.share_group = None;
    opts.batch_max = EMBEDDED_INFLIGHT;
    opts
}

/// rumqttd 0.20's in-flight window per subscriber (a constant there,
/// `MAX_INFLIGHT` in its router).
pub const EMBEDDED_INFLIGHT: usize = 100;

/// Client id of the daemon's bridge on the embedded broker (`:` is not
/// allowed in device ids, so no device can take it over).
pub const EMBEDDED_BRIDGE_CLIENT_ID: &str = "ztpd:bridge";
