//! `trib schema`: the schema-evolution workflow against the Schema Registry —
//! `check` a new version (the verdict and the reasons, nothing registered),
//! then `register` it; `list`, `show`, `delete` and `config` (the
//! compatibility level). `--type ad_click` means the subject
//! `tributary.events.ad_click-value`; `--subject` names any subject.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use tributary_common::config::RegistryArgs;

use tributary_common::registry_rest::{CallError, RegistryRest as Registry, segment};

#[derive(Args)]
pub struct SchemaArgs {
    /// The Schema Registry.
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    registry_url: String,
    /// `USER:PASSWORD` for the registry's HTTP basic authentication
    /// (Confluent's `basic.auth.user.info`); credentials in `--registry-url`
    /// work too.
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_BASIC_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD",
        global = true
    )]
    registry_basic_auth: Option<String>,
    /// PEM file of CA certificates to trust for the registry's TLS, beside
    /// the system's.
    #[arg(long, env = "TRIBUTARY_REGISTRY_CA", value_name = "PEM", global = true)]
    registry_ca: Option<PathBuf>,
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Registers an Avro schema file as the subject's next version.
    Register {
        #[command(flatten)]
        subject: Subject,
        /// The `.avsc` file.
        file: PathBuf,
    },
    /// Shows whether the subject's compatibility level accepts a schema, and
    /// why not; registers nothing. Exits 1 when incompatible.
    Check {
        #[command(flatten)]
        subject: Subject,
        /// The `.avsc` file.
        file: PathBuf,
    },
    /// Lists the subjects.
    List,
    /// Shows one version of a subject (default: the latest).
    Show {
        #[command(flatten)]
        subject: Subject,
        /// A version number or `latest`.
        #[arg(long, default_value = "latest")]
        version: String,
    },
    /// Deletes a subject, or one version of it.
    Delete {
        #[command(flatten)]
        subject: Subject,
        /// Only this version.
        #[arg(long)]
        version: Option<String>,
        /// Hard-delete (after a soft delete).
        #[arg(long)]
        permanent: bool,
    },
    /// Shows or sets the compatibility level of a subject, or the global one.
    Config {
        #[command(flatten)]
        subject: OptionalSubject,
        /// The new level: BACKWARD, FORWARD, FULL, NONE, or a _TRANSITIVE one.
        #[arg(long)]
        set: Option<String>,
    },
}

/// The subject to act on.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct Subject {
    /// The event type; the subject is `tributary.events.{type}-value`.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// The subject itself.
    #[arg(long)]
    subject: Option<String>,
}

/// The subject to act on, or none for the global setting.
#[derive(Args)]
#[group(required = false, multiple = false)]
struct OptionalSubject {
    /// The event type; the subject is `tributary.events.{type}-value`.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// The subject itself.
    #[arg(long)]
    subject: Option<String>,
}

fn subject_name(event_type: &Option<String>, subject: &Option<String>) -> Option<String> {
    subject.clone().or_else(|| {
        event_type
            .as_ref()
            .map(|t| format!("tributary.events.{t}-value"))
    })
}

impl Subject {
    fn name(&self) -> String {
        subject_name(&self.event_type, &self.subject).unwrap_or_default()
    }
}

pub async fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let registry = Registry::new(
        &RegistryArgs {
            url: args.registry_url.clone(),
            basic_auth: args.registry_basic_auth.clone(),
            ca: args.registry_ca.clone(),
        },
        std::time::Duration::from_secs(30),
    )?;
    match args.command {
        SchemaCommand::Register { subject, file } => {
            register(&registry, &subject.name(), &file).await
        }
        SchemaCommand::Check { subject, file } => check(&registry, &subject.name(), &file).await,
        SchemaCommand::List => {
            let subjects = registry.call(Method::GET, "/subjects", None).await?;
            for subject in subjects.as_array().into_iter().flatten() {
                println!("{}", subject.as_str().unwrap_or_default());
            }
            Ok(ExitCode::SUCCESS)
        }
        SchemaCommand::Show { subject, version } => {
            let path = format!(
                "/subjects/{}/versions/{}",
                segment(&subject.name()),
                segment(&version)
            );
            let shown = registry.call(Method::GET, &path, None).await?;
            println!(
                "{} version {} (schema id {})",
                shown["subject"].as_str().unwrap_or_default(),
                shown["version"],
                shown["id"]
            );
            let schema = shown["schema"].as_str().unwrap_or_default();
            match serde_json::from_str::<Value>(schema) {
                Ok(parsed) => println!("{}", serde_json::to_string_pretty(&parsed)?),
                Err(_) => println!("{schema}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        SchemaCommand::Delete {
            subject,
            version,
            permanent,
        } => {
            let name = subject.name();
            let mut path = format!("/subjects/{}", segment(&name));
            if let Some(version) = &version {
                path.push_str(&format!("/versions/{}", segment(version)));
            }
            if permanent {
                path.push_str("?permanent=true");
            }
            let deleted = registry.call(Method::DELETE, &path, None).await?;
            println!("deleted {name} version(s) {deleted}");
            Ok(ExitCode::SUCCESS)
        }
        SchemaCommand::Config { subject, set } => {
            let name = subject_name(&subject.event_type, &subject.subject);
            let path = match &name {
                Some(name) => format!("/config/{}", segment(name)),
                None => "/config".to_string(),
            };
            let label = name.as_deref().unwrap_or("global");
            match set {
                Some(level) => {
                    let body = json!({"compatibility": level.to_uppercase()});
                    let set = registry.call(Method::PUT, &path, Some(body)).await?;
                    println!(
                        "{label}: {}",
                        set["compatibility"].as_str().unwrap_or_default()
                    );
                }
                None => {
                    let path = if name.is_some() {
                        format!("{path}?defaultToGlobal=true")
                    } else {
                        path
                    };
                    let level = registry.call(Method::GET, &path, None).await?;
                    println!(
                        "{label}: {}",
                        level["compatibilityLevel"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_schema(file: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

async fn register(registry: &Registry, subject: &str, file: &PathBuf) -> anyhow::Result<ExitCode> {
    let schema = read_schema(file)?;
    let path = format!("/subjects/{}/versions", segment(subject));
    match registry
        .call(Method::POST, &path, Some(json!({"schema": schema})))
        .await
    {
        Ok(_) => {
            let found = registry
                .call(
                    Method::POST,
                    &format!("/subjects/{}", segment(subject)),
                    Some(json!({"schema": schema})),
                )
                .await?;
            println!(
                "registered {subject} version {} (schema id {})",
                found["version"], found["id"]
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(CallError::Refused(refusal))
            if refusal.status.as_u16() == 409 || refusal.status.as_u16() == 422 =>
        {
            println!("refused: {}", refusal.message);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn check(registry: &Registry, subject: &str, file: &PathBuf) -> anyhow::Result<ExitCode> {
    let schema = read_schema(file)?;
    let path = format!(
        "/compatibility/subjects/{}/versions?verbose=true",
        segment(subject)
    );
    let verdict = match registry
        .call(Method::POST, &path, Some(json!({"schema": schema})))
        .await
    {
        Ok(verdict) => verdict,
        Err(CallError::Refused(refusal)) if refusal.code == 40401 => {
            println!("compatible: {subject} has no versions yet");
            return Ok(ExitCode::SUCCESS);
        }
        Err(CallError::Refused(refusal)) if refusal.status.as_u16() == 422 => {
            println!("invalid: {}", refusal.message);
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let level = registry
        .call(
            Method::GET,
            &format!("/config/{}?defaultToGlobal=true", segment(subject)),
            None,
        )
        .await?;
    let level = level["compatibilityLevel"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    if verdict["is_compatible"].as_bool() == Some(true) {
        println!("compatible: {subject} ({level}) accepts this schema");
        return Ok(ExitCode::SUCCESS);
    }
    let messages: Vec<&str> = verdict["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let against = messages
        .iter()
        .find_map(|m| m.strip_prefix("{oldSchemaVersion: ")?.strip_suffix('}'))
        .map(|v| format!(", checked against version {v}"))
        .unwrap_or_default();
    println!("incompatible: {subject} ({level}{against}) refuses this schema");
    for message in messages {
        if let Some(reason) = readable(message) {
            println!("  - {reason}");
        }
    }
    Ok(ExitCode::FAILURE)
}

/// Confluent's verbose messages, shortened: `TYPE at LOCATION: MESSAGE` for an
/// incompatibility (the full schemas it repeats are left out), nothing for the
/// context lines already shown.
fn readable(message: &str) -> Option<String> {
    if message.starts_with("{oldSchema") || message.starts_with("{compatibility") {
        return None;
    }
    let parsed = (|| {
        let rest = message.strip_prefix("Incompatibility{type:")?;
        let (kind, rest) = rest.split_once(", location:")?;
        let (location, rest) = rest.split_once(", message:")?;
        let (detail, _) = rest.split_once(", reader:")?;
        Some(format!("{kind} at {location}: {detail}"))
    })();
    Some(parsed.unwrap_or_else(|| message.to_string()))
}
