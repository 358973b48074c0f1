//! `scan --history`: every blob reachable from a git repository's refs (or
//! from given revisions), searched once with the same [`Scanner`] as files
//! are — every version of every token, exact values, so no false
//! positives. A hit names the commit that introduced the blob, the path it
//! had there, the line and column, the token and version; never the value.
//!
//! How it reads git, and why (measured on 10,000 commits, 26,000 blobs,
//! 130 MB; see bench/history.sh):
//!
//! - The `git` binary, not a git crate: `scan --staged` already needs it,
//!   git's own object reading (zlib, delta chains with its delta base
//!   cache) is what any crate would reimplement, and a pure-Rust git (gix)
//!   would add far more to the build than this file.
//! - One walk answers both "which blobs" and "which commit brought each":
//!   `git rev-list --objects --in-commit-order --reverse --topo-order`
//!   visits commits parents first and prints, after each commit, the
//!   objects its tree holds that no commit before it held. So a blob is
//!   printed once, right after the first commit whose tree has it, with
//!   the path it has there: the commit that introduced it. A value that
//!   exists only in a merge's conflict resolution is in a blob neither
//!   parent has, so it is printed after the merge. (A second pass, `git log
//!   --raw -m`, would give the same answer at a third more git time.)
//! - The walk's output goes straight (an OS pipe) into `git cat-file
//!   --batch-check='%(objecttype) %(objectname) %(rest)'`, which adds the
//!   type and passes the path through: trees are told apart from blobs
//!   without reading them (reading the 74 MB of trees too made cat-file
//!   take half as long again; this costs a sixth). `--filter=object:type=blob`
//!   would drop the commit lines the attribution needs.
//! - The contents come from one `git cat-file --batch` process per core,
//!   fed as the walk goes; each blob goes to the process its path hashes
//!   to (a file's versions are delta chains of one another, so one
//!   process's delta base cache serves them all), and the thread reading a
//!   process's output searches each blob as it arrives, in one reused
//!   buffer that is zeroed when the scan ends. Decompression is most of the
//!   time, so it is what runs on every core.
//! - Every blob is read once, whatever number of commits and paths hold
//!   it: the walk never prints an object twice.
//! - The walk starts ([`Walk::start`]) before the registry's values are
//!   decrypted and the search begins ([`Walk::search`]): on 1,000 tokens
//!   with 3 versions each, the walk and the decryption take about 0.3 s
//!   each, side by side on two cores. With one `cat-file` instead of two,
//!   the whole scan took 1.3x as long.
//!
//! What is reported: the first blob (in that parents-first order) that
//! holds a value at a path. A file edited ten times while it held a value
//! has ten blobs with it, and one finding: the commit that put the value
//! there. The same value at another path is another finding. A blob that
//! was only ever copied (the same content at a new path) is not read again,
//! so the copy is not a second finding.
//!
//! A blob a tag points to directly (not through a commit) belongs to no
//! commit: the walk prints it with no path, and it is reported with no
//! commit. (A tree a tag points to is rarer still — linux's v2.6.11-tree —
//! and its new blobs are attributed to the first commit walked.)

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;

use serde::Serialize;

use super::{Hit, Scanner, is_binary};

/// Which commits to search.
#[derive(Debug, Clone, Copy)]
pub enum Revisions<'a> {
    /// Every ref (branches, tags, remotes, stash) and HEAD: `--all`.
    All,
    /// Revisions as git reads them, separated by white space (ref names
    /// cannot hold any): `main..feature`, `v1.0..`, `feature ^main`.
    Given(&'a str),
}

/// A finding in history: where a value was introduced.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HistoryHit {
    /// The full id of the commit that introduced the blob; none for a blob
    /// only a tag points to.
    pub commit: Option<String>,
    /// That commit's author date (ISO 8601).
    pub author_date: Option<String>,
    /// The blob holding the value, as `git cat-file -p` and `git filter-repo
    /// --strip-blobs-with-ids` take it.
    pub blob: String,
    /// `file` is the path the blob had in that commit.
    #[serde(flatten)]
    pub hit: Hit,
}

#[derive(Debug, Default, Serialize)]
pub struct HistoryTotals {
    pub commits: u64,
    /// Distinct blobs read (each once, whatever number of commits hold it).
    pub blobs: u64,
    pub bytes: u64,
    pub binary_skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot run git: {0}")]
    NoGit(#[source] io::Error),
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} is not in a git repository", .0.display())]
    NotARepository(PathBuf),
    #[error("git cannot read the revisions {revisions:?}: {stderr}")]
    BadRevisions { revisions: String, stderr: String },
    #[error("{what} failed: {stderr}")]
    Git { what: &'static str, stderr: String },
    #[error("reading git's output: {0}")]
    Io(#[from] io::Error),
}

impl HistoryError {
    pub fn hint(&self) -> &'static str {
        match self {
            HistoryError::NoGit(_) => "install git, or scan files instead of --history",
            HistoryError::Missing(_) | HistoryError::NotARepository(_) => {
                "run it inside a git repository or give one (`chitty-secrets scan --history PATH`), or leave out --history to scan files"
            }
            HistoryError::BadRevisions { .. } => {
                "give revisions git knows, e.g. --history=main..feature, --history=v1.0.. or --history='feature ^main'; --history alone searches every ref"
            }
            HistoryError::Git { .. } | HistoryError::Io(_) => "check the repository with `git fsck`",
        }
    }

    /// A mistake in what was asked (exit 2), not a failure of the scan.
    pub fn is_usage(&self) -> bool {
        matches!(self, HistoryError::Missing(_) | HistoryError::NotARepository(_) | HistoryError::BadRevisions { .. })
    }
}

/// The walk of a repository's history, started before the values to look
/// for are ready: `git rev-list` and the typing `cat-file --batch-check`
/// run, and their output is sorted into queues of blobs, while the caller
/// decrypts the registry (which takes as long as the walk).
pub struct Walk {
    repo: PathBuf,
    revisions: Option<String>,
    walk: std::process::Child,
    typed: std::process::Child,
    /// Reads the typed walk into `queues`; returns the commits in order.
    sorter: Option<std::thread::JoinHandle<Result<Vec<String>, HistoryError>>>,
    walk_err: Option<std::thread::JoinHandle<Vec<u8>>>,
    queues: Vec<mpsc::Receiver<Job>>,
}

impl Walk {
    /// Starts walking every blob `revisions` reach in the repository at
    /// `repo` (any folder inside it, or a bare repository).
    pub fn start(repo: &Path, revisions: Revisions<'_>) -> Result<Walk, HistoryError> {
        if !repo.exists() {
            return Err(HistoryError::Missing(repo.to_path_buf()));
        }
        let inside = git(repo).args(["rev-parse", "--git-dir"]).output().map_err(HistoryError::NoGit)?;
        if !inside.status.success() {
            let stderr = String::from_utf8_lossy(&inside.stderr).trim().to_string();
            // Any other refusal (a repository owned by someone else, a
            // damaged one) is said in git's own words.
            return Err(if stderr.contains("not a git repository") {
                HistoryError::NotARepository(repo.to_path_buf())
            } else {
                HistoryError::Git { what: "git rev-parse", stderr }
            });
        }
        let mut walk = git(repo);
        walk.args(["rev-list", "--objects", "--in-commit-order", "--reverse", "--topo-order"]);
        let revisions = match revisions {
            Revisions::All => {
                walk.arg("--all");
                None
            }
            Revisions::Given(given) => {
                // `--end-of-options`: a revision is never read as an option.
                walk.arg("--end-of-options").args(given.split_whitespace()).arg("--");
                Some(given.to_string())
            }
        };
        let mut walk = walk.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(HistoryError::NoGit)?;
        let walk_out = walk.stdout.take().expect("piped");
        let walk_err = walk.stderr.take().expect("piped");
        let typed = git(repo)
            .args(["cat-file", "--batch-check=%(objecttype) %(objectname) %(rest)"])
            .stdin(Stdio::from(walk_out))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut typed = match typed {
            Ok(typed) => typed,
            Err(e) => {
                let _ = walk.kill();
                let _ = walk.wait();
                return Err(HistoryError::NoGit(e));
            }
        };
        let typed_out = typed.stdout.take().expect("piped");
        let readers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        // Bounded, so a history far larger than this one waits for the
        // readers instead of queueing every blob's id and path in memory.
        let (feeds, queues): (Vec<_>, Vec<_>) = (0..readers).map(|_| mpsc::sync_channel::<Job>(1 << 16)).unzip();
        let sorter = std::thread::spawn(move || sort_walk(typed_out, &feeds));
        let walk_err = std::thread::spawn(move || read_all(walk_err));
        Ok(Walk {
            repo: repo.to_path_buf(),
            revisions,
            walk,
            typed,
            sorter: Some(sorter),
            walk_err: Some(walk_err),
            queues,
        })
    }

    /// Reads and searches every blob of the walk, one `cat-file --batch`
    /// per core. Hits come oldest commit first.
    pub fn search(mut self, scanner: &Scanner) -> Result<(Vec<HistoryHit>, HistoryTotals), HistoryError> {
        let keys = RandomState::new();
        let queues = std::mem::take(&mut self.queues);
        let repo = self.repo.as_path();
        let (found, mut totals, failed) = std::thread::scope(|scope| {
            let readers: Vec<_> =
                queues.into_iter().map(|queue| scope.spawn(|| read_blobs(scanner, repo, queue, &keys))).collect();
            let mut found = Vec::new();
            let mut totals = HistoryTotals::default();
            let mut failed = None;
            for reader in readers {
                match reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)) {
                    Ok((hits, t)) => {
                        found.extend(hits);
                        totals.blobs += t.blobs;
                        totals.bytes += t.bytes;
                        totals.binary_skipped += t.binary_skipped;
                    }
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            (found, totals, failed)
        });
        // A reader that stopped closed its queue: the sorter's next send
        // fails, it stops reading, and git's two processes end on a broken
        // pipe. So every step below ends.
        let sorted = self.sorter.take().expect("searched once").join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        let walk_status = self.walk.wait()?;
        let walk_err = self.walk_err.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        let typed_status = self.typed.wait()?;
        // The first cause first: a reader's error breaks the pipes behind it.
        if let Some(e) = failed {
            return Err(e);
        }
        let commits = sorted?;
        if !walk_status.success() {
            let stderr = String::from_utf8_lossy(&walk_err).trim().to_string();
            return Err(match self.revisions.take() {
                Some(revisions) => HistoryError::BadRevisions { revisions, stderr },
                None => HistoryError::Git { what: "git rev-list --all", stderr },
            });
        }
        if !typed_status.success() {
            let stderr = self.typed.stderr.take().map(read_all).unwrap_or_default();
            let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
            return Err(HistoryError::Git { what: "git cat-file --batch-check", stderr });
        }
        totals.commits = commits.len() as u64;

        let hits = first_introductions(found);
        let commit_of = |f: &Found| commits.get(f.commit as usize);
        let dates = author_dates(repo, hits.iter().filter_map(commit_of).map(String::as_str))?;
        let hits = hits
            .into_iter()
            .map(|f| {
                let commit = commit_of(&f).cloned();
                let author_date = commit.as_ref().and_then(|c| dates.get(c).cloned());
                HistoryHit { commit, author_date, blob: f.blob, hit: f.hit }
            })
            .collect();
        Ok((hits, totals))
    }
}

impl Drop for Walk {
    /// A walk not searched (the caller failed in between) stops git.
    fn drop(&mut self) {
        for child in [&mut self.walk, &mut self.typed] {
            if child.try_wait().is_ok_and(|done| done.is_none()) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn git(repo: &Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(repo).stdin(Stdio::null());
    command
}

fn read_all(mut from: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = from.read_to_end(&mut out);
    out
}

/// A blob to read: its id, the commit that introduced it (an index into the
/// walk's commits, [`NO_COMMIT`] for a blob a tag points to) and its path
/// there.
struct Job {
    blob: String,
    commit: u32,
    path: String,
}

/// The commit index of a blob no commit holds: after every commit.
const NO_COMMIT: u32 = u32::MAX;

/// A value found in a blob: the hit, and what was found (the known value,
/// or a keyed hash of an unknown ChittyID-shaped token) so that the same
/// value in later blobs of the same path is not reported again.
#[derive(Debug)]
struct Found {
    commit: u32,
    what: What,
    blob: String,
    hit: Hit,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum What {
    Known(String, u32),
    Unknown(u64),
}

/// Reads the typed walk, keeps the commits' ids in order and queues every
/// blob for a reader: the one its path hashes to.
fn sort_walk(typed: impl Read, feeds: &[mpsc::SyncSender<Job>]) -> Result<Vec<String>, HistoryError> {
    let keys = RandomState::new();
    let mut commits = Vec::new();
    let mut pipe = Pipe::new(typed);
    let mut line = Vec::with_capacity(256);
    while pipe.line(&mut line)? {
        // "<type> <id> <path>" ("commit <id> " for a commit).
        let text = String::from_utf8_lossy(&line);
        let Some((kind, rest)) = text.split_once(' ') else { continue };
        let (id, path) = rest.split_once(' ').unwrap_or((rest, ""));
        match kind {
            "commit" => commits.push(id.to_string()),
            "blob" => {
                // Every blob in a commit's tree has a name; one without is
                // what a tag points to (the walk prints those among the
                // first commit's objects): it belongs to no commit.
                let commit = match commits.len().checked_sub(1) {
                    Some(last) if !path.is_empty() => last as u32,
                    _ => NO_COMMIT,
                };
                let job = Job { blob: id.to_string(), commit, path: path.to_string() };
                let to = (keys.hash_one(path.as_bytes()) % feeds.len() as u64) as usize;
                if feeds[to].send(job).is_err() {
                    // That reader stopped on an error: it reports it.
                    break;
                }
            }
            // Trees, tags, and "missing" for what git cannot find.
            _ => {}
        }
    }
    Ok(commits)
}

/// One `git cat-file --batch` process: blob ids written by a feeding
/// thread, contents read and searched here as they arrive.
fn read_blobs(
    scanner: &Scanner,
    repo: &Path,
    jobs: mpsc::Receiver<Job>,
    keys: &RandomState,
) -> Result<(Vec<Found>, HistoryTotals), HistoryError> {
    let mut cat = git(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(HistoryError::NoGit)?;
    let stdin = cat.stdin.take().expect("piped");
    let mut out = Pipe::new(cat.stdout.take().expect("piped"));
    let (asked_tx, asked) = mpsc::channel::<Job>();
    let mut found = Vec::new();
    let mut totals = HistoryTotals::default();
    let result = std::thread::scope(|scope| {
        scope.spawn(move || feed(stdin, jobs, asked_tx));
        let read = search_answers(scanner, &mut out, asked, keys, &mut found, &mut totals);
        if read.is_err() {
            // Stop git at once: the feeding thread's next write then fails
            // and it ends, instead of waiting on a process no one reads.
            let _ = cat.kill();
        }
        read
    });
    let status = cat.wait()?;
    result?;
    if !status.success() {
        return Err(HistoryError::Git { what: "git cat-file --batch", stderr: format!("ended with {status}") });
    }
    Ok((found, totals))
}

/// Reads cat-file's answers, one per job asked, in order, and searches each
/// blob.
fn search_answers(
    scanner: &Scanner,
    out: &mut Pipe<impl Read>,
    asked: mpsc::Receiver<Job>,
    keys: &RandomState,
    found: &mut Vec<Found>,
    totals: &mut HistoryTotals,
) -> Result<(), HistoryError> {
    let mut header = Vec::with_capacity(128);
    let mut blob = zeroize::Zeroizing::new(Vec::new());
    for job in asked {
        if !out.line(&mut header)? {
            return Err(HistoryError::Git { what: "git cat-file --batch", stderr: "its output ended early".into() });
        }
        // "<id> blob <size>", or "<id> missing".
        let size =
            std::str::from_utf8(&header).ok().and_then(|h| h.rsplit(' ').next()).and_then(|s| s.parse::<usize>().ok());
        let Some(size) = size else { continue };
        blob.clear();
        blob.resize(size + 1, 0);
        out.exact(&mut blob)?;
        let data = &blob[..size];
        totals.blobs += 1;
        totals.bytes += size as u64;
        if is_binary(data) {
            totals.binary_skipped += 1;
            continue;
        }
        for mut hit in scanner.scan("", data) {
            let what = match (&hit.token, hit.version) {
                (Some(token), Some(version)) => What::Known(token.clone(), version),
                _ => What::Unknown(keys.hash_one(candidate_at(data, hit.line, hit.col))),
            };
            hit.file.clone_from(&job.path);
            found.push(Found { commit: job.commit, what, blob: job.blob.clone(), hit });
        }
    }
    Ok(())
}

/// Writes blob ids to cat-file, flushing whenever no more are waiting, and
/// tells the reader, in the same order, what it will receive.
fn feed(stdin: ChildStdin, jobs: mpsc::Receiver<Job>, asked: mpsc::Sender<Job>) {
    let mut stdin = io::BufWriter::with_capacity(64 * 1024, stdin);
    let mut next = jobs.recv().ok();
    while let Some(job) = next {
        if writeln!(stdin, "{}", job.blob).is_err() || asked.send(job).is_err() {
            return;
        }
        next = match jobs.try_recv() {
            Ok(job) => Some(job),
            Err(mpsc::TryRecvError::Empty) => {
                if stdin.flush().is_err() {
                    return;
                }
                jobs.recv().ok()
            }
            Err(mpsc::TryRecvError::Disconnected) => None,
        };
    }
    // Dropping stdin closes it: cat-file ends after the last answer.
    let _ = stdin.flush();
}

/// The bytes of a ChittyID-shaped token at a hit's line and column.
fn candidate_at(data: &[u8], line: usize, col: usize) -> &[u8] {
    let start = if line <= 1 { 0 } else { memchr::memchr_iter(b'\n', data).nth(line - 2).map_or(0, |i| i + 1) };
    let from = (start + col - 1).min(data.len());
    &data[from..(from + super::SHAPE_PREFIX.len() + super::SHAPE_HEX).min(data.len())]
}

/// The hits to report: for each value and path, the blob of the earliest
/// commit (in the walk's parents-first order) that has it there, with
/// every place that blob holds it. Sorted oldest commit first.
fn first_introductions(found: Vec<Found>) -> Vec<Found> {
    let mut first: HashMap<(&What, &str), u32> = HashMap::new();
    for f in &found {
        let at = first.entry((&f.what, f.hit.file.as_str())).or_insert(f.commit);
        *at = (*at).min(f.commit);
    }
    let keep: Vec<bool> = found.iter().map(|f| first[&(&f.what, f.hit.file.as_str())] == f.commit).collect();
    let mut hits: Vec<Found> = found.into_iter().zip(keep).filter(|(_, keep)| *keep).map(|(f, _)| f).collect();
    hits.sort_by(|a, b| (a.commit, &a.hit, &a.blob).cmp(&(b.commit, &b.hit, &b.blob)));
    hits
}

/// The author dates of the commits with hits: one `git log --no-walk`.
fn author_dates<'a>(
    repo: &Path,
    commits: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, String>, HistoryError> {
    let mut wanted: Vec<&str> = commits.collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut log = git(repo)
        .args(["log", "--no-walk=unsorted", "--stdin", "--format=%H %aI"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(HistoryError::NoGit)?;
    let mut stdin = log.stdin.take().expect("piped");
    let input: String = wanted.iter().map(|c| format!("{c}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = log.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(HistoryError::Git {
            what: "git log --no-walk",
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(c, d)| (c.to_string(), d.to_string())))
        .collect())
}

/// A buffered reader of git's output whose buffer is zeroed when dropped:
/// blob contents pass through it.
struct Pipe<R> {
    inner: R,
    buf: zeroize::Zeroizing<Vec<u8>>,
    pos: usize,
    end: usize,
}

impl<R: Read> Pipe<R> {
    fn new(inner: R) -> Self {
        Pipe { inner, buf: zeroize::Zeroizing::new(vec![0; 256 * 1024]), pos: 0, end: 0 }
    }

    /// Refills the buffer if it is used up; false at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = loop {
                match self.inner.read(&mut self.buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    read => break read?,
                }
            };
        }
        Ok(self.end > 0)
    }

    /// The next line without its newline; false at the end of the stream.
    fn line(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        out.clear();
        loop {
            if !self.fill()? {
                return Ok(!out.is_empty());
            }
            let available = &self.buf[self.pos..self.end];
            if let Some(i) = memchr::memchr(b'\n', available) {
                out.extend_from_slice(&available[..i]);
                self.pos += i + 1;
                return Ok(true);
            }
            out.extend_from_slice(available);
            self.pos = self.end;
        }
    }

    /// Exactly `out.len()` bytes.
    fn exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let buffered = (self.end - self.pos).min(out.len());
        out[..buffered].copy_from_slice(&self.buf[self.pos..self.pos + buffered]);
        self.pos += buffered;
        self.inner.read_exact(&mut out[buffered..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Stage;

    fn hit(file: &str, line: usize, token: &str) -> Hit {
        Hit {
            file: file.into(),
            line,
            col: 1,
            token: Some(token.into()),
            version: Some(1),
            stage: Some(Stage::Current),
            kind: "known-value",
        }
    }

    fn found(commit: u32, what: What, hit: Hit) -> Found {
        Found { commit, what, blob: format!("blob-of-{commit}"), hit }
    }

    #[test]
    fn a_value_at_a_path_is_reported_at_its_first_commit_only() {
        let a = What::Known("A".into(), 1);
        let found = vec![
            // Seen by the readers in any order: commit 5's blob first.
            found(5, a.clone(), hit("x.env", 3, "A")),
            found(2, a.clone(), hit("x.env", 1, "A")),
            found(2, a.clone(), hit("x.env", 7, "A")),
            found(9, a.clone(), hit("y.env", 1, "A")),
            found(5, What::Known("B".into(), 2), hit("x.env", 4, "B")),
        ];
        let got: Vec<(u32, String, usize)> =
            first_introductions(found).into_iter().map(|f| (f.commit, f.hit.file, f.hit.line)).collect();
        assert_eq!(
            got,
            [(2, "x.env".into(), 1), (2, "x.env".into(), 7), (5, "x.env".into(), 4), (9, "y.env".into(), 1)]
        );
    }

    #[test]
    fn the_candidate_is_read_at_its_line_and_column() {
        let data = b"one\ntwo mcp_auth_0123456789abcdef0123456789abcdef x\n";
        assert_eq!(candidate_at(data, 2, 5), b"mcp_auth_0123456789abcdef0123456789abcdef");
        assert_eq!(candidate_at(b"mcp_auth_0", 1, 1), b"mcp_auth_0");
    }

    #[test]
    fn the_pipe_reads_lines_and_exact_lengths_across_its_buffer() {
        let mut input = b"7 blob 5\nhello\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 300_000));
        input.extend(b"\nlast");
        let mut pipe = Pipe::new(&input[..]);
        let mut line = Vec::new();
        assert!(pipe.line(&mut line).unwrap());
        assert_eq!(line, b"7 blob 5");
        let mut body = vec![0; 6];
        pipe.exact(&mut body).unwrap();
        assert_eq!(body, b"hello\n");
        let mut big = vec![0; 300_001];
        pipe.exact(&mut big).unwrap();
        assert!(big[..300_000].iter().all(|&b| b == b'x') && big[300_000] == b'\n');
        assert!(pipe.line(&mut line).unwrap());
        assert_eq!(line, b"last");
        assert!(!pipe.line(&mut line).unwrap());
    }
}
