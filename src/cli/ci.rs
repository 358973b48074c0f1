//! `ci init`: write a ready GitHub Actions workflow — `check` on every push
//! and pull request (no identity needed), `sync --check` as a pre-deploy gate,
//! and a scheduled `rotate --due` that commits the registry.

use std::path::PathBuf;

use super::{Globals, Hinted, exit, shown};
use crate::fsutil;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write .github/workflows/chitty-secrets.yml.
    Init(InitArgs),
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
    /// How the workflow installs chitty-secrets.
    #[arg(long, default_value = "cargo install --locked chitty-secrets")]
    pub install: String,
    /// Overwrite an existing workflow.
    #[arg(long)]
    pub force: bool,
}

pub fn run(g: &Globals<'_>, command: &Command) -> anyhow::Result<u8> {
    let Command::Init(args) = command;
    if args.output.exists() && !args.force {
        return Err(
            Hinted::new(format!("{} already exists", args.output.display()), "pass --force to overwrite it").into()
        );
    }
    // The workflow runs at the repository root: paths relative to here.
    let located = g.located()?;
    let text = workflow(args, &super::relative(&located.policies), &super::relative(&located.registry));
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    fsutil::write_atomic(&args.output, text.as_bytes())?;
    println!("wrote {}", shown(&args.output));
    println!("next: make a key for CI and give it to the repository as the secret CHITTY_SECRETS_IDENTITY:");
    println!("  age-keygen -o ci-key.txt && chitty-secrets keys add \"$(age-keygen -y ci-key.txt)\" --name ci");
    println!("  gh secret set CHITTY_SECRETS_IDENTITY < ci-key.txt && shred -u ci-key.txt");
    Ok(exit::OK)
}

/// The workflow text. Every `chitty-secrets` line in it is a command this
/// binary parses (a test holds it to that).
pub fn workflow(args: &InitArgs, policies: &std::path::Path, registry: &std::path::Path) -> String {
    let (install, branch, cron) = (&args.install, &args.branch, &args.cron);
    let dirs = format!("--policies {} --registry {}", policies.display(), registry.display());
    format!(
        r#"# Written by `chitty-secrets ci init`.
# Needs one repository secret for the jobs that read values:
#   CHITTY_SECRETS_IDENTITY   the CI runner's age key (a recipient of the registry)
name: chitty-secrets

on:
  push:
  pull_request:
  schedule:
    - cron: "{cron}"
  workflow_dispatch:

jobs:
  check:
    # Offline and free: no identity and zero service calls, so it is safe on
    # pull requests from forks and costs no ID-service quota.
    if: github.event_name == 'push' || github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@v4
      - name: Install chitty-secrets
        run: {install}
      - name: Check for placeholders, expiry, due rotations and drift
        run: chitty-secrets {dirs} check

  predeploy:
    # The pre-deploy gate: every target holds the current values.
    if: github.event_name == 'push' && github.ref == 'refs/heads/{branch}'
    needs: check
    runs-on: ubuntu-latest
    permissions:
      contents: read
    env:
      CHITTY_SECRETS_IDENTITY: ${{{{ secrets.CHITTY_SECRETS_IDENTITY }}}}
    steps:
      - uses: actions/checkout@v4
      - name: Install chitty-secrets
        run: {install}
      - name: Targets hold the current values
        run: chitty-secrets {dirs} sync --check

  rotate:
    # Scheduled rotation of whatever the policies say is due. A run that
    # stops half-way leaves the rotation pending in the registry, which is
    # committed anyway, and the next run resumes it.
    if: github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
    timeout-minutes: 60
    concurrency: chitty-secrets-rotate
    permissions:
      contents: write
    env:
      CHITTY_SECRETS_IDENTITY: ${{{{ secrets.CHITTY_SECRETS_IDENTITY }}}}
    steps:
      - uses: actions/checkout@v4
      - name: Install chitty-secrets
        run: {install}
      - name: Rotate what is due
        # Stops starting writes after 50 minutes (GitHub allows ~500 writes
        # an hour); exit 4 means the next scheduled run goes on from there.
        run: chitty-secrets {dirs} rotate --due --max-duration 50m
      - name: Commit the registry
        if: always()
        run: |
          git config user.name "chitty-secrets"
          git config user.email "chitty-secrets@users.noreply.github.com"
          git add {registry}
          git diff --cached --quiet || git commit -m "chitty-secrets: scheduled rotation"
          git push
"#,
        registry = registry.display()
    )
}
