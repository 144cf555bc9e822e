//! A Postgres server of a test's own, in a temporary directory on a free
//! port, that the test can crash and start again without touching the shared
//! server other tests use. Built from the local installation's `initdb` and
//! `pg_ctl`; run as the `postgres` user when the test runs as root, because
//! Postgres refuses to run as root. [`PrivatePostgres::start_with_tls`]
//! serves TLS (`ssl=on`) with a test certificate and refuses TCP connections
//! without it (`hostssl` only), so a client that connects has used TLS.
use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{certs::TestCertificates, tansu::free_port};

/// A private Postgres server, stopped and deleted when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    tls: bool,
}

fn server_bin_dir() -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no Postgres server installation under /usr/lib/postgresql")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    candidates.sort();
    candidates
        .pop()
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

fn postgres_user() -> anyhow::Result<nix::unistd::User> {
    nix::unistd::User::from_name("postgres")?.context("no `postgres` user to run Postgres as")
}

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl PrivatePostgres {
    /// Creates a cluster (trust authentication) and starts it.
    pub fn start() -> anyhow::Result<Self> {
        let server = Self::init()?;
        server.start_server()?;
        Ok(server)
    }

    /// Creates a cluster (trust authentication) that serves TLS with `certs`'
    /// server certificate and key and accepts TCP connections only over TLS,
    /// and starts it.
    pub fn start_with_tls(certs: &TestCertificates) -> anyhow::Result<Self> {
        let mut server = Self::init()?;
        for (from, to) in [(certs.cert(), "server.crt"), (certs.key(), "server.key")] {
            let to = server.data.join(to);
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} into the cluster", from.display()))?;
            // Postgres refuses a key others can read.
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))?;
            if running_as_root() {
                let user = postgres_user()?;
                nix::unistd::chown(&to, Some(user.uid), Some(user.gid))?;
            }
        }
        // Written as the user running the test; Postgres only reads it.
        std::fs::write(
            server.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )?;
        server.tls = true;
        server.start_server()?;
        Ok(server)
    }

    fn init() -> anyhow::Result<Self> {
        let bin = server_bin_dir()?;
        let port = free_port()?;
        let data = std::env::temp_dir().join(format!(
            "tributary-pg-{port}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&data)?;
        if running_as_root() {
            let user = postgres_user()?;
            nix::unistd::chown(&data, Some(user.uid), Some(user.gid))?;
        }
        let server = Self {
            bin,
            data,
            port,
            tls: false,
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data_str(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        Ok(server)
    }

    fn data_str(&self) -> String {
        self.data.display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bin.join(tool);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(Path::new("/"))
            .output()
            .with_context(|| format!("cannot run {tool}"))?;
        if !output.status.success() {
            bail!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data_str()
        );
        if self.tls {
            // Relative to the data directory.
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        let log = self.data.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_str(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
    }

    /// Stops the server the way a crash would (immediate shutdown: no
    /// checkpoint, connections cut).
    pub fn crash(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &["-D", &self.data_str(), "-m", "immediate", "-w", "stop"],
        )
    }

    /// The server URL without a database, e.g. `postgres://postgres@127.0.0.1:5433`.
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("{}/postgres", self.server_url())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data_str(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
