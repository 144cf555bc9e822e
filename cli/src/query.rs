//! `trib query`: the aggregates of one event type over a time range, every
//! page of them, as a table or (`--json`) a JSON array shaped like the
//! gateway's `GET /v1/aggregates` rows.
use std::{process::ExitCode, time::Duration};

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use comfy_table::Table;
use humantime::parse_duration;
use serde_json::{Map, Value, json};
use tributary_client::{
    event::timestamp,
    proto::{Aggregate, AggregateOrder, GetAggregatesRequest},
};

use super::IngestArgs;

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    ingest: IngestArgs,
    /// The event type, e.g. `ad_click`.
    #[arg(long = "type")]
    event_type: String,
    /// Only this group key (repeatable): an advertiser id, `PAIR/SOURCE`, an event key.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Start of the range (RFC 3339); default: an hour before `--to`.
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// End of the range, exclusive (RFC 3339); default: now.
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// Bucket size, a multiple of the window, e.g. `1m`, `1h`, `1d` (the same
    /// duration syntax as every flag and `GET /v1/aggregates`).
    #[arg(long, value_parser = parse_duration)]
    granularity: Option<Duration>,
    /// Order of the buckets.
    #[arg(long, value_enum, default_value_t = Order::Asc)]
    order: Order,
    /// Aggregates per request.
    #[arg(long, default_value_t = 1000)]
    page_size: i32,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    Asc,
    Desc,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let to = args.to.unwrap_or_else(Utc::now);
    let from = args.from.unwrap_or(to - chrono::Duration::hours(1));
    let request = GetAggregatesRequest {
        event_type: args.event_type.clone(),
        keys: args.keys.clone(),
        start_time: Some(timestamp(from)),
        end_time: Some(timestamp(to)),
        granularity: args.granularity.map(|g| prost_types::Duration {
            seconds: g.as_secs() as i64,
            nanos: g.subsec_nanos() as i32,
        }),
        order: match args.order {
            Order::Asc => AggregateOrder::WindowAsc,
            Order::Desc => AggregateOrder::WindowDesc,
        } as i32,
        page_size: args.page_size,
        page_token: String::new(),
    };
    let aggregates = args.ingest.client()?.aggregates(request).collect().await?;
    if args.json {
        let rows: Vec<Value> = aggregates.iter().map(to_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", table(&aggregates));
    }
    Ok(ExitCode::SUCCESS)
}

fn time(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// One aggregate as JSON; fields its type does not have are absent.
fn to_json(a: &Aggregate) -> Value {
    let mut row = Map::new();
    row.insert("event_type".into(), json!(a.event_type));
    row.insert("key".into(), json!(a.key));
    row.insert("window_start".into(), json!(time(&a.window_start)));
    row.insert("window_end".into(), json!(time(&a.window_end)));
    row.insert("count".into(), json!(a.count));
    if let Some(d) = a.distinct_count {
        row.insert("distinct_count".into(), json!(d));
    }
    for (name, value) in [
        ("min", a.min),
        ("max", a.max),
        ("sum", a.sum),
        ("avg", a.avg),
        ("last", a.last),
    ] {
        if let Some(v) = value {
            row.insert(name.into(), json!(v));
        }
    }
    row.insert("revisions".into(), json!(a.revisions));
    Value::Object(row)
}

fn table(aggregates: &[Aggregate]) -> Table {
    let mut table = Table::new();
    table.set_header([
        "window_start",
        "key",
        "count",
        "distinct",
        "min",
        "max",
        "sum",
        "avg",
        "last",
        "revisions",
    ]);
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for a in aggregates {
        table.add_row([
            time(&a.window_start),
            a.key.clone(),
            a.count.to_string(),
            a.distinct_count.map(|d| d.to_string()).unwrap_or_default(),
            opt(a.min),
            opt(a.max),
            opt(a.sum),
            opt(a.avg),
            opt(a.last),
            a.revisions.to_string(),
        ]);
    }
    table
}
