//! The local hub holds a fleet's connections (issue 15 defect 2: the limits
//! spare the long-lived connections that are meant to be there): 10,000
//! authenticated, idle device connections at once, each CONNACKed, and
//! with all of them open a further device still connects and its telemetry
//! is acknowledged. The descriptors go to the hub here: `[limits]
//! http_connections` is lowered so that the machine's open-file limit holds
//! 10,000 hub connections (docs/telemetry.md: size `LimitNOFILE` for both).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::mqttbytes::v4::Connect;
use support::Daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ztpd::credentials::{device_key, sas, EnrollmentKey};

const FLEET: usize = 10_000;

#[test]
fn ten_thousand_idle_devices_stay_connected_and_one_more_still_gets_in() {
    ztpd::limits::raise_nofile();
    let d = Daemon::builder()
        .fixture("good")
        .broker("")
        .settings("[limits]\nhttp_connections = 512\n")
        .start();
    let port = d.broker.unwrap();
    let http = d.http;
    let key = {
        let text = std::fs::read_to_string(d.root.join("state/hub.key")).unwrap();
        EnrollmentKey::from_base64(&text).unwrap()
    };
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let connect = move |id: String| {
        let mut c = Connect::new(id.clone());
        c.keep_alive = 0;
        c.set_login(
            format!("localhost/{id}/?api-version=2021-04-12"),
            sas::generate("localhost", &id, &device_key(&key, &id), expiry),
        );
        let mut b = bytes::BytesMut::new();
        c.write(&mut b).unwrap();
        b.to_vec()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut held = Vec::with_capacity(FLEET);
        let mut tasks = tokio::task::JoinSet::new();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
        for i in 0..FLEET {
            let bytes = connect(format!("fleet-{i:05}"));
            let gate = gate.clone();
            // A fleet dials from many addresses, and the hub admits only
            // `limits.hub_unauthenticated_per_client` connections per address
            // before CONNECT: each device gets its own loopback address (all of
            // 127/8 is this host's), so the test does not lean on that default.
            let src = std::net::Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
            tasks.spawn(async move {
                let _p = gate.acquire().await.unwrap();
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.bind((src, 0).into())?;
                let mut s = sock.connect(([127, 0, 0, 1], port).into()).await?;
                s.write_all(&bytes).await?;
                let mut ack = [0u8; 4];
                tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut ack))
                    .await
                    .map_err(|_| std::io::Error::other("no CONNACK within 30 s"))??;
                Ok::<_, std::io::Error>((s, ack))
            });
        }
        while let Some(r) = tasks.join_next().await {
            let (s, ack) = r.unwrap().expect("a fleet device's connection");
            assert_eq!(ack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
            held.push(s);
        }
        let open = tokio::task::spawn_blocking(move || {
            let (_, text) = support::api::get(http, "/metrics", None).expect("/metrics");
            support::api::metric(&text, "ztpd_hub_devices_connected")
        })
        .await
        .unwrap();
        assert_eq!(open, FLEET as u64);

        // One more device, with the whole fleet connected: in, and acknowledged.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(&connect("fleet-extra".into())).await.unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).await.unwrap();
        assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
        let mut p = rumqttc::mqttbytes::v4::Publish::new(
            "devices/fleet-extra/messages/events/",
            rumqttc::QoS::AtLeastOnce,
            support::mqtt::reading_json("fleet-extra", 1, 1),
        );
        p.pkid = 7;
        let mut b = bytes::BytesMut::new();
        p.write(&mut b).unwrap();
        s.write_all(&b).await.unwrap();
        let mut puback = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut puback))
            .await
            .expect("a PUBACK")
            .unwrap();
        assert_eq!(puback, [0x40, 0x02, 0x00, 0x07]);
        drop(held);
    });
}
