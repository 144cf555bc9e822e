//! Child processes of the stack (Tansu, the services): started with their
//! output in a log file, stopped with SIGTERM and a grace period, killed with
//! SIGKILL when a test wants a crash, and never left behind (kill on drop).
use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};

/// A running child process, killed if dropped while running.
pub struct ChildProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ChildProcess {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open log file {}", log.display()))?;
        // Own process group: a terminal's Ctrl-C reaches only the launcher,
        // which stops children in order. Parent-death signal: a test runner
        // that kills a test never leaves a broker behind.
        command.process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: the closure runs in the forked child before exec and only
        // makes the async-signal-safe prctl(2) call.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process's name, as given to [`ChildProcess::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The exit status if the process has exited.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Sends `signal` to the process (no-op once it has exited).
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).context("pid out of range")?;
            nix::sys::signal::kill(Pid::from_raw(pid), signal)
                .with_context(|| format!("cannot signal {}", self.name))?;
        }
        Ok(())
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits up to `limit` for the process to exit by itself; `None` if it
    /// is still running then.
    pub async fn wait_timeout(&mut self, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => Ok(Some(status?)),
            Err(_) => Ok(None),
        }
    }

    /// SIGTERM, then waits up to `grace` for a clean exit, then SIGKILL.
    /// Returns the exit status of a clean exit, `None` if it had to be killed.
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<Option<ExitStatus>> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(Some(status));
        }
        self.signal(Signal::SIGTERM)?;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => Ok(Some(status?)),
            Err(_) => {
                self.kill().await?;
                Ok(None)
            }
        }
    }

    /// The operating system's id of the process, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The process's peak resident set size so far (`VmHWM`), in KiB; `None`
    /// once it has exited or where `/proc` does not tell.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id()?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Waits until `url` answers with a success status; fails when `process`
/// exits first or after 30 s.
pub async fn wait_for_http(url: &str, process: &mut ChildProcess) -> anyhow::Result<()> {
    wait_for_http_with(&reqwest::Client::new(), url, process).await
}

/// [`wait_for_http`] with `client` (credentials, a private CA).
pub async fn wait_for_http_with(
    client: &reqwest::Client,
    url: &str,
    process: &mut ChildProcess,
) -> anyhow::Result<()> {
    wait_until_ready(process, url, Duration::from_secs(30), || async {
        matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
    })
    .await
}

/// Polls `ready` every 100 ms until it holds; fails with the log's tail
/// when `process` exits first, or after `limit` (`what` names the check).
pub async fn wait_until_ready<F, Fut>(
    process: &mut ChildProcess,
    what: &str,
    limit: Duration,
    mut ready: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if let Some(status) = process.try_wait()? {
            bail!(
                "{} exited with {status} before it was ready; log {}:\n{}",
                process.name(),
                process.log_path().display(),
                process.log_tail(20)
            );
        }
        if ready().await {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!(
                "{} did not answer {what} within {limit:?}; log {}:\n{}",
                process.name(),
                process.log_path().display(),
                process.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
