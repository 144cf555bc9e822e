//! The service binaries, for tests that run them as real processes (SIGKILL,
//! SIGTERM, `--help`): built on demand, next to the running test binary.
use std::{path::PathBuf, process::Command};

use anyhow::Context as _;

/// Builds every binary of the workspace (a no-op when they are up to date,
/// as after `dev/test`'s own build) and returns the directory they are in.
pub fn build_service_binaries() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // The test's own package variables (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...)
    // must not reach the build: build scripts that watch them (ring's does)
    // would rerun, and everything above them would be rebuilt on every test
    // run and again by the next plain `cargo build`.
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && is_package_variable(name)
        {
            command.env_remove(name);
        }
    }
    let status = command
        // The workspace's binaries, as `dev/test` builds them before the
        // tests start: the same command, so here it is a no-op. Picking
        // packages (`-p`) would unify features differently and rebuild the
        // services inside the first test that asks, past its timeout.
        .args(["build", "--quiet", "--workspace", "--bins"])
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

/// The variables cargo sets for a package's own build and test processes.
fn is_package_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_package_variables_are_removed() {
        assert!(is_package_variable("CARGO_MANIFEST_DIR"));
        assert!(is_package_variable("CARGO_PKG_NAME"));
        assert!(is_package_variable("CARGO_BIN_EXE_tributary-stack"));
        assert!(!is_package_variable("CARGO_TARGET_DIR"));
        assert!(!is_package_variable("CARGO_HOME"));
        assert!(!is_package_variable("CARGO"));
    }
}
