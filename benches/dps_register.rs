//! Registration benchmark client: N devices register through the local
//! hub's provisioning service (Azure DPS's MQTT protocol, SPEC §13) over
//! TLS, many at once, as a fleet flashed with one group enrollment key
//! would. Each device: TCP from its own loopback address, TLS (the hub CA
//! as the only root), CONNECT with a registration SAS, SUBSCRIBE
//! `$dps/registrations/res/#`, `iotdps-register`, then polls
//! `iotdps-get-operationstatus` after `retry-after` while the answer is
//! `assigning`, until `assigned`. The Python SDK spends far more CPU per
//! registration than the hub does, so a fleet of 10,000 needs this client.
//!
//! ```sh
//! cargo bench --bench dps_register -- --port P --ca state/hub-ca.pem \
//!     --scope "$(cat state/id_scope)" --group-key "$(cat state/hub.key)" \
//!     [--count 10000] [--concurrency 256] [--prefix bench] [--host localhost]
//! ```
//! `benches/broker/dps_bench.sh` starts a daemon and runs it.

#[path = "hub_client/mod.rs"]
mod hub_client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
use rumqttc::mqttbytes::QoS;
use tokio_rustls::TlsConnector;

use hub_client::{percentile_ms, Conn};

/// A registration that takes longer has failed.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);

struct Config {
    port: u16,
    host: String,
    scope: String,
    group_key: Vec<u8>,
    prefix: String,
    count: usize,
    concurrency: usize,
    tls: TlsConnector,
}

/// One registration's time and how many `assigning` answers it polled
/// through.
struct Registered {
    took: Duration,
    assigning: u32,
}

/// The next answer on `$dps/registrations/res/<status>/?$rid=..`:
/// (status, retry-after, body).
async fn answer(c: &mut Conn) -> Result<(u16, Option<u64>, serde_json::Value), String> {
    loop {
        let Packet::Publish(p) = c.next().await? else {
            continue;
        };
        let rest = p
            .topic
            .strip_prefix("$dps/registrations/res/")
            .ok_or_else(|| format!("unexpected topic {}", p.topic))?;
        let (status, query) = rest.split_once("/?").unwrap_or((rest, ""));
        let status: u16 = status
            .parse()
            .map_err(|_| format!("bad status in {}", p.topic))?;
        let retry = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("retry-after="))
            .and_then(|v| v.parse().ok());
        let body = serde_json::from_slice(&p.payload).map_err(|e| e.to_string())?;
        return Ok((status, retry, body));
    }
}

async fn register(cfg: Arc<Config>, i: usize) -> Result<Registered, String> {
    let id = format!("{}-{i:06}", cfg.prefix);
    let start = Instant::now();
    let mut c = hub_client::dial(i, cfg.port, Some((&cfg.tls, &cfg.host))).await?;
    let key = hub_client::device_key(&cfg.group_key, &id);
    let mut connect = Connect::new(id.clone());
    connect.keep_alive = 60;
    connect.set_login(
        format!("{}/registrations/{id}/api-version=2019-03-31", cfg.scope),
        hub_client::sas(
            &key,
            &format!("{}/registrations/{id}", cfg.scope),
            hub_client::expiry_in_an_hour(),
            Some("registration"),
        ),
    );
    c.connect(connect).await?;
    c.subscribe(&["$dps/registrations/res/#"]).await?;
    let body = serde_json::json!({"registrationId": id, "payload": {"bench": i}}).to_string();
    let register = Publish::new(
        "$dps/registrations/PUT/iotdps-register/?$rid=1",
        QoS::AtMostOnce,
        body,
    );
    c.send(Packet::Publish(register)).await?;
    let (mut assigning, mut rid) = (0u32, 1u32);
    loop {
        let (status, retry, body) = answer(&mut c).await?;
        match (status, body["status"].as_str()) {
            (200, Some("assigned")) if body["registrationState"]["deviceId"] == id.as_str() => {
                break
            }
            (202, Some("assigning")) => {
                assigning += 1;
                tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1))).await;
                rid += 1;
                let op = body["operationId"].as_str().unwrap_or_default();
                let poll = Publish::new(
                    format!("$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={op}"),
                    QoS::AtMostOnce,
                    Vec::new(),
                );
                c.send(Packet::Publish(poll)).await?;
            }
            _ => return Err(format!("status {status}: {body}")),
        }
    }
    let took = start.elapsed();
    c.close().await;
    Ok(Registered { took, assigning })
}

fn config() -> Result<Config, String> {
    let (mut port, mut ca, mut scope, mut key) = (None, None, None, None);
    let (mut count, mut concurrency) = (10_000usize, 256usize);
    let (mut prefix, mut host) = ("bench".to_string(), "localhost".to_string());
    for (name, value) in hub_client::args() {
        match name.as_str() {
            "--port" => port = Some(value.parse().map_err(|_| "--port takes a port number")?),
            "--ca" => ca = Some(value),
            "--scope" => scope = Some(value),
            "--group-key" => key = Some(value),
            "--count" => count = value.parse().map_err(|_| "--count takes a number")?,
            "--concurrency" => {
                concurrency = value.parse().map_err(|_| "--concurrency takes a number")?
            }
            "--prefix" => prefix = value,
            "--host" => host = value,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let group_key = STANDARD
        .decode(
            key.ok_or("--group-key <base64 enrollment key> is required")?
                .trim(),
        )
        .map_err(|_| "--group-key is not base64")?;
    Ok(Config {
        port: port.ok_or("--port <hub TLS port> is required")?,
        tls: hub_client::tls_connector(&ca.ok_or("--ca <hub-ca.pem> is required")?)?,
        host,
        scope: scope.ok_or("--scope <id scope> is required")?,
        group_key,
        prefix,
        count,
        concurrency: concurrency.max(1),
    })
}

fn main() {
    let (cfg, rt) = hub_client::start("dps_register", config);
    let (count, concurrency) = (cfg.count, cfg.concurrency);
    let (results, wall) = rt.block_on(async move {
        let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let start = Instant::now();
        for i in 0..count {
            let (cfg, gate) = (cfg.clone(), gate.clone());
            tasks.spawn(async move {
                let _p = gate.acquire_owned().await.expect("never closed");
                tokio::time::timeout(REGISTRATION_TIMEOUT, register(cfg, i))
                    .await
                    .unwrap_or_else(|_| Err("no answer within 60 s".into()))
            });
        }
        let mut results = Vec::with_capacity(count);
        while let Some(r) = tasks.join_next().await {
            results.push(r.unwrap_or_else(|e| Err(e.to_string())));
        }
        (results, start.elapsed())
    });
    let mut took = Vec::with_capacity(count);
    let mut assigning = 0u64;
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for r in results {
        match r {
            Ok(r) => {
                took.push(r.took);
                assigning += u64::from(r.assigning);
            }
            Err(e) => *errors.entry(e).or_default() += 1,
        }
    }
    took.sort();
    let ok = took.len();
    println!(
        "{{\"registered\":{ok},\"failed\":{},\"wall_s\":{:.3},\"per_s\":{:.0},\"p50_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1},\"assigning_answers\":{assigning},\"concurrency\":{concurrency}}}",
        count - ok,
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64(),
        percentile_ms(&took, 0.5),
        percentile_ms(&took, 0.99),
        percentile_ms(&took, 1.0),
    );
    for (e, n) in errors.iter().take(5) {
        eprintln!("{n} x {e}");
    }
    if ok < count {
        std::process::exit(1);
    }
}
