//! The command line: clap definitions here, one file per command.

pub mod actions;
mod audit;
mod check;
pub mod ci;
pub mod completions;
mod docs;
mod get;
mod import;
mod init;
mod keys;
mod leaks;
mod policy_check;
mod progress;
mod rotate;
mod run;
mod scan;
mod set;
mod status;
pub mod trust;
mod usage;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::engine::{Live, Workspace};
use crate::identity::{self, Identity};
use crate::policy::{self, Dur, Policy};
use crate::project::{self, Located, ProjectFiles};
use crate::registry::Registry;

pub use crate::error::{Hinted, exit};

#[derive(Parser, Debug)]
#[command(
    name = "chitty-secrets",
    version,
    about = "Issue, keep (age-encrypted), deliver and rotate the tokens a platform depends on"
)]
pub struct Cli {
    /// Folder of policy files (*.toml); relative target paths resolve against
    /// its parent. Default: what chitty-secrets.toml (found from here
    /// upwards) names, else ./policies.
    #[arg(long, global = true, help_heading = "Global options", value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// The registry folder. Default: what chitty-secrets.toml names, else
    /// .chitty-secrets beside the policies folder.
    #[arg(long, global = true, help_heading = "Global options", value_name = "DIR")]
    pub registry: Option<PathBuf>,
    /// An age identity file (overrides CHITTY_SECRETS_IDENTITY, the keyring and the config file).
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// How long a writer waits for another one to finish, e.g. 30s or 2m.
    #[arg(long, global = true, help_heading = "Global options", default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Plan as if it were this time (RFC 3339), e.g. to see what is due next month.
    #[arg(long, global = true, help_heading = "Global options", value_name = "TIME", value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// A debug log on stderr: each request (method, URL, status, time,
    /// rate-limit headers, sizes) and each decision; `-vv` for more. Never
    /// a value. Also `CHITTY_SECRETS_LOG=debug`.
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the registry and an identity (or adopt the configured one).
    Init(init::Args),
    /// Validate policies without touching anything.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Versions, stages, ages, expiries and delivery state of every token.
    Status(status::Args),
    /// Print a token's value to stdout.
    Get(get::Args),
    /// Store a new value for a token, read from stdin (never from argv).
    Set(set::Args),
    /// Bootstrap values from an existing .env file (placeholders are refused).
    Import(import::Args),
    /// Staged rotation: mint, deliver, verify, promote, retire.
    Rotate(rotate::RotateArgs),
    /// Pre-deploy: deliver the current values where a target lacks them.
    Sync(rotate::SyncArgs),
    /// What `rotate --due` and `sync` would do.
    Plan(rotate::PlanArgs),
    /// Run a command with current values in its environment.
    Run(run::Args),
    /// Offline findings: placeholders, expiry, due, drift, permissions (zero service calls).
    Check(check::Args),
    /// Find known token values (every version) in files or in git history.
    Scan(scan::Args),
    /// Every place a known value is exposed (files, history, GitHub's
    /// secret-scanning alerts); `--rotate` ends the leaked ones.
    Leaks(leaks::Args),
    /// Who reads each secret (workflows, Workers) and what delivers it: a table, --json or --graph.
    Usage(usage::Args),
    /// Team and CI recipients: who can read the registry.
    Keys {
        #[command(subcommand)]
        command: keys::Command,
    },
    /// Continuous integration: `ci init` writes a GitHub Actions workflow.
    Ci {
        #[command(subcommand)]
        command: ci::Command,
    },
    /// Print the shell completion script to source (it completes commands,
    /// options and the policies' token names).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: audit::Command,
    },
    /// Who wrote the registry: every file is a member's, or refused.
    Trust {
        #[command(subcommand)]
        command: trust::Command,
    },
    /// Move a registry from before authentication to the authenticated format (once, a member).
    Upgrade,
}

impl Cli {
    /// Whether the command writes the registry (or its audit log): such a
    /// command keeps real times, so `--now` is refused on it.
    pub fn writes(&self) -> bool {
        match &self.command {
            Command::Init(_) | Command::Set(_) | Command::Import(_) | Command::Upgrade => true,
            Command::Rotate(a) => !a.dry_run,
            Command::Leaks(a) => a.rotate && !a.dry_run,
            Command::Sync(a) => !a.check,
            Command::Keys { command } => !matches!(command, keys::Command::List),
            Command::Trust { command } => matches!(command, trust::Command::Accept { .. }),
            _ => false,
        }
    }

    /// Whether the command was asked for JSON output: then even an error
    /// is written to stdout as JSON, so a script never reads nothing.
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Command::Status(a) => a.json,
            Command::Rotate(a) => a.json,
            Command::Sync(a) => a.json,
            Command::Plan(a) => a.json,
            Command::Check(a) => a.json,
            Command::Scan(a) => a.json,
            Command::Leaks(a) => a.json,
            Command::Usage(a) => a.json,
            _ => false,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Load and validate every policy file; report every problem.
    Check,
    /// Print the JSON Schema of a policy file (for editors; the repository
    /// keeps a copy at schema/policy.schema.json).
    Schema,
}

/// The commands as `--help` lists them: by what they are for.
const GROUPS: &[(&str, &[&str])] = &[
    ("Set up", &["init", "policy", "keys", "ci", "upgrade"]),
    ("Every day", &["rotate", "sync", "plan", "status", "get", "set", "import", "run"]),
    ("Check", &["check", "scan", "leaks", "usage", "audit", "trust"]),
    ("Shell", &["completions", "man"]),
];

const AFTER_HELP: &str = "\
Examples:
  chitty-secrets init && chitty-secrets rotate  # set up, mint and deliver all
  chitty-secrets sync --check --verify          # pre-deploy gate: exit 3 on drift, hand edits included
  chitty-secrets rotate --due                   # the schedule (daily in CI)
  chitty-secrets check                          # offline: zero service calls
  chitty-secrets set VENDOR_API_KEY < key.txt   # a value issued by hand

Environment:
  CHITTY_SECRETS_IDENTITY        the age identity itself (CI), or
  CHITTY_SECRETS_IDENTITY_FILE   a file holding it
  CHITTY_SECRETS_NO_KEYRING=1    never use the OS keyring
  CHITTY_SECRETS_REGISTRY_ID     accept no other registry key (CI; `trust status` shows it)
  GITHUB_TOKEN, GH_TOKEN         GitHub targets
  CLOUDFLARE_API_TOKEN           Cloudflare targets, with
  CLOUDFLARE_ACCOUNT_ID

Exit codes:
  0 ok, 1 failure, 2 usage or policy error, 3 findings or drift,
  4 left pending (run the same command again to resume)

`chitty-secrets COMMAND --help` for a command's options.";

/// The command line as parsed and as `--help` shows it: commands grouped by
/// purpose, then examples, environment variables and exit codes. (Shell
/// completions and the man page use [`Cli`]'s plain definition.)
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let base = Cli::command();
    let width = GROUPS.iter().flat_map(|(_, names)| names.iter()).map(|n| n.len()).max().unwrap_or(0);
    let mut groups = String::new();
    for (title, names) in GROUPS {
        groups.push_str(&format!("{title}:\n"));
        for name in *names {
            let about = base.find_subcommand(name).and_then(|s| s.get_about()).map(|a| a.to_string());
            groups.push_str(&format!("  {name:<width$}  {}\n", about.unwrap_or_default()));
        }
        groups.push('\n');
    }
    let template = format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}Global options:\n{{options}}{{after-help}}"
    );
    let mut command = base
        .help_template(template)
        .override_usage("chitty-secrets [OPTIONS] <COMMAND>")
        .after_help(AFTER_HELP)
        .disable_help_subcommand(true);
    // Listed above by group: clap's own flat list would repeat them.
    for name in GROUPS.iter().flat_map(|(_, names)| names.iter()) {
        command = command.mut_subcommand(name, |s| s.hide(true));
    }
    command
}

/// `--now`: a date (midnight UTC) or an RFC 3339 time.
fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = text.parse::<DateTime<Utc>>() {
        return Ok(t);
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err("expected a date or an RFC 3339 time, e.g. 2027-03-01 or 2027-03-01T09:00:00Z".into())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let delta = match text.parse::<u64>() {
        Ok(secs) => return Ok(Duration::from_secs(secs)),
        Err(_) => Dur::parse(text)?.0,
    };
    delta.to_std().map_err(|e| e.to_string())
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Some(now) = cli.now
        && cli.writes()
    {
        // A time that is not now must never reach the registry or the audit
        // log: `status` would show versions made in the future.
        let mut refused = Hinted::new(
            format!(
                "--now {} is for looking ahead, and this command writes the registry (which keeps real times)",
                now.to_rfc3339()
            ),
            "use --now with plan, status, check, rotate --dry-run or sync --check; run this command without it",
        );
        refused.code = exit::USAGE;
        return Err(refused.into());
    }
    let ctx = Globals { cli: &cli, located: std::sync::OnceLock::new() };
    match &cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Policy { command: PolicyCommand::Check } => policy_check::run(&ctx),
        Command::Policy { command: PolicyCommand::Schema } => {
            print!("{}", policy::policy_schema_text());
            Ok(exit::OK)
        }
        Command::Status(args) => status::run(&ctx, args),
        Command::Get(args) => get::run(&ctx, args),
        Command::Set(args) => set::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::Rotate(args) => rotate::rotate(&ctx, args).await,
        Command::Sync(args) => rotate::sync(&ctx, args).await,
        Command::Plan(args) => rotate::plan(&ctx, args).await,
        Command::Run(args) => run::run(&ctx, args),
        Command::Check(args) => check::run(&ctx, args).await,
        Command::Scan(args) => scan::run(&ctx, args),
        Command::Leaks(args) => leaks::run(&ctx, args).await,
        Command::Usage(args) => usage::run(&ctx, args),
        Command::Audit { command } => audit::run(&ctx, command),
        Command::Trust { command } => trust::run(&ctx, command),
        Command::Upgrade => trust::upgrade(&ctx),
        Command::Keys { command } => keys::run(&ctx, command),
        Command::Ci { command } => ci::run(&ctx, command),
        Command::Completions { shell } => completions::print(*shell),
        Command::Man => docs::man(),
    }
}

/// What every command gets: the global options and the loaders built on them.
pub struct Globals<'a> {
    pub cli: &'a Cli,
    located: std::sync::OnceLock<Located>,
}

impl Globals<'_> {
    /// The project's policies folder and registry: the flags, else the
    /// project file found from the current folder upwards, else ./policies.
    /// A policies folder named without a registry gets its own project's
    /// registry, never the one of the folder the command runs in.
    pub fn located(&self) -> anyhow::Result<&Located> {
        if let Some(l) = self.located.get() {
            return Ok(l);
        }
        let cwd = std::env::current_dir().context("reading the current folder")?;
        let found = match (&self.cli.policies, &self.cli.registry) {
            (Some(policies), Some(registry)) => {
                Located { policies: cwd.join(policies), registry: cwd.join(registry), file: None }
            }
            (Some(policies), None) => {
                let policies = cwd.join(policies);
                let parent = policies.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.clone());
                let own = project::locate(&parent).ok().filter(|l| {
                    l.policies.canonicalize().ok().is_some_and(|p| policies.canonicalize().ok() == Some(p))
                });
                let registry = own.map_or_else(|| parent.join(".chitty-secrets"), |l| l.registry);
                Located { policies, registry, file: None }
            }
            (None, registry) => {
                let mut found = project::locate(&cwd).map_err(|e| Hinted::new(e.to_string(), e.hint()))?;
                if let Some(r) = registry {
                    found.registry = cwd.join(r);
                }
                found
            }
        };
        // Paths inside the current folder stay relative, for messages
        // (`policies/p.toml:3:7`) and annotations.
        let found = Located { policies: relative(&found.policies), registry: relative(&found.registry), ..found };
        Ok(self.located.get_or_init(|| found))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.cli.now.unwrap_or_else(Utc::now)
    }

    pub fn policy(&self) -> anyhow::Result<Policy> {
        let policy = policy::load(&self.located()?.policies)?;
        policy::check_places(&policy, &self.project_files(&policy))?;
        Ok(policy)
    }

    /// The project, with every file the tool owns: no .env target may
    /// write into one.
    pub fn project_files(&self, policy: &Policy) -> ProjectFiles {
        let mut files = ProjectFiles::new(&policy.root)
            .owning(&self.located().map(|l| l.registry.clone()).unwrap_or_default(), "the registry")
            .owning(&policy.dir, "the policies folder")
            .owning(&policy.root.join(project::PROJECT_FILE), "the project file");
        if let Some(file) = self.located().ok().and_then(|l| l.file.clone()) {
            files = files.owning(&file, "the project file");
        }
        for path in identity::possible_files(self.cli.identity.as_deref()) {
            files = files.owning(&path, "an identity file");
        }
        files
    }

    pub fn registry(&self) -> anyhow::Result<Registry> {
        Ok(Registry::open(&self.located()?.registry)?)
    }

    pub fn identity(&self) -> anyhow::Result<Identity> {
        let identity = identity::require(self.cli.identity.as_deref())?;
        warn_if_exposed(&identity);
        Ok(identity)
    }

    pub fn optional_identity(&self) -> anyhow::Result<Option<Identity>> {
        let identity = identity::resolve(self.cli.identity.as_deref())?;
        identity.iter().for_each(warn_if_exposed);
        Ok(identity)
    }

    /// The engine's view of the project, with the real backends. The
    /// policy is read first (its errors come first), then the registry,
    /// then the identity as the command needs it.
    pub fn workspace(&self, need: Need) -> anyhow::Result<Workspace> {
        let policy = self.policy()?;
        let registry = self.registry()?;
        tracing::debug!(
            "policies: {} token(s) from {}; registry: {}; this machine: {}",
            policy.tokens.len(),
            policy.root.display(),
            registry.dir().display(),
            crate::registry::machine::this_machine()
        );
        registry.set_checks_in(policy.names_machine(&crate::registry::machine::this_machine()));
        let identity = match need {
            Need::Nothing => None,
            Need::Optional => self.optional_identity()?,
            Need::IfReadable => self.optional_identity().ok().flatten(),
            Need::Required => Some(self.identity()?),
        };
        if let Some(identity) = &identity {
            unlock(&registry, identity)?;
        }
        let backends = Box::new(Live::new(self.project_files(&policy)));
        Ok(Workspace {
            policy,
            registry,
            identity,
            now: self.now(),
            lock_timeout: self.cli.lock_timeout,
            backends,
            progress: progress::sink(self.cli.wants_json()),
        })
    }
}

/// Unlocks the registry key with a member's identity: every file read from
/// here on is checked against its MAC. While a member's removal is being
/// finished, files may be under the retired key: only `keys rekey` reads
/// them then.
pub fn unlock(registry: &Registry, identity: &Identity) -> anyhow::Result<()> {
    if registry.unlock(&identity.key)? && registry.rekey_pending() && registry.rekey_changes_key() {
        return Err(crate::registry::RegistryError::RekeyPending { path: registry.rekey_marker() }.into());
    }
    Ok(())
}

/// Says on stderr when the registry's files were read without checking
/// who wrote them.
pub fn say_authenticity(registry: &Registry) {
    match registry.trust() {
        crate::registry::Trust::Verified { .. } => {}
        crate::registry::Trust::Unverified => eprintln!(
            "note: authenticity not verified: no member's identity is at hand, so the registry's files were read without checking their MACs"
        ),
        crate::registry::Trust::Legacy => eprintln!(
            "warning: the registry is of the format before authentication: anyone who can push could have changed it; a member runs `chitty-secrets upgrade` once"
        ),
    }
}

/// Every command that reads the identity says so when its file is exposed.
fn warn_if_exposed(identity: &Identity) {
    if let Some(warning) = identity.exposure_warning() {
        eprintln!("warning: {warning}");
    }
}

/// What a command needs of the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// Used when configured; a configured one that cannot be read is an error.
    Optional,
    /// Used when configured and readable.
    IfReadable,
    Required,
}

/// Reads a whole value from stdin; strips one trailing newline (what `echo`
/// and editors add), nothing else.
pub fn read_stdin_value() -> anyhow::Result<crate::secret::Secret> {
    use std::io::{IsTerminal, Read};
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading the value from stdin; end with Ctrl-D (it is not echoed to any log)");
    }
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    stdin.read_to_end(&mut buf).context("reading the value from stdin")?;
    let mut text = zeroize::Zeroizing::new(
        String::from_utf8(buf.to_vec()).map_err(|_| anyhow::anyhow!("the value on stdin is not UTF-8 text"))?,
    );
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(crate::secret::Secret::new(text.as_str()))
}

/// `path` relative to the current directory when it is inside it, for messages.
pub fn shown(path: &Path) -> String {
    relative(path).display().to_string()
}

/// `path` relative to the current directory when it is inside it.
pub fn relative(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new command must be given a group, or `--help` would not list it.
    #[test]
    fn every_command_is_in_a_help_group() {
        use clap::CommandFactory;
        let listed: Vec<&str> = GROUPS.iter().flat_map(|(_, names)| names.iter().copied()).collect();
        for sub in Cli::command().get_subcommands() {
            assert!(listed.contains(&sub.get_name()), "`{}` is in no group of GROUPS", sub.get_name());
        }
        assert_eq!(listed.len(), Cli::command().get_subcommands().count(), "a group names a command that is gone");
    }
}
