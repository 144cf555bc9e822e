//! `--kafka-property` reaches librdkafka in every service binary: a property
//! librdkafka refuses stops the service at start with an error naming it
//! (exit status 1, no panic), instead of running without the setting.
use std::{process::Command, time::Duration};

use tributary_stack::{
    binaries::build_service_binaries, postgres::TestDatabase, registry::RunningRegistry,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_kafka_property_stops_each_service_with_an_error_naming_it() -> anyhow::Result<()>
{
    let bin = build_service_binaries()?;
    // A real registry, so the processor gets as far as its Kafka clients.
    let database = TestDatabase::create().await?;
    let registry = RunningRegistry::start(database.url()).await?;
    let services: [(&str, &[&str]); 3] = [
        (
            "tributary-ingest",
            &["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
        ),
        ("tributary-processor", &[]),
        ("tributary-sink", &[]),
    ];
    for (service, args) in services {
        let mut child = Command::new(bin.join(service))
            .args(args)
            .args(["--kafka-brokers", "127.0.0.1:1"])
            .args(["--kafka-property", "security.protocol=bogus"])
            .args(["--registry-url", &registry.url()])
            .args(["--log-format", "text"])
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        // It must stop by itself, promptly.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait()?.is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                anyhow::bail!("{service} kept running with security.protocol=bogus");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let output = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{service}: {stderr}");
        assert!(
            stderr.contains("security.protocol") && stderr.contains("bogus"),
            "{service}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{service}: {stderr}");
    }
    Ok(())
}
