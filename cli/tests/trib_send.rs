//! `trib send` streams a JSONL file: good lines are acknowledged, bad lines —
//! not JSON, not an envelope, refused by ingest — are reported with their
//! line numbers grouped by reason, and the exit status says so.
use tributary_stack::{TestStack, ingest::RunningIngest};

#[tokio::test]
async fn trib_send_reports_acked_and_rejected_lines_with_reasons_and_fails() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let lines = [
        format!(
            r#"{{"event_time": {now}, "ad_click": {{"ip_address": "203.0.113.7", "user_agent": "t", "referring_url": "https://example.com/", "advertiser_id": "adv-1"}}}}"#
        ),
        "{not json".to_string(),
        format!(
            r#"{{"event_time": {now}, "ad_click": {{"ip_address": "not-an-ip", "user_agent": "t", "referring_url": "https://example.com/", "advertiser_id": "adv-1"}}}}"#
        ),
        String::new(),
        format!(
            r#"{{"event_time": {now}, "price_tick": {{"pair": "ETH-USD", "source": "a", "price": 3012.5}}}}"#
        ),
        format!(
            r#"{{"event_time": {now}, "price_tick": {{"pair": "ETH-USD", "source": "a", "price": 1, "volme": 2}}}}"#
        ),
    ];
    let dir = std::env::temp_dir().join(format!("trib-send-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("events.jsonl");
    std::fs::write(&file, lines.join("\n"))?;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(["send", "--url", &ingest.grpc_url()])
        .arg(&file)
        .output()
        .await?;
    std::fs::remove_dir_all(&dir)?;

    // The one varying part of a message: how long ago the registry listed
    // the subject's versions.
    let stdout = String::from_utf8(output.stdout)?;
    let (before, after) = stdout.split_once(" s ago;").unwrap_or((&stdout, ""));
    let stdout = format!(
        "{}N s ago;{after}",
        before.trim_end_matches(|c: char| c.is_ascii_digit())
    );
    assert_eq!(
        stdout,
        "acked: 2\n\
         rejected: 3\n  \
         invalid_argument ad_click.ip_address (1)\n    \
         line 3: `not-an-ip` is not an IPv4 or IPv6 address\n  \
         invalid_json (1)\n    \
         line 2: key must be a string at line 1 column 2\n  \
         schema_mismatch price_tick.volme (1)\n    \
         line 6: is not a field of any registered version; register one that has it \
         (checked against version 1 of `tributary.events.price_tick-value`, newest schema id 2, \
         listed by the registry N s ago; asked again every 30s (--schema-refresh) and at once for an unknown field)\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1));
    Ok(())
}

#[tokio::test]
async fn trib_send_of_good_lines_from_stdin_exits_zero() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let input = format!(
        "{{\"event_time\": {now}, \"price_tick\": {{\"pair\": \"BTC-USD\", \"source\": \"a\", \"price\": 1.5}}}}\n"
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(["send", "--url", &ingest.grpc_url(), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    assert_eq!(String::from_utf8(output.stdout)?, "acked: 1\nrejected: 0\n");
    assert_eq!(output.status.code(), Some(0));
    Ok(())
}

#[tokio::test]
async fn trib_send_stops_quietly_when_its_output_is_closed() -> anyhow::Result<()> {
    // No events: nothing is sent, and at the end the summary is printed to a
    // pipe whose reader is gone (`trib send - | head -0`).
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(["send", "--url", "http://127.0.0.1:9", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    drop(child.stdin.take());
    let output = child.wait_with_output().await?;
    let stderr = String::from_utf8(output.stderr)?;
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(
        output.status.signal(),
        Some(libc_sigpipe()),
        "{:?}",
        output.status
    );
    Ok(())
}

/// SIGPIPE's number (13 on Linux).
fn libc_sigpipe() -> i32 {
    13
}

#[tokio::test]
async fn trib_send_to_a_stack_that_is_not_running_says_so_within_seconds_and_exits_2()
-> anyhow::Result<()> {
    let port = tributary_stack::tansu::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(["send", "--url", &url, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    stdin
        .write_all(
            format!(
                "{{\"event_time\": {now}, \"price_tick\": {{\"pair\": \"BTC-USD\", \"source\": \"a\", \"price\": 1.5}}}}\n"
            )
            .as_bytes(),
        )
        .await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    let elapsed = started.elapsed();
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("trib: cannot reach ingest at {url}: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(elapsed < std::time::Duration::from_secs(15), "{elapsed:?}");
    Ok(())
}

#[tokio::test]
async fn trib_send_prints_progress_lines_when_stderr_is_not_a_terminal() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let input: String = (0..2000)
        .map(|i| {
            format!(
                "{{\"event_time\": {now}, \"idempotency_key\": \"p-{i}\", \"price_tick\": {{\"pair\": \"BTC-USD\", \"source\": \"a\", \"price\": 1.5}}}}\n"
            )
        })
        .collect();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args([
            "send",
            "--url",
            &ingest.grpc_url(),
            "--progress-every",
            "1ms",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    assert_eq!(
        String::from_utf8(output.stdout)?,
        "acked: 2000\nrejected: 0\n"
    );
    let stderr = String::from_utf8(output.stderr)?;
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("trib: ") && l.ends_with(" events/s)"))
        .collect();
    assert!(!progress.is_empty(), "no progress line in {stderr:?}");
    assert!(progress[0].contains(" acked, 0 rejected ("), "{progress:?}");
    Ok(())
}
