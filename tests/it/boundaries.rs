//! Truth at the boundaries (issue 23): what the tool writes is real, and
//! only where it may write.

use crate::common::*;

/// `--now` is for looking ahead: a command that writes the registry
/// refuses it (before this, `rotate --now 2027-…` saved future times, and
/// `status` then showed a version "-289d old"); reading commands take it.
#[test]
fn now_is_refused_on_every_command_that_writes_and_taken_by_every_one_that_reads() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let before = snapshot(&p.path(".chitty-secrets"));
    let later = "2027-06-01T00:00:00Z";
    let writes: &[&[&str]] = &[
        &["rotate"],
        &["rotate", "--abort", "SESSION_KEY"],
        &["sync"],
        &["set", "VENDOR_API_KEY"],
        &["import", "app/.env"],
        &["keys", "rekey"],
        &["upgrade"],
        &["trust", "accept", ".chitty-secrets/recipients"],
        &["init"],
    ];
    for args in writes {
        let out = p.run(&[&["--now", later][..], args].concat());
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(text(&out).contains("is for looking ahead"), "{args:?}: {}", text(&out));
    }
    assert_eq!(snapshot(&p.path(".chitty-secrets")), before, "nothing was written");
    let reads: &[&[&str]] =
        &[&["status"], &["plan"], &["rotate", "--dry-run"], &["sync", "--check"], &["get", "SESSION_KEY"]];
    for args in reads {
        let out = p.run(&[&["--now", later][..], args].concat());
        assert!(!text(&out).contains("is for looking ahead"), "{args:?}: {}", text(&out));
    }
    assert_eq!(snapshot(&p.path(".chitty-secrets")), before, "nothing was written by a read");
}

/// A .env target that is a file the tool or git owns is a policy error
/// with file:line:col, before anything is written: the project file (a
/// value there broke every command after it), anything under `.git/` (git's
/// config, hooks), and git's own files in the work tree.
#[test]
fn a_target_on_the_project_file_or_gits_own_files_is_refused() {
    for path in ["chitty-secrets.toml", ".git/config", ".git/hooks/pre-commit", "app/.gitignore", ".gitattributes"] {
        let policy = format!(
            "[issuers.local]\nkind = \"random\"\n\n[tokens.T]\nissuer = \"local\"\n\n[[tokens.T.targets]]\nkind = \"dotenv\"\npath = \"{path}\"\n"
        );
        let p = Project::new(&policy);
        std::fs::create_dir_all(p.path(".git/hooks")).unwrap();
        std::fs::write(p.path(".git/config"), "[core]\n").unwrap();
        std::fs::write(p.path("chitty-secrets.toml"), "policies = \"policies\"\nregistry = \".chitty-secrets\"\n")
            .unwrap();
        let out = p.run(&["policy", "check"]);
        assert_eq!(code(&out), 2, "{path}: {}", text(&out));
        assert!(text(&out).contains("policies/main.toml:"), "{path}: file:line:col: {}", text(&out));
        assert!(
            text(&out).contains("git's own file") || text(&out).contains("the project file"),
            "{path}: {}",
            text(&out)
        );
        assert_eq!(std::fs::read_to_string(p.path(".git/config")).unwrap(), "[core]\n");
    }
}

/// `init` with a broken policy said "next: rotate", which then failed: it
/// now sets up the registry and the identity, then names every problem in
/// the policies (file:line:col) and exits 2.
#[test]
fn init_with_a_broken_policy_names_its_problems_instead_of_saying_rotate() {
    let p = Project::new("[tokens.T]\nissuer = \"nope\"\n");
    let out = p.run(&["init"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("policies/main.toml:2:10") && !text(&out).contains("next: "), "{}", text(&out));
    assert!(p.path(".chitty-secrets/key.age").exists() && p.identity_file().exists());
}
