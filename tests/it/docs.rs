//! The book in docs/ (issue 26): its tutorial runs as written, and every
//! link in it, and from the README into it, resolves.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::BIN;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn book() -> PathBuf {
    root().join("docs/src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every ```sh block of a page, in order, as one script: what CI runs
/// (.ci/run reads the blocks the same way: a line that is exactly ```sh
/// opens one, a line that is exactly ``` closes it).
fn sh_blocks(page: &str) -> String {
    let mut script = String::new();
    let mut inside = false;
    for line in page.lines() {
        match (inside, line) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, _) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(!inside, "an ```sh block is never closed");
    script
}

/// The tutorial, block after block, in a fresh folder with a HOME of its
/// own and only the binary (as `chitty-secrets` on PATH): each command it
/// shows passes, and each one it says fails fails as it says.
#[test]
fn the_tutorial_runs_as_written() {
    let script = sh_blocks(&read(&book().join("tutorial.md")));
    assert!(script.lines().count() > 30, "the tutorial's commands: {script}");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("chitty-secrets")).unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-x", "-c", &script])
        .current_dir(&work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path().join("home"))
        .env("XDG_CONFIG_HOME", dir.path().join("home/.config"))
        .env("CHITTY_SECRETS_NO_KEYRING", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n--- stderr (bash -x) ---\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the tutorial failed:\n{all}");
    // What the tutorial says happens, happens: the placeholder is found,
    // refused, replaced; the gate fails on the hand edit; check asks nobody.
    for said in [
        "error[placeholder-in-target] app/.env:2: CHITTY_ID_TOKEN",
        "check found problems: exit 3",
        "0 imported, 2 refused",
        "nothing imported: exit 1",
        "promoted v1 to current",
        "delivered: 2/2 up to date",
        "(CHITTY_API_KEY differs from the registry)",
        "drift found (exit 3)",
        "nothing to do",
        "mint a new version (v1 is",
        "\"service_calls\": 0,",
        "0 errors, 0 warnings, 0 info; 0 service calls",
        "info[not-on-this-machine] app/.env",
    ] {
        assert!(stdout.contains(said), "the tutorial's output lacks `{said}`:\n{all}");
    }
    let project = work.join("incident");
    let workflow = read(&project.join(".github/workflows/chitty-secrets.yml"));
    assert!(workflow.contains("rotate --due") && workflow.contains("sync --check --verify"), "{workflow}");
    let env = read(&project.join("app/.env"));
    assert!(!env.contains("YOUR_TOKEN_HERE_REPLACE_ME") && env.contains("PORT=8080"), "{env}");
}

/// The heading ids mdBook gives a page (its `normalize_id`): lower case,
/// letters, digits, `-` and `_` kept, spaces made `-`, the rest dropped.
fn anchors(page: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut fenced = false;
    for line in page.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#').trim();
        ids.push(
            text.chars()
                .filter_map(|c| match c {
                    c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c.to_ascii_lowercase()),
                    c if c.is_whitespace() => Some('-'),
                    _ => None,
                })
                .collect(),
        );
    }
    ids
}

/// Every Markdown link target of a page (`](target)`), outside fenced code.
fn links(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    found
}

fn pages(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pages(&path, into);
        } else if path.extension().is_some_and(|e| e == "md") {
            into.push(path);
        }
    }
}

/// Checks one link from `from`: a file that exists, and a heading of it
/// when the link names one. Outside links are left alone.
fn check_link(from: &Path, target: &str, broken: &mut Vec<String>) {
    if target.contains("://") || target.starts_with("mailto:") {
        return;
    }
    let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
    let path = if file.is_empty() { from.to_path_buf() } else { from.parent().unwrap().join(file) };
    if !path.exists() {
        broken.push(format!("{}: {target} (no {})", from.display(), path.display()));
        return;
    }
    if !anchor.is_empty()
        && path.extension().is_some_and(|e| e == "md")
        && !anchors(&read(&path)).iter().any(|a| a == anchor)
    {
        broken.push(format!("{}: {target} (no heading #{anchor} in {})", from.display(), path.display()));
    }
}

/// SUMMARY.md lists every page of the book, and every link in the book,
/// and every link from the README into it, leads to a file that exists
/// (and to a heading of it, where it names one).
#[test]
fn the_books_links_resolve_and_its_summary_lists_every_page() {
    let src = book();
    let summary_path = src.join("SUMMARY.md");
    let summary = read(&summary_path);
    let listed: Vec<PathBuf> = links(&summary).iter().map(|l| src.join(l.split('#').next().unwrap())).collect();
    let mut all = Vec::new();
    pages(&src, &mut all);
    all.sort();
    let unlisted: Vec<_> = all.iter().filter(|p| **p != summary_path && !listed.contains(p)).collect();
    assert!(unlisted.is_empty(), "pages SUMMARY.md does not list: {unlisted:?}");
    assert!(all.len() > 10, "{all:?}");

    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &all {
        for target in links(&read(page)) {
            check_link(page, &target, &mut broken);
            checked += 1;
        }
    }
    let readme = root().join("README.md");
    let into_book: Vec<String> = links(&read(&readme)).into_iter().filter(|l| l.starts_with("docs/")).collect();
    for target in &into_book {
        check_link(&readme, target, &mut broken);
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "{checked} links checked");
    assert!(read(&root().join("docs/book.toml")).contains("src = \"src\""));
}
