//! `scan --history`: known values in a git repository's history, found in
//! real repositories built with the git CLI — added then deleted, on a side
//! branch, inside a merge — each attributed to the commit that introduced
//! it, and never printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// SESSION_KEY (random issuer, no overlap): v1 retired, v2 current.
/// SVC_TOKEN (a command issuer that can revoke): v1 revoked, v2 current.
struct Fixture {
    p: Project,
    current: String,
    retired: String,
    revoked: String,
}

impl Fixture {
    fn new() -> Fixture {
        let p = Project::new("");
        let issuer = counting_command_issuer(&p);
        std::fs::write(
            p.path("policies/main.toml"),
            format!(
                "{issuer}\n\
                 [tokens.SVC_TOKEN]\nissuer = \"cmd\"\n[[tokens.SVC_TOKEN.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"\n\n\
                 [tokens.SESSION_KEY]\nissuer = \"random\"\n[[tokens.SESSION_KEY.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"\n",
            ),
        )
        .unwrap();
        p.ok(&["init"]);
        p.ok(&["rotate"]);
        p.ok(&["rotate"]);
        let get = |args: &[&str]| p.ok(args).trim_end().to_string();
        let (current, retired, revoked) = (
            get(&["get", "SESSION_KEY"]),
            get(&["get", "SESSION_KEY", "--which", "1"]),
            get(&["get", "SVC_TOKEN", "--which", "1"]),
        );
        let meta = p.read(".chitty-secrets/tokens/SVC_TOKEN.toml");
        assert!(meta.contains("stage = \"revoked\""), "SVC_TOKEN v1 is revoked:\n{meta}");
        Fixture { p, current, retired, revoked }
    }

    /// Runs `chitty-secrets ARGS` and checks that no value reached its output.
    fn scan(&self, args: &[&str]) -> Output {
        let out = self.p.run(args);
        let said = text(&out);
        for value in [&self.current, &self.retired, &self.revoked] {
            assert!(!said.contains(value.as_str()), "a value was printed:\n{said}");
        }
        out
    }

    fn repo(&self, rel: &str) -> Repo {
        Repo::new(self.p.path(rel))
    }
}

/// A git repository in a folder, with fixed names and dates so that runs agree.
struct Repo {
    dir: PathBuf,
}

impl Repo {
    fn new(dir: PathBuf) -> Repo {
        std::fs::create_dir_all(&dir).unwrap();
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut git = Command::new("git");
        git.args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
            .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z");
        git
    }

    fn git(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Commits everything and returns the commit's full id.
    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

fn short(commit: &str) -> &str {
    &commit[..12]
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON on stdout ({e}):\n{}", text(out)))
}

/// The findings of `scan --history --json` as (commit, file, line, col, token, version, stage).
fn findings(out: &Output) -> Vec<(String, String, u64, u64, String, u64, String)> {
    json(out)["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["commit"].as_str().unwrap().to_string(),
                h["file"].as_str().unwrap().to_string(),
                h["line"].as_u64().unwrap(),
                h["col"].as_u64().unwrap(),
                h["token"].as_str().unwrap_or("").to_string(),
                h["version"].as_u64().unwrap_or(0),
                h["stage"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The main case: a value committed, edited around, then deleted is still in
/// history; it is reported once, at the commit that added it, with the path
/// and line it had there. The JSON names the full commit id.
#[test]
fn a_value_added_then_deleted_is_found_at_the_commit_that_added_it() {
    let f = Fixture::new();
    let repo = f.repo("repo");
    repo.write("README.md", "# app\n");
    let first = repo.commit("first");
    let unknown = "mcp_auth_00112233445566778899aabbccddeeff";
    repo.write("config/app.env", format!("A=1\nSESSION_KEY={}\n# {unknown}\n", f.current));
    repo.write("assets/blob.bin", [b"\0\0".as_slice(), f.current.as_bytes()].concat());
    let added = repo.commit("add config");
    // Edited while it holds the value: a new blob with the value, not a new finding.
    repo.write("config/app.env", format!("A=2\nSESSION_KEY={}\n# {unknown}\nB=3\n", f.current));
    repo.commit("edit config");
    repo.write("config/app.env", "A=2\nSESSION_KEY=\nB=3\n");
    repo.commit("remove the key");

    let out = f.scan(&["scan", "--history", "repo"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let said = text(&out);
    let line = format!("{} config/app.env:2:13: SESSION_KEY v2 (current)", short(&added));
    assert!(said.contains(&line), "{line} in:\n{said}");
    assert_eq!(said.matches("config/app.env:2:13").count(), 1, "one finding, not one per blob:\n{said}");
    let unknown_line = format!("{} config/app.env:3:3: a ChittyID-shaped token", short(&added));
    assert!(said.contains(&unknown_line), "{unknown_line} in:\n{said}");
    assert_eq!(said.matches("ChittyID-shaped").count(), 1, "{said}");
    assert!(!said.contains("blob.bin"), "binary blobs are skipped: {said}");
    assert!(said.contains("2 findings in 4 commits"), "{said}");
    assert!(said.contains("rotate every token found"), "{said}");
    assert!(!said.contains(short(&first)), "{said}");

    let out = f.scan(&["scan", "--history", "--json", "repo"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let report = json(&out);
    let hit = &report["hits"][0];
    let mut keys: Vec<&str> = hit.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["author_date", "blob", "col", "commit", "file", "kind", "line", "stage", "token", "version"],
        "{hit}"
    );
    assert_eq!(hit["commit"], added.as_str());
    assert_eq!(hit["blob"], repo.git(&["rev-parse", &format!("{added}:config/app.env")]).trim());
    assert_eq!(hit["author_date"], "2026-01-02T03:04:05Z");
    assert_eq!(hit["kind"], "known-value");
    assert_eq!(report["hits"][1]["kind"], "unknown-chittyid-token");
    assert_eq!(report["hits"].as_array().unwrap().len(), 2);
    assert_eq!(report["values_searched"], 4);
    let totals = &report["totals"];
    assert_eq!(totals["commits"], 4, "{totals}");
    // README, app.env twice (the third version no longer holds a value but is read), blob.bin.
    assert_eq!(totals["blobs"], 5, "{totals}");
    assert_eq!(totals["binary_skipped"], 1, "{totals}");
}

/// A value committed on a branch that was never merged is in the
/// repository all the same; `--history=main` (only what main reaches) does
/// not see it. The repository is the current folder by default, and a path
/// with spaces comes through whole.
#[test]
fn a_value_on_an_unmerged_side_branch_is_found() {
    let f = Fixture::new();
    let repo = Repo::new(f.p.dir.path().to_path_buf());
    repo.write("src/main.rs", "fn main() {}\n");
    repo.git(&["add", "src"]);
    repo.git(&["commit", "-q", "-m", "first"]);
    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write("notes/leak file.txt", format!("old key:\n\n  {}\n", f.retired));
    repo.git(&["add", "notes"]);
    repo.git(&["commit", "-q", "-m", "on the side"]);
    let side = repo.head();
    repo.git(&["checkout", "-q", "main"]);
    assert!(!f.p.path("notes").exists());

    let out = f.scan(&["scan", "--history"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let out = f.scan(&["scan", "--history", "--json"]);
    assert_eq!(
        findings(&out),
        [(side.clone(), "notes/leak file.txt".into(), 3, 3, "SESSION_KEY".into(), 1, "retired".into())],
        "{}",
        text(&out)
    );
    let out = f.scan(&["scan", "--history=main"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("0 findings in 1 commit "), "{}", text(&out));
}

/// A value that exists only in a merge's conflict resolution is in neither
/// parent: it is attributed to the merge commit. A value the merge only
/// brings over from the branch stays attributed to the branch's commit. A
/// revoked version is found and said to be revoked.
#[test]
fn a_value_introduced_inside_a_merge_is_attributed_to_the_merge() {
    let f = Fixture::new();
    let repo = f.repo("repo");
    repo.write("conf.txt", "name = app\nkey = unset\n");
    repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("conf.txt", "name = app\nkey = from-feature\n");
    repo.write("feature.txt", format!("token: {}\n", f.revoked));
    let feature = repo.commit("feature");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("conf.txt", "name = app\nkey = from-main\n");
    repo.commit("main");
    let merge = repo.command(&["merge", "-q", "feature"]).output().unwrap();
    assert!(!merge.status.success() && text(&merge).contains("CONFLICT"), "a conflict: {}", text(&merge));
    repo.write("conf.txt", format!("name = app\nkey = {}\n", f.current));
    let merged = repo.commit("merge feature, key resolved by hand");
    assert_eq!(repo.git(&["rev-list", "--parents", "-n1", "HEAD"]).split_whitespace().count(), 3, "a merge commit");

    let out = f.scan(&["scan", "--history", "--json", "repo"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let mut got = findings(&out);
    got.sort();
    let mut want = vec![
        (merged.clone(), "conf.txt".to_string(), 2, 7, "SESSION_KEY".to_string(), 2, "current".to_string()),
        (feature.clone(), "feature.txt".to_string(), 1, 8, "SVC_TOKEN".to_string(), 1, "revoked".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "{}", text(&out));
    let out = f.scan(&["scan", "--history", "repo"]);
    assert!(
        text(&out).contains(&format!("{} feature.txt:1:8: SVC_TOKEN v1 (revoked)", short(&feature))),
        "{}",
        text(&out)
    );
}

/// A range searches what its commits brought and nothing older; revisions
/// git does not know, or that look like options, are usage errors.
#[test]
fn a_range_limits_the_search() {
    let f = Fixture::new();
    let repo = f.repo("repo");
    repo.write("old.txt", format!("{}\n", f.retired));
    repo.commit("old leak");
    repo.write("other.txt", "nothing\n");
    repo.commit("release");
    repo.git(&["tag", "v1"]);
    repo.write("new.txt", format!("x {}\n", f.current));
    let new = repo.commit("new leak");

    let all = findings(&f.scan(&["scan", "--history", "--json", "repo"]));
    assert_eq!(all.len(), 2, "{all:?}");
    for range in ["v1..", "v1..main", "main ^v1"] {
        let out = f.scan(&["scan", &format!("--history={range}"), "--json", "repo"]);
        assert_eq!(code(&out), 3, "{range}: {}", text(&out));
        assert_eq!(
            findings(&out),
            [(new.clone(), "new.txt".into(), 1, 3, "SESSION_KEY".into(), 2, "current".into())],
            "{range}"
        );
        assert_eq!(json(&out)["totals"]["commits"], 1, "{range}");
    }
    let out = f.scan(&["scan", "--history=v1~1..v1", "repo"]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    let out = f.scan(&["scan", "--history=nope..main", "repo"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("git cannot read the revisions \"nope..main\""), "{}", text(&out));
    assert!(text(&out).contains("hint: give revisions git knows"), "{}", text(&out));
    let out = f.scan(&["scan", "--history=--output=x", "repo"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("cannot start with '-'"), "{}", text(&out));
    assert!(!repo.path().join("x").exists());
}

/// A blob that a tag points to, not a commit, is searched too, and reported
/// with its id and no commit.
#[test]
fn a_blob_only_a_tag_points_to_is_found_with_no_commit() {
    let f = Fixture::new();
    let repo = f.repo("repo");
    repo.write("a.txt", "clean\n");
    let first = repo.commit("clean");
    repo.write("stray", format!("{}\n", f.current));
    let blob = repo.git(&["hash-object", "-w", "stray"]).trim().to_string();
    std::fs::remove_file(repo.path().join("stray")).unwrap();
    repo.git(&["tag", "-a", "-m", "a blob", "keep-this", &blob]);

    let out = f.scan(&["scan", "--history", "--json", "repo"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["hits"].as_array().unwrap().len(), 1, "{report}");
    let hit = &report["hits"][0];
    assert!(hit["commit"].is_null() && hit["author_date"].is_null(), "{hit}");
    assert_eq!(hit["blob"], blob.as_str());
    assert_eq!((hit["token"].as_str(), hit["line"].as_u64()), (Some("SESSION_KEY"), Some(1)));
    let out = f.scan(&["scan", "--history", "repo"]);
    let said = text(&out);
    assert!(
        said.contains(&format!("(no commit) the blob {blob} a tag points to:1:1: SESSION_KEY v2 (current)")),
        "{said}"
    );
    assert!(!said.contains(short(&first)), "{said}");
}

/// Exact values, so no false positives: a value's prefix, or the value with
/// one character changed, is not a finding.
#[test]
fn near_misses_are_not_findings() {
    let f = Fixture::new();
    let repo = f.repo("repo");
    let prefix = &f.current[..f.current.len() - 1];
    let mut changed = f.revoked.clone().into_bytes();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == b'z' { b'y' } else { b'z' };
    let changed = String::from_utf8(changed).unwrap();
    repo.write("a.txt", format!("{prefix}\n{changed}\n{prefix} {changed}\n"));
    repo.commit("near misses");
    let out = f.scan(&["scan", "--history", "repo"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("0 findings in 1 commit (1 file version"), "{}", text(&out));
    let said = text(&out);
    assert!(!said.contains(prefix) && !said.contains(&changed), "{said}");
}

/// A folder that is not a repository is a usage error with a hint; a
/// repository with no commits has nothing to find.
#[test]
fn no_repository_and_no_history() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.p.path("plain")).unwrap();
    let out = f.scan(&["scan", "--history", "plain"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("plain is not in a git repository"), "{}", text(&out));
    assert!(text(&out).contains("hint: run it inside a git repository or give one"), "{}", text(&out));
    assert!(!text(&out).contains("usage: git"), "{}", text(&out));
    let out = f.scan(&["scan", "--history", "--json", "plain"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(json(&out)["error"].is_object(), "{}", text(&out));

    let out = f.scan(&["scan", "--history", "missing"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("missing does not exist"), "{}", text(&out));
    let out = f.scan(&["scan", "--history", "plain", "missing"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert_eq!(code(&f.scan(&["scan", "--history", "--staged"])), 2);

    f.repo("empty");
    let out = f.scan(&["scan", "--history", "--json", "empty"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json(&out)["hits"].as_array().unwrap().len(), 0);
    assert_eq!(json(&out)["totals"]["commits"], 0);
}
