//! MQTT plumbing shared by the bridge and the simulated devices: broker
//! URLs, client options with the limits IoT Hub messages need, reconnect
//! backoff, and the one rustls crypto provider.

use std::time::Duration;

use rumqttc::{MqttOptions, Transport};

/// IoT Hub messages are up to 256 KB; leave room for the topic and header.
pub const MAX_PACKET: usize = 256 * 1024 + 4096;

/// rumqttc brings rustls with aws-lc-rs and the MongoDB driver brings it
/// with ring; with both compiled in, rustls refuses to pick a default and
/// panics at the first TLS connection. Installing one provider at start-up
/// settles it. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// `mqtt://[user[:password]@]host[:port]` or `mqtts://...` (TLS, system roots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("tcp://") {
            (false, r)
        } else {
            return Err(format!(
                "broker URL `{url}` must start with mqtt:// or mqtts://, e.g. mqtt://127.0.0.1:1883"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(n.to_string()), Some(p.to_string())),
                None => (Some(u.to_string()), None),
            },
            None => (None, None),
        };
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("broker URL `{url}`: `{p}` is not a port number"))?;
                (h.trim_start_matches('[').trim_end_matches(']'), port)
            }
            _ => (hostport, default_port),
        };
        if host.is_empty() {
            return Err(format!("broker URL `{url}` has no host"));
        }
        Ok(BrokerUrl {
            tls,
            host: host.to_string(),
            port,
            username,
            password,
        })
    }

    /// Client options: persistent session (in-flight QoS 1 messages survive a
    /// reconnect only with a stable id and `clean_session = false`) and a
    /// packet limit that fits IoT Hub messages (rumqttc defaults to 10 KiB).
    pub fn options(&self, client_id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_clean_session(false);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        if let Some(u) = &self.username {
            o.set_credentials(u.clone(), self.password.clone().unwrap_or_default());
        }
        if self.tls {
            o.set_transport(Transport::tls_with_default_config());
        }
        o
    }
}

/// Exponential reconnect backoff with jitter: 100 ms doubling to 5 s, so a
/// restarting broker is not hammered and many clients do not reconnect in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    const MAX: Duration = Duration::from_secs(5);

    pub fn reset(&mut self) {
        *self = Backoff::default();
    }

    /// The delay to wait now; the following one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let jitter = rand::random::<f64>() * 0.25;
        base.mul_f64(1.0 + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let u = BrokerUrl::parse("mqtt://bridge:s3cr:et@10.0.0.5:1884").unwrap();
        assert_eq!(
            u,
            BrokerUrl {
                tls: false,
                host: "10.0.0.5".into(),
                port: 1884,
                username: Some("bridge".into()),
                password: Some("s3cr:et".into()),
            }
        );
        let t = BrokerUrl::parse("mqtts://hub.azure-devices.net").unwrap();
        assert!(t.tls);
        assert_eq!(t.port, 8883);
        assert!(BrokerUrl::parse("http://x").is_err());
        assert!(BrokerUrl::parse("mqtt://x:port").is_err());
        assert!(BrokerUrl::parse("mqtt://:1883").is_err());
    }

    #[test]
    fn backoff_grows_to_a_cap() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        for _ in 0..20 {
            b.next_delay();
        }
        assert!(b.next_delay() <= Duration::from_millis(6250));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
