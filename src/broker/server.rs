//! rumqttd configured as a local IoT hub: one MQTT 3.1.1 listener on
//! `[broker] listen`, every CONNECT decided by [`super::auth::decide`].
//!
//! rumqttd's `Broker::start()` blocks for the life of the broker and has no
//! shutdown, so it runs on its own thread until the process exits. It binds
//! inside that thread and only logs a failure, so the address is bound here
//! first to turn a taken port into a clear error naming `broker.listen`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rumqttd::{Config, ConnectionSettings, RouterConfig, SegmentConfig, ServerSettings};

use super::accounts;
use super::auth::{self, Accepted, Login, ServiceAccount};
use crate::credentials::Hub;
use crate::metrics::{write_metric, MetricsSource};
use crate::settings::Resolved;
use crate::telemetry::mqtt::BrokerUrl;
use crate::topics::EVENTS_FILTER;

/// The hub whose enrollment key signs device tokens, read at every CONNECT
/// (it changes when hub.toml is reloaded).
pub type HubLookup = Arc<dyn Fn() -> Option<Arc<Hub>> + Send + Sync>;

/// Telemetry held for the bridge's subscription: 4 segments of 16 MiB, so a
/// bridge that stalls (store down) keeps up to 64 MiB (~300k prototype
/// readings) before the oldest are dropped. Memory only grows to this as
/// messages arrive.
const EVENTS_SEGMENT: SegmentConfig = SegmentConfig {
    max_segment_size: 16 * 1024 * 1024,
    max_segment_count: 4,
};
/// Every other subscription (one devicebound filter per device): events are
/// rare and small, so 4 x 64 KiB keeps many of them per device while a
/// fleet of thousands stays in tens of MB.
const SMALL_SEGMENT_SIZE: usize = 64 * 1024;
const SMALL_SEGMENT_COUNT: usize = 4;
/// Largest PUBLISH read: above IoT Hub's 256 KB so that oversized messages
/// reach the bridge and are rejected with a reason; anything larger closes
/// the publisher's connection.
const MAX_PAYLOAD: usize = 2 * 1024 * 1024;
/// Clients allowed at once (a lab fleet plus service accounts).
const MAX_CONNECTIONS: usize = 10_000;
/// A client that opens TCP but sends no CONNECT is dropped after this.
const CONNECT_TIMEOUT_MS: u16 = 5_000;

/// Connections by outcome, on `/metrics`.
#[derive(Debug, Default)]
pub struct BrokerStats {
    pub devices: AtomicU64,
    pub services: AtomicU64,
    pub refused: AtomicU64,
}

impl MetricsSource for BrokerStats {
    fn write_metrics(&self, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write_metric(
            out,
            "ztpd_broker_connects_total",
            "counter",
            "CONNECTs to the embedded broker by outcome",
            &[
                ("outcome=\"device\"", g(&self.devices)),
                ("outcome=\"service\"", g(&self.services)),
                ("outcome=\"refused\"", g(&self.refused)),
            ],
        );
    }
}

/// The running embedded broker.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    internal: ServiceAccount,
    stats: Arc<BrokerStats>,
}

impl EmbeddedBroker {
    /// Start on `[broker] listen` and return once it answers a CONNECT.
    pub async fn start(resolved: &Resolved, hub: HubLookup) -> anyhow::Result<EmbeddedBroker> {
        let mut users = accounts::load(resolved)?;
        let internal = accounts::internal();
        users.push(internal.clone());
        let listen = resolved.settings.broker.listen;
        let addr = {
            let probe = std::net::TcpListener::bind(listen)
                .map_err(|e| crate::settings::bind_error("broker.listen", listen, e))?;
            probe.local_addr()?
        };
        let stats = Arc::new(BrokerStats::default());
        let config = config(addr, Arc::new(users), hub, stats.clone());
        std::thread::Builder::new()
            .name("ztpd-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                match broker.start() {
                    Ok(()) => tracing::error!("the embedded broker stopped"),
                    Err(e) => tracing::error!("the embedded broker failed: {e}"),
                }
            })
            .context("cannot start the embedded broker's thread")?;
        let b = EmbeddedBroker {
            addr,
            internal,
            stats,
        };
        b.wait_ready().await.with_context(|| {
            format!("the embedded broker did not start on broker.listen = \"{listen}\"")
        })?;
        tracing::info!(%addr, "embedded broker listening");
        Ok(b)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn metrics(&self) -> Arc<dyn MetricsSource> {
        self.stats.clone()
    }

    /// How the daemon's own clients (bridge, device events) reach the
    /// broker: its address (loopback when it listens on all addresses) with
    /// the internal account.
    pub fn internal_url(&self) -> BrokerUrl {
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        BrokerUrl {
            tls: false,
            host: ip.to_string(),
            port: self.addr.port(),
            username: Some(self.internal.name.clone()),
            password: Some(self.internal.expose_password().to_string()),
        }
    }

    /// Poll with the internal account until a CONNACK comes back (the
    /// listener is up and the auth hook answers), for at most 10 s.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let mut opts = self.internal_url().options("ztpd:probe");
        opts.set_clean_session(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (client, mut events) = rumqttc::AsyncClient::new(opts.clone(), 4);
            let attempt = tokio::time::timeout(Duration::from_secs(2), events.poll()).await;
            if let Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) = attempt {
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("no CONNACK within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn config(
    addr: SocketAddr,
    users: Arc<Vec<ServiceAccount>>,
    hub: HubLookup,
    stats: Arc<BrokerStats>,
) -> Config {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: CONNECT_TIMEOUT_MS,
        max_payload_size: MAX_PAYLOAD,
        // packets read from one client in one go
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: false,
    };
    connections.set_auth_handler(
        move |client_id: String, username: String, password: String| {
            let ok = check(&users, &hub, &stats, &client_id, &username, &password);
            std::future::ready(ok)
        },
    );
    let server = ServerSettings {
        name: "ztpd-broker".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let router = RouterConfig {
        max_connections: MAX_CONNECTIONS,
        max_outgoing_packet_count: 200,
        max_segment_size: SMALL_SEGMENT_SIZE,
        max_segment_count: SMALL_SEGMENT_COUNT,
        custom_segment: Some(HashMap::from([(EVENTS_FILTER.to_string(), EVENTS_SEGMENT)])),
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    }
}

/// The auth hook: decide, count, and log a refusal's reason (never the
/// password or token).
fn check(
    users: &[ServiceAccount],
    hub: &HubLookup,
    stats: &BrokerStats,
    client_id: &str,
    username: &str,
    password: &str,
) -> bool {
    let now = crate::clock::unix_now();
    let hub = hub();
    let login = Login {
        client_id,
        username,
        password,
    };
    match auth::decide(users, hub.as_deref(), login, now) {
        Ok(Accepted::Device(id)) => {
            stats.devices.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(device_id = %id, "embedded broker: device connected");
            true
        }
        Ok(Accepted::Service(name)) => {
            stats.services.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(account = %name, client_id = %client_id.escape_debug(), "embedded broker: service account connected");
            true
        }
        Err(why) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(client_id = %client_id.escape_debug(), "embedded broker refused a client: {}", why.to_string().escape_debug());
            false
        }
    }
}
