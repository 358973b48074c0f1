//! `ci init`: write a ready GitHub Actions workflow — `check` on every push
//! and pull request (no identity needed), `sync --check` as a pre-deploy gate,
//! and a scheduled `rotate --due` that commits the registry.

use std::path::PathBuf;

use super::{Globals, Hinted, exit, shown};
use crate::credentials::{self, Need};
use crate::fsutil;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write .github/workflows/chitty-secrets.yml, with exactly the
    /// credentials the policies need, and list the secrets to create.
    Init(InitArgs),
    /// Before any service call: name every environment variable a job needs
    /// and lacks, and the repository secret that should provide it.
    Doctor(DoctorArgs),
}

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// The job: `check` (needs nothing), `gate` (sync --check --verify) or `rotate`.
    #[arg(long = "for", value_enum, default_value = "rotate")]
    pub job: Job,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Check,
    Gate,
    Rotate,
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Where to write the workflow.
    #[arg(long, default_value = ".github/workflows/chitty-secrets.yml")]
    pub output: PathBuf,
    /// The branch deploys run from (the pre-deploy gate runs on pushes to it).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// When scheduled rotation runs (cron, UTC).
    #[arg(long, default_value = "23 5 * * *")]
    pub cron: String,
    /// How the workflow installs chitty-secrets: a shell command (default:
    /// the composite action below when this binary comes from a release,
    /// else `cargo install --git` of this version's tag, which compiles).
    #[arg(long, conflicts_with = "action", value_name = "CMD")]
    pub install: Option<String>,
    /// Install with this repository's composite action (a release binary,
    /// checksum-verified and cached; no compiling), pinned by commit: e.g.
    /// chittyos/chitty-secrets@<commit SHA>. Default: the commit a release
    /// binary was built from.
    #[arg(long, value_name = "OWNER/REPO@SHA")]
    pub action: Option<String>,
    /// The release the action installs.
    #[arg(long, default_value = concat!("v", env!("CARGO_PKG_VERSION")), value_name = "TAG")]
    pub version: String,
    /// The branch is protected: the scheduled job pushes the registry to a
    /// new branch and opens a pull request with `gh` instead of pushing.
    #[arg(long)]
    pub pull_request: bool,
    /// Overwrite an existing workflow.
    #[arg(long)]
    pub force: bool,
}

pub fn run(g: &Globals<'_>, command: &Command) -> anyhow::Result<u8> {
    match command {
        Command::Init(args) => init(g, args),
        Command::Doctor(args) => doctor(g, args),
    }
}

/// What a job's command needs from the environment: the identity (except
/// `check`), the remote targets' credentials, and for `rotate` the
/// issuers' too.
fn needs_of(policy: &crate::policy::Policy, job: Job) -> Vec<Need> {
    if job == Job::Check {
        return Vec::new();
    }
    let mut needs = vec![Need {
        any_of: vec![crate::env_vars::IDENTITY.to_string()],
        used_by: vec!["reading the registry's values".into()],
        for_targets: false,
    }];
    needs.extend(credentials::needed(policy, &[]).into_iter().filter(|n| job == Job::Rotate || n.for_targets));
    needs
}

fn doctor(g: &Globals<'_>, args: &DoctorArgs) -> anyhow::Result<u8> {
    let policy = g.policy()?;
    let needs = needs_of(&policy, args.job);
    let missing = credentials::missing(&needs, credentials::env_is_set);
    for need in &missing {
        let secret = credentials::secret_name(&need.any_of[0]);
        let message = format!("{}; set the repository secret {secret} (`gh secret set {secret}`)", need.unset());
        eprintln!("error: {message}");
        super::actions::annotate(&super::actions::Annotation {
            kind: "error",
            title: "chitty-secrets ci doctor",
            file: None,
            line: None,
            col: None,
            message: &message,
        });
    }
    if missing.is_empty() {
        println!(
            "every variable this job needs is set ({})",
            needs.iter().map(Need::names).collect::<Vec<_>>().join(", ")
        );
        Ok(exit::OK)
    } else {
        Ok(exit::FAILURE)
    }
}

fn init(g: &Globals<'_>, args: &InitArgs) -> anyhow::Result<u8> {
    if args.output.exists() && !args.force {
        return Err(
            Hinted::new(format!("{} already exists", args.output.display()), "pass --force to overwrite it").into()
        );
    }
    // The workflow runs at the repository root: paths relative to here.
    let located = g.located()?;
    let policy = g.policy()?;
    let text = workflow(args, &policy, &super::relative(&located.policies), &super::relative(&located.registry));
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    fsutil::write_atomic(&args.output, text.as_bytes())?;
    println!("wrote {}", shown(&args.output));
    if let Install::Command(command) = install_of(args, BUILT_FROM)
        && args.install.is_none()
    {
        println!(
            "note: this chitty-secrets was not built by the release workflow, so the jobs install it with `{command}` (compiling on every run); pass --action OWNER/chitty-secrets@<commit SHA> to install a checksum-verified release binary instead"
        );
    }
    println!("next: make a key for CI and give it to the repository as the secret CHITTY_SECRETS_IDENTITY:");
    println!("  age-keygen -o ci-key.txt && chitty-secrets keys add \"$(age-keygen -y ci-key.txt)\" --name ci");
    println!("  gh secret set CHITTY_SECRETS_IDENTITY < ci-key.txt && shred -u ci-key.txt");
    println!(
        "  gh secret set {} --body \"$(chitty-secrets trust pin)\"   # a runner remembers no registry: this pins yours",
        crate::env_vars::REGISTRY_ID
    );
    // The identity's secret was named above.
    let others: Vec<String> = needs_of(&policy, Job::Rotate)
        .iter()
        .map(|n| credentials::secret_name(&n.any_of[0]))
        .filter(|secret| secret != crate::env_vars::IDENTITY)
        .collect();
    if !others.is_empty() {
        println!("and the secrets the policies need (values never in argv: each reads stdin):");
        for name in others {
            println!("  gh secret set {name}");
        }
    }
    Ok(exit::OK)
}

/// `NAME: ${{ secrets.SECRET }}` lines for a step's `env:`, indented.
fn env_lines(needs: &[Need], indent: &str) -> String {
    needs
        .iter()
        .map(|n| format!("{indent}{}: ${{{{ secrets.{} }}}}\n", n.any_of[0], credentials::secret_name(&n.any_of[0])))
        .collect()
}

/// The commit this binary was built from: the release workflow sets it, so
/// a released `chitty-secrets ci init` pins the install action to the very
/// commit its binaries come from.
const BUILT_FROM: Option<&str> = option_env!("CHITTY_SECRETS_COMMIT");

/// How the jobs get chitty-secrets.
#[derive(Debug, PartialEq, Eq)]
enum Install {
    /// `uses:` this repository's composite action at a commit.
    Action(String),
    /// `run:` a shell command.
    Command(String),
}

/// `--action`, else `--install`, else the action at the commit this binary
/// was built from, else `cargo install` from this version's tag (the crate
/// is not on crates.io; this compiles, on every run).
fn install_of(args: &InitArgs, built_from: Option<&str>) -> Install {
    if let Some(action) = &args.action {
        return Install::Action(action.clone());
    }
    if let Some(command) = &args.install {
        return Install::Command(command.clone());
    }
    let repository = env!("CARGO_PKG_REPOSITORY");
    let released = built_from.filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
    match (released, repository.trim_end_matches('/').strip_prefix("https://github.com/")) {
        (Some(sha), Some(owner_repo)) => Install::Action(format!("{owner_repo}@{sha}")),
        _ => {
            Install::Command(format!("cargo install --locked --git {repository} --tag {} chitty-secrets", args.version))
        }
    }
}

/// actions/checkout, pinned to a commit (zizmor: unpinned actions can change
/// under a workflow that holds secrets).
const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";

/// The workflow text. Every `chitty-secrets` line in it is a command this
/// binary parses (a test holds it to that). Secrets reach only the steps
/// that use them; no `${{ }}` expression is ever inside a `run:` script.
pub fn workflow(
    args: &InitArgs,
    policy: &crate::policy::Policy,
    policies: &std::path::Path,
    registry: &std::path::Path,
) -> String {
    let (branch, cron) = (&args.branch, &args.cron);
    let install = match install_of(args, BUILT_FROM) {
        Install::Action(action) => {
            format!("uses: {action} # {}\n        with:\n          version: {}", args.version, args.version)
        }
        Install::Command(command) => format!("run: {command}"),
    };
    let dirs = format!("--policies {} --registry {}", policies.display(), registry.display());
    // A runner remembers no registry: this secret (what `trust status`
    // shows; not secret itself, but every tool reads a secret) names the
    // one whose key file the jobs accept. Unset, it is empty and ignored.
    let registry_id = format!("          {0}: ${{{{ secrets.{0} }}}}\n", crate::env_vars::REGISTRY_ID);
    let gate_env = env_lines(&needs_of(policy, Job::Gate), "          ") + &registry_id;
    let rotate_env = env_lines(&needs_of(policy, Job::Rotate), "          ") + &registry_id;
    let commit_step = commit_step(registry, args.pull_request);
    let rotate_permissions =
        if args.pull_request { "contents: write\n      pull-requests: write" } else { "contents: write" };
    format!(
        r#"# Written by `chitty-secrets ci init`. Repository secrets it reads:
#   CHITTY_SECRETS_IDENTITY   the CI runner's age key (a recipient of the registry)
#   CHITTY_SECRETS_REGISTRY_ID the registry's id (`chitty-secrets trust status`):
#                             the jobs accept no other registry key;
# and those the policies need (`chitty-secrets ci init` listed them;
# `chitty-secrets ci doctor` names any that is missing).
name: chitty-secrets

on:
  push:
  pull_request:
  schedule:
    - cron: "{cron}"
  workflow_dispatch:

permissions: {{}}

jobs:
  check:
    # Offline and free: no identity and zero service calls, so it is safe on
    # pull requests from forks and costs no ID-service quota.
    if: github.event_name == 'push' || github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - name: Install chitty-secrets
        {install}
      - name: Check for placeholders, expiry, due rotations and drift
        run: chitty-secrets {dirs} check

  predeploy:
    # The pre-deploy gate: every target holds the current value; remote
    # targets are listed once each, so a hand edit or deletion fails it.
    if: github.event_name == 'push' && github.ref == 'refs/heads/{branch}'
    needs: check
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - name: Install chitty-secrets
        {install}
      - name: Every credential the gate needs is here
        env:
{gate_env}        run: chitty-secrets {dirs} ci doctor --for gate
      - name: Targets hold the current values
        env:
{gate_env}        run: chitty-secrets {dirs} sync --check --verify

  rotate:
    # Scheduled rotation of whatever the policies say is due. A run that
    # stops half-way leaves the rotation pending in the registry, which is
    # committed anyway, and the next run resumes it.
    if: github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
    timeout-minutes: 60
    concurrency:
      group: chitty-secrets-rotate
      cancel-in-progress: false
    permissions:
      {rotate_permissions}
    steps:
      - uses: {CHECKOUT}
        with:
          # This job pushes the registry.
          persist-credentials: true # zizmor: ignore[artipacked]
      - name: Install chitty-secrets
        {install}
      - name: Every credential rotation needs is here
        env:
{rotate_env}        run: chitty-secrets {dirs} ci doctor --for rotate
      - name: Rotate what is due
        # Stops starting writes after 50 minutes (GitHub allows ~500 writes
        # an hour); exit 4 means the next scheduled run goes on from there.
        env:
{rotate_env}        run: chitty-secrets {dirs} rotate --due --max-duration 50m
{commit_step}"#,
    )
}

/// The scheduled job's last step: commit the registry (even after a
/// failure: a pending rotation must be kept) and push it, with a bounded
/// rebase-and-retry when the branch moved; or, for a protected branch,
/// push a branch of its own and open a pull request.
fn commit_step(registry: &std::path::Path, pull_request: bool) -> String {
    let common = format!(
        r#"      - name: Commit the registry
        if: always()
        env:
          REGISTRY: {registry}
"#,
        registry = registry.display()
    );
    let script = if pull_request {
        r#"          GH_TOKEN: ${{ github.token }}
          RUN_ID: ${{ github.run_id }}
        run: |
          git config user.name "chitty-secrets"
          git config user.email "chitty-secrets@users.noreply.github.com"
          git add "$REGISTRY"
          git diff --cached --quiet && exit 0
          branch="chitty-secrets/rotation-$RUN_ID"
          git switch -c "$branch"
          git commit -m "chitty-secrets: scheduled rotation"
          git push origin "$branch"
          gh pr create --fill --head "$branch"
"#
    } else {
        r#"        run: |
          git config user.name "chitty-secrets"
          git config user.email "chitty-secrets@users.noreply.github.com"
          git add "$REGISTRY"
          git diff --cached --quiet && exit 0
          git commit -m "chitty-secrets: scheduled rotation"
          # The branch may have moved during the run: rebase and retry. A
          # token rotated on both sides keeps one side's metadata whole; the
          # other's value is recorded by the next run (nothing minted is lost).
          git config merge.chitty-secrets.driver "chitty-secrets trust merge-file %O %A %B %P"
          for attempt in 1 2 3; do
            git push && exit 0
            git pull --rebase --quiet || exit 1
          done
          exit 1
"#
    };
    format!("{common}{script}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        init: InitArgs,
    }

    fn args(argv: &[&str]) -> InitArgs {
        Args::parse_from(std::iter::once("ci-init").chain(argv.iter().copied())).init
    }

    /// A release binary pins the action to its own commit; a local build
    /// falls back to compiling this version's tag; flags win.
    #[test]
    fn the_install_is_the_action_at_the_commit_a_release_was_built_from() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(install_of(&args(&[]), Some(sha)), Install::Action(format!("chittyos/chitty-secrets@{sha}")));
        let version = concat!("v", env!("CARGO_PKG_VERSION"));
        assert_eq!(
            install_of(&args(&[]), None),
            Install::Command(format!(
                "cargo install --locked --git https://github.com/chittyos/chitty-secrets --tag {version} chitty-secrets"
            ))
        );
        assert!(matches!(install_of(&args(&[]), Some("not-a-sha")), Install::Command(_)));
        assert_eq!(
            install_of(&args(&["--install", "make install"]), Some(sha)),
            Install::Command("make install".into())
        );
        assert_eq!(install_of(&args(&["--action", "a/b@c"]), None), Install::Action("a/b@c".into()));
    }
}
