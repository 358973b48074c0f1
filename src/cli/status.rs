//! `status`: versions, stages, ages, expiries and delivery state. Reads only
//! metadata: no identity, no network.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{Globals, Need, exit, parse_duration};
use crate::policy::Dur;
use crate::registry::{Stage, TokenMeta};
use crate::rotation::due_reason;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// List tokens expiring within this window (e.g. 30d) and exit 3 if any.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expiring: Option<std::time::Duration>,
}

#[derive(Serialize)]
struct TokenStatus {
    name: String,
    issuer: String,
    current: Option<u32>,
    pending: Option<u32>,
    versions: Vec<VersionStatus>,
    due: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    rotation_in_progress: bool,
    deliveries: Vec<DeliveryStatus>,
}

#[derive(Serialize)]
struct VersionStatus {
    id: u32,
    stage: Stage,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct DeliveryStatus {
    target: String,
    name: String,
    version: Option<u32>,
    up_to_date: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let ws = g.workspace(Need::Nothing)?;
    let (policy, registry) = (&ws.policy, &ws.registry);
    let metas = ws.metas()?;
    let now = ws.now;
    let window = args.expiring.map(|w| TimeDelta::from_std(w).unwrap_or(TimeDelta::MAX));

    let mut rows = Vec::new();
    for (name, token) in &policy.tokens {
        let meta = &metas[name];
        rows.push(TokenStatus {
            name: name.clone(),
            issuer: token.issuer.clone(),
            current: meta.current().map(|v| v.id),
            pending: meta.pending().map(|v| v.id),
            versions: meta
                .versions
                .iter()
                .map(|v| VersionStatus { id: v.id, stage: v.stage, created_at: v.created_at, expires_at: v.expires_at })
                .collect(),
            due: due_reason(token, meta, now),
            expires_at: meta.current().and_then(|v| v.expires_at),
            rotation_in_progress: meta.rotation.is_some(),
            deliveries: token
                .targets
                .iter()
                .flat_map(|t| t.names.iter().map(move |n| (t.address(), n)))
                .map(|(address, n)| {
                    let version = meta.delivered(&address, n).map(|d| d.version);
                    DeliveryStatus {
                        up_to_date: version.is_some() && version == meta.current().map(|v| v.id),
                        target: address,
                        name: n.clone(),
                        version,
                    }
                })
                .collect(),
        });
    }
    let orphans: Vec<String> = registry.token_names()?.into_iter().filter(|n| !policy.tokens.contains_key(n)).collect();
    let expiring: Vec<&TokenStatus> = match window {
        Some(w) => rows.iter().filter(|r| r.expires_at.is_some_and(|e| e - now <= w)).collect(),
        None => Vec::new(),
    };

    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            now: DateTime<Utc>,
            tokens: &'a [TokenStatus],
            not_in_policy: &'a [String],
            expiring: Vec<&'a str>,
        }
        let out = Out {
            now,
            tokens: &rows,
            not_in_policy: &orphans,
            expiring: expiring.iter().map(|r| r.name.as_str()).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for row in &rows {
            print_row(row, &metas[&row.name], now);
        }
        for name in &orphans {
            println!("{name}: in the registry but in no policy (left alone)");
        }
        if let Some(w) = window {
            if expiring.is_empty() {
                println!("nothing expires within {}", Dur::human(w));
            }
            for r in &expiring {
                let e = r.expires_at.expect("filtered on it");
                println!("expiring within {}: {} ({})", Dur::human(w), r.name, when(now, e));
            }
        }
    }
    Ok(if expiring.is_empty() { exit::OK } else { exit::FINDINGS })
}

fn print_row(row: &TokenStatus, meta: &TokenMeta, now: DateTime<Utc>) {
    let current = match meta.current() {
        Some(v) => format!("v{} current, {} old", v.id, Dur::human(now - v.created_at)),
        None => "no value yet".into(),
    };
    println!("{}  [{}]  {current}", row.name, row.issuer);
    if let Some(e) = row.expires_at {
        println!("  expires: {}", when(now, e));
    }
    if let Some(p) = meta.pending() {
        println!("  pending: v{} (rotation in progress; `chitty-secrets rotate {}` resumes it)", p.id, row.name);
    }
    for v in meta.versions.iter().filter(|v| v.stage == Stage::Previous) {
        let until = v.retire_after.map(|r| format!(", valid until {}", when(now, r))).unwrap_or_default();
        println!("  previous: v{}{until}", v.id);
    }
    if let Some(due) = &row.due {
        println!("  due: {due}");
    }
    let fresh = row.deliveries.iter().filter(|d| d.up_to_date).count();
    println!("  delivered: {fresh}/{} up to date", row.deliveries.len());
    for d in row.deliveries.iter().filter(|d| !d.up_to_date) {
        let holds = d.version.map_or("never delivered".to_string(), |v| format!("has v{v}"));
        println!("    {}#{}: {holds}", d.target, d.name);
    }
}

fn when(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let stamp = at.format("%Y-%m-%d %H:%M UTC");
    if at >= now {
        format!("{stamp}, in {}", Dur::human(at - now))
    } else {
        format!("{stamp}, {} ago", Dur::human(now - at))
    }
}
