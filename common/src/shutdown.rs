//! The signal that starts a graceful shutdown: SIGINT (Ctrl-C) or SIGTERM.

/// Completes when the process receives SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}

/// A token cancelled when `signal` completes: service loops watch the token,
/// binaries pass [`signal`], tests pass whatever stops them.
pub fn cancel_on(
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        signal.await;
        trigger.cancel();
    });
    token
}

/// Runs `start` (a service's start-up: connecting, migrating, subscribing)
/// unless `stop` is cancelled first; `None` when it was. Services watch the
/// signal from the beginning, so a SIGTERM while start-up still waits on the
/// broker, the registry or Postgres stops them cleanly instead of killing them.
pub async fn unless_stopped<T>(
    stop: &tokio_util::sync::CancellationToken,
    start: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    tokio::select! {
        () = stop.cancelled() => {
            tracing::info!("stopped before it started");
            Ok(None)
        }
        started = start => started.map(Some),
    }
}
