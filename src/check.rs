//! `check`: the free, offline audit. Reads only policies, registry metadata
//! and local files — zero network calls, and no identity needed (with one,
//! it also compares .env values with the registry and looks inside values).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::identity::Identity;
use crate::placeholder::placeholder_reason;
use crate::policy::{Dur, Policy, TokenPolicy};
use crate::registry::{Registry, TokenMeta};
use crate::rotation::due::{Due, due};
use crate::secret::Secret;
use crate::targets::TargetId;
use crate::targets::dotenv_file::{DotenvFile, Unreadable};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, documented in the README.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<crate::error::Hint>,
}

pub struct Inputs<'a> {
    pub policy: &'a Policy,
    pub registry: &'a Registry,
    pub identity: Option<&'a Identity>,
    /// Identity files to check the permissions of.
    pub identity_files: Vec<PathBuf>,
    pub now: DateTime<Utc>,
    /// "Expiring" means within this window.
    pub window: TimeDelta,
}

struct Collector<'a> {
    inputs: &'a Inputs<'a>,
    findings: Vec<Finding>,
    /// .env files already read (many tokens share one): read and parsed once.
    files: std::collections::HashMap<PathBuf, std::rc::Rc<DotenvFile>>,
    /// Absent .env files git ignores, asked of git once per file.
    ignored: std::collections::HashMap<PathBuf, bool>,
}

impl Collector<'_> {
    fn add(
        &mut self,
        severity: Severity,
        code: &'static str,
        token: Option<&str>,
        at: Option<(String, Option<usize>)>,
        message: String,
        hint: Option<&str>,
    ) {
        let (file, line) = at.map_or((None, None), |(f, l)| (Some(f), l));
        self.findings.push(Finding {
            severity,
            code,
            token: token.map(str::to_string),
            file,
            line,
            message,
            hint: hint.map(crate::error::Hint::from),
        });
    }

    /// A token's registry file that cannot be used, as a finding.
    fn registry_problem(&mut self, name: &str, e: &crate::registry::RegistryError) {
        use crate::registry::RegistryError;
        let code = match e {
            RegistryError::ValuesMissing { .. } => "value-missing",
            RegistryError::Decrypt { .. } => "not-a-recipient",
            RegistryError::Unauthentic { .. } | RegistryError::KeyReplaced { .. } => "not-a-members-change",
            RegistryError::Conflicted { .. } => "merge-unfinished",
            _ => "registry-damaged",
        };
        let hint = e.hint();
        // The file the finding is about, where the error names one.
        let at = match e {
            RegistryError::Unauthentic { path, .. }
            | RegistryError::Conflicted { path }
            | RegistryError::Corrupt { path, .. }
            | RegistryError::ValuesMissing { path, .. } => Some((self.rel(path), None)),
            _ => None,
        };
        self.add(Severity::Error, code, Some(name), at, e.to_string(), hint.as_ref().map(crate::error::Hint::as_str));
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.inputs.policy.root).unwrap_or(path).display().to_string()
    }
}

/// Every finding, most severe first.
pub fn run(inputs: &Inputs<'_>) -> anyhow::Result<Vec<Finding>> {
    let mut c = Collector {
        inputs,
        findings: Vec::new(),
        files: std::collections::HashMap::new(),
        ignored: std::collections::HashMap::new(),
    };
    let policy = inputs.policy;
    let mut checked_files = BTreeSet::new();
    let names: Vec<&String> = policy.tokens.keys().collect();
    let loaded = inputs.registry.load_many(&names);
    // With the key: the values the audit log says were ended (read once).
    let ended = inputs.registry.ended_values();
    for ((name, token), loaded) in policy.tokens.iter().zip(loaded) {
        // A damaged file of one token is a finding about that token; the
        // others are still checked.
        let meta = match loaded {
            Ok(meta) => meta,
            Err(e) => {
                c.registry_problem(name, &e);
                continue;
            }
        };
        for v in meta.ended_but_live(&ended) {
            let at = Some((c.rel(&inputs.registry.meta_path(name)), None));
            c.add(
                Severity::Error,
                "ended-value-live",
                Some(name),
                at,
                meta.ended_but_live_message(v),
                Some("nothing delivers it; see `git log -p -- FILE` and restore the newest version a member wrote"),
            );
        }
        // Whether the token has value files, and those no metadata names
        // (what a merge of two rotations leaves); `tokens/` is listed once a run.
        let has_values = inputs.registry.value_ids(name).is_ok_and(|ids| !ids.is_empty());
        for file in inputs.registry.strays(&meta).unwrap_or_default() {
            let at = Some((c.rel(&inputs.registry.value_path(name, &file)), None));
            c.add(
                Severity::Warning,
                "untracked-value",
                Some(name),
                at,
                format!("{name} has a value file no version names: a value minted on another branch whose record a git merge dropped (a live token nothing tracks)"),
                Some("a member's `chitty-secrets sync` or `rotate` records it as previous, then retires it once every target has the current value"),
            );
        }
        if let Some(merged) = meta.merged_at {
            let unsettled = token.targets.iter().any(|t| {
                let address = t.address();
                t.names.iter().any(|n| meta.in_doubt(&address, n))
            });
            if unsettled {
                c.add(
                    Severity::Warning,
                    "merge-unsettled",
                    Some(name),
                    None,
                    format!("{name}: since a merge joined two rotations ({}), some targets may hold either branch's value; no version is retired until each gets the current one again", merged.format("%Y-%m-%d %H:%M UTC")),
                    Some("run `chitty-secrets sync`"),
                );
            }
        }
        if meta.current().is_some() && !has_values {
            let at = Some((c.rel(&inputs.registry.values_dir(name)), None));
            c.add(
                Severity::Error,
                "value-missing",
                Some(name),
                at,
                format!("{name} has a current version but its value file is gone"),
                Some("restore it from git (`git log -- FILE`), or run `chitty-secrets rotate` to mint a new value"),
            );
        }
        // Decrypted once per token, and only when an identity is at hand.
        let values = match (inputs.identity, meta.current().or(meta.pending())) {
            (Some(identity), Some(_)) if has_values => match inputs.registry.live_values(&meta, &identity.key) {
                Ok(values) => Some(values),
                Err(e) => {
                    c.registry_problem(name, &e);
                    None
                }
            },
            _ => None,
        };
        let value_of = |v: Option<&crate::registry::Version>| values.as_ref().zip(v).and_then(|(x, v)| x.get(v.id));
        let (current_value, pending_value) = (value_of(meta.current()), value_of(meta.pending()));
        check_token(&mut c, token, &meta, current_value);
        check_targets(&mut c, token, &meta, (current_value, pending_value), &mut checked_files);
        check_machines(&mut c, token, &meta);
    }
    for name in inputs.registry.token_names()? {
        if !policy.tokens.contains_key(&name) {
            let at = Some((c.rel(&inputs.registry.meta_path(&name)), None));
            c.add(
                Severity::Info,
                "not-in-policy",
                Some(&name),
                at,
                format!("{name} is in the registry but no policy declares it"),
                Some("declare it, or delete its two files from the registry"),
            );
        }
        // A value file's mode is not checked: it is ciphertext made to be
        // committed, and every git checkout writes it 0644. Identity files
        // and .env files, which hold secrets in the clear, are.
    }
    match inputs.registry.trust() {
        crate::registry::Trust::Verified { .. } => {}
        crate::registry::Trust::Unverified => c.add(
            Severity::Info,
            "authenticity-not-verified",
            None,
            None,
            "the registry's files were read without checking who wrote them: no member's identity is at hand".into(),
            Some("everything else was checked; a member's `check` (or `chitty-secrets trust status`) also checks every file's MAC"),
        ),
        crate::registry::Trust::Legacy => c.add(
            Severity::Warning,
            "registry-not-authenticated",
            None,
            None,
            "the registry is of the format before authentication: anyone who can push could have changed its values, recipients or metadata".into(),
            Some("a member runs `chitty-secrets upgrade` once and commits the registry"),
        ),
    }
    if inputs.registry.rekey_marker().exists() {
        let at = Some((c.rel(&inputs.registry.rekey_marker()), None));
        c.add(
            Severity::Error,
            "rekey-pending",
            None,
            at,
            "a change of recipients did not finish: some value files are still encrypted to the old set".into(),
            Some("run `chitty-secrets keys rekey`"),
        );
    }
    for file in &inputs.identity_files {
        if world_or_group_readable(file) {
            c.add(
                Severity::Error,
                "file-permissions",
                None,
                Some((file.display().to_string(), None)),
                "identity file is readable by group or others: anyone on this machine can decrypt the registry".into(),
                Some("chmod 600 it, and consider rotating every token"),
            );
        }
    }
    // Who reads each secret, and whether a policy delivers it there.
    c.findings.extend(crate::usage::findings(inputs));
    c.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(c.findings)
}

fn check_token(c: &mut Collector<'_>, token: &TokenPolicy, meta: &TokenMeta, current_value: Option<&Secret>) {
    let name = token.name.as_str();
    let now = c.inputs.now;
    let policy_at = Some((c.rel(&token.origin.file), Some(token.origin.line)));
    let meta_at = Some((c.rel(&c.inputs.registry.meta_path(name)), None));
    if token.targets.is_empty() {
        c.add(
            Severity::Info,
            "no-targets",
            Some(name),
            policy_at.clone(),
            format!("{name} is delivered nowhere"),
            Some("add a [[tokens.NAME.targets]] entry, or remove the token"),
        );
    }
    if let Some(current) = meta.current() {
        let issuer = c.inputs.policy.issuer_of(token);
        if let Some(why) = current.origin_mismatch(&issuer.name, &issuer.issued_by()) {
            let remote = token.targets.iter().any(|t| t.is_remote());
            c.add(
                if remote { Severity::Error } else { Severity::Warning },
                "issuer-mismatch",
                Some(name),
                meta_at.clone(),
                format!("{name}: {why}"),
                Some(&format!(
                    "run `chitty-secrets rotate {name}` to mint from the policy's issuer (or check that --policies and the registry belong together)"
                )),
            );
        }
    }
    for orphan in &meta.orphans {
        let local = c.inputs.policy.issuers.get(&orphan.issuer).is_some_and(|i| i.spec.is_local());
        let hint = if local {
            format!(
                "`{}` mints locally: nothing exists to revoke; run `chitty-secrets rotate --forget-orphan {}`",
                orphan.issuer, orphan.tag
            )
        } else {
            format!(
                "find it at the issuer by `[chitty-secrets {}]` in its description and revoke it, then run `chitty-secrets rotate --forget-orphan {}`",
                orphan.tag, orphan.tag
            )
        };
        c.add(
            if local { Severity::Info } else { Severity::Error },
            "orphan-suspected",
            Some(name),
            meta_at.clone(),
            format!("a token may have been issued by `{}` at {} and never recorded (a run stopped between the mint and the save); tag {}", orphan.issuer, orphan.at.format("%Y-%m-%d %H:%M UTC"), orphan.tag),
            Some(&hint),
        );
    }
    if meta.pending().is_some() || meta.rotation.is_some() {
        c.add(
            Severity::Warning,
            "rotation-pending",
            Some(name),
            meta_at.clone(),
            format!("{name} has a rotation that did not finish"),
            Some(&format!(
                "run `chitty-secrets rotate {name}` to resume it, or `chitty-secrets rotate --abort {name}` to undo it"
            )),
        );
    }
    let Some(current) = meta.current() else {
        c.add(
            Severity::Error,
            "no-value",
            Some(name),
            policy_at,
            format!("{name} has no value in the registry"),
            Some("run `chitty-secrets rotate` (or `set` for a manual token)"),
        );
        return;
    };
    let placeholder = current.placeholder
        || current_value.is_some_and(|v| placeholder_reason(v.expose(), &c.inputs.policy.placeholders).is_some());
    if placeholder {
        c.add(
            Severity::Error,
            "placeholder-in-registry",
            Some(name),
            meta_at,
            format!("{name} v{} in the registry is a placeholder, not a token", current.id),
            Some("mint a real one with `chitty-secrets rotate`, or `set` the real value"),
        );
    }
    // A token whose whole lifetime fits in the window (a 30-day token, a
    // 30-day window; a day's slack for the issuer's clock) would be
    // "expiring" from the moment it is minted: for it the window is its
    // renewal window (renew_fraction of its lifetime), where `rotate --due`
    // renews it.
    let window = match current.expires_at.map(|e| e - current.created_at) {
        Some(lifetime) if lifetime <= c.inputs.window + TimeDelta::days(1) && lifetime > TimeDelta::zero() => {
            TimeDelta::seconds((lifetime.num_seconds() as f64 * token.renew_fraction) as i64)
        }
        _ => c.inputs.window,
    };
    if let Some(expires) = current.expires_at {
        if expires <= now {
            c.add(
                Severity::Error,
                "expired",
                Some(name),
                policy_at.clone(),
                format!("{name} v{} expired {} ago", current.id, Dur::human(now - expires)),
                Some("run `chitty-secrets rotate` now"),
            );
        } else if expires - now <= window {
            c.add(
                Severity::Warning,
                "expiring",
                Some(name),
                policy_at.clone(),
                format!("{name} v{} expires in {}", current.id, Dur::human(expires - now)),
                Some("run `chitty-secrets rotate --due`"),
            );
        }
    }
    // The planner's own due rule, so `check` and `rotate --due` agree.
    let already_expiring = current.expires_at.is_some_and(|e| e - now <= window);
    match due(token, meta, now) {
        Some(d @ Due::Age { .. }) => c.add(
            Severity::Warning,
            "rotation-due",
            Some(name),
            policy_at,
            format!("{name} {d}"),
            Some("run `chitty-secrets rotate --due`"),
        ),
        Some(d @ Due::Expiring { .. }) if !already_expiring => c.add(
            Severity::Warning,
            "rotation-due",
            Some(name),
            policy_at,
            format!("{name} {d}: inside its renewal window (renew_fraction)"),
            Some("run `chitty-secrets rotate --due`"),
        ),
        _ => {}
    }
}

fn check_targets(
    c: &mut Collector<'_>,
    token: &TokenPolicy,
    meta: &TokenMeta,
    (current_value, pending_value): (Option<&Secret>, Option<&Secret>),
    checked_files: &mut BTreeSet<PathBuf>,
) {
    let name = token.name.as_str();
    let fix = fix_hint(meta);
    for target in &token.targets {
        let address = target.address();
        let Some(path) = target.dotenv_path(&c.inputs.policy.root) else {
            // Remote targets: offline, only the delivery records can speak.
            for key in &target.names {
                check_record(c, name, meta, &address, key, (address.to_string(), None));
            }
            continue;
        };
        let shown = c.rel(&path);
        if let Some(why) = crate::engine::machines::elsewhere(target, &c.inputs.policy.root) {
            c.add(Severity::Info, "not-on-this-machine", Some(name), Some((shown.clone(), None)), why, None);
            continue;
        }
        let read = match c.files.get(&path) {
            Some(file) => Ok(Ok(file.clone())),
            None => std::fs::read(&path)
                .map(|bytes| DotenvFile::parse(&zeroize::Zeroizing::new(bytes)).map(std::rc::Rc::new)),
        };
        let file = match read {
            Ok(parsed) => parsed.map_err(|_| {
                ("target-unreadable", "is not UTF-8 text".to_string(), "fix or remove the file".to_string())
            }),
            // A fresh clone (CI): delivered .env files are ignored by git,
            // so not being here is expected. What this machine does not
            // hold it cannot vouch for: the named machines' check-ins speak.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && *c.ignored.entry(path.clone()).or_insert_with(|| crate::project::absent_and_ignored(&path)) =>
            {
                c.add(
                    Severity::Info,
                    "not-on-this-machine",
                    Some(name),
                    Some((shown.clone(), None)),
                    not_on_this_machine(&address),
                    None,
                );
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(("target-missing", "does not exist".to_string(), fix.clone()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err((
                "target-unreadable",
                format!("cannot be read ({e})"),
                "check the file's permissions: chitty-secrets must read it to deliver".to_string(),
            )),
            Err(e) => Err(("target-unreadable", format!("cannot be read ({e})"), "check the path".to_string())),
        };
        let file = match file {
            Ok(file) => {
                c.files.insert(path.clone(), file.clone());
                file
            }
            Err((code, why, hint)) => {
                c.add(
                    Severity::Error,
                    code,
                    Some(name),
                    Some((shown, None)),
                    format!("{address} {why}; {name} is not delivered there"),
                    Some(&hint),
                );
                continue;
            }
        };
        if checked_files.insert(path.clone()) && world_or_group_readable(&path) {
            c.add(
                Severity::Warning,
                "file-permissions",
                None,
                Some((shown.clone(), None)),
                format!("{shown} holds secrets and is readable by group or others"),
                Some("chmod 600 it (chitty-secrets writes 0600)"),
            );
        }
        for key in &target.names {
            let all = file.get_all(key);
            let Some(line) = all.first().map(|f| f.line) else {
                c.add(
                    Severity::Error,
                    "not-delivered",
                    Some(name),
                    Some((shown.clone(), None)),
                    format!("{key} is missing from {shown}"),
                    Some(&fix),
                );
                continue;
            };
            for (at_line, why) in all.iter().filter_map(|f| f.value.as_ref().err().map(|e| (f.line, *e))) {
                let hint = if why == Unreadable::Disputed {
                    "run `chitty-secrets sync` to rewrite it in a form every parser reads the same"
                } else {
                    "fix the line by hand (close the quote, or remove the stray text); sync will not edit it"
                };
                c.add(
                    Severity::Error,
                    "unreadable-value",
                    Some(name),
                    Some((shown.clone(), Some(at_line))),
                    format!("{key} in {shown} has no one value: {why}"),
                    Some(hint),
                );
            }
            let found: Vec<(&Secret, usize)> =
                all.iter().filter_map(|f| f.value.as_ref().ok().map(|v| (v, f.line))).collect();
            let at = Some((shown.clone(), Some(line)));
            if let Some((first, _)) = found.first()
                && let Some(why) = placeholder_reason(first.expose(), &c.inputs.policy.placeholders)
            {
                c.add(
                    Severity::Error,
                    "placeholder-in-target",
                    Some(name),
                    at.clone(),
                    format!("{key} in {shown} {why}"),
                    Some("run `chitty-secrets sync` to write the real value"),
                );
            }
            if let Some((first, _)) = found.first()
                && let Some((_, dup_line)) = found.iter().find(|(v, _)| !v.same_as(first))
            {
                c.add(
                    Severity::Warning,
                    "duplicate-key",
                    Some(name),
                    Some((shown.clone(), Some(*dup_line))),
                    format!("{key} is assigned twice in {shown} with different values"),
                    Some("remove one; parsers disagree on which wins"),
                );
            }
            // During a rotation a target may hold the pending value: that is
            // the rotation's progress, not drift.
            let expected =
                |v: &Secret| current_value.is_some_and(|c| v.same_as(c)) || pending_value.is_some_and(|p| v.same_as(p));
            if current_value.is_some() && found.iter().any(|(v, _)| !expected(v)) {
                c.add(
                    Severity::Error,
                    "drift",
                    Some(name),
                    at.clone(),
                    format!("{key} in {shown} differs from the registry's current value"),
                    Some(&fix),
                );
            }
            check_record(c, name, meta, &address, key, (shown.clone(), Some(line)));
        }
    }
}

/// What is said of a .env target that is absent here and ignored by git
/// (a fresh clone): this machine holds nothing there to vouch for.
pub fn not_on_this_machine(address: &TargetId) -> String {
    format!(
        "{address} is not on this machine (ignored by git): nothing here vouches for it; `sync` creates it, and the machines a policy names report through their check-ins"
    )
}

/// Each machine a .env target names that does not hold the current value,
/// from its check-in in the registry.
fn check_machines(c: &mut Collector<'_>, token: &TokenPolicy, meta: &TokenMeta) {
    let Some(current) = meta.current() else { return };
    if !token.targets.iter().any(|t| t.spec.kind().machines().is_some()) {
        return;
    }
    let checkins = match c.inputs.registry.checkins_here() {
        Ok(list) => list,
        Err(e) => {
            c.add(Severity::Error, "checkin-unreadable", Some(&token.name), None, e.to_string(), None);
            return;
        }
    };
    for state in crate::engine::machines::declared_states(token, &checkins) {
        if state.holds.is_some_and(|(v, _)| v >= current.id) {
            continue;
        }
        c.add(
            Severity::Warning,
            "machine-not-synced",
            Some(&token.name),
            Some((state.target.to_string(), None)),
            format!("{} v{} is current, but {state}", token.name, current.id),
            Some(&format!(
                "run `chitty-secrets sync` on {} and commit its check-in (`.chitty-secrets/machines/{}.toml`)",
                state.machine, state.machine
            )),
        );
    }
}

/// The delivery record of one name at one target against the current
/// version (or, during a rotation, the pending one).
fn check_record(
    c: &mut Collector<'_>,
    token: &str,
    meta: &TokenMeta,
    address: &TargetId,
    key: &str,
    at: (String, Option<usize>),
) {
    let Some(current) = meta.current() else { return };
    let pending = meta.pending().map(|p| p.id);
    let fix = fix_hint(meta);
    match meta.delivered(address, key) {
        None => c.add(
            Severity::Warning,
            "never-delivered",
            Some(token),
            Some(at),
            format!("no record that {key} at {address} was delivered by chitty-secrets"),
            Some(&fix),
        ),
        Some(d) if d.version != current.id && Some(d.version) != pending => c.add(
            Severity::Warning,
            "stale-delivery",
            Some(token),
            Some(at),
            format!("{key} at {address} was last delivered v{}, current is v{}", d.version, current.id),
            Some(&fix),
        ),
        Some(_) => {}
    }
}

/// What fixes a target that lacks its value: `sync`, except during a
/// rotation, where `sync` would put the current value over the pending one.
fn fix_hint(meta: &TokenMeta) -> String {
    if meta.pending().is_some() || meta.rotation.is_some() {
        format!(
            "a rotation of {0} is in progress: `chitty-secrets rotate {0}` finishes it, `chitty-secrets rotate --abort {0}` undoes it",
            meta.name
        )
    } else {
        "run `chitty-secrets sync`".into()
    }
}

fn world_or_group_readable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}
