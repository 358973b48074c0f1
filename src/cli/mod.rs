//! The command line: clap definitions here, one file per command.

pub mod actions;
mod audit;
mod check;
pub mod ci;
mod docs;
mod get;
mod import;
mod init;
mod keys;
mod policy_check;
mod rotate;
mod run;
mod scan;
mod set;
mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::identity::{self, Identity};
use crate::policy::{self, Dur, Policy};
use crate::registry::{Registry, TokenMeta};
use crate::rotation::{Observations, Observed};
use crate::target::Remote;

/// Exit codes, as the README documents them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const FINDINGS: u8 = 3;
    pub const PARTIAL: u8 = 4;
}

#[derive(Parser, Debug)]
#[command(
    name = "chitty-secrets",
    version,
    about = "Issue, keep (age-encrypted), deliver and rotate the tokens a platform depends on"
)]
pub struct Cli {
    /// Folder of policy files (*.toml). Relative target paths resolve against its parent.
    #[arg(long, global = true, default_value = "policies", value_name = "DIR")]
    pub policies: PathBuf,
    /// The registry folder.
    #[arg(long, global = true, default_value = ".chitty-secrets", value_name = "DIR")]
    pub registry: PathBuf,
    /// An age identity file (overrides CHITTY_SECRETS_IDENTITY, the keyring and the config file).
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// How long a writer waits for another one to finish, e.g. 30s or 2m.
    #[arg(long, global = true, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Plan as if it were this time (RFC 3339), e.g. to see what is due next month.
    #[arg(long, global = true, value_name = "TIME")]
    pub now: Option<DateTime<Utc>>,
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
    /// Find known token values (every version) in files.
    Scan(scan::Args),
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
    /// Print shell completions.
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
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Load and validate every policy file; report every problem.
    Check,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let delta = match text.parse::<u64>() {
        Ok(secs) => return Ok(Duration::from_secs(secs)),
        Err(_) => Dur::parse(text)?.0,
    };
    delta.to_std().map_err(|e| e.to_string())
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let ctx = Globals { cli: &cli };
    match &cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Policy { command: PolicyCommand::Check } => policy_check::run(&ctx),
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
        Command::Audit { command } => audit::run(&ctx, command),
        Command::Keys { command } => keys::run(&ctx, command),
        Command::Ci { command } => ci::run(&ctx, command),
        Command::Completions { shell } => docs::completions(*shell),
        Command::Man => docs::man(),
    }
}

/// What every command gets: the global options and the loaders built on them.
pub struct Globals<'a> {
    pub cli: &'a Cli,
}

impl Globals<'_> {
    pub fn now(&self) -> DateTime<Utc> {
        self.cli.now.unwrap_or_else(Utc::now)
    }

    pub fn policy(&self) -> anyhow::Result<Policy> {
        Ok(policy::load(&self.cli.policies)?)
    }

    pub fn registry(&self) -> anyhow::Result<Registry> {
        Ok(Registry::open(&self.cli.registry)?)
    }

    pub fn identity(&self) -> anyhow::Result<Identity> {
        Ok(identity::require(self.cli.identity.as_deref())?)
    }

    pub fn optional_identity(&self) -> anyhow::Result<Option<Identity>> {
        Ok(identity::resolve(self.cli.identity.as_deref())?)
    }

    pub fn lock(&self, registry: &Registry) -> anyhow::Result<crate::registry::RegistryLock> {
        Ok(registry.lock(self.cli.lock_timeout)?)
    }
}

/// Metadata of every token the policy declares (fresh records for new ones).
pub fn load_metas(policy: &Policy, registry: &Registry) -> anyhow::Result<BTreeMap<String, TokenMeta>> {
    policy.tokens.keys().map(|name| Ok((name.clone(), registry.load(name)?))).collect()
}

/// Reads every readable target (.env files) and compares it with the
/// current value (needs the identity).
pub async fn observe(
    policy: &Policy,
    registry: &Registry,
    identity: &Identity,
    metas: &BTreeMap<String, TokenMeta>,
) -> anyhow::Result<Observations> {
    let mut seen = Observations::new();
    for (name, meta) in metas {
        let (Some(token), Some(current)) = (policy.token(name), meta.current()) else {
            continue;
        };
        if token.targets.iter().all(|t| t.is_remote()) {
            continue;
        }
        let values = registry.load_values(name, &identity.key)?;
        let Some(value) = values.get(current.id) else {
            continue;
        };
        for target_policy in token.targets.iter().filter(|t| !t.is_remote()) {
            let target = crate::target::build(target_policy, &policy.root, None)?;
            let Some(read) = target.read(&target_policy.names).await? else {
                continue;
            };
            for (n, got) in target_policy.names.iter().zip(read) {
                let observed = match got {
                    Some(v) if v.same_as(value) => Observed::Holds,
                    Some(_) => Observed::Differs,
                    None => Observed::Missing,
                };
                seen.insert((name.clone(), TokenMeta::delivery_key(target.address(), n)), observed);
            }
        }
    }
    Ok(seen)
}

/// A name on a remote that no policy declares there: reported, never touched.
pub struct Unmanaged {
    pub address: String,
    pub name: String,
}

/// Lists every remote target once (names and `updated_at`, never values):
/// a declared name that is gone is `Missing`, one changed since our write
/// (GitHub's `updated_at`) is `Differs`; everything else there is unmanaged.
pub async fn observe_remote(
    policy: &Policy,
    metas: &BTreeMap<String, TokenMeta>,
    remote: &Remote,
    seen: &mut Observations,
) -> anyhow::Result<Vec<Unmanaged>> {
    let targets = policy.remote_targets();
    let lists = futures_util::future::join_all(targets.iter().map(|(address, t)| async move {
        let target = crate::target::build(t, &policy.root, Some(remote))?;
        Ok::<_, crate::target::TargetError>((address.clone(), target.list().await?.unwrap_or_default()))
    }))
    .await;
    let mut unmanaged = Vec::new();
    for listed in lists {
        let (address, listed) = listed?;
        let mut declared = Vec::new();
        for (name, token) in &policy.tokens {
            let Some(meta) = metas.get(name) else { continue };
            for t in token.targets.iter().filter(|t| t.address() == address) {
                for n in &t.names {
                    declared.push(n.to_ascii_uppercase());
                    let key = TokenMeta::delivery_key(&address, n);
                    let observed =
                        match (listed.iter().find(|s| s.name.eq_ignore_ascii_case(n)), meta.delivered(&address, n)) {
                            (None, _) => Some(Observed::Missing),
                            (Some(s), Some(d))
                                if s.updated_at.is_some()
                                    && d.remote_updated_at.is_some()
                                    && s.updated_at != d.remote_updated_at =>
                            {
                                Some(Observed::Differs)
                            }
                            // Present and untouched: the delivery records decide.
                            _ => None,
                        };
                    if let Some(o) = observed {
                        seen.insert((name.clone(), key), o);
                    }
                }
            }
        }
        for s in listed {
            if !declared.contains(&s.name.to_ascii_uppercase()) {
                unmanaged.push(Unmanaged { address: address.clone(), name: s.name });
            }
        }
    }
    Ok(unmanaged)
}

/// Whether any selected token delivers to a remote target.
pub fn needs_remote(policy: &Policy, only: &[String]) -> bool {
    policy
        .tokens
        .values()
        .filter(|t| only.is_empty() || only.contains(&t.name))
        .any(|t| t.targets.iter().any(|x| x.is_remote()))
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

/// A token name the policy must declare, with a suggestion when it does not.
pub fn known_token<'p>(policy: &'p Policy, name: &str) -> anyhow::Result<&'p crate::policy::TokenPolicy> {
    policy.token(name).ok_or_else(|| {
        let hint = match policy::closest(name, policy.tokens.keys().map(String::as_str)) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("declare it as [tokens.{name}] in a policy file"),
        };
        Hinted::new(format!("no policy declares the token `{name}`"), hint).into()
    })
}

/// An error with what to do next.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: String,
    pub code: u8,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted { message: message.into(), hint: hint.into(), code: exit::FAILURE }
    }
}

/// `path` relative to the current directory when it is inside it, for messages.
pub fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}
