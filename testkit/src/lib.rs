//! Tributary's test kit: real components, started for tests and for the
//! local stack, so what tests run against is what a developer runs. A crate's
//! tests depend on this kit (not on every service), so they compile only what
//! they start.
//!
//! - [`tansu`]: a Kafka-compatible broker as a child process on a free port.
//! - [`postgres`]: the stack's database, and a fresh database per test.
//! - [`private_postgres`]: a Postgres server of a test's own, to crash and restart.
//! - [`registry`]: the Schema Registry in-process on port 0.
//! - [`process`]: child processes with logs, SIGTERM and SIGKILL.
//! - [`task`]: in-process service loops, stopped or aborted.
//! - [`certs`]: a throwaway CA and server certificate for TLS tests.
//! - [`binaries`]: the service binaries, built for process-level tests.
//! - [`bootstrap`]: topics and built-in schemas.
//! - [`cluster`]: any number of service processes on loopback (scale-out
//!   and shutdown tests).
pub mod binaries;
pub mod bootstrap;
pub mod certs;
pub mod cluster;
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
    /// The broker.
    pub tansu: tansu::Tansu,
    /// The test's database.
    pub database: postgres::TestDatabase,
    /// The registry, backed by `database`.
    pub registry: registry::RunningRegistry,
}

impl TestStack {
    /// Starts the broker, the database and the registry.
    pub async fn start() -> anyhow::Result<Self> {
        let (tansu, database) =
            tokio::try_join!(tansu::Tansu::start(), postgres::TestDatabase::create())?;
        let registry = registry::RunningRegistry::start(database.url()).await?;
        Ok(Self {
            tansu,
            database,
            registry,
        })
    }

    /// Kafka settings pointing at this stack's broker.
    pub fn kafka(&self) -> KafkaArgs {
        KafkaArgs::for_brokers(self.tansu.brokers())
    }

    /// Registry settings pointing at this stack's registry.
    pub fn registry_args(&self) -> RegistryArgs {
        RegistryArgs::at(self.registry.url())
    }
}
