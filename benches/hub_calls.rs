//! Direct methods and desired-property patches through the operator API
//! to connected devices (SPEC §13): DEVICES devices connect to the local
//! hub (plain MQTT, or TLS with `--ca`), subscribe to methods and desired
//! patches, and answer every method at once (status 200). Then, over HTTP
//! keep-alive connections, CALLS `POST /api/v1/hub/devices/<id>/methods/ping`
//! (the round trip: API -> hub -> device -> hub -> API) and CALLS
//! `PATCH /api/v1/hub/devices/<id>/twin` (the API's answer, and the time
//! until the device holds the patch), spread over the devices,
//! CONCURRENCY at a time. Prints p50/p99/max of each.
//!
//! ```sh
//! cargo bench --bench hub_calls -- --port MQTT_PORT --http HTTP_PORT \
//!     --token "$(cat state/operator.token)" --group-key "$(cat state/hub.key)" \
//!     [--devices 1000] [--calls 2000] [--concurrency 4] [--ca state/hub-ca.pem]
//! ```
//! `benches/broker/hub_calls_bench.sh` starts a daemon and runs it.

#[path = "hub_client/mod.rs"]
mod hub_client;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Config {
    port: u16,
    http: u16,
    token: String,
    group_key: Vec<u8>,
    devices: usize,
    calls: usize,
    concurrency: usize,
    tls: Option<tokio_rustls::TlsConnector>,
}

/// When each patch (by its `bench_seq`) was sent, and when it arrived.
#[derive(Default)]
struct Patches {
    sent: HashMap<u64, Instant>,
    delivered: Vec<Duration>,
}

fn device_id(i: usize) -> String {
    format!("calls-{i:06}")
}

/// Connect device `i` and answer its methods until the hub closes.
async fn device(
    cfg: Arc<Config>,
    i: usize,
    patches: Arc<Mutex<Patches>>,
    ready: tokio::sync::mpsc::Sender<Result<(), String>>,
) {
    let id = device_id(i);
    let connected = async {
        let tls = cfg.tls.as_ref().map(|t| (t, "localhost"));
        let mut c = hub_client::dial(i, cfg.port, tls).await?;
        let key = hub_client::device_key(&cfg.group_key, &id);
        let mut connect = Connect::new(id.clone());
        connect.keep_alive = 0;
        connect.set_login(
            format!("localhost/{id}/?api-version=2021-04-12"),
            hub_client::sas(
                &key,
                &format!("localhost/devices/{id}"),
                hub_client::expiry_in_an_hour(),
                None,
            ),
        );
        c.connect(connect).await?;
        c.subscribe(&[
            "$iothub/methods/POST/#",
            "$iothub/twin/PATCH/properties/desired/#",
        ])
        .await?;
        Ok::<_, String>(c)
    }
    .await;
    let mut c = match connected {
        Ok(c) => {
            let _ = ready.send(Ok(())).await;
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e)).await;
            return;
        }
    };
    drop(ready);
    while let Ok(packet) = c.next().await {
        let Packet::Publish(p) = packet else { continue };
        if let Some(rest) = p.topic.strip_prefix("$iothub/methods/POST/") {
            let rid = rest.split("$rid=").nth(1).unwrap_or_default().to_string();
            let answer = Publish::new(
                format!("$iothub/methods/res/200/?$rid={rid}"),
                QoS::AtMostOnce,
                p.payload.to_vec(),
            );
            if c.send(Packet::Publish(answer)).await.is_err() {
                return;
            }
        } else if p
            .topic
            .starts_with("$iothub/twin/PATCH/properties/desired/")
        {
            let now = Instant::now();
            let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if let Some(seq) = v["bench_seq"].as_u64() {
                let mut ps = patches.lock().expect("not poisoned");
                if let Some(sent) = ps.sent.remove(&seq) {
                    ps.delivered.push(now - sent);
                }
            }
        }
    }
}

/// An HTTP/1.1 keep-alive connection to the API.
struct Http {
    io: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Http {
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.io
            .write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("not an HTTP answer: {head}"))?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .ok_or("an answer without Content-Length")?;
                while self.buf.len() < end + 4 + len {
                    self.fill().await?;
                }
                let body = self.buf[end + 4..end + 4 + len].to_vec();
                self.buf.drain(..end + 4 + len);
                return Ok((status, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let n = self.io.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the API closed the connection".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// Run `calls` requests made by `make(k)` over `concurrency` connections:
/// each one's time, after checking its answer with `check`.
async fn run_calls(
    cfg: &Arc<Config>,
    make: impl Fn(usize) -> (&'static str, String, String) + Send + Sync + 'static,
    check: impl Fn(u16, &[u8]) -> Result<(), String> + Send + Sync + 'static,
    before: impl Fn(usize) + Send + Sync + 'static,
) -> Result<Vec<Duration>, String> {
    let (make, check, before) = (Arc::new(make), Arc::new(check), Arc::new(before));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..cfg.concurrency {
        let (cfg, make, check, before) = (cfg.clone(), make.clone(), check.clone(), before.clone());
        workers.spawn(async move {
            let io = tokio::net::TcpStream::connect(("127.0.0.1", cfg.http))
                .await
                .map_err(|e| format!("API: {e}"))?;
            io.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut http = Http {
                io,
                buf: Vec::new(),
            };
            let mut took = Vec::new();
            for k in (w..cfg.calls).step_by(cfg.concurrency) {
                let (method, path, body) = make(k);
                before(k);
                let start = Instant::now();
                let (status, answer) = http.request(method, &path, &cfg.token, &body).await?;
                took.push(start.elapsed());
                check(status, &answer)?;
            }
            Ok::<_, String>(took)
        });
    }
    let mut all = Vec::new();
    while let Some(r) = workers.join_next().await {
        all.extend(r.map_err(|e| e.to_string())??);
    }
    all.sort();
    Ok(all)
}

fn summary(name: &str, sorted: &[Duration]) -> String {
    format!(
        "\"{name}\":{{\"n\":{},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        sorted.len(),
        hub_client::percentile_ms(sorted, 0.5),
        hub_client::percentile_ms(sorted, 0.99),
        hub_client::percentile_ms(sorted, 1.0)
    )
}

async fn bench(cfg: Arc<Config>) -> Result<String, String> {
    let patches = Arc::new(Mutex::new(Patches::default()));
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(64);
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    for i in 0..cfg.devices {
        let (cfg, patches, ready_tx, gate) =
            (cfg.clone(), patches.clone(), ready_tx.clone(), gate.clone());
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("never closed");
            let (tx, mut rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(device(cfg, i, patches, tx));
            let r = rx.recv().await.unwrap_or(Err("device task ended".into()));
            drop(permit);
            let _ = ready_tx.send(r).await;
        });
    }
    drop(ready_tx);
    for _ in 0..cfg.devices {
        ready.recv().await.ok_or("a device task ended")??;
    }
    let n = cfg.devices;
    let methods = run_calls(
        &cfg,
        move |k| {
            let path = format!(
                "/api/v1/hub/devices/{}/methods/ping",
                device_id(k * 7919 % n)
            );
            (
                "POST",
                path,
                format!("{{\"payload\":{{\"k\":{k}}},\"timeout\":\"5s\"}}"),
            )
        },
        |status, body| {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            (status == 200 && v["status"] == 200)
                .then_some(())
                .ok_or_else(|| format!("method: HTTP {status} {v}"))
        },
        |_| {},
    )
    .await?;
    // Printed now: the twin part needs devices the hub has an identity for.
    println!("{{{}}}", summary("method_round_trip", &methods));
    let sent = patches.clone();
    let twin = run_calls(
        &cfg,
        move |k| {
            let path = format!("/api/v1/hub/devices/{}/twin", device_id(k * 7919 % n));
            (
                "PATCH",
                path,
                format!("{{\"desired\":{{\"bench_seq\":{k}}}}}"),
            )
        },
        |status, body| {
            (status == 200).then_some(()).ok_or_else(|| {
                format!(
                    "twin PATCH: HTTP {status} {}",
                    String::from_utf8_lossy(body)
                )
            })
        },
        move |k| {
            sent.lock()
                .expect("not poisoned")
                .sent
                .insert(k as u64, Instant::now());
        },
    )
    .await?;
    // Patches still on their way.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && patches.lock().expect("not poisoned").delivered.len() < cfg.calls
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut delivered = std::mem::take(&mut patches.lock().expect("not poisoned").delivered);
    delivered.sort();
    Ok(format!(
        "{{\"devices\":{},\"concurrency\":{},{},{},{}}}",
        cfg.devices,
        cfg.concurrency,
        summary("method_round_trip", &methods),
        summary("twin_patch_api", &twin),
        summary("twin_patch_delivered", &delivered),
    ))
}

fn config() -> Result<Config, String> {
    let (mut port, mut http, mut token, mut key, mut ca) = (None, None, None, None, None);
    let (mut devices, mut calls, mut concurrency) = (1000usize, 2000usize, 4usize);
    for (name, value) in hub_client::args() {
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{name} takes a number"))
        };
        match name.as_str() {
            "--port" => port = Some(number(&value)? as u16),
            "--http" => http = Some(number(&value)? as u16),
            "--token" => token = Some(value.trim().to_string()),
            "--group-key" => key = Some(value),
            "--ca" => ca = Some(value),
            "--devices" => devices = number(&value)?.max(1),
            "--calls" => calls = number(&value)?,
            "--concurrency" => concurrency = number(&value)?.max(1),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Config {
        port: port.ok_or("--port <hub MQTT port> is required")?,
        http: http.ok_or("--http <API port> is required")?,
        token: token.ok_or("--token <operator token> is required")?,
        group_key: STANDARD
            .decode(
                key.ok_or("--group-key <base64 enrollment key> is required")?
                    .trim(),
            )
            .map_err(|_| "--group-key is not base64")?,
        tls: ca.map(|c| hub_client::tls_connector(&c)).transpose()?,
        devices,
        calls,
        concurrency,
    })
}

fn main() {
    let (cfg, rt) = hub_client::start("hub_calls", config);
    match rt.block_on(bench(cfg)) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("hub_calls: {e}");
            std::process::exit(1);
        }
    }
}
