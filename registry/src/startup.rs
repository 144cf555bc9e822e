//! Builds the registry (database pool, migrations, listener) and serves it
//! until a shutdown signal.
use std::{future::Future, net::SocketAddr};

use anyhow::Context as _;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

use crate::{api, config::RegistryConfig};

/// A registry that is bound to its address and ready to serve.
pub struct Registry {
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    router: axum::Router,
}

impl Registry {
    /// Connects to Postgres, applies the migrations and binds the listener.
    pub async fn build(config: &RegistryConfig) -> anyhow::Result<Self> {
        // Configuration first: a bad users file or certificate fails fast.
        let users = config.users.load()?;
        let tls = config
            .tls
            .identity()
            .map(|(cert, key)| tributary_edge::tls::server_config(cert, key))
            .transpose()?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(&config.database_url)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to Postgres at {}",
                    tributary_common::config::redact_url(&config.database_url)
                )
            })?;
        // The sink's migrations (versions 1000+) may share this database's
        // migration history; they are not the registry's to check.
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .context("cannot apply the registry's migrations")?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        if users.enabled() {
            tracing::info!("registry access control on: HTTP basic authentication with roles");
        } else {
            tracing::info!(
                "registry access control off: every caller may read, write and delete (configure --users-file)"
            );
        }
        let router = api::router(api::AppState::new(pool, config), users);
        Ok(Self {
            listener,
            tls,
            router,
        })
    }

    /// The address the registry listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves requests until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        match self.tls {
            Some(tls) => {
                let listener = tributary_edge::tls::TlsListener::new(self.listener, tls);
                axum::serve(listener, self.router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(self.listener, self.router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    }
}

/// Builds the registry and serves it until `shutdown` completes. The signal
/// is watched from the start: a SIGTERM while the registry still waits for
/// Postgres stops it cleanly instead of killing it.
pub async fn run(
    config: &RegistryConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = tributary_common::shutdown::cancel_on(shutdown);
    let Some(registry) =
        tributary_common::shutdown::unless_stopped(&stop, Registry::build(config)).await?
    else {
        return Ok(());
    };
    tracing::info!(addr = %registry.local_addr(), tls = registry.tls.is_some(), "registry listening");
    registry.serve(stop.cancelled_owned()).await?;
    Ok(())
}
