//! `trib send`: streams the JSONL envelopes of a file (or stdin) through the
//! SDK's sender, with a progress bar on a terminal and a summary at the end.
//!
//! Each line is the JSON envelope of `POST /v1/events`. A line that is not
//! JSON or not a valid envelope is rejected with its line number without
//! being sent. A line without an idempotency key gets `trib:` and a hash of
//! the event (its canonical JSON), from a file and from stdin alike, so the
//! same events sent again — the same file, or the same lines piped — are
//! counted once, and identical lines are one event.
use std::{
    io::IsTerminal as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest as _, Sha256};
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt as _, BufReader},
    sync::mpsc,
};
use tributary_client::{Error, Pending, SenderOptions, event};

use super::{IngestArgs, summary::Summary};

#[derive(Args)]
pub struct SendArgs {
    #[command(flatten)]
    ingest: IngestArgs,
    /// A file of JSON envelopes, one per line; stdin when absent or `-`.
    /// A line without `idempotency_key` gets `trib:` and a SHA-256 of the
    /// event's canonical JSON, so sending the same events again (from a file
    /// or stdin) counts them once, and identical lines are one event.
    file: Option<PathBuf>,
    /// The most events in flight (unacknowledged) at a time.
    #[arg(long, default_value_t = 1024)]
    window: usize,
    /// When stderr is not a terminal, how often a progress line (counts and
    /// rate) is printed to it; on a terminal a spinner shows the counts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    progress_every: std::time::Duration,
}

pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let client = args.ingest.client()?;
    let sender = client.sender(SenderOptions {
        window: args.window,
        ..Default::default()
    });
    let terminal = std::io::stderr().is_terminal();
    let progress = if terminal {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };

    let (answers, mut pending) = mpsc::unbounded_channel::<(u64, Pending)>();
    let tally = {
        let progress = progress.clone();
        let every = args.progress_every;
        tokio::spawn(async move {
            let mut summary = Summary::default();
            let started = std::time::Instant::now();
            let mut reported = started;
            while let Some((line, answer)) = pending.recv().await {
                let answer = answer.await;
                if matches!(answer, Err(Error::Unreachable { .. })) {
                    // Nothing was sent: the run fails as a whole (below).
                    continue;
                }
                summary.record(format!("line {line}"), answer);
                let counts =
                    || format!("{} acked, {} rejected", summary.acked(), summary.refused());
                if terminal {
                    progress.set_message(counts());
                } else if reported.elapsed() >= every {
                    // Not a terminal (a log, a pipe): a line now and then, as
                    // `dd status=progress` does.
                    reported = std::time::Instant::now();
                    let done = summary.acked() + summary.refused();
                    let rate = done as f64 / started.elapsed().as_secs_f64();
                    eprintln!("trib: {} ({rate:.0} events/s)", counts());
                }
            }
            summary
        })
    };

    let mut early = Vec::new(); // rejected before sending: (line, reason, message)
    let mut lines = open(args.file.as_deref()).await?;
    let mut number = 0;
    while let Some(line) = lines.next_line().await? {
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(value) => value,
            Err(e) => {
                early.push((number, "invalid_json".to_string(), e.to_string()));
                continue;
            }
        };
        let mut event = match event::from_json(&value) {
            Ok(event) => event,
            Err(Error::InvalidEvent { field, message }) => {
                early.push((number, format!("invalid_argument {field}"), message));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if event.idempotency_key.is_empty() {
            event.idempotency_key = idempotency_key(&value);
        }
        // A refusal means the sender stopped: `close` says why.
        let Ok(answer) = sender.send(event).await else {
            break;
        };
        let _ = answers.send((number, answer));
    }
    drop(answers);
    let closed = sender.close().await;
    if let Err(unreachable @ Error::Unreachable { .. }) = closed {
        // Nothing could be sent: the run failed (exit 2), not some events.
        progress.finish_and_clear();
        return Err(unreachable.into());
    }
    let mut summary = tally.await?;
    progress.finish_and_clear();
    for (line, reason, message) in early {
        summary.reject(reason, format!("line {line}"), message);
    }
    print!("{summary}");
    if let Err(e) = closed {
        eprintln!("trib: {e}");
    }
    Ok(if summary.refused() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The lines of `file`, or of stdin when it is absent or `-`.
async fn open(
    file: Option<&Path>,
) -> anyhow::Result<tokio::io::Lines<Box<dyn AsyncBufRead + Unpin + Send>>> {
    let reader: Box<dyn AsyncBufRead + Unpin + Send> = match file {
        Some(path) if path != Path::new("-") => {
            let opened = tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            Box::new(BufReader::new(opened))
        }
        _ => Box::new(BufReader::new(tokio::io::stdin())),
    };
    Ok(reader.lines())
}

/// `trib:` and the first 32 hex digits of the SHA-256 of the envelope's
/// canonical JSON (serde_json writes object keys sorted, without spaces).
fn idempotency_key(envelope: &serde_json::Value) -> String {
    let hash = Sha256::digest(envelope.to_string().as_bytes());
    format!("trib:{}", &hex::encode(hash)[..32])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::idempotency_key;

    #[test]
    fn the_key_is_a_hash_of_the_event_whatever_its_spelling() {
        let a: serde_json::Value = serde_json::from_str(
            r#"{"event_time": 1, "price_tick": {"pair": "BTC-USD", "source": "a", "price": 1.5}}"#,
        )
        .unwrap();
        let b: serde_json::Value = serde_json::from_str(
            r#"{"price_tick":{"price":1.5,"source":"a","pair":"BTC-USD"},"event_time":1}"#,
        )
        .unwrap();
        assert_eq!(idempotency_key(&a), idempotency_key(&b));
        assert!(idempotency_key(&a).starts_with("trib:"));
        assert_eq!(idempotency_key(&a).len(), "trib:".len() + 32);
        let other = json!({"event_time": 2, "price_tick": {"pair": "BTC-USD", "source": "a", "price": 1.5}});
        assert_ne!(idempotency_key(&a), idempotency_key(&other));
    }
}
