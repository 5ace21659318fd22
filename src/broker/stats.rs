//! The local hub's counters on `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::metrics::{write_metric, MetricsSource};

/// Counters on `/metrics`.
#[derive(Debug, Default)]
pub struct HubStats {
    pub devices: AtomicI64,
    pub connects: AtomicU64,
    /// Connections of registering devices (the provisioning service).
    pub registrations: AtomicU64,
    pub refused: AtomicU64,
    pub malformed: AtomicU64,
    pub timed_out: AtomicU64,
    pub messages: AtomicU64,
    pub refused_publishes: AtomicU64,
    pub refused_subscriptions: AtomicU64,
    pub accept_errors: AtomicU64,
}

impl MetricsSource for HubStats {
    fn write_metrics(&self, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write_metric(
            out,
            "ztpd_hub_devices_connected",
            "gauge",
            "Devices connected to the local hub",
            &[("", self.devices.load(Ordering::Relaxed).max(0) as u64)],
        );
        write_metric(
            out,
            "ztpd_broker_connects_total",
            "counter",
            "CONNECTs to the local hub by outcome",
            &[
                ("outcome=\"device\"", g(&self.connects)),
                ("outcome=\"registration\"", g(&self.registrations)),
                ("outcome=\"refused\"", g(&self.refused)),
                ("outcome=\"malformed\"", g(&self.malformed)),
                ("outcome=\"timed_out\"", g(&self.timed_out)),
            ],
        );
        write_metric(
            out,
            "ztpd_hub_messages_total",
            "counter",
            "Telemetry messages received by the local hub",
            &[("", g(&self.messages))],
        );
        write_metric(
            out,
            "ztpd_hub_refused_total",
            "counter",
            "Device requests the local hub refused (another device's topics)",
            &[
                ("what=\"publish\"", g(&self.refused_publishes)),
                ("what=\"subscribe\"", g(&self.refused_subscriptions)),
            ],
        );
        write_metric(
            out,
            "ztpd_hub_accept_errors_total",
            "counter",
            "Failed accepts on the local hub's listeners",
            &[("", g(&self.accept_errors))],
        );
    }
}
