//! The bridge as a service of `ztpd run`: prepared before the daemon builds
//! its shared state (so its counters join `/metrics`), run with the daemon's
//! shutdown token.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bridge::{self, BridgeOptions, BridgeStats};
use super::mqtt::BrokerUrl;
use super::pipeline::{self, Batching, Incoming, Ingest};
use super::routing::outbox::Outbox;
use super::routing::stage::{Router, RoutesSource};
use super::store::AnyStore;
use crate::metrics::MetricsSource;
use crate::settings::Resolved;

pub struct DaemonBridge {
    /// A subscription on `telemetry.broker`.
    external: Option<BridgeOptions>,
    /// The local hub's devices, in-process.
    local: Option<(Ingest, mpsc::Receiver<Incoming>)>,
    store: AnyStore,
    router: Arc<Router>,
    stats: Arc<BridgeStats>,
}

/// What the routing stage of `ztpd run` needs from the daemon.
pub struct RoutingParts<'a> {
    /// The routes in force (the snapshot's, so reloads reach them).
    pub routes: Arc<dyn RoutesSource>,
    /// Where the route outbox lives.
    pub state: &'a crate::state::StateStore,
    /// `$iothubname`.
    pub hub_name: String,
    /// Stops the outbox's delivery workers.
    pub shutdown: CancellationToken,
}

/// The bridge `ztpd run` starts: on `telemetry.broker` when set, and fed
/// in-process by the local hub when it runs (`local_hub`); both write the
/// same store. Neither: none (the log says so).
pub async fn prepare(
    resolved: &Resolved,
    local_hub: bool,
    routing: RoutingParts<'_>,
) -> anyhow::Result<Option<DaemonBridge>> {
    let stats = Arc::new(BridgeStats::default());
    let external = match resolved.settings.telemetry.broker {
        // Its own client id: a `ztpd bridge` on the same host (default
        // `ztpd-bridge-<host>`) must not take over this one's session.
        Some(_) => {
            Some(bridge_options(resolved, Some(daemon_client_id())).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let local = local_hub.then(|| pipeline::channel(stats.clone()));
    if external.is_none() && local.is_none() {
        tracing::info!("telemetry bridge not started: the local hub is disabled and telemetry.broker is not set");
        return Ok(None);
    }
    let store = AnyStore::open(resolved)
        .await
        .context("cannot open the telemetry store")?;
    // `mqtt` endpoints publish on telemetry.broker (validate refuses them
    // without it).
    let broker = resolved
        .settings
        .telemetry
        .broker
        .as_deref()
        .and_then(|u| BrokerUrl::parse(u).ok());
    let outbox = Outbox::open(
        routing.state,
        routing.routes.clone(),
        broker,
        daemon_client_id(),
        routing.shutdown,
    )
    .context("cannot open the route outbox")?;
    let router = Arc::new(Router::new(routing.routes, Some(outbox), routing.hub_name));
    Ok(Some(DaemonBridge {
        external,
        local,
        store,
        router,
        stats,
    }))
}

impl DaemonBridge {
    pub fn metrics(&self) -> Vec<Arc<dyn MetricsSource>> {
        let mut m: Vec<Arc<dyn MetricsSource>> = vec![self.stats.clone()];
        if let Some(o) = self.router.outbox() {
            m.push(o.stats.clone());
        }
        m
    }

    /// The routing stage (the hub gives it its twins).
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Where the local hub hands its devices' telemetry.
    pub fn ingest(&self) -> Option<Ingest> {
        self.local.as_ref().map(|(i, _)| i.clone())
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if let Some(o) = self.router.outbox() {
            o.start();
        }
        let external = self.external.map(|opts| {
            tracing::info!(client_id = %opts.client_id, subscription = %opts.subscription(), "telemetry bridge starting");
            tokio::spawn(bridge::run(
                opts,
                self.store.clone(),
                self.router.clone(),
                self.stats.clone(),
                shutdown.clone(),
            ))
        });
        if let Some((ingest, rx)) = self.local {
            // Only the hub and its connections keep the queue open.
            drop(ingest);
            tracing::info!("telemetry from the local hub goes to the store in-process");
            pipeline::run_local(
                Batching::default(),
                self.store,
                &self.router,
                rx,
                self.stats,
                shutdown,
            )
            .await;
        }
        if let Some(t) = external {
            let _ = t.await;
        }
        Ok(())
    }
}

/// The client id of `ztpd run`'s own bridge on `telemetry.broker`.
pub fn daemon_client_id() -> String {
    default_client_id().replacen("ztpd-bridge", "ztpd-run-bridge", 1)
}

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

/// The bridge's broker: `telemetry.broker`. (The daemon's own bridge takes
/// the local hub's telemetry in-process.)
pub fn bridge_options(
    resolved: &Resolved,
    client_id: Option<String>,
) -> Result<BridgeOptions, String> {
    let Some(url) = &resolved.settings.telemetry.broker else {
        return Err(
            "no broker for the bridge: set telemetry.broker (e.g. \"mqtt://bridge:secret@127.0.0.1:1883\") in ztpd.toml. \
             A standalone bridge reads an external broker (Mosquitto, EMQX); the local hub of `ztpd run` has no \
             subscribers, it stores its devices' telemetry itself"
                .into(),
        );
    };
    let broker = BrokerUrl::parse(url).map_err(|e| format!("telemetry.broker: {e}"))?;
    Ok(BridgeOptions::new(
        broker,
        client_id.unwrap_or_else(default_client_id),
    ))
}
