//! The service binaries, for tests that run them as real processes (SIGKILL,
//! SIGTERM, `--help`): built on demand, next to the running test binary.
use std::{path::PathBuf, process::Command};

use anyhow::Context as _;

/// Builds every service binary (a no-op when they are up to date) and
/// returns the directory they are in.
pub fn build_service_binaries() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bins"])
        .args(["-p", "tributary-registry", "-p", "tributary-ingest"])
        .args(["-p", "tributary-processor", "-p", "tributary-sink"])
        .status()
        .context("cannot run cargo")?;
    anyhow::ensure!(status.success(), "cannot build the service binaries");
    // Test binaries live in target/<profile>/deps; the binaries one level up.
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .context("the test binary is not in a cargo target directory")
}
