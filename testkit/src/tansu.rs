//! A real Tansu broker (Kafka-compatible) as a child process on a free port.
//!
//! Tansu cannot advertise a port it has not been told, so the port is chosen
//! up front by binding port 0 and releasing it.
use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::Command;

use crate::process::ChildProcess;

/// Where Tansu keeps its records.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A SQLite file (Tansu's `libsql` feature). It survives a SIGKILL, which
    /// broker-restart tests need; tests use it.
    Sqlite(PathBuf),
    /// Memory only (Tansu's `dynostore` feature): records are gone when the
    /// broker stops. The benchmarks use it so the broker's disk is not what
    /// they measure.
    Memory,
}

impl Storage {
    /// The `--storage-engine` URL and the working directory to start Tansu in:
    /// Tansu resolves a SQLite path against its working directory, so the
    /// file's directory becomes the working directory.
    fn engine(&self) -> anyhow::Result<(String, Option<PathBuf>)> {
        match self {
            Storage::Sqlite(path) => {
                let file = path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .with_context(|| format!("{} names no file", path.display()))?;
                let dir = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                Ok((format!("sqlite://{file}"), Some(dir)))
            }
            Storage::Memory => Ok(("memory://tansu/".to_string(), None)),
        }
    }
}

/// Finds the `tansu` executable: `TRIBUTARY_TANSU_BIN`, then `PATH`, then
/// cargo's bin directory (where `cargo install tansu` puts it).
pub fn find_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TRIBUTARY_TANSU_BIN") {
        return Ok(PathBuf::from(path));
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file())
        .context("tansu not found: run `dev/setup` (it runs `cargo install tansu --locked --features libsql,dynostore`) or set TRIBUTARY_TANSU_BIN")
}

/// Picks a loopback port that is free right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(storage: &Storage, addr: SocketAddr, log: &Path) -> anyhow::Result<ChildProcess> {
    let binary = find_binary()?;
    let listener = format!("tcp://{addr}");
    let (engine, working_dir) = storage.engine()?;
    let mut command = Command::new(&binary);
    if let Some(dir) = working_dir {
        command.current_dir(dir);
    }
    command
        .arg("broker")
        .args(["--listener-url", &listener])
        .args(["--advertised-listener-url", &listener])
        .args(["--storage-engine", &engine])
        .args(["--cluster-id", "tributary"])
        // Tansu reads these from the environment too; keep the caller's out
        // (Tansu only: Apache Kafka's broker reads neither).
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("SCHEMA_REGISTRY")
        .env(
            "RUST_LOG",
            std::env::var("TRIBUTARY_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
        );
    ChildProcess::spawn("tansu", command, log)
}

/// A running Tansu broker, killed when dropped.
pub struct Tansu {
    process: ChildProcess,
    addr: SocketAddr,
    storage: Storage,
    temp_dir: Option<PathBuf>,
}

impl Tansu {
    /// Starts a broker on a free loopback port with its storage and log in a
    /// fresh temporary directory (removed when the broker is dropped), and
    /// waits until it answers Kafka metadata requests.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_in_temp_dir(|dir| Storage::Sqlite(dir.join("tansu.db"))).await
    }

    /// Starts a broker on a free loopback port with the storage `storage`
    /// picks for a fresh temporary directory (which holds the log too, and
    /// is removed when the broker is dropped).
    pub async fn start_in_temp_dir(storage: impl FnOnce(&Path) -> Storage) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "tributary-tansu-{port}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let storage = storage(&dir);
        let result = Self::start_with(storage, port, &dir.join("tansu.log")).await;
        match result {
            Ok(mut tansu) => {
                tansu.temp_dir = Some(dir);
                Ok(tansu)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Starts a broker with `storage` on `port`, appending its output to `log`,
    /// and waits until it answers Kafka metadata requests.
    pub async fn start_with(storage: Storage, port: u16, log: &Path) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let process = spawn(&storage, addr, log)?;
        let mut tansu = Self {
            process,
            addr,
            storage,
            temp_dir: None,
        };
        tansu.wait_until_ready(Duration::from_secs(30)).await?;
        tansu.index_headers()?;
        Ok(tansu)
    }

    /// A Tansu workaround, applied only to Tansu's SQLite storage (Apache
    /// Kafka keeps headers inside its record batches and needs nothing like
    /// it). Tansu 0.6's SQLite schema has no index on `header (topition,
    /// offset_id)`, and its fetch looks headers up per record: with headers
    /// on every record a fetch scans the whole header table once per record,
    /// so consuming a few thousand records takes tens of seconds. The index
    /// makes that lookup a seek. Tansu created the tables by the time it is
    /// ready; SQLite's locking makes the change safe while it runs.
    fn index_headers(&self) -> anyhow::Result<()> {
        let Storage::Sqlite(path) = &self.storage else {
            return Ok(());
        };
        let db = rusqlite::Connection::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        db.busy_timeout(Duration::from_secs(10))?;
        db.execute_batch(
            "CREATE INDEX IF NOT EXISTS tributary_header_record ON header (topition, offset_id);",
        )
        .context("cannot index Tansu's header table")?;
        Ok(())
    }

    async fn wait_until_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let brokers = self.brokers();
        crate::broker::wait_for_metadata(&brokers, &mut self.process, limit).await
    }

    /// The bootstrap servers string, e.g. `127.0.0.1:40123`.
    pub fn brokers(&self) -> String {
        self.addr.to_string()
    }

    /// Where the broker's output goes.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The broker process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// The broker process's peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.process.peak_rss_kib()
    }

    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the broker with SIGKILL, as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill().await
    }

    /// Starts the broker again on the same port and storage, e.g. after
    /// [`Tansu::kill`]. With [`Storage::Sqlite`] the records survive.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.terminate(Duration::from_secs(5)).await?;
        let log = self.process.log_path().to_path_buf();
        self.process = spawn(&self.storage, self.addr, &log)?;
        self.wait_until_ready(Duration::from_secs(30)).await
    }

    /// Stops the broker: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> anyhow::Result<()> {
        self.process.terminate(grace).await.map(drop)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        // The process is killed when `process` drops, right after this; a
        // running process does not keep the unlinked files alive on disk.
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
