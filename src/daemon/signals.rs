//! Signals of `ztpd run`: SIGHUP asks for a reload; the first SIGINT or
//! SIGTERM starts the shutdown drain, a second one exits at once.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Forward SIGHUP to the reload queue until shutdown.
pub async fn forward_sighup(tx: mpsc::Sender<()>, shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP ({e}); reload by saving a file");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
                tracing::info!("SIGHUP: reloading");
                let _ = tx.try_send(());
            }
        }
    }
}

/// First SIGINT/SIGTERM cancels `shutdown`; a second one exits at once.
pub async fn wait_for_signal(shutdown: &CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("shutting down (signal again to quit at once)");
    shutdown.cancel();
    // Not part of the drain on purpose: it must outlive a stuck drain.
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::process::exit(130);
    });
}
