//! Shared by the SDK tests (`sdk_python`, `sdk_typescript`, `sdk_go`): a
//! pipeline whose ingest is a child process, into which an SDK's program
//! streams while ingest is SIGKILLed mid-stream and started again on the
//! same ports (a supervisor's restart); and the program's JSON summary.
#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tributary_stack::{
    TestStack,
    cluster::log_dir,
    ingest::server_process,
    process::{ChildProcess, wait_for_http},
    processor, sink,
    tansu::free_port,
    task::RunningTask,
};

/// Tansu, the registry, Postgres, a processor with quick windows and a sink
/// in-process, and ingest (`tributary-server`) as a child process that can
/// be killed and restarted on its ports.
pub struct KillablePipeline {
    stack: TestStack,
    sink: RunningTask,
    processor: RunningTask,
    ingest: ChildProcess,
    /// The restart's command, built before anything is killed:
    /// `server_process` builds the service binaries, which must not happen
    /// between the kill and the restart.
    restart: Option<tokio::process::Command>,
    grpc: u16,
    http: u16,
    logs: PathBuf,
}

/// What an SDK program printed while ingest was killed under it.
pub struct StreamRun {
    pub status: ExitStatus,
    /// Every line the program printed on stdout.
    pub stdout: String,
    pub stderr: String,
    /// The acknowledgements the program had reported (`acked N` lines) when
    /// ingest was killed; `None` if it never reported enough.
    pub killed_at: Option<u64>,
}

impl KillablePipeline {
    /// Starts the pipeline; logs go to a fresh directory named after `test`.
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        let logs = log_dir(test)?;
        let stack = TestStack::start().await?;
        let sink = sink::start(&stack, |_| {}).await?;
        let processor = processor::start(&stack, processor::quick_windows).await?;
        let (grpc, http) = (free_port()?, free_port()?);
        let first = server_process(&stack, grpc, http)?;
        let restart = Some(server_process(&stack, grpc, http)?);
        let ingest = start_ingest(first, http, logs.join("ingest.log")).await?;
        Ok(Self {
            stack,
            sink,
            processor,
            ingest,
            restart,
            grpc,
            http,
            logs,
        })
    }

    /// Ingest's gRPC URL (plain text).
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    /// Runs `program` to its end (its stdout and stderr are piped here),
    /// printing each line; the first time it prints `acked N` with
    /// `N >= kill_at`, ingest is SIGKILLed, and started again on the same
    /// ports 500 ms later. If the program has not finished within `limit`,
    /// it gets SIGQUIT (a Go program prints every goroutine's stack) and the
    /// run fails with its stderr.
    pub async fn stream_killing_ingest(
        &mut self,
        mut program: tokio::process::Command,
        kill_at: u64,
        limit: Duration,
    ) -> anyhow::Result<StreamRun> {
        let started = Instant::now();
        let mut script = program
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the SDK's program")?;
        let mut stderr = script.stderr.take().context("no stderr")?;
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(script.stdout.take().context("no stdout")?).lines();
        let mut killed_at: Option<u64> = None;
        let mut stdout = String::new();
        let read_all = async {
            while let Some(line) = lines.next_line().await? {
                println!("program [{:.1?}]: {line}", started.elapsed());
                if killed_at.is_none()
                    && let Some(acked) = line
                        .strip_prefix("acked ")
                        .and_then(|n| n.parse::<u64>().ok())
                    && acked >= kill_at
                {
                    self.ingest.kill().await?;
                    killed_at = Some(acked);
                    println!("killed ingest after {acked} acknowledgements");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let command = self.restart.take().context("ingest restarted twice")?;
                    self.ingest =
                        start_ingest(command, self.http, self.logs.join("ingest.restart.log"))
                            .await?;
                }
                stdout.push_str(&line);
                stdout.push('\n');
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(limit, read_all).await {
            Ok(read) => read?,
            Err(_) => {
                if let Some(pid) = script.id() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGQUIT,
                    );
                }
                let _ = tokio::time::timeout(Duration::from_secs(10), script.wait()).await;
                let stderr = tokio::time::timeout(Duration::from_secs(5), stderr)
                    .await
                    .map(|text| text.unwrap_or_default())
                    .unwrap_or_default();
                anyhow::bail!(
                    "the program did not finish within {limit:?} (ingest killed after \
                     {killed_at:?} acknowledgements)\nstdout:\n{stdout}\nstderr:\n{stderr}\n\
                     logs in {}",
                    self.logs.display()
                );
            }
        }
        let status = tokio::time::timeout(Duration::from_secs(10), script.wait())
            .await
            .context("the program closed its stdout but did not exit")??;
        let stderr = stderr.await?;
        println!("the program ran {:.1?}", started.elapsed());
        Ok(StreamRun {
            status,
            stdout,
            stderr,
            killed_at,
        })
    }

    /// Where ingest's logs are (for failure messages).
    pub fn logs(&self) -> &std::path::Path {
        &self.logs
    }

    /// Stops every part and removes the logs.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.ingest.kill().await?;
        self.processor.shutdown().await?;
        self.sink.shutdown().await?;
        let _ = std::fs::remove_dir_all(&self.logs);
        Ok(())
    }
}

async fn start_ingest(
    command: tokio::process::Command,
    http: u16,
    log: PathBuf,
) -> anyhow::Result<ChildProcess> {
    let mut ingest = ChildProcess::spawn("ingest", command, &log)?;
    wait_for_http(&format!("http://127.0.0.1:{http}/readyz"), &mut ingest).await?;
    Ok(ingest)
}

/// The last line of `stdout` as JSON (the programs' summary).
pub fn last_line_json(stdout: &str, stderr: &str) -> anyhow::Result<serde_json::Value> {
    stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .with_context(|| format!("no JSON summary\nstdout:\n{stdout}\nstderr:\n{stderr}"))
}
