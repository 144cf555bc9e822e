//! `trib schema`: register versions, then `check` shows the registry's
//! verdict and reasons for a candidate before anything is registered.
use std::path::Path;

use tributary_stack::TestStack;

const V1: &str = r#"{"type": "record", "name": "Signup", "namespace": "test", "fields": [
  {"name": "plan", "type": "string"}]}"#;
const V2: &str = r#"{"type": "record", "name": "Signup", "namespace": "test", "fields": [
  {"name": "plan", "type": "string"},
  {"name": "referrer", "type": ["null", "string"], "default": null}]}"#;
const V3_INCOMPATIBLE: &str = r#"{"type": "record", "name": "Signup", "namespace": "test", "fields": [
  {"name": "plan", "type": "string"},
  {"name": "referrer", "type": ["null", "string"], "default": null},
  {"name": "country", "type": "string"}]}"#;

async fn trib(registry: &str, args: &[&str], file: Option<&Path>) -> anyhow::Result<(String, i32)> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"));
    command
        .args(["schema", "--registry-url", registry])
        .args(args);
    if let Some(file) = file {
        command.arg(file);
    }
    let output = command.output().await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "stderr: {stderr}");
    Ok((
        String::from_utf8(output.stdout)?,
        output.status.code().unwrap_or(-1),
    ))
}

#[tokio::test]
async fn trib_schema_check_refuses_an_incompatible_v3_with_the_reason_and_registers_nothing()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let registry = stack.registry.url();
    let dir = std::env::temp_dir().join(format!("trib-schema-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let (v1, v2, v3) = (
        dir.join("v1.avsc"),
        dir.join("v2.avsc"),
        dir.join("v3.avsc"),
    );
    std::fs::write(&v1, V1)?;
    std::fs::write(&v2, V2)?;
    std::fs::write(&v3, V3_INCOMPATIBLE)?;

    let s = "tributary.events.signup-value";
    assert_eq!(
        trib(&registry, &["check", "--type", "signup"], Some(&v1)).await?,
        (
            format!("compatible: {s} (BACKWARD) accepts this schema\n"),
            0
        )
    );
    let (registered, code) = trib(&registry, &["register", "--type", "signup"], Some(&v1)).await?;
    assert_eq!(
        (
            registered.starts_with(&format!("registered {s} version 1 (schema id ")),
            code
        ),
        (true, 0),
        "{registered}"
    );
    assert_eq!(
        trib(&registry, &["check", "--type", "signup"], Some(&v2)).await?,
        (
            format!("compatible: {s} (BACKWARD) accepts this schema\n"),
            0
        )
    );
    let (registered, code) = trib(&registry, &["register", "--type", "signup"], Some(&v2)).await?;
    assert_eq!(
        (
            registered.starts_with(&format!("registered {s} version 2 (schema id ")),
            code
        ),
        (true, 0),
        "{registered}"
    );

    let (verdict, code) = trib(&registry, &["check", "--type", "signup"], Some(&v3)).await?;
    assert_eq!(code, 1);
    assert_eq!(
        verdict,
        format!(
            "incompatible: {s} (BACKWARD, checked against version 2) refuses this schema\n  \
             - READER_FIELD_MISSING_DEFAULT_VALUE at /fields/2: country\n"
        )
    );

    // Nothing was registered: the latest version is still 2.
    assert_eq!(
        trib(&registry, &["list"], None).await?,
        (format!("{s}\n"), 0)
    );
    let (shown, _) = trib(&registry, &["show", "--subject", s], None).await?;
    assert!(
        shown.starts_with(&format!("{s} version 2 (schema id ")),
        "{shown}"
    );
    assert_eq!(
        trib(&registry, &["config", "--type", "signup"], None).await?,
        (format!("{s}: BACKWARD\n"), 0)
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn trib_schema_authenticates_to_a_tls_registry_and_names_a_refusal() -> anyhow::Result<()> {
    let stack = TestStack::start_guarded().await?;
    let args = stack.registry_args();
    let ca = args.ca.clone().expect("the guarded registry has a CA");
    let dir = std::env::temp_dir().join(format!("trib-schema-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let v1 = dir.join("v1.avsc");
    std::fs::write(&v1, V1)?;
    // tokio's Command: the registry serves on this test's runtime.
    let run = async |credentials: Option<&str>, args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"));
        command
            .args(["schema", "--registry-url", &stack.registry.url()])
            .arg("--registry-ca")
            .arg(&ca)
            .args(args)
            .env_remove("TRIBUTARY_REGISTRY_BASIC_AUTH");
        if let Some(credentials) = credentials {
            command.env("TRIBUTARY_REGISTRY_BASIC_AUTH", credentials);
        }
        command.output().await
    };

    let writer = args.basic_auth.as_deref();
    let registered = run(
        writer,
        &["register", "--type", "signup", v1.to_str().unwrap()],
    )
    .await?;
    assert!(registered.status.success(), "{registered:?}");
    let listed = run(writer, &["list"]).await?;
    assert_eq!(
        String::from_utf8(listed.stdout)?,
        "tributary.events.signup-value\n"
    );
    // Without credentials: the registry's refusal, named, and a failure exit.
    let refused = run(None, &["list"]).await?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr)?;
    assert!(
        stderr.contains("401") && stderr.contains("40101"),
        "stderr: {stderr}"
    );
    // The writer may not delete: 403 with the role it lacks.
    let forbidden = run(writer, &["delete", "--type", "signup"]).await?;
    assert!(!forbidden.status.success());
    let stderr = String::from_utf8(forbidden.stderr)?;
    assert!(
        stderr.contains("40301") && stderr.contains("admin role"),
        "stderr: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `ad_click` v2 (built in) plus an optional field: what a user adds.
fn ad_click_with(fields: &[&str], extra: &str) -> String {
    let v2: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/ad_click/v2.avsc")).unwrap();
    let mut schema = v2.clone();
    let kept: Vec<serde_json::Value> = v2["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| fields.contains(&f["name"].as_str().unwrap()))
        .cloned()
        .chain((!extra.is_empty()).then(|| serde_json::from_str(extra).unwrap()))
        .collect();
    schema["fields"] = serde_json::Value::Array(kept);
    schema.to_string()
}

#[tokio::test]
async fn the_registry_refuses_a_version_the_processor_cannot_read_and_trib_says_why()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let registry = stack.registry.url();
    // The processor declares the level protecting its reader schemas at start.
    let processor = tributary_stack::processor::start(&stack, |_| {}).await?;
    let s = "tributary.events.ad_click-value";
    assert_eq!(
        trib(&registry, &["config", "--type", "ad_click"], None).await?,
        (format!("{s}: FULL_TRANSITIVE\n"), 0)
    );
    tributary_stack::bootstrap::register_schemas(&stack.kafka(), &stack.registry_args()).await?;

    let dir = std::env::temp_dir().join(format!("trib-schema-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let all = [
        "ip_address",
        "user_agent",
        "referring_url",
        "advertiser_id",
        "metadata",
        "event_time",
        "campaign_id",
    ];
    // v3: a new optional field registers.
    let v3 = dir.join("v3.avsc");
    std::fs::write(
        &v3,
        ad_click_with(
            &all,
            r#"{"name": "country", "type": ["null", "string"], "default": null}"#,
        ),
    )?;
    let (registered, code) =
        trib(&registry, &["register", "--type", "ad_click"], Some(&v3)).await?;
    assert_eq!(code, 0, "{registered}");
    assert!(
        registered.starts_with(&format!("registered {s} version 3")),
        "{registered}"
    );

    // v4 drops advertiser_id, which the processor's reader needs: refused,
    // naming the field and the version that could not read it.
    let without_advertiser: Vec<&str> = all
        .iter()
        .copied()
        .filter(|f| *f != "advertiser_id")
        .collect();
    let v4 = dir.join("v4.avsc");
    std::fs::write(&v4, ad_click_with(&without_advertiser, ""))?;
    let (verdict, code) = trib(&registry, &["check", "--type", "ad_click"], Some(&v4)).await?;
    assert_eq!(code, 1, "{verdict}");
    assert!(
        verdict.starts_with(&format!(
            "incompatible: {s} (FULL_TRANSITIVE, checked against version "
        )),
        "{verdict}"
    );
    assert!(
        verdict.contains("READER_FIELD_MISSING_DEFAULT_VALUE at /fields/3: advertiser_id"),
        "{verdict}"
    );
    let refused = reqwest::Client::new()
        .post(format!("{registry}/subjects/{s}/versions"))
        .json(&serde_json::json!({"schema": std::fs::read_to_string(&v4)?}))
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 409);
    let body: serde_json::Value = refused.json().await?;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("message:advertiser_id"),
        "{body}"
    );
    // Nothing was registered: the latest version is still 3.
    let (shown, _) = trib(&registry, &["show", "--type", "ad_click"], None).await?;
    assert!(
        shown.starts_with(&format!("{s} version 3 (schema id ")),
        "{shown}"
    );
    processor.shutdown().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn an_operators_own_compatibility_level_is_kept() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let registry = stack.registry.url();
    let s = "tributary.events.ad_click-value";
    let (_, code) = trib(
        &registry,
        &["config", "--type", "ad_click", "--set", "NONE"],
        None,
    )
    .await?;
    assert_eq!(code, 0);
    let processor = tributary_stack::processor::start(&stack, |_| {}).await?;
    assert_eq!(
        trib(&registry, &["config", "--type", "ad_click"], None).await?,
        (format!("{s}: NONE\n"), 0)
    );
    // The other subjects had no level of their own: declared.
    assert_eq!(
        trib(&registry, &["config", "--type", "price_tick"], None).await?,
        (
            "tributary.events.price_tick-value: FULL_TRANSITIVE\n".to_string(),
            0
        )
    );
    processor.shutdown().await?;
    Ok(())
}
