//! `import FILE.env`: bootstrap the registry from an existing .env file.
//! Keys that a policy declares (as a token or a target alias) are stored as
//! the token's current value; placeholders are refused, never stored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::set::{NewValue, store_current};
use super::{Globals, Hinted, exit, shown};
use crate::placeholder::placeholder_reason;
use crate::registry::{Delivery, TokenMeta};
use crate::secret::Secret;
use crate::target::dotenv_file::DotenvFile;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .env file to read.
    pub file: PathBuf,
    /// Import only this token (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Store placeholders too, flagged so that `check` reports them (to record the state as found).
    #[arg(long)]
    pub allow_placeholders: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let policy = g.policy()?;
    let bytes = zeroize::Zeroizing::new(std::fs::read(&args.file).map_err(|e| {
        Hinted::new(format!("cannot read {}: {e}", args.file.display()), "give the path of an existing .env file")
    })?);
    let file = DotenvFile::parse(&bytes)
        .map_err(|_| Hinted::new(format!("{} is not UTF-8 text", args.file.display()), "is it really a .env file?"))?;
    let shown_file = shown(&args.file);

    // Which token each key stands for: its own name, or an alias a target uses.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for token in policy.tokens.values() {
        owner.insert(&token.name, &token.name);
        for target in &token.targets {
            for n in &target.names {
                owner.entry(n).or_insert(&token.name);
            }
        }
    }

    let mut candidates: BTreeMap<String, Vec<(String, Secret, usize)>> = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut refused = 0;
    for (key, value, line) in file.entries() {
        let Some(token) = owner.get(key.as_str()) else {
            unknown.push(key);
            continue;
        };
        if !args.only.is_empty() && !args.only.iter().any(|o| o == token) {
            continue;
        }
        if let Some(why) = placeholder_reason(value.expose(), &policy.placeholders).filter(|_| !args.allow_placeholders)
        {
            eprintln!("{shown_file}:{line}: {key} {why}; not imported");
            refused += 1;
            continue;
        }
        candidates.entry(token.to_string()).or_default().push((key, value, line));
    }

    let registry = g.registry()?;
    let identity = g.identity()?;
    let _lock = g.lock(&registry)?;
    let canonical_file = args.file.canonicalize().ok();
    let now = g.now();
    let mut imported = 0;
    for (name, found) in candidates {
        let (first_key, value, first_line) = &found[0];
        if let Some((key, _, line)) = found.iter().find(|(_, v, _)| !v.same_as(value)) {
            eprintln!(
                "{shown_file}: {name} has different values at line {first_line} ({first_key}) and line {line} ({key}); not imported"
            );
            refused += 1;
            continue;
        }
        let token = &policy.tokens[&name];
        let mut meta = registry.load(&name)?;
        let mut values = registry.load_values(&name, &identity.key)?;
        let same = meta.current().and_then(|c| values.get(c.id)).is_some_and(|c| c.same_as(value));
        let id = if same {
            println!("{name}: already current");
            meta.current().map(|c| c.id).expect("checked above")
        } else {
            let placeholder = placeholder_reason(value.expose(), &policy.placeholders).is_some();
            let new = NewValue { value: value.clone(), origin: "import", placeholder };
            let id = store_current(&registry, &mut meta, &mut values, token, new, now)?;
            println!("{name}: imported as v{id} from {shown_file}:{first_line}");
            imported += 1;
            id
        };
        // The file we read from holds this version: record it if it is a target.
        let mut recorded = false;
        for target in &token.targets {
            let path = target.dotenv_path(&policy.root).and_then(|p| p.canonicalize().ok());
            if path.is_some() && path == canonical_file {
                for n in target.names.iter().filter(|n| found.iter().any(|(k, _, _)| k == *n)) {
                    meta.deliveries.insert(
                        TokenMeta::delivery_key(&target.address(), n),
                        Delivery { version: id, at: now, remote_updated_at: None },
                    );
                    recorded = true;
                }
            }
        }
        if recorded {
            registry.save(&mut meta)?;
        }
    }
    if !unknown.is_empty() {
        println!(
            "skipped {} key{} no policy declares: {}",
            unknown.len(),
            super::policy_check::plural(unknown.len()),
            unknown.join(", ")
        );
    }
    println!("{imported} imported, {refused} refused");
    if refused > 0 {
        return Err(Hinted::new(
            format!("{refused} value{} in {shown_file} not imported", super::policy_check::plural(refused)),
            "placeholders are not tokens: mint real ones with `chitty-secrets rotate`, or `set` the real value",
        )
        .into());
    }
    Ok(exit::OK)
}
