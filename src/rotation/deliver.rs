//! Delivery: puts batches of values to their targets, every target at once,
//! and checks each write — read back where the target allows (.env files),
//! listed where it is remote (the name is there, with its `updated_at`).

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::policy::TargetPolicy;
use crate::secret::Secret;
use crate::target::{self, Remote, Written};

/// One name of one token's version, bound for one target.
pub struct Item {
    pub token: String,
    pub name: String,
    pub version: u32,
    pub value: Secret,
}

pub struct Batch {
    pub target: TargetPolicy,
    pub items: Vec<Item>,
}

/// A write, and the remote's `updated_at` after it where it has one; or why not.
pub type WriteResult = Result<(Written, Option<DateTime<Utc>>), String>;

pub struct ItemResult {
    pub token: String,
    pub name: String,
    pub version: u32,
    pub result: WriteResult,
}

impl ItemResult {
    /// `NAME: why`, for a failed write.
    pub fn failure(&self) -> Option<String> {
        self.result.as_ref().err().map(|why| format!("{}: {why}", self.name))
    }
}

pub struct TargetReport {
    pub address: String,
    pub items: Vec<ItemResult>,
}

impl TargetReport {
    /// `github:o/r: 2 created, 1 updated, 0 failed`
    pub fn summary(&self) -> String {
        let count = |w: Written| self.items.iter().filter(|i| matches!(&i.result, Ok((x, _)) if *x == w)).count();
        let failed = self.items.iter().filter(|i| i.result.is_err()).count();
        let mut parts = Vec::new();
        for (n, label) in [
            (count(Written::Created), "created"),
            (count(Written::Updated), "updated"),
            (count(Written::Written), "written"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {label}"));
            }
        }
        parts.push(format!("{failed} failed"));
        format!("{}: {}", self.address, parts.join(", "))
    }
}

/// Delivers every batch, all targets concurrently (GitHub's own pacing
/// still applies across its targets).
pub async fn deliver_all(root: &Path, remote: Option<&Remote>, batches: Vec<Batch>) -> Vec<TargetReport> {
    use std::io::IsTerminal;
    // Progress on a terminal only: a line as each target finishes.
    let tty = std::io::stderr().is_terminal() && batches.len() > 1;
    if tty {
        eprintln!("delivering to {} targets…", batches.len());
    }
    futures_util::future::join_all(batches.into_iter().map(|b| async move {
        let report = deliver_one(root, remote, b).await;
        if tty {
            eprintln!("  done: {}", report.summary());
        }
        report
    }))
    .await
}

async fn deliver_one(root: &Path, remote: Option<&Remote>, batch: Batch) -> TargetReport {
    let address = batch.target.address();
    let fail_all = |why: String| TargetReport {
        address: address.clone(),
        items: batch
            .items
            .iter()
            .map(|i| ItemResult {
                token: i.token.clone(),
                name: i.name.clone(),
                version: i.version,
                result: Err(why.clone()),
            })
            .collect(),
    };
    let target = match target::build(&batch.target, root, remote) {
        Ok(t) => t,
        Err(e) => return fail_all(with_hint(&e)),
    };
    let pairs: Vec<(String, Secret)> = batch.items.iter().map(|i| (i.name.clone(), i.value.clone())).collect();
    let mut results: HashMap<String, WriteResult> = target
        .put_many(&pairs)
        .await
        .into_iter()
        .map(|(name, r)| (name, r.map(|w| (w, None)).map_err(|e| with_hint(&e))))
        .collect();
    super::apply::crash_point("after-put");

    let written: Vec<String> =
        pairs.iter().filter(|(n, _)| results.get(n).is_some_and(Result::is_ok)).map(|(n, _)| n.clone()).collect();
    if !written.is_empty() {
        // Trust only what reads back (local) or is listed (remote).
        match target.read(&written).await {
            Ok(Some(read)) => {
                for ((name, got), (_, value)) in
                    written.iter().zip(read).zip(pairs.iter().filter(|(n, _)| written.contains(n)))
                {
                    if !got.is_some_and(|g| g.same_as(value)) {
                        results.insert(
                            name.clone(),
                            Err(format!("{address}: {name} was written but reads back differently")),
                        );
                    }
                }
            }
            Ok(None) => match target.list().await {
                Ok(Some(listed)) => {
                    for name in &written {
                        match listed.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
                            Some(s) => {
                                if let Some(Ok((_, updated))) = results.get_mut(name) {
                                    *updated = s.updated_at;
                                }
                            }
                            None => {
                                results.insert(
                                    name.clone(),
                                    Err(format!("{address}: {name} was written but is not listed")),
                                );
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    for name in &written {
                        results.insert(
                            name.clone(),
                            Err(format!("written, but the list to confirm it failed: {}", with_hint(&e))),
                        );
                    }
                }
            },
            Err(e) => {
                for name in &written {
                    results
                        .insert(name.clone(), Err(format!("written, but reading it back failed: {}", with_hint(&e))));
                }
            }
        }
    }
    TargetReport {
        address,
        items: batch
            .items
            .into_iter()
            .map(|i| {
                let result = results.remove(&i.name).unwrap_or_else(|| Err("the target gave no result".into()));
                ItemResult { token: i.token, name: i.name, version: i.version, result }
            })
            .collect(),
    }
}

fn with_hint(e: &target::TargetError) -> String {
    match &e.hint {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}
