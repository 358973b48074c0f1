//! `init`: create the registry and an identity, or adopt the configured one.

use super::{Globals, Hinted, exit, relative, shown};
use crate::engine::keys;
use crate::identity;
use crate::project;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep a new identity in the OS keyring even where it is cleared at
    /// reboot (Linux's kernel keyring); keep a backup of the key elsewhere.
    #[arg(long)]
    pub keyring: bool,
    /// Where there is no policy yet, write a starter one (one locally minted
    /// token into .env) to begin from.
    #[arg(long)]
    pub starter: bool,
    /// Where there is no policy yet, draft policies/discovered.toml from
    /// what the project's workflows, Wrangler configurations and .env files
    /// read and hold (names only, never values), for `import` to fill.
    #[arg(long, conflicts_with = "starter")]
    pub discover: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir()?;
    let explicit = g.cli.policies.is_some() || g.cli.registry.is_some();
    let nowhere = matches!(project::locate(&cwd), Err(project::LocateError::NotFound { .. }));
    let mut began = false;
    if !explicit && nowhere {
        if !(args.starter || args.discover) {
            // Nothing is made in a folder that is no project unless asked;
            // the way to begin is offered.
            return Err(Hinted::new(
                project::locate(&cwd).err().map(|e| e.to_string()).unwrap_or_default(),
                "to begin here with a starter policy (one locally minted token into .env), run `chitty-secrets init --starter`; or create policies/*.toml and run `chitty-secrets init`",
            )
            .into());
        }
        begin(&cwd.join("policies"), args)?;
        began = true;
    }
    let located = g.located()?.clone();
    if let Some(file) = &located.file
        && !explicit
        && file.parent() != Some(cwd.as_path())
        && cwd.join("policies").is_dir()
    {
        return Err(Hinted::new(
            format!("this folder is inside the project at {}: a second project here would keep a second registry", shown(file)),
            "run `chitty-secrets init` in that project's folder, or pass --policies and --registry to make a separate project on purpose",
        )
        .into());
    }
    if args.discover && !began && located.policies.is_dir() {
        // Drafted where there is no policy; refused where there is one.
        super::usage::discover(&located.policies)?;
    } else if !located.policies.is_dir() {
        if !(args.starter || args.discover) {
            return Err(Hinted::new(
                format!("no policies folder at {}", shown(&located.policies)),
                "run `chitty-secrets init --starter` to begin with a starter policy, or create it with at least one *.toml policy (README: \"Policies\")",
            )
            .into());
        }
        begin(&located.policies, args)?;
    }
    let flag = g.cli.identity.as_deref();
    let (identity, how) = match identity::resolve(flag)? {
        Some(id) => {
            let verb =
                if identity::is_explicit(flag) { "adopted the identity" } else { "using your existing identity" };
            let mut how = format!("{verb} from {}", id.source);
            if args.keyring {
                how.push_str(" (--keyring applies only when a new identity is created)");
            }
            (id, how)
        }
        None => {
            let store = if args.keyring { identity::Store::Keyring } else { identity::Store::Durable };
            let id = identity::create_and_store(store)?;
            let how = match &id.source {
                identity::Source::Keyring { .. } if !identity::keyring_is_durable() => format!(
                    "created an identity and stored it in {}; this keyring is cleared at reboot: back the key up (`chitty-secrets keys add` a second key you keep safe)",
                    id.source
                ),
                identity::Source::Keyring { .. } => format!("created an identity and stored it in {}", id.source),
                other if args.keyring => {
                    format!("created an identity in {other} (mode 0600): no OS keyring works here")
                }
                other => format!(
                    "created an identity in {other} (mode 0600; no durable OS keyring here, which is normal on Linux servers and CI)"
                ),
            };
            (id, how)
        }
    };
    if let Some(warning) = identity.exposure_warning() {
        eprintln!("warning: {warning}");
    }
    let recipient = identity.recipient();
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    let label = format!("{user}, added by chitty-secrets init");
    let done = keys::init(&located.registry, &recipient, &label, g.now(), g.cli.lock_timeout)?;
    // The project file ties these policies to this registry, and lets every
    // command find them from any folder below.
    if located.file.is_none() && !explicit {
        let file = cwd.join(project::PROJECT_FILE);
        let text = project::project_file_text(&relative(&located.policies), &relative(&located.registry));
        crate::fsutil::write_atomic(&file, text.as_bytes())?;
        println!("wrote {} (commands find the project from any folder below it)", shown(&file));
    }

    super::trust::set_up_merge_driver(&done.registry);
    let dir = shown(done.registry.dir());
    println!("{} registry at {dir}", if done.existed { "using the" } else { "created a" });
    println!("{how}");
    println!("public key (recipient): {recipient}");
    if !done.added {
        println!("the key was already a recipient");
    }
    // "next: rotate" only when a rotation can run: broken policies are
    // said now, with every problem, not at the first rotate.
    if let Err(e) = g.policy() {
        println!("the registry and the identity are ready, but the policies are not:");
        return Err(e);
    }
    if done.existed && !done.registry.token_names()?.is_empty() {
        println!("next: `chitty-secrets status` shows the tokens this registry already holds");
    } else {
        println!("next: `chitty-secrets rotate` mints and delivers every token in {}", shown(&located.policies));
    }
    Ok(exit::OK)
}

/// The first policy: drafted from the project (`--discover`) or the starter.
fn begin(policies: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    if args.discover { super::usage::discover(policies) } else { write_starter(policies) }
}

/// A starter policy, not only an error, where there is no policy folder:
/// one local token into .env, which runs as it is and shows the shape of
/// the rest.
fn write_starter(policies: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(policies)?;
    let starter = policies.join("starter.toml");
    crate::fsutil::write_atomic(&starter, STARTER_POLICY.as_bytes())?;
    println!(
        "wrote a starter policy at {} (one locally minted token into .env; edit it — README: \"Policies\")",
        shown(&relative(&starter))
    );
    Ok(())
}

/// What `init` writes where there is no policy yet.
const STARTER_POLICY: &str = r#"# A starter policy: edit it to declare your tokens (README: "Policies").
# `chitty-secrets policy check` validates it; `chitty-secrets rotate` mints
# and delivers. Paths are relative to the folder that holds policies/.

[issuers.local]
kind = "random"          # minted here; see the README for chittyid, chittyauth, command, manual
bytes = 32

[tokens.APP_TOKEN]
issuer = "local"
rotate_every = "30d"
overlap = "24h"

[[tokens.APP_TOKEN.targets]]
kind = "dotenv"
path = ".env"            # keep it out of git (.gitignore)
"#;
