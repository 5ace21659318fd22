//! What the hub benchmarks' device clients share: SAS tokens and key
//! derivation as the Azure SDKs compute them (written here, not taken from
//! ztpd, so the benchmark checks the hub against its own reading of the
//! protocol), a TLS or plain connection from a chosen loopback address,
//! MQTT packets (rumqttc's codec), and percentiles.

#![allow(dead_code)] // each bench uses part of it

use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::BytesMut;
use hmac::{Hmac, Mac};
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

pub const MAX_PACKET: usize = 256 * 1024;

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// A device's key under a group enrollment key (DPS group enrollment).
pub fn device_key(group_key: &[u8], id: &str) -> Vec<u8> {
    hmac_sha256(group_key, id.as_bytes())
}

/// Percent-encoding of everything but the unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `SharedAccessSignature sr=..&sig=..&se=..[&skn=..]` over `resource`.
pub fn sas(key: &[u8], resource: &str, expiry: u64, skn: Option<&str>) -> String {
    let sr = url_encode(resource);
    let sig = STANDARD.encode(hmac_sha256(key, format!("{sr}\n{expiry}").as_bytes()));
    let skn = skn.map(|s| format!("&skn={s}")).unwrap_or_default();
    format!(
        "SharedAccessSignature sr={sr}&sig={}&se={expiry}{skn}",
        url_encode(&sig)
    )
}

pub fn expiry_in_an_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600
}

/// A client TLS config trusting only the CA in `ca` (PEM).
pub fn tls_connector(ca: &str) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots
            .add(cert.map_err(|e| format!("{ca}: {e}"))?)
            .map_err(|e| format!("{ca}: {e}"))?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Device `i`'s own loopback address: a fleet dials from many addresses,
/// and the hub admits a few unauthenticated connections per address.
pub fn source_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        2 + (i / 62_500) as u8,
        (i / 250 % 250) as u8,
        (i % 250 + 1) as u8,
    )
}

/// TCP to 127.0.0.1:`port` from device `i`'s address, then TLS for
/// `host` when `tls` is given.
pub async fn dial(i: usize, port: u16, tls: Option<(&TlsConnector, &str)>) -> Result<Conn, String> {
    let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    sock.bind((source_address(i), 0).into())
        .map_err(|e| e.to_string())?;
    let tcp = sock
        .connect((Ipv4Addr::LOCALHOST, port).into())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let io: Pin<Box<dyn Stream>> = match tls {
        Some((connector, host)) => {
            let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
            Box::pin(
                connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?,
            )
        }
        None => Box::pin(tcp),
    };
    Ok(Conn {
        io,
        buf: BytesMut::with_capacity(4096),
    })
}

/// A connection that reads and writes MQTT packets.
pub struct Conn {
    pub io: Pin<Box<dyn Stream>>,
    buf: BytesMut,
}

impl Conn {
    pub async fn send(&mut self, packet: Packet) -> Result<(), String> {
        let mut out = BytesMut::new();
        packet
            .write(&mut out, MAX_PACKET)
            .map_err(|e| format!("encode: {e:?}"))?;
        self.io.write_all(&out).await.map_err(|e| e.to_string())
    }

    pub async fn next(&mut self) -> Result<Packet, String> {
        loop {
            match Packet::read(&mut self.buf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(format!("decode: {e:?}")),
            }
            if self
                .io
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("the hub closed the connection".into());
            }
        }
    }

    /// Send CONNECT, expect a successful CONNACK.
    pub async fn connect(
        &mut self,
        connect: rumqttc::mqttbytes::v4::Connect,
    ) -> Result<(), String> {
        self.send(Packet::Connect(connect)).await?;
        match self.next().await? {
            Packet::ConnAck(a) if a.code == ConnectReturnCode::Success => Ok(()),
            other => Err(format!("CONNECT refused: {other:?}")),
        }
    }

    /// Subscribe to `filters` (QoS 0), expect the SUBACK.
    pub async fn subscribe(&mut self, filters: &[&str]) -> Result<(), String> {
        use rumqttc::mqttbytes::v4::{Subscribe, SubscribeFilter};
        use rumqttc::mqttbytes::QoS;
        let mut sub = Subscribe::new_many(
            filters
                .iter()
                .map(|f| SubscribeFilter::new(f.to_string(), QoS::AtMostOnce)),
        );
        sub.pkid = 1;
        self.send(Packet::Subscribe(sub)).await?;
        match self.next().await? {
            Packet::SubAck(_) => Ok(()),
            other => Err(format!("no SUBACK: {other:?}")),
        }
    }

    pub async fn close(mut self) {
        let _ = self.send(Packet::Disconnect).await;
        let _ = self.io.shutdown().await;
    }
}

/// The `p` quantile (0..=1) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The crypto provider installed and the configuration read, or the
/// error printed (exit status 2); and a runtime to run the bench on.
pub fn start<C>(
    bench: &str,
    config: impl FnOnce() -> Result<C, String>,
) -> (Arc<C>, tokio::runtime::Runtime) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // `cargo test --all-targets` runs bench binaries without arguments (and
    // without `--bench`): these need a running hub that their script
    // starts, so there is nothing to do there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("{bench}: a benchmark against a running hub; run benches/broker/{bench}*.sh");
        std::process::exit(0);
    }
    match config() {
        Ok(c) => (
            Arc::new(c),
            tokio::runtime::Runtime::new().expect("a tokio runtime"),
        ),
        Err(e) => {
            eprintln!("{bench}: {e}");
            std::process::exit(2);
        }
    }
}

/// The value of `--name value` arguments, in order.
pub fn args() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(name) = it.next() {
        let value = it.next().unwrap_or_default();
        out.push((name, value));
    }
    out
}
