//! The audit log: `.chitty-secrets/audit.log`, append-only JSON lines. Each
//! line carries the SHA-256 of the line before it, so an edited, removed or
//! reordered line breaks the chain (`chitty-secrets audit verify`). It says
//! who did what to which token and when — never a value.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::RegistryError;
use super::auth::RegistryKeys;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// SHA-256 (hex) of the previous line's bytes; zeros for the first.
    pub prev: String,
    /// The MAC of the line without this field, under the registry key:
    /// only a member can write a line that verifies. Absent on lines from
    /// before the registry was authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// The event that starts authentication: the lines before it (of an older
/// format) are fixed by the SHA-256 it names.
pub const KEY_EVENT: &str = "registry.key";

/// A member vouching for the log as it is after review (`trust accept
/// audit.log`): like [`KEY_EVENT`], it fixes every line before it by hash,
/// and the breaks before it are forgiven.
pub const ACCEPT_EVENT: &str = "trust.accept";

/// How an audit line that ends a version (revoked, retired, aborted)
/// names its value file: `value file ID`.
pub const ENDED_FILE: &str = "value file ";

/// The value files that authenticated audit lines say were ended, by
/// token: a value put back by an older metadata file must never be
/// delivered again. Lines are taken only with a valid MAC.
pub fn ended_values(text: &str, keys: &RegistryKeys) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for line in text.lines() {
        if !line.contains(ENDED_FILE) {
            continue;
        }
        let Ok(entry) = serde_json::from_str::<AuditEntry>(line) else { continue };
        let ends = entry.event == "rotate.abort" || entry.event == "rotate.revoked" || entry.event == "rotate.retired";
        let Some((body, tag)) = split_mac(line) else { continue };
        if !ends || keys.check(tag, LINE_MAC, "", body.as_bytes(), true).is_err() {
            continue;
        }
        let (Some(token), Some(detail)) = (entry.token, entry.detail) else { continue };
        if let Some(id) = detail.split(ENDED_FILE).nth(1).and_then(|rest| rest.split_whitespace().next()) {
            out.insert((token, id.to_string()));
        }
    }
    out
}

/// The MAC's kind for audit lines.
const LINE_MAC: &str = "audit";

/// A line of `entry` (whose `mac` is unset) with its MAC.
fn mac_line(entry: &AuditEntry, keys: &RegistryKeys) -> String {
    let body = serde_json::to_string(entry).expect("an audit entry always serializes");
    let tag = keys.tag(LINE_MAC, "", body.as_bytes());
    format!("{},\"mac\":\"{tag}\"}}", &body[..body.len() - 1])
}

/// A line split into the bytes its MAC covers and the MAC.
fn split_mac(line: &str) -> Option<(String, &str)> {
    let at = line.rfind(",\"mac\":\"")?;
    let tag = line[at + 8..].strip_suffix("\"}")?;
    Some((format!("{}}}", &line[..at]), tag))
}

/// What happened, before the chain fields are filled in.
pub struct Event<'a> {
    pub event: &'a str,
    pub token: Option<&'a str>,
    pub version: Option<u32>,
    pub detail: Option<String>,
}

fn hash(line: &str) -> String {
    sha256_hex(line.as_bytes())
}

/// The SHA-256 of `bytes`, hex: how the registry names a file's (or a
/// line's, or the log's) content.
pub fn sha256_hex(bytes: &[u8]) -> String {
    super::auth::hex(&Sha256::digest(bytes))
}

/// Who is acting: the CI run in GitHub Actions, else user@host (read once
/// a run).
pub fn actor() -> String {
    static ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ACTOR.get_or_init(find_actor).clone()
}

fn find_actor() -> String {
    if let (Ok(actor), Ok(run)) = (std::env::var("GITHUB_ACTOR"), std::env::var("GITHUB_RUN_ID")) {
        return format!("{actor} (github actions run {run})");
    }
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

/// An event kept to be appended later (see `Registry::defer_durability`).
#[derive(Debug, Clone)]
pub struct Deferred {
    pub event: String,
    pub token: Option<String>,
    pub version: Option<u32>,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

impl Deferred {
    pub fn new(event: Event<'_>, at: DateTime<Utc>) -> Self {
        Deferred {
            event: event.event.to_string(),
            token: event.token.map(str::to_string),
            version: event.version,
            detail: event.detail,
            at,
        }
    }
}

/// Appends one event. The caller holds the registry lock.
pub fn append(path: &Path, event: Event<'_>, at: DateTime<Utc>, keys: &RegistryKeys) -> Result<(), RegistryError> {
    append_all(path, &[Deferred::new(event, at)], true, keys)
}

/// Appends events in order, with one write, and one fsync if `durable`
/// (else the caller [`sync`]s the log later). The caller holds the
/// registry lock.
pub fn append_all(path: &Path, events: &[Deferred], durable: bool, keys: &RegistryKeys) -> Result<(), RegistryError> {
    if events.is_empty() {
        return Ok(());
    }
    let existing = read_tail(path).map_err(|e| RegistryError::io(path, e))?;
    // A last line without its newline was cut short by a crash mid-append:
    // it is kept as it is (evidence) and fenced by an entry that names it,
    // chained to the last whole line, so the chain and `seq` go on from there.
    let torn = (!existing.is_empty() && !existing.ends_with('\n')).then(|| {
        let line_no = existing.lines().count();
        let text = existing.lines().last().unwrap_or_default();
        (line_no, hash(text))
    });
    let whole = if torn.is_some() { existing.rsplit_once('\n').map_or("", |(whole, _)| whole) } else { &existing };
    let (mut seq, mut prev) = match whole.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => {
            (serde_json::from_str::<AuditEntry>(line).ok().and_then(|e| e.seq.checked_add(1)).unwrap_or(0), hash(line))
        }
        None => (0, GENESIS.to_string()),
    };
    let mut lines = String::new();
    if let Some((line_no, torn_hash)) = &torn {
        lines.push('\n');
        let fence = AuditEntry {
            seq,
            at: events[0].at,
            actor: actor(),
            event: TORN_TAIL.into(),
            token: None,
            version: None,
            detail: Some(format!(
                "line {line_no} (sha256 {torn_hash}) was cut short by a crash mid-append; kept as it is"
            )),
            prev,
            mac: None,
        };
        let fence = mac_line(&fence, keys);
        (seq, prev) = (seq + 1, hash(&fence));
        lines.push_str(&fence);
        lines.push('\n');
    }
    for event in events {
        let entry = AuditEntry {
            seq,
            at: event.at,
            actor: actor(),
            event: event.event.clone(),
            token: event.token.clone(),
            version: event.version,
            detail: event.detail.clone(),
            prev,
            mac: None,
        };
        let line = mac_line(&entry, keys);
        (seq, prev) = (seq + 1, hash(&line));
        lines.push_str(&line);
        lines.push('\n');
    }
    let mut file =
        OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(|e| RegistryError::io(path, e))?;
    file.write_all(lines.as_bytes()).map_err(|e| RegistryError::io(path, e))?;
    if durable { file.sync_all().map_err(|e| RegistryError::io(path, e)) } else { Ok(()) }
}

/// Makes lines appended without `durable` durable.
pub fn sync(path: &Path) -> Result<(), RegistryError> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| RegistryError::io(path, e))
}

/// The end of the log, enough to chain the next entry: from a line
/// boundary to the end, holding the last whole line. The whole file when it
/// is small or its last line is torn (the fence names the torn line by
/// number). An append costs the same however long the log has grown.
fn read_tail(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut chunk: u64 = 64 * 1024;
    loop {
        if chunk >= len {
            let mut text = String::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_string(&mut text)?;
            return Ok(text);
        }
        let mut buf = vec![0; chunk as usize];
        file.seek(SeekFrom::Start(len - chunk))?;
        file.read_exact(&mut buf)?;
        if buf.last() != Some(&b'\n') {
            chunk = len;
            continue;
        }
        // Past the first newline, the tail starts on a line boundary; keep
        // it if a non-blank line follows.
        if let Some(start) = buf.iter().position(|&b| b == b'\n')
            && buf[start + 1..].iter().any(|b| !b.is_ascii_whitespace())
        {
            return String::from_utf8(buf[start + 1..].to_vec())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// The event that fences a line cut short by a crash.
const TORN_TAIL: &str = "audit.torn-tail";

/// A verified log: its entries, the lines a crash cut short (fenced, or
/// the last line, which the next write fences), and how far it is
/// authenticated.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub entries: usize,
    pub torn: Vec<usize>,
    /// Entries from before the registry was authenticated (fixed by the
    /// [`KEY_EVENT`] line's hash).
    pub legacy: usize,
    /// Every line after those was checked against its MAC (a member's
    /// identity was at hand).
    pub authenticated: bool,
    /// Lines before the last `trust accept` of the log: a member vouched
    /// for them after review (their MACs were not checked).
    pub accepted: usize,
}

/// A break in the chain: the 1-based line and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Break {
    pub line: usize,
    pub why: String,
}

/// Checks the chain, and with `keys` every line's MAC; returns the number
/// of entries, or every break found.
///
/// Each line must name the hash of an earlier line: normally the one just
/// before it, or, after two branches' logs were joined by git's union merge
/// (`audit.log merge=union`), the last line before the branches forked. An
/// edited line, a removed one or a reordering still breaks the chain: the
/// line after it names a hash that no earlier line has. The hash chain
/// alone proves nothing against someone who rewrites the whole log (they
/// recompute it); the MACs do: only a member can write a line that
/// verifies, and a line under a key a member's removal retired cannot
/// follow one under the newer key.
///
/// A line a crash cut short is no break when it is the file's last (no
/// newline) or the next line is the fence `append` wrote for it (naming its
/// hash); anything else that is not an entry is.
pub fn verify(text: &str, keys: Option<&RegistryKeys>) -> Result<Verified, Vec<Break>> {
    let mut breaks = Vec::new();
    let mut seen = std::collections::HashSet::from([GENESIS.to_string()]);
    let mut verified = Verified { entries: 0, torn: Vec::new(), legacy: 0, authenticated: keys.is_some(), accepted: 0 };
    let mut lines: Vec<(usize, usize, &str)> = Vec::new();
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        if !line.trim().is_empty() {
            lines.push((i, offset, line));
        }
        offset += raw.len();
    }
    // The epoch of the last MACed line: a later line under an older key
    // was written by someone who only knows a retired key.
    let mut epoch_so_far: Option<u32> = None;
    // Each line's seq, by its hash: a line follows its parent by one, and
    // no line stands twice (a copy of a member's line is not a new event).
    let mut seqs: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (k, &(i, offset, line)) in lines.iter().enumerate() {
        let line_hash = hash(line);
        if seqs.contains_key(&line_hash) {
            breaks.push(Break {
                line: i + 1,
                why: "repeats an earlier line word for word (a copy is not a new event)".into(),
            });
            continue;
        }
        match serde_json::from_str::<AuditEntry>(line) {
            Ok(entry) if keys.is_some_and(|keys| is_anchor(keys, line, &entry, &text[..offset], epoch_so_far)) => {
                // A member vouched for everything before this line.
                breaks.clear();
                verified.entries += 1;
                if entry.event == ACCEPT_EVENT {
                    (verified.accepted, verified.legacy) = (k, 0);
                }
                let tag = split_mac(line).map(|(_, t)| t).unwrap_or_default();
                epoch_so_far = Some(tag[1..].split('.').next().and_then(|e| e.parse().ok()).unwrap_or(0));
            }
            Ok(entry) => {
                let parent_seq =
                    if entry.prev == GENESIS { Some(None) } else { seqs.get(&entry.prev).map(|s| Some(*s)) };
                if !seen.contains(&entry.prev) {
                    breaks.push(Break {
                        line: i + 1,
                        why: "does not follow any line before it (a line was edited, removed or reordered)".into(),
                    });
                } else if entry.mac.is_some()
                    && parent_seq.is_some_and(|p| p.map_or(0, |s| s.saturating_add(1)) != entry.seq)
                {
                    breaks.push(Break { line: i + 1, why: "its seq does not follow the line it names".into() });
                } else if let Some(keys) = keys
                    && let Some(why) = line_refusal(keys, line, &entry, &text[..offset], &mut epoch_so_far)
                {
                    breaks.push(Break { line: i + 1, why });
                } else {
                    verified.entries += 1;
                    if entry.mac.is_none() && epoch_so_far.is_none() {
                        verified.legacy += 1;
                    }
                }
            }
            Err(e) => {
                let fenced = lines
                    .get(k + 1)
                    .and_then(|(_, _, next)| serde_json::from_str::<AuditEntry>(next).ok())
                    .is_some_and(|next| {
                        next.event == TORN_TAIL && next.detail.is_some_and(|d| d.contains(&hash(line)))
                    });
                let last_unfinished = k + 1 == lines.len() && !text.ends_with('\n');
                if fenced || last_unfinished {
                    verified.torn.push(i + 1);
                    continue; // not part of the chain
                }
                breaks.push(Break { line: i + 1, why: format!("is not an audit entry ({e})") });
            }
        }
        if let Ok(entry) = serde_json::from_str::<AuditEntry>(line) {
            seqs.insert(line_hash.clone(), entry.seq);
        }
        seen.insert(line_hash);
    }
    if keys.is_some() && epoch_so_far.is_none() && verified.entries > 0 && breaks.is_empty() {
        breaks.push(Break {
            line: lines.first().map_or(1, |l| l.0 + 1),
            why: "no line of the log carries a MAC: it was rewritten by someone without the registry key".into(),
        });
    }
    if breaks.is_empty() { Ok(verified) } else { Err(breaks) }
}

/// Whether a line is a member's (its MAC) [`KEY_EVENT`] or
/// [`ACCEPT_EVENT`] naming the hash of exactly the bytes before it.
fn is_anchor(keys: &RegistryKeys, line: &str, entry: &AuditEntry, before: &str, epoch_so_far: Option<u32>) -> bool {
    if entry.event != KEY_EVENT && entry.event != ACCEPT_EVENT {
        return false;
    }
    let Some((body, tag)) = split_mac(line) else { return false };
    let names_prefix = entry.detail.as_deref().is_some_and(|d| d.contains(&format!("sha256 {}", hash(before))));
    if !names_prefix || keys.check(tag, LINE_MAC, "", body.as_bytes(), true).is_err() {
        return false;
    }
    let epoch: u32 = tag[1..].split('.').next().and_then(|e| e.parse().ok()).unwrap_or(0);
    match entry.event.as_str() {
        // Where authentication began: only as the log's first authenticated line.
        KEY_EVENT => epoch_so_far.is_none(),
        // A member's acceptance now is under the current key; one under a
        // retired key could be a removed member's.
        _ => epoch == keys.epoch() && epoch_so_far.is_none_or(|seen| epoch >= seen),
    }
}

/// Why a chained line is not a member's, if it is not.
fn line_refusal(
    keys: &RegistryKeys,
    line: &str,
    entry: &AuditEntry,
    before: &str,
    epoch_so_far: &mut Option<u32>,
) -> Option<String> {
    let Some((body, tag)) = entry.mac.as_ref().and_then(|_| split_mac(line)) else {
        return epoch_so_far.is_some().then(|| {
            "carries no MAC after lines that do: it was added by someone without the registry key".to_string()
        });
    };
    if let Err(why) = keys.check(tag, LINE_MAC, "", body.as_bytes(), true) {
        return Some(format!("was not written by a member: {why}"));
    }
    let epoch: u32 = tag[1..].split('.').next().and_then(|e| e.parse().ok()).unwrap_or(0);
    match *epoch_so_far {
        Some(latest) if epoch < latest => {
            return Some(format!(
                "is under the key of epoch {epoch}, after a line under epoch {latest}: a key retired by a member's removal"
            ));
        }
        None if !before.trim().is_empty() => {
            // The first authenticated line: the lines before it are from
            // before authentication, and it must fix them by their hash.
            let want = format!("sha256 {}", hash(before));
            if entry.event != KEY_EVENT || !entry.detail.as_deref().is_some_and(|d| d.contains(&want)) {
                return Some(
                    "is the first line with a MAC, but the lines before it are not the ones the registry's authentication began after (lines were added or changed before it)"
                        .into(),
                );
            }
        }
        _ => {}
    }
    *epoch_so_far = Some(epoch.max(epoch_so_far.unwrap_or(0)));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One registry key for the whole test binary.
    fn keys() -> RegistryKeys {
        static KEYS: std::sync::OnceLock<RegistryKeys> = std::sync::OnceLock::new();
        KEYS.get_or_init(RegistryKeys::generate).clone()
    }

    fn event(name: &str) -> Event<'_> {
        Event { event: name, token: Some("T"), version: Some(1), detail: None }
    }

    #[test]
    fn a_chain_verifies_and_an_edit_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        for name in ["init", "rotate.mint", "rotate.promote"] {
            append(&path, event(name), Utc::now(), &keys()).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(verify(&text, Some(&keys())).map(|v| v.entries), Ok(3));
        let tampered = text.replacen("rotate.mint", "rotate.mlnt", 1);
        // The edited line is not a member's any more, and the next one no
        // longer follows it; without the key only the chain tells.
        let breaks = verify(&tampered, Some(&keys())).unwrap_err();
        assert_eq!(breaks.iter().map(|b| b.line).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(verify(&tampered, None).unwrap_err().iter().map(|b| b.line).collect::<Vec<_>>(), vec![3]);
        let removed: String =
            text.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| format!("{l}\n")).collect();
        assert_eq!(verify(&removed, Some(&keys())).unwrap_err()[0].line, 2);
        let lines: Vec<&str> = text.lines().collect();
        let swapped = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1]);
        assert_eq!(verify(&swapped, Some(&keys())).unwrap_err()[0].line, 2);
    }

    #[test]
    fn a_union_merge_of_two_branches_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        append(&a, event("init"), Utc::now(), &keys()).unwrap();
        std::fs::copy(&a, &b).unwrap();
        append(&a, event("rotate.mint"), Utc::now(), &keys()).unwrap();
        append(&b, event("set"), Utc::now(), &keys()).unwrap();
        let (ta, tb) = (std::fs::read_to_string(&a).unwrap(), std::fs::read_to_string(&b).unwrap());
        let merged = format!("{ta}{}", tb.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>());
        std::fs::write(&a, &merged).unwrap();
        assert_eq!(verify(&merged, Some(&keys())).map(|v| v.entries), Ok(3));
        append(&a, event("deliver"), Utc::now(), &keys()).unwrap();
        assert_eq!(verify(&std::fs::read_to_string(&a).unwrap(), Some(&keys())).map(|v| v.entries), Ok(4));
    }

    /// Past 64 KiB only the tail is read: the chain and `seq` go on, and a
    /// torn last line is still fenced with its line number.
    #[test]
    fn a_long_log_is_appended_to_from_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let detail = "x".repeat(1000);
        for _ in 0..200 {
            let e = Event { event: "deliver", token: Some("T"), version: Some(1), detail: Some(detail.clone()) };
            append(&path, e, Utc::now(), &keys()).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() > 2 * 64 * 1024);
        append(&path, event("rotate.promote"), Utc::now(), &keys()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(verify(&text, Some(&keys())).map(|v| v.entries), Ok(201));
        let last: AuditEntry = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last.seq, 200);

        std::fs::write(&path, format!("{text}{{\"seq\":201,\"at\"")).unwrap();
        append(&path, event("rotate.mint"), Utc::now(), &keys()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("line 202 (sha256"), "the torn line is named by number");
        assert_eq!(verify(&text, Some(&keys())).map(|v| (v.entries, v.torn)), Ok((203, vec![202])));
    }

    #[test]
    fn a_log_rewritten_without_the_key_is_refused_though_its_chain_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        append(&path, event("init"), Utc::now(), &keys()).unwrap();
        append(&path, event("rotate.mint"), Utc::now(), &keys()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // The forger recomputes the hash chain under a key of their own.
        let forger = RegistryKeys::generate();
        let forged = dir.path().join("forged.log");
        append(
            &forged,
            Event { event: "keys.add", token: None, version: None, detail: Some("age1mallory".into()) },
            Utc::now(),
            &forger,
        )
        .unwrap();
        let forged_text = std::fs::read_to_string(&forged).unwrap();
        assert!(verify(&forged_text, None).is_ok(), "the chain alone cannot tell");
        assert!(verify(&forged_text, Some(&keys())).unwrap_err()[0].why.contains("not written by a member"));
        // Stripping every MAC does not make it a log from before authentication.
        let stripped: String = forged_text.lines().map(|l| format!("{}\n", split_mac(l).unwrap().0)).collect();
        assert!(verify(&stripped, Some(&keys())).unwrap_err()[0].why.contains("no line of the log carries a MAC"));
        // A line appended without a MAC after members' lines.
        let entry: AuditEntry = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        let appended = AuditEntry { seq: 2, prev: hash(text.lines().last().unwrap()), mac: None, ..entry };
        let appended = format!("{text}{}\n", serde_json::to_string(&appended).unwrap());
        assert!(verify(&appended, Some(&keys())).unwrap_err()[0].why.contains("carries no MAC"));
        assert_eq!(verify(&text, Some(&keys())).map(|v| v.entries), Ok(2));
    }
}
