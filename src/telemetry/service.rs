//! The bridge as a service of `ztpd run`: prepared before the daemon builds
//! its shared state (so its counters join `/metrics`), run with the daemon's
//! shutdown token.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::bridge::{self, BridgeOptions, BridgeStats};
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

/// Default bridge client id: stable across restarts of this host's bridge.
pub fn default_client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if host.is_empty() {
        "ztpd-bridge".into()
    } else {
        format!("ztpd-bridge-{host}")
    }
}

/// The bridge's broker: `telemetry.broker`. (The daemon wires its own bridge
/// to the embedded broker: `service::embedded_bridge_options`.)
pub fn bridge_options(
    resolved: &Resolved,
    client_id: Option<String>,
) -> Result<BridgeOptions, String> {
    let Some(url) = &resolved.settings.telemetry.broker else {
        return Err(
            "no broker for the bridge: set telemetry.broker (e.g. \"mqtt://bridge:secret@127.0.0.1:1883\") in ztpd.toml; \
             for a daemon's embedded broker, add the account to its [broker] users and use the password from its password_file \
             (`ztpd run` itself already bridges its embedded broker)"
                .into(),
        );
    };
    let broker = BrokerUrl::parse(url).map_err(|e| format!("telemetry.broker: {e}"))?;
    Ok(BridgeOptions::new(
        broker,
        client_id.unwrap_or_else(default_client_id),
    ))
}
