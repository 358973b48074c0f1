//! `ci init`: write a ready GitHub Actions workflow — `check` on every push
//! and pull request (no identity needed), `sync --check` as a pre-deploy gate,
//! and a scheduled `rotate --due` that commits the registry. With
//! `--github-app` the jobs that reach GitHub's secrets mint a GitHub App
//! installation token first, narrowed to what the policies' targets need,
//! instead of reading a personal token from a secret.

use std::collections::BTreeMap;
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
    #[command(flatten)]
    pub app: AppArgs,
}

/// The repository secret `ci init --github-app` reads the App's client ID from.
pub const APP_CLIENT_ID: &str = "CHITTY_SECRETS_APP_CLIENT_ID";
/// The repository secret `ci init --github-app` reads the App's private key from.
pub const APP_PRIVATE_KEY: &str = "CHITTY_SECRETS_APP_PRIVATE_KEY";

/// A GitHub App instead of a personal token (for `ci init` and `ci doctor`).
#[derive(clap::Args, Debug, Clone)]
pub struct AppArgs {
    /// The jobs that reach GitHub's secrets mint a GitHub App installation
    /// token (actions/create-github-app-token, pinned), narrowed to the
    /// permissions the policies' targets need, instead of reading a personal
    /// token from the secret CHITTY_SECRETS_GITHUB_TOKEN.
    #[arg(long)]
    pub github_app: bool,
    /// The repository secret holding the App's client ID (not secret itself,
    /// but kept with everything else the jobs read, which `ci doctor` checks).
    #[arg(long, value_name = "NAME", default_value = APP_CLIENT_ID, requires = "github_app")]
    pub app_client_id_secret: String,
    /// The repository secret holding the App's private key (PEM).
    #[arg(long, value_name = "NAME", default_value = APP_PRIVATE_KEY, requires = "github_app")]
    pub app_key_secret: String,
}

impl AppArgs {
    /// The names checked as GitHub allows them (they go into `${{ }}`).
    fn check(&self) -> Result<(), Hinted> {
        for (flag, name) in
            [("--app-client-id-secret", &self.app_client_id_secret), ("--app-key-secret", &self.app_key_secret)]
        {
            if let Some(why) = crate::policy::github_name_problem(name) {
                return Err(Hinted::new(
                    format!("{flag} `{name}` is not a name GitHub allows: {why}"),
                    "use letters, digits and `_`, not starting with a digit or GITHUB_",
                ));
            }
        }
        Ok(())
    }

    /// The `ci doctor` flags that name these, when they are not the defaults.
    fn doctor_flags(&self) -> String {
        let mut flags = String::from(" --github-app");
        if self.app_client_id_secret != APP_CLIENT_ID {
            flags += &format!(" --app-client-id-secret {}", self.app_client_id_secret);
        }
        if self.app_key_secret != APP_PRIVATE_KEY {
            flags += &format!(" --app-key-secret {}", self.app_key_secret);
        }
        flags
    }

    /// How to set the repository secret that provides `var` (values are
    /// read from stdin, never put in argv).
    fn set_command(&self, var: &str) -> String {
        if self.github_app && var == self.app_client_id_secret {
            format!("the repository secret {var} (`gh secret set {var}`, and paste the App's client ID)")
        } else if self.github_app && var == self.app_key_secret {
            format!("the repository secret {var} (`gh secret set {var} < the-app.private-key.pem`)")
        } else {
            let secret = credentials::secret_name(var);
            format!("the repository secret {secret} (`gh secret set {secret}`)")
        }
    }
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
    #[command(flatten)]
    pub app: AppArgs,
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

/// [`needs_of`], where with a GitHub App the GitHub token's need becomes
/// the App's client ID and private key: the job mints the token itself.
fn job_needs(policy: &crate::policy::Policy, job: Job, app: &AppArgs) -> Vec<Need> {
    let needs = needs_of(policy, job);
    if !app.github_app {
        return needs;
    }
    needs
        .into_iter()
        .flat_map(|n| {
            if n.is_github_token() {
                vec![
                    Need { any_of: vec![app.app_client_id_secret.clone()], ..n.clone() },
                    Need { any_of: vec![app.app_key_secret.clone()], ..n },
                ]
            } else {
                vec![n]
            }
        })
        .collect()
}

fn doctor(g: &Globals<'_>, args: &DoctorArgs) -> anyhow::Result<u8> {
    args.app.check()?;
    let policy = g.policy()?;
    let needs = job_needs(&policy, args.job, &args.app);
    let missing = credentials::missing(&needs, credentials::env_is_set);
    for need in &missing {
        let message = format!("{}; set {}", need.unset(), args.app.set_command(&need.any_of[0]));
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
    if args.app.github_app {
        let permissions = app_permissions(&policy, args.job);
        if !permissions.is_empty() {
            let on = installation(&policy).ok().flatten().map(|i| format!(" on {}", i.owner)).unwrap_or_default();
            println!(
                "the GitHub App token this job mints asks for {} (the App's installation{on} must have them)",
                describe(&permissions)
            );
        }
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
    args.app.check()?;
    // The workflow runs at the repository root: paths relative to here.
    let located = g.located()?;
    let policy = g.policy()?;
    let app = if args.app.github_app { AppToken::plan(&policy, &args.app)? } else { None };
    let text =
        workflow(args, &policy, app.as_ref(), &super::relative(&located.policies), &super::relative(&located.registry));
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
    if args.app.github_app && app.is_none() {
        println!("note: no policy delivers to GitHub, so no job needs a GitHub token and none mints one");
    }
    println!("next: make a key for CI and give it to the repository as the secret CHITTY_SECRETS_IDENTITY:");
    println!("  age-keygen -o ci-key.txt && chitty-secrets keys add \"$(age-keygen -y ci-key.txt)\" --name ci");
    println!("  gh secret set CHITTY_SECRETS_IDENTITY < ci-key.txt && shred -u ci-key.txt");
    println!(
        "  gh secret set {} --body \"$(chitty-secrets trust pin)\"   # a runner remembers no registry: this pins yours",
        crate::env_vars::REGISTRY_ID
    );
    // The identity's secret was named above; the App's below.
    let others: Vec<String> = needs_of(&policy, Job::Rotate)
        .iter()
        .filter(|n| app.is_none() || !n.is_github_token())
        .map(|n| credentials::secret_name(&n.any_of[0]))
        .filter(|secret| secret != crate::env_vars::IDENTITY)
        .collect();
    if !others.is_empty() {
        println!("and the secrets the policies need (values never in argv: each reads stdin):");
        for name in others {
            println!("  gh secret set {name}");
        }
    }
    if let Some(app) = &app {
        let mut setup = app_permissions(&policy, Job::Rotate);
        setup.insert(AppPermission::SecretScanningAlerts, Access::Write);
        println!(
            "and the GitHub App the jobs mint their token from, installed on {} with {} (Secret scanning alerts is for `leaks`; leave it out if you do not run it with the App):",
            app.installation.owner,
            describe(&setup)
        );
        println!("  gh secret set {}   # paste the App's client ID", app.args.app_client_id_secret);
        println!("  gh secret set {} < the-app.private-key.pem", app.args.app_key_secret);
        let undeclared: Vec<String> = setup.keys().filter(|p| p.input().is_none()).map(|p| p.input_name()).collect();
        if !undeclared.is_empty() {
            println!(
                "note: actions/create-github-app-token does not declare {} (GitHub's OpenAPI list of installation-token permissions lacks it): the runner warns of an unexpected input, and the action sends it all the same",
                undeclared.join(", ")
            );
        }
    }
    Ok(exit::OK)
}

/// A GitHub App permission, as GitHub's "Permissions required for GitHub
/// Apps" names it. GitHub facts: what each kind of GitHub target needs is
/// in [`app_permissions`] (verified against GitHub's docs data,
/// `server-to-server-permissions.json`, in github/docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum AppPermission {
    Metadata,
    Secrets,
    Environments,
    Administration,
    DependabotSecrets,
    CodespacesSecrets,
    OrganizationSecrets,
    OrganizationDependabotSecrets,
    OrganizationCodespacesSecrets,
    SecretScanningAlerts,
}

impl AppPermission {
    /// As the installation-token API spells it (its `permissions` body).
    fn api_name(self) -> &'static str {
        match self {
            AppPermission::Metadata => "metadata",
            AppPermission::Secrets => "secrets",
            AppPermission::Environments => "environments",
            AppPermission::Administration => "administration",
            AppPermission::DependabotSecrets => "dependabot_secrets",
            AppPermission::CodespacesSecrets => "codespaces_secrets",
            AppPermission::OrganizationSecrets => "organization_secrets",
            AppPermission::OrganizationDependabotSecrets => "organization_dependabot_secrets",
            AppPermission::OrganizationCodespacesSecrets => "organization_codespaces_secrets",
            AppPermission::SecretScanningAlerts => "secret_scanning_alerts",
        }
    }

    /// As the App's settings page shows it.
    fn title(self) -> &'static str {
        match self {
            AppPermission::Metadata => "repository Metadata",
            AppPermission::Secrets => "repository Secrets",
            AppPermission::Environments => "repository Environments",
            AppPermission::Administration => "repository Administration",
            AppPermission::DependabotSecrets => "repository Dependabot secrets",
            AppPermission::CodespacesSecrets => "repository Codespaces secrets",
            AppPermission::OrganizationSecrets => "organization Secrets",
            AppPermission::OrganizationDependabotSecrets => "organization Dependabot secrets",
            AppPermission::OrganizationCodespacesSecrets => "organization Codespaces secrets",
            AppPermission::SecretScanningAlerts => "repository Secret scanning alerts",
        }
    }

    /// The action's `permission-…` input for it.
    fn input_name(self) -> String {
        format!("permission-{}", self.api_name().replace('_', "-"))
    }

    /// Whether the pinned action declares that input. Its inputs follow
    /// GitHub's OpenAPI list of installation-token permissions
    /// (`app-permissions`), which lacks the Codespaces secrets and the
    /// organization's Dependabot and Codespaces secrets; it forwards every
    /// `permission-*` input all the same (`getPermissionsFromInputs`).
    fn input(self) -> Option<String> {
        let declared = !matches!(
            self,
            AppPermission::CodespacesSecrets
                | AppPermission::OrganizationDependabotSecrets
                | AppPermission::OrganizationCodespacesSecrets
        );
        declared.then(|| self.input_name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Access {
    Read,
    Write,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// `repository Secrets: write, repository Metadata: read`.
fn describe(permissions: &BTreeMap<AppPermission, Access>) -> String {
    permissions.iter().map(|(p, a)| format!("{}: {}", p.title(), a.as_str())).collect::<Vec<_>>().join(", ")
}

/// The policies' GitHub targets.
fn github_targets(policy: &crate::policy::Policy) -> impl Iterator<Item = &crate::policy::GithubSpec> {
    policy.tokens.values().flat_map(|t| &t.targets).filter_map(|t| match &t.spec {
        crate::policy::TargetSpec::Github(g) => Some(g),
        _ => None,
    })
}

/// What `job` does with the policies' GitHub targets, as App permissions:
/// the gate lists (read), rotation writes, and only rotation creates a
/// missing environment (Administration: write). Codespaces secrets need
/// write even to be listed. Metadata (read), which every App has, goes
/// with any repository the token reaches.
fn app_permissions(policy: &crate::policy::Policy, job: Job) -> BTreeMap<AppPermission, Access> {
    use crate::policy::{GithubApp, GithubScope};
    let mut out = BTreeMap::new();
    if job == Job::Check {
        return out;
    }
    let access = if job == Job::Rotate { Access::Write } else { Access::Read };
    for g in github_targets(policy) {
        let (permission, access) = match (&g.scope, g.app) {
            (GithubScope::Environment { .. }, _) => (AppPermission::Environments, access),
            (GithubScope::Repo { .. }, GithubApp::Actions) => (AppPermission::Secrets, access),
            (GithubScope::Repo { .. }, GithubApp::Dependabot) => (AppPermission::DependabotSecrets, access),
            (GithubScope::Repo { .. }, GithubApp::Codespaces) => (AppPermission::CodespacesSecrets, Access::Write),
            (GithubScope::Org { .. }, GithubApp::Actions) => (AppPermission::OrganizationSecrets, access),
            (GithubScope::Org { .. }, GithubApp::Dependabot) => (AppPermission::OrganizationDependabotSecrets, access),
            (GithubScope::Org { .. }, GithubApp::Codespaces) => (AppPermission::OrganizationCodespacesSecrets, access),
        };
        let entry = out.entry(permission).or_insert(access);
        *entry = (*entry).max(access);
        if g.create_environment && job == Job::Rotate {
            out.insert(AppPermission::Administration, Access::Write);
        }
        // Reaching a repository (or looking one up by name) takes Metadata.
        let named_repositories = match &g.scope {
            GithubScope::Org { selected_repositories, .. } => {
                selected_repositories.as_ref().is_some_and(|r| !r.is_empty())
            }
            _ => true,
        };
        if named_repositories {
            out.insert(AppPermission::Metadata, Access::Read);
        }
    }
    out
}

/// Whose installation the token is minted from, and which of its
/// repositories it reaches (none: organization permissions only).
#[derive(Debug, PartialEq, Eq)]
struct Installation {
    owner: String,
    repositories: Vec<String>,
}

/// The one installation the policies' GitHub targets are under (an App
/// installation token is for one account), and exactly the repositories
/// they name: those delivered to, and those an organization secret is
/// shared with by name (looked up among the repositories the token sees).
/// `None`: no policy delivers to GitHub.
fn installation(policy: &crate::policy::Policy) -> Result<Option<Installation>, Hinted> {
    use crate::policy::GithubScope;
    let mut owners: Vec<String> = Vec::new();
    let mut repositories: Vec<String> = Vec::new();
    for g in github_targets(policy) {
        let (owner, repos): (&String, Vec<&str>) = match &g.scope {
            GithubScope::Repo { owner, repo } | GithubScope::Environment { owner, repo, .. } => (owner, vec![repo]),
            GithubScope::Org { org, selected_repositories, .. } => {
                (org, selected_repositories.iter().flatten().map(|r| r.rsplit('/').next().unwrap_or(r)).collect())
            }
        };
        if let Some(bad) = std::iter::once(owner.as_str())
            .chain(repos.iter().copied())
            .find(|n| !crate::policy::is_github_account_or_repo(n))
        {
            return Err(Hinted::new(
                format!("`{bad}` is not a GitHub account or repository name"),
                "GitHub names are letters, digits, `-`, `_` and `.`",
            ));
        }
        if !owners.iter().any(|o| o.eq_ignore_ascii_case(owner)) {
            owners.push(owner.clone());
        }
        for repo in repos {
            if !repositories.iter().any(|r| r.eq_ignore_ascii_case(repo)) {
                repositories.push(repo.to_string());
            }
        }
    }
    match owners.len() {
        0 => Ok(None),
        1 => {
            repositories.sort_by_key(|r| r.to_ascii_lowercase());
            Ok(Some(Installation { owner: owners.remove(0), repositories }))
        }
        n => Err(Hinted::new(
            format!(
                "the policies deliver to GitHub under {n} accounts ({}), and a GitHub App installation token is for one",
                owners.join(", ")
            ),
            "write one workflow per account (`chitty-secrets --policies DIR ci init --github-app --output FILE`, DIR holding that account's policies), or use a personal token: `ci init` without --github-app",
        )),
    }
}

/// The App token the gate and rotation jobs mint.
struct AppToken<'a> {
    args: &'a AppArgs,
    installation: Installation,
}

impl<'a> AppToken<'a> {
    /// `None` when no policy delivers to GitHub.
    fn plan(policy: &crate::policy::Policy, args: &'a AppArgs) -> Result<Option<Self>, Hinted> {
        Ok(installation(policy)?.map(|installation| AppToken { args, installation }))
    }

    /// The step that mints the token for `job`, narrowed to what the job
    /// does with the policies' targets.
    fn step(&self, policy: &crate::policy::Policy, job: Job) -> String {
        let permissions = app_permissions(policy, job);
        let Installation { owner, repositories } = &self.installation;
        // Organization permissions only (no repository): zizmor accepts an
        // installation-wide `owner` then, but knows only the permissions the
        // action declares as organization ones.
        let org_only_ignore = if repositories.is_empty() && permissions.keys().any(|p| p.input().is_none()) {
            " # zizmor: ignore[github-app] organization permissions only"
        } else {
            ""
        };
        let mut step = format!(
            r#"      - name: Mint a GitHub App installation token
        # An hour's token, narrowed to what this job does with the policies'
        # targets, and revoked when the job ends.
        id: app-token
        uses: {CREATE_APP_TOKEN}
        with:
          client-id: ${{{{ secrets.{} }}}}
          private-key: ${{{{ secrets.{} }}}}
          owner: {owner}{org_only_ignore}
"#,
            self.args.app_client_id_secret, self.args.app_key_secret
        );
        if !repositories.is_empty() {
            step += &format!("          repositories: {}\n", repositories.join(","));
        }
        let undeclared: Vec<&str> = permissions.keys().filter(|p| p.input().is_none()).map(|p| p.api_name()).collect();
        if !undeclared.is_empty() {
            step += &format!(
                "          # {}: not among the action's declared inputs (GitHub's\n          # OpenAPI list lacks it); the action sends it, the runner warns.\n",
                undeclared.join(", ")
            );
        }
        for (permission, access) in permissions {
            step += &format!("          {}: {}\n", permission.input_name(), access.as_str());
        }
        step
    }
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

/// actions/create-github-app-token, pinned to the commit its v3.1.1 tag
/// names (v3 runs on Node 24: GitHub's hosted runners, or a self-hosted
/// runner 2.327.1 or newer). Its `client-id` input replaced `app-id` in
/// v3.1.0.
const CREATE_APP_TOKEN: &str = "actions/create-github-app-token@1b10c78c7865c340bc4f6099eb2f838309f1e8c3 # v3.1.1";

/// A job's credentials, as pieces of its steps: the doctor step's `env:`
/// and extra flags, the App token's step (or nothing), and the `env:` of
/// the steps that run commands.
struct JobCredentials {
    doctor_env: String,
    doctor_flags: String,
    app_step: String,
    run_env: String,
}

/// Each secret reaches only the steps that use it. With an App, the doctor
/// checks the App's client ID and key (before the token is minted) and the
/// commands get the minted token as GITHUB_TOKEN, never the key.
fn job_credentials(policy: &crate::policy::Policy, job: Job, app: Option<&AppToken<'_>>) -> JobCredentials {
    const INDENT: &str = "          ";
    // A runner remembers no registry: this secret (what `trust status`
    // shows; not secret itself, but every tool reads a secret) names the
    // one whose key file the jobs accept. Unset, it is empty and ignored.
    let registry_id = format!("{INDENT}{0}: ${{{{ secrets.{0} }}}}\n", crate::env_vars::REGISTRY_ID);
    let needs = needs_of(policy, job);
    match app {
        Some(app) if needs.iter().any(Need::is_github_token) => {
            let others: Vec<Need> = needs.iter().filter(|n| !n.is_github_token()).cloned().collect();
            let base = env_lines(&others, INDENT);
            let (id, key) = (&app.args.app_client_id_secret, &app.args.app_key_secret);
            JobCredentials {
                doctor_env: format!(
                    "{base}{INDENT}{id}: ${{{{ secrets.{id} }}}}\n{INDENT}{key}: ${{{{ secrets.{key} }}}}\n{registry_id}"
                ),
                doctor_flags: app.args.doctor_flags(),
                app_step: app.step(policy, job),
                run_env: format!("{base}{INDENT}GITHUB_TOKEN: ${{{{ steps.app-token.outputs.token }}}}\n{registry_id}"),
            }
        }
        _ => {
            let env = env_lines(&needs, INDENT) + &registry_id;
            JobCredentials {
                doctor_env: env.clone(),
                doctor_flags: String::new(),
                app_step: String::new(),
                run_env: env,
            }
        }
    }
}

/// The workflow text. Every `chitty-secrets` line in it is a command this
/// binary parses (a test holds it to that). Secrets reach only the steps
/// that use them; no `${{ }}` expression is ever inside a `run:` script.
fn workflow(
    args: &InitArgs,
    policy: &crate::policy::Policy,
    app: Option<&AppToken<'_>>,
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
    let gate = job_credentials(policy, Job::Gate, app);
    let rotate = job_credentials(policy, Job::Rotate, app);
    let app_header = match app {
        Some(app) => format!(
            "#   {} and {}\n#                             a GitHub App's client ID and private key: the\n#                             jobs that reach GitHub mint a token from them;\n",
            app.args.app_client_id_secret, app.args.app_key_secret
        ),
        None => String::new(),
    };
    let commit_step = commit_step(registry, args.pull_request);
    let rotate_permissions =
        if args.pull_request { "contents: write\n      pull-requests: write" } else { "contents: write" };
    let (gate_doctor_env, gate_doctor_flags, gate_app_step, gate_run_env) =
        (gate.doctor_env, gate.doctor_flags, gate.app_step, gate.run_env);
    let (rotate_doctor_env, rotate_doctor_flags, rotate_app_step, rotate_run_env) =
        (rotate.doctor_env, rotate.doctor_flags, rotate.app_step, rotate.run_env);
    format!(
        r#"# Written by `chitty-secrets ci init`. Repository secrets it reads:
#   CHITTY_SECRETS_IDENTITY   the CI runner's age key (a recipient of the registry)
#   CHITTY_SECRETS_REGISTRY_ID the registry's id (`chitty-secrets trust status`):
#                             the jobs accept no other registry key;
{app_header}# and those the policies need (`chitty-secrets ci init` listed them;
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
{gate_doctor_env}        run: chitty-secrets {dirs} ci doctor --for gate{gate_doctor_flags}
{gate_app_step}      - name: Targets hold the current values
        env:
{gate_run_env}        run: chitty-secrets {dirs} sync --check --verify

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
          # This job pushes the registry, with the run's own token
          # (contents: write, this repository only; never a GitHub App's).
          persist-credentials: true # zizmor: ignore[artipacked]
      - name: Install chitty-secrets
        {install}
      - name: Every credential rotation needs is here
        env:
{rotate_doctor_env}        run: chitty-secrets {dirs} ci doctor --for rotate{rotate_doctor_flags}
{rotate_app_step}      - name: Rotate what is due
        # Stops starting writes after 50 minutes (GitHub allows ~500 writes
        # an hour); exit 4 means the next scheduled run goes on from there.
        env:
{rotate_run_env}        run: chitty-secrets {dirs} rotate --due --max-duration 50m
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

    /// The `permission-*` inputs actions/create-github-app-token declares
    /// at v3.1.1 (its action.yml), among those a target can need: each
    /// permission the workflow asks for is declared there, or known not to be.
    #[test]
    fn the_permission_inputs_are_the_pinned_actions() {
        const DECLARED: &[&str] = &[
            "permission-administration",
            "permission-dependabot-secrets",
            "permission-environments",
            "permission-metadata",
            "permission-organization-secrets",
            "permission-secret-scanning-alerts",
            "permission-secrets",
        ];
        use AppPermission::*;
        for p in [
            Metadata,
            Secrets,
            Environments,
            Administration,
            DependabotSecrets,
            CodespacesSecrets,
            OrganizationSecrets,
            OrganizationDependabotSecrets,
            OrganizationCodespacesSecrets,
            SecretScanningAlerts,
        ] {
            assert_eq!(p.input().is_some(), DECLARED.contains(&p.input_name().as_str()), "{p:?}");
        }
        assert_eq!(OrganizationDependabotSecrets.input_name(), "permission-organization-dependabot-secrets");
        assert!(
            CREATE_APP_TOKEN.starts_with("actions/create-github-app-token@1b10c78c7865c340bc4f6099eb2f838309f1e8c3 ")
        );
    }
}
