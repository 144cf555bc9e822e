//! `trib dlq`: the dead-letter topic, seen and acted on.
//!
//! - `list`: counts by reason and source topic, newest first, and the newest
//!   dead letters, with readable times.
//! - `show P/O`: one dead letter: reason, detail, origin, headers, key, and
//!   the payload decoded through the registry when it is framed Avro.
//! - `replay`: re-produces dead letters (filtered by `--reason`, `--since`)
//!   to their source topics, unchanged but for the `tributary.dlq.*`
//!   headers, after the cause was fixed, each at most once (recorded in
//!   `<dead-letter topic>.replayed`).
//!
//! The reading and the replay are `tributary_common::dead_letter`'s (the
//! console serves the same); this module only formats what they return.
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use comfy_table::Table;
use tributary_common::{
    config::{KafkaArgs, RegistryArgs},
    dead_letter::{
        read::{self, Decoder, Payload},
        replay::{self, Outcome, Selection},
    },
};

#[derive(Args)]
pub struct DlqArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The registry, to decode payloads (`show`).
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Counts dead letters by reason and source topic (newest first) and
    /// lists the newest ones.
    List {
        #[command(flatten)]
        filter: Filter,
        /// How many of the newest dead letters to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Shows one dead letter: reason, detail, origin, headers, key, and the
    /// payload decoded when it is framed Avro.
    Show {
        /// `PARTITION/OFFSET` in the dead-letter topic, as `list` prints it.
        at: String,
    },
    /// Re-produces dead letters to their source topics, each at most once.
    /// Exit 1 when a dead letter could not be replayed.
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Lists what would be replayed, replays nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which dead letters a command takes.
#[derive(Args)]
struct Filter {
    /// Only dead letters with this reason (repeatable), e.g. `expired`,
    /// `undecodable`, `not_framed`, `unknown_schema`, `invalid`.
    #[arg(long)]
    reason: Vec<String>,
    /// Only dead letters from this source topic (the exact name; repeatable).
    #[arg(long)]
    source: Vec<String>,
    /// Only dead letters written within this long (`1h`, `2d`) or since
    /// this time (RFC 3339).
    #[arg(long, value_parser = read::parse_since)]
    since: Option<DateTime<Utc>>,
}

impl Filter {
    fn to_read(&self) -> read::Filter {
        read::Filter {
            reasons: self.reason.clone(),
            sources: self.source.clone(),
            since: self.since,
        }
    }
}

fn readable(time: Option<&str>) -> String {
    time.unwrap_or("-").to_string()
}

pub async fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DlqCommand::List { filter, limit } => list(&args.kafka, &filter, limit).await,
        DlqCommand::Show { at } => show(&args.kafka, &args.registry, &at).await,
        DlqCommand::Replay { filter, dry_run } => replay(&args.kafka, &filter, dry_run).await,
    }
}

async fn list(kafka_args: &KafkaArgs, filter: &Filter, limit: usize) -> anyhow::Result<ExitCode> {
    let topic = &kafka_args.dead_letter_topic;
    let letters = read::list(kafka_args, &filter.to_read()).await?;
    println!("{topic}: {} dead letters", letters.len());
    if letters.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.set_header(["reason", "source topic", "count", "newest"]);
    for group in read::count_by_reason(&letters) {
        table.add_row([
            group.reason,
            group.source_topic,
            group.count.to_string(),
            readable(group.newest.as_deref()),
        ]);
    }
    println!("{table}");
    let mut newest = Table::new();
    newest.set_header(["at", "time", "reason", "source", "detail"]);
    for letter in letters.iter().take(limit) {
        let summary = letter.summary();
        let mut detail = summary.detail;
        if detail.chars().count() > 100 {
            detail = detail.chars().take(99).chain(['…']).collect();
        }
        newest.add_row([
            summary.id,
            readable(summary.time.as_deref()),
            summary.reason,
            summary.source.unwrap_or_default(),
            detail,
        ]);
    }
    println!("newest {} (trib dlq show AT):", limit.min(letters.len()));
    println!("{newest}");
    Ok(ExitCode::SUCCESS)
}

async fn show(
    kafka_args: &KafkaArgs,
    registry: &RegistryArgs,
    at: &str,
) -> anyhow::Result<ExitCode> {
    let position = read::parse_at(at)?;
    let topic = &kafka_args.dead_letter_topic;
    let letter = read::find(kafka_args, position)
        .await?
        .with_context(|| format!("{topic} has no record at {at}"))?;
    let detail = Decoder::new(registry)?.detail(&letter).await;
    let summary = &detail.summary;
    println!("dead letter {topic} {at}");
    println!("  time:    {}", readable(summary.time.as_deref()));
    println!("  reason:  {}", summary.reason);
    println!("  detail:  {}", summary.detail);
    println!("  source:  {}", summary.source.clone().unwrap_or_default());
    if let Some(from) = &summary.replayed_from {
        println!("  replayed from: {from}");
    }
    println!("  key:     {}", detail.key.as_deref().unwrap_or("(none)"));
    println!("  headers:");
    for header in &detail.headers {
        println!(
            "    {}: {}",
            header.name,
            header.value.as_deref().unwrap_or("(null)")
        );
    }
    match &detail.payload {
        Payload::None => println!("  payload: (none)"),
        Payload::Avro { schema_id, value } => println!(
            "  payload (Avro, schema id {schema_id}):\n{}",
            serde_json::to_string_pretty(value)?
        ),
        Payload::Raw {
            why, bytes, hex, ..
        } => println!(
            "  payload ({bytes} bytes, not decoded: {why}): {}",
            &hex[..hex.len().min(512)]
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay(
    kafka_args: &KafkaArgs,
    filter: &Filter,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let report = replay::replay(kafka_args, &Selection::Filter(filter.to_read()), dry_run).await?;
    for item in &report.items {
        match item.outcome {
            Outcome::WouldReplay => println!(
                "would replay {} ({}) to {}",
                item.id,
                item.reason,
                item.source_topic.as_deref().unwrap_or_default()
            ),
            Outcome::Failed => eprintln!(
                "{}: {}",
                item.id,
                item.detail.as_deref().unwrap_or("not replayed")
            ),
            Outcome::Replayed | Outcome::Skipped => {}
        }
    }
    let verb = if dry_run { "would replay" } else { "replayed" };
    println!(
        "{verb} {}, skipped {} already replayed, failed {}",
        report.replayed, report.skipped, report.failed
    );
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
