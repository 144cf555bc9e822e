//! The SDK over TLS: with the server's CA it connects and submits; without
//! it the handshake is refused, and nothing is sent in clear text.
use std::{path::Path, process::Command};

use tributary_client::{ClientBuilder, proto::SubmitEventRequest};
use tributary_stack::{TestStack, ingest::RunningIngest};

fn openssl(args: &[&str], dir: &Path) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A test CA (`ca.pem`) and a server certificate it signed for localhost
/// and 127.0.0.1 (`cert.pem`, `key.pem`), made with openssl.
fn certificates(dir: &Path) -> anyhow::Result<()> {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=tributary test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir,
    )?;
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ],
        dir,
    )?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ],
        dir,
    )
}

fn click() -> tributary_client::proto::Event {
    tributary_client::event::ad_click(
        "adv-tls",
        "198.51.100.7",
        "tls-test",
        "https://example.com/",
    )
    .build()
}

#[tokio::test]
async fn with_the_servers_ca_the_sdk_submits_over_tls_and_without_it_the_handshake_fails()
-> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tributary-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    certificates(&dir)?;
    let stack = TestStack::start().await?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.tls.cert = Some(cert.clone());
        c.ingest.edge.tls.key = Some(key.clone());
    })
    .await?;
    let url = format!("https://localhost:{}", ingest.grpc_addr().port());

    let trusted = ClientBuilder::new(url.clone())
        .tls_ca_certificate(std::fs::read(dir.join("ca.pem"))?)
        .build()?;
    let ack = trusted
        .ingest()
        .submit_event(SubmitEventRequest {
            event: Some(click()),
        })
        .await?
        .into_inner()
        .ack;
    assert_eq!(
        ack.map(|a| a.topic),
        Some("tributary.events.ad_click".to_string())
    );

    let untrusted = ClientBuilder::new(url).build()?;
    let refused = untrusted
        .ingest()
        .submit_event(SubmitEventRequest {
            event: Some(click()),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");

    let plain =
        ClientBuilder::new(format!("http://127.0.0.1:{}", ingest.grpc_addr().port())).build()?;
    assert!(
        plain
            .ingest()
            .submit_event(SubmitEventRequest {
                event: Some(click())
            })
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
