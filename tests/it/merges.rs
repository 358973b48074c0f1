//! Git is a concurrent medium: two clones (the scheduled CI job and a
//! laptop) rotate the same ChittyID token and meet in a merge or a rebase,
//! resolved any way git allows. Afterwards every token the issuer minted is
//! tracked by the registry or revoked, and every target holds the value
//! the registry says is current — with real git and the fake services.

use std::path::Path;
use std::process::Command;

use crate::chitty::Services;
use crate::common::*;

/// Runs git in `dir`; panics with git's own words when it fails (unless
/// `may_fail`). Returns whether it succeeded.
fn git_in(dir: &Path, args: &[&str], may_fail: bool) -> bool {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_EDITOR", "true")
        .env("HOME", dir.join("home"))
        .output()
        .unwrap();
    assert!(may_fail || out.status.success(), "git {args:?}: {}", text(&out));
    if !out.status.success() {
        eprintln!("git {args:?}: {}", text(&out));
    }
    out.status.success()
}

fn git(p: &Project, args: &[&str]) {
    git_in(p.dir.path(), args, false);
}

/// Two clones of one repository holding one registry, with one member's
/// identity on both, and an origin to push to.
struct Clones {
    s: Services,
    a: Project,
    b: Project,
    _origin: tempfile::TempDir,
}

const META: &str = ".chitty-secrets/tokens/CHITTY_ID_TOKEN.toml";

impl Clones {
    /// `driver`: whether the clones have the merge driver `init` sets up.
    fn new(driver: bool) -> Self {
        let s = Services::start();
        let policy = s.policy("0s");
        let a = Project::new(&policy);
        let origin = tempfile::tempdir().unwrap();
        git_in(origin.path(), &["init", "-q", "--bare", "-b", "main"], false);
        git(&a, &["init", "-q", "-b", "main"]);
        std::fs::write(a.path(".gitignore"), "home/\nconfig/\napp/\n").unwrap();
        a.ok(&["init"]);
        s.ok(&a, &["rotate"]);
        git(&a, &["add", "-A"]);
        git(&a, &["commit", "-qm", "first rotation"]);
        git(&a, &["remote", "add", "origin", origin.path().to_str().unwrap()]);
        git(&a, &["push", "-q", "origin", "main"]);

        let b = Project::new(&policy);
        std::fs::remove_dir_all(b.path("policies")).unwrap();
        git(&b, &["init", "-q", "-b", "main"]);
        git(&b, &["remote", "add", "origin", origin.path().to_str().unwrap()]);
        git(&b, &["fetch", "-q", "origin"]);
        git(&b, &["reset", "-q", "--hard", "origin/main"]);
        git(&b, &["branch", "-q", "--set-upstream-to", "origin/main"]);
        std::fs::create_dir_all(b.identity_file().parent().unwrap()).unwrap();
        std::fs::copy(a.identity_file(), b.identity_file()).unwrap();
        b.ok(&["init"]);
        for p in [&a, &b] {
            if !driver {
                // A clone where nobody ran `init`: git merges the text.
                git(p, &["config", "--remove-section", "merge.chitty-secrets"]);
            }
        }
        Clones { s, a, b, _origin: origin }
    }

    /// Rotates the token in `p` and commits.
    fn rotate(&self, p: &Project, message: &str) {
        self.s.ok(p, &["rotate", "CHITTY_ID_TOKEN"]);
        git(p, &["add", "-A"]);
        git(p, &["commit", "-qm", message]);
    }

    /// Every token the issuer minted that is neither revoked there nor
    /// named by a live version (current, previous, pending) of `p`'s registry.
    fn untracked_live(&self, p: &Project) -> Vec<String> {
        let meta: toml::Table = toml::from_str(&p.read(META)).unwrap();
        let live: Vec<&str> = meta["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| ["current", "previous", "pending"].contains(&v["stage"].as_str().unwrap()))
            .filter_map(|v| v.get("token_id").and_then(|t| t.as_str()))
            .collect();
        self.s.id.tokens().into_iter().filter(|t| !t.revoked && !live.contains(&t.id.as_str())).map(|t| t.id).collect()
    }

    /// After whatever resolution: a member's `sync` records the other
    /// side's value and gives every target the current one; the next
    /// `rotate --due` retires what the merge left; then nothing minted is
    /// live and untracked, every target holds the current value, and every
    /// file is a member's.
    fn settle_and_check(&self, p: &Project, case: &str) {
        let out = self.s.run(p, &["check"]);
        assert!(text(&out).contains("untracked-value"), "{case}: the lost record is reported: {}", text(&out));
        let out = self.s.ok(p, &["sync"]);
        assert!(out.contains("minted on another branch") || !self.untracked_live(p).is_empty(), "{case}: {out}");
        self.s.ok(p, &["rotate", "--due"]);
        assert_eq!(self.untracked_live(p), Vec::<String>::new(), "{case}: a live token nothing tracks");
        let current = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
        for (place, held) in self.s.held(p) {
            assert_eq!(held.as_deref(), Some(current.as_str()), "{case}: {place}");
        }
        let live: Vec<_> = self.s.id.tokens().into_iter().filter(|t| !t.revoked).collect();
        assert_eq!(live.len(), 1, "{case}: only the current token is live: {live:?}");
        assert_eq!(live[0].token, current, "{case}");
        p.ok(&["trust", "status"]);
        p.ok(&["audit", "verify"]);
        let out = self.s.run(p, &["check"]);
        assert!(
            !text(&out).contains("untracked-value") && !text(&out).contains("merge-unsettled"),
            "{case}: {}",
            text(&out)
        );
    }
}

/// Merge and rebase, each resolved taking our side or theirs whole (as
/// `git checkout --ours|--theirs` does on the conflicted metadata): the
/// losing side's token is recorded and revoked, never left live.
#[test]
fn two_rotations_meet_in_a_merge_or_rebase_resolved_either_way_and_nothing_minted_is_lost() {
    for (how, side) in [("merge", "--ours"), ("merge", "--theirs"), ("rebase", "--ours"), ("rebase", "--theirs")] {
        let case = format!("{how} {side}");
        let c = Clones::new(false);
        c.rotate(&c.a, "rotation on a");
        git(&c.a, &["push", "-q", "origin", "main"]);
        c.rotate(&c.b, "rotation on b");
        let pull = if how == "merge" { "--no-rebase" } else { "--rebase" };
        assert!(!git_in(c.b.dir.path(), &["pull", "-q", pull, "origin", "main"], true), "{case}: a conflict");

        // On the conflicted tree, check names the file and a git command
        // that works there; that command then resolves it.
        let out = c.b.run(&["check"]);
        let said = text(&out);
        assert!(
            said.contains("merge-unfinished") && said.contains(&format!("git checkout --ours -- {META}")),
            "{case}: {said}"
        );
        git(&c.b, &["checkout", side, "--", META]);
        git(&c.b, &["add", META]);
        if how == "merge" {
            git(&c.b, &["commit", "-q", "--no-edit"]);
        } else {
            git(&c.b, &["rebase", "--continue"]);
        }
        c.settle_and_check(&c.b, &case);
    }
}

/// With the merge driver `init` sets up, neither a merge nor a rebase
/// stops for the registry: no hand edit at all.
#[test]
fn with_the_merge_driver_a_merge_and_a_rebase_need_no_hand_edit() {
    for how in ["--no-rebase", "--rebase"] {
        let c = Clones::new(true);
        c.rotate(&c.a, "rotation on a");
        git(&c.a, &["push", "-q", "origin", "main"]);
        c.rotate(&c.b, "rotation on b");
        git(&c.b, &["pull", "-q", how, "origin", "main"]);
        c.settle_and_check(&c.b, how);
    }
}

/// Metadata mixed line by line from both sides (a hand resolution of the
/// conflict markers) is no member's file: nothing is delivered or revoked
/// from it, and the error says how to take a side whole.
#[test]
fn metadata_mixed_from_both_sides_is_refused_before_any_delivery_or_revoke() {
    let c = Clones::new(false);
    c.rotate(&c.a, "rotation on a");
    git(&c.a, &["push", "-q", "origin", "main"]);
    c.rotate(&c.b, "rotation on b");
    assert!(!git_in(c.b.dir.path(), &["pull", "-q", "--no-rebase", "origin", "main"], true));
    // Their content under our MAC line: what a person keeping the first
    // hunk from one side and the rest from the other ends up with (it is
    // well-formed metadata; only its MAC tells).
    assert!(c.b.read(META).contains("<<<<<<<"), "a conflict in the metadata");
    let side = |stage: &str| {
        let out = Command::new("git")
            .args(["show", &format!(":{stage}:{META}")])
            .current_dir(c.b.dir.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (ours, theirs) = (side("2"), side("3"));
    let mixed = format!("{}\n{}", ours.lines().next().unwrap(), theirs.split_once('\n').unwrap().1);
    std::fs::write(c.b.path(META), &mixed).unwrap();
    git(&c.b, &["add", META]);
    git(&c.b, &["commit", "-q", "--no-edit"]);
    let before = c.s.held(&c.b);
    let revoked_before: Vec<bool> = c.s.id.tokens().iter().map(|t| t.revoked).collect();
    for args in [&["sync"][..], &["rotate", "--due"], &["rotate", "CHITTY_ID_TOKEN"]] {
        let out = c.s.run(&c.b, args);
        assert_ne!(code(&out), 0, "{args:?}: {}", text(&out));
        assert!(text(&out).contains("was not written by a member"), "{args:?}: {}", text(&out));
    }
    assert_eq!(c.s.held(&c.b), before, "nothing delivered");
    let revoked_after: Vec<bool> = c.s.id.tokens().iter().map(|t| t.revoked).collect();
    assert_eq!(revoked_after, revoked_before, "nothing revoked");
    // Taking a side whole from git repairs it.
    git(&c.b, &["checkout", "HEAD^1", "--", META]);
    c.settle_and_check(&c.b, "mixed, then ours from git");
}

/// The model: random interleavings of rotations on two clones, pushes, and
/// pulls by merge or rebase (with the driver, or resolved by hand either
/// way), then both clones converge. Invariant: every token the issuer ever
/// minted is tracked by the registry or revoked, and the targets hold what
/// the registry says is current.
#[test]
fn random_interleavings_of_rotations_merges_and_rebases_lose_no_token() {
    // A small deterministic generator: the same cases on every run.
    let mut seed: u64 = 0x5eed_c0de;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for case in 0..4 {
        let driver = case % 2 == 0;
        let c = Clones::new(driver);
        let mut log = Vec::new();
        for _ in 0..6 {
            let (me, other) = if next(2) == 0 { (&c.a, "a") } else { (&c.b, "b") };
            match next(3) {
                0 | 1 => {
                    c.rotate(me, &format!("rotation on {other}"));
                    log.push(format!("rotate {other}"));
                }
                _ => {
                    let how = if next(2) == 0 { "--no-rebase" } else { "--rebase" };
                    let side = if next(2) == 0 { "--ours" } else { "--theirs" };
                    log.push(format!("pull {how} on {other} ({side})"));
                    pull(me, how, side);
                    git(me, &["push", "-q", "origin", "main"]);
                }
            }
        }
        // Converge: each pulls what the other pushed, and pushes.
        for p in [&c.a, &c.b, &c.a] {
            pull(p, "--rebase", "--theirs");
            git(p, &["push", "-q", "origin", "main"]);
        }
        let label = format!("case {case} (driver: {driver}): {log:?}");
        let p = &c.a;
        c.s.ok(p, &["sync"]);
        c.s.ok(p, &["rotate", "--due"]);
        assert_eq!(c.untracked_live(p), Vec::<String>::new(), "{label}");
        let current = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
        for (place, held) in c.s.held(p) {
            assert_eq!(held.as_deref(), Some(current.as_str()), "{label}: {place}");
        }
        assert!(c.s.id.is_valid(&current), "{label}");
    }
}

/// Pulls into `p`, resolving a conflict on the metadata by taking `side` whole.
fn pull(p: &Project, how: &str, side: &str) {
    if git_in(p.dir.path(), &["pull", "-q", how, "origin", "main"], true) {
        return;
    }
    git(p, &["checkout", side, "--", META]);
    git(p, &["add", META]);
    if how == "--rebase" {
        // A rebase may stop more than once (one stop a replayed commit).
        while !git_in(p.dir.path(), &["rebase", "--continue"], true) {
            git(p, &["checkout", side, "--", META]);
            git(p, &["add", META]);
        }
    } else {
        git(p, &["commit", "-q", "--no-edit"]);
    }
}
