//! The local stack and the in-process services, for development and for
//! the tests that cross services.
//!
//! - [`launcher`]: the whole local stack, until Ctrl-C (`tributary-stack`,
//!   the README's run command).
//! - [`ingest`]: ingest and the query API in-process on free ports, as
//!   `tributary-server` serves them (tests).
//! - [`processor`]: the processor in-process (tests).
//! - [`sink`]: the sink in-process (tests).
//! - [`chaos`]: the pipeline crashed on a seeded schedule under load and
//!   checked against the acknowledged events (`tributary-chaos`, `dev/chaos`).
//!
//! The fixtures every test needs (broker, database, registry, processes)
//! are `tributary-testkit`'s, re-exported here.
pub mod chaos;
pub mod ingest;
pub mod launcher;
pub mod processor;
pub mod sink;

pub use tributary_testkit::*;
