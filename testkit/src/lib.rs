//! Tributary's test kit: real components, started for tests and for the
//! local stack, so what tests run against is what a developer runs. A crate's
//! tests depend on this kit (not on every service), so they compile only what
//! they start.
//!
//! - [`tansu`]: a Kafka-compatible broker as a child process on a free port.
//! - [`apache_kafka`]: Apache Kafka's broker (KRaft) the same way.
//! - [`broker`]: either of them behind one interface.
//! - [`postgres`]: the stack's database, and a fresh database per test.
//! - [`private_postgres`]: a Postgres server of a test's own, to crash and restart.
//! - [`registry`]: the Schema Registry in-process on port 0.
//! - [`process`]: child processes with logs, SIGTERM and SIGKILL.
//! - [`task`]: in-process service loops, stopped or aborted.
//! - [`certs`]: a throwaway CA and server certificate for TLS tests.
//! - [`events`]: event builders and an all-acknowledged submission.
//! - [`binaries`]: the service binaries, built for process-level tests.
//! - [`bootstrap`]: topics and built-in schemas.
//! - [`cluster`]: any number of service processes on loopback (scale-out
//!   and shutdown tests), each restartable as a supervisor would.
//! - [`aggregates`]: ground truth: the aggregates of acknowledged events, the
//!   table read back, and how the two compare.
//! - [`avro_records`]: random Avro records, intact and mangled, of generated
//!   writer schemas (the typed-plan property tests).
pub mod aggregates;
pub mod apache_kafka;
pub mod avro_records;
pub mod binaries;
pub mod bootstrap;
pub mod broker;
pub mod certs;
pub mod cluster;
pub mod events;
pub mod postgres;
pub mod private_postgres;
pub mod process;
pub mod registry;
pub mod tansu;
pub mod task;

use tributary_common::config::{KafkaArgs, RegistryArgs};

/// Everything an integration test talks to: a fresh broker, a fresh database
/// and a registry over it. Each test starts its own, so tests run in parallel
/// without sharing state; all of it is torn down when dropped.
pub struct TestStack {
    /// The broker (Tansu unless started with [`TestStack::start_on`]).
    pub broker: broker::Broker,
    /// The test's database.
    pub database: postgres::TestDatabase,
    /// The registry, backed by `database`.
    pub registry: registry::RunningRegistry,
    /// How the services reach the registry (its URL, and with
    /// [`TestStack::start_guarded`] credentials and CA).
    registry_args: RegistryArgs,
    /// The registry's TLS certificates, when it serves TLS.
    _certificates: Option<certs::TestCertificates>,
}

/// The writer the guarded stack's services use: `USER:PASSWORD`.
pub const GUARDED_REGISTRY_WRITER: &str = "pipeline:pipeline-secret";

impl TestStack {
    /// Starts the broker (Tansu), the database and the registry.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(broker::BrokerKind::Tansu).await
    }

    /// Like [`TestStack::start`], on the broker `kind`.
    pub async fn start_on(kind: broker::BrokerKind) -> anyhow::Result<Self> {
        let (broker, database) = tokio::try_join!(
            broker::Broker::start(kind),
            postgres::TestDatabase::create()
        )?;
        let registry = registry::RunningRegistry::start(database.url()).await?;
        Ok(Self {
            registry_args: RegistryArgs::at(registry.url()),
            broker,
            database,
            registry,
            _certificates: None,
        })
    }

    /// Like [`TestStack::start`], but the registry serves TLS (a throwaway
    /// CA) and lets in only authenticated users: the services reach it as
    /// the writer [`GUARDED_REGISTRY_WRITER`], trusting the CA.
    pub async fn start_guarded() -> anyhow::Result<Self> {
        let (broker, database) = tokio::try_join!(
            broker::Broker::start(broker::BrokerKind::Tansu),
            postgres::TestDatabase::create()
        )?;
        let certificates = certs::TestCertificates::generate()?;
        let mut config = tributary_registry::config::RegistryConfig::new(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            database.url(),
        );
        config.tls =
            tributary_edge::config::TlsArgs::files(certificates.cert(), certificates.key());
        let (user, password) = GUARDED_REGISTRY_WRITER
            .split_once(':')
            .expect("USER:PASSWORD");
        config.users.users = vec![format!(
            "{user}:write:{}",
            tributary_registry::access::hash_password(password)?
        )];
        let registry = registry::RunningRegistry::start_with(config).await?;
        Ok(Self {
            registry_args: RegistryArgs::at(registry.url())
                .with_basic_auth(GUARDED_REGISTRY_WRITER)
                .with_ca(certificates.ca()),
            broker,
            database,
            registry,
            _certificates: Some(certificates),
        })
    }

    /// Kafka settings pointing at this stack's broker.
    pub fn kafka(&self) -> KafkaArgs {
        KafkaArgs::for_brokers(self.broker.brokers())
    }

    /// Registry settings pointing at this stack's registry.
    pub fn registry_args(&self) -> RegistryArgs {
        self.registry_args.clone()
    }
}
