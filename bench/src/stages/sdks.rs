//! The SDKs' senders, one stream each, closed loop, on ad clicks of the same shape: the
//! Rust SDK (run here; it is itself measured against the raw producer by the
//! produce stage) and the Python, TypeScript and Go SDKs, run as their own
//! processes by `client/python/bench/send.py`,
//! `client/typescript/bench/send.mjs` and `client/go/bench/send` (built with
//! `go build` first), which report their rate and their own CPU time.
use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::Context as _;

use crate::drive::RunResult;

/// An SDK measured by a script of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignSdk {
    /// `client/python` (grpc.aio).
    Python,
    /// `client/typescript` (Connect for Node.js).
    TypeScript,
    /// `client/go` (grpc-go).
    Go,
}

impl ForeignSdk {
    /// The name its client process's CPU is reported under.
    pub fn client_process(self) -> &'static str {
        match self {
            Self::Python => "Python SDK client",
            Self::TypeScript => "TypeScript SDK client",
            Self::Go => "Go SDK client",
        }
    }
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the TypeScript SDK (`npm run build`; `dev/setup` installed its
/// packages).
pub async fn build_typescript() -> anyhow::Result<()> {
    let package = repository().join("client/typescript");
    let output = tokio::process::Command::new("npm")
        .args(["run", "build", "--silent"])
        .current_dir(&package)
        .output()
        .await
        .context("cannot run npm (dev/setup installs Node.js packages)")?;
    anyhow::ensure!(
        output.status.success(),
        "npm run build in {} failed (run dev/setup): {}",
        package.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The Go toolchain: `go` on `PATH`, else the machine's `/usr/local/go`.
fn go_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .map(|dir| dir.join("go"))
        .find(|go| go.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"))
}

/// Builds the Go SDK's sender (`client/go/bench/send`; `dev/setup` fetched
/// its modules) into the temporary directory and returns the binary. Go's
/// build cache makes this quick after the first time.
pub async fn build_go() -> anyhow::Result<PathBuf> {
    let module = repository().join("client/go");
    let binary = std::env::temp_dir().join("tributary-bench-go").join("send");
    let output = tokio::process::Command::new(go_binary())
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg("./bench/send")
        .current_dir(&module)
        .output()
        .await
        .context("cannot run go (dev/setup checks for Go 1.26)")?;
    anyhow::ensure!(
        output.status.success(),
        "go build ./bench/send in {} failed (run dev/setup): {}",
        module.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(binary)
}

/// Sends `events` ad clicks through one stream of `sdk`'s sender (window
/// `window`) to ingest at `url`, in a process of its own.
pub async fn foreign(
    sdk: ForeignSdk,
    url: &str,
    events: usize,
    window: usize,
) -> anyhow::Result<RunResult> {
    let root = repository();
    let mut command = match sdk {
        ForeignSdk::Python => {
            let mut command = tokio::process::Command::new("python3");
            command
                .arg(root.join("client/python/bench/send.py"))
                .env("PYTHONPATH", root.join("client/python/src"));
            command
        }
        ForeignSdk::TypeScript => {
            let mut command = tokio::process::Command::new("node");
            command.arg(root.join("client/typescript/bench/send.mjs"));
            command
        }
        // Built (or found up to date) first, outside the timed run.
        ForeignSdk::Go => tokio::process::Command::new(build_go().await?),
    };
    command
        .arg(url)
        .arg(events.to_string())
        .arg(window.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(600), command.output())
        .await
        .with_context(|| format!("{sdk:?} SDK: no answer within 600 s"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(line).with_context(|| {
        format!(
            "{sdk:?} SDK printed no summary\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let ok = summary["ok"].as_u64().unwrap_or(0);
    let seconds = summary["seconds"].as_f64().unwrap_or(0.0);
    let cpu_seconds = summary["cpu_seconds"].as_f64().unwrap_or(0.0);
    let mut result = RunResult {
        ok,
        errors: summary["errors"].as_u64().unwrap_or(0),
        per_second: if seconds > 0.0 {
            ok as f64 / seconds
        } else {
            0.0
        },
        first_error: summary["first_error"].as_str().map(str::to_string),
        ..RunResult::default()
    };
    if ok > 0 {
        result
            .cpu_us_per_op
            .insert(sdk.client_process().into(), cpu_seconds * 1e6 / ok as f64);
    }
    Ok(result)
}
