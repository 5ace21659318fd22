//! `ztpd bridge`: the telemetry bridge alone (MQTT -> MongoDB or the
//! embedded store), until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{runtime, EXIT_INVALID};
use crate::settings::Resolved;
use crate::telemetry::bridge::{self, BridgeStats};
use crate::telemetry::mqtt::install_crypto_provider;
use crate::telemetry::service::bridge_options;
use crate::telemetry::store::AnyStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// MQTT client id; stable across restarts, unique per bridge (default: ztpd-bridge-<hostname>).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Subscribe directly instead of through the `$share/ztpd/` shared subscription.
    #[arg(long)]
    pub no_share: bool,
}

pub fn run(resolved: &Resolved, args: Args) -> ExitCode {
    let Args {
        client_id,
        no_share,
    } = args;
    install_crypto_provider();
    let mut opts = match bridge_options(resolved, client_id) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if no_share {
        opts.share_group = None;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    rt.block_on(async {
        let store = match AnyStore::open(resolved).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.cancel();
        });
        let s = shutdown.clone();
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                s.cancel();
            }
        });
        tracing::info!(client_id = %opts.client_id, subscription = %opts.subscription(), "bridge starting");
        let stats = Arc::new(BridgeStats::default());
        // The built-in table (everything to `events`): routes.toml is
        // applied by `ztpd run`, whose bridge and local hub share one
        // routing stage and the state store the route outbox lives in; a
        // standalone bridge has neither (docs/telemetry.md, Routing).
        let router = Arc::new(crate::telemetry::routing::stage::Router::builtin());
        bridge::run(opts, store, router, stats.clone(), shutdown).await;
        // One line per run with what this process did: with several bridges
        // on one shared subscription it is how an operator (and
        // tests/telemetry_scale_out.rs) sees each bridge's share.
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            "bridge stopped: {} received, {} stored, {} duplicates, {} rejected, {} acknowledged",
            n(&stats.received),
            n(&stats.stored),
            n(&stats.duplicates),
            n(&stats.rejected),
            n(&stats.acked),
        );
        ExitCode::SUCCESS
    })
}
