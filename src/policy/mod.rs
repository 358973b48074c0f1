//! Policies: `policies/*.toml` declare issuers and tokens, and where each
//! token is delivered. Loading parses every file entry by entry so that every
//! problem in every file is reported at once, each with `file:line:col`.

mod diagnostic;
mod duration;
mod model;
mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

pub use diagnostic::{Diagnostic, Source, closest};
pub use duration::Dur;
pub use model::*;
pub use schema::{policy_schema, policy_schema_text};

/// Every problem found in the policies, in file order.
#[derive(Debug)]
pub struct PolicyError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            write!(f, "{d}")?;
        }
        let n = self.diagnostics.len();
        write!(f, "{n} problem{} in the policies", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for PolicyError {}

/// Loads and validates every `*.toml` file in `dir`.
pub fn load(dir: &Path) -> Result<Policy, PolicyError> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| PolicyError {
        diagnostics: vec![plain(
            dir,
            format!("cannot read the policies directory: {e}"),
            "create policies/*.toml (see README), or point --policies at the folder that has them",
        )],
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(PolicyError {
            diagnostics: vec![plain(
                dir,
                "no *.toml policy files here".into(),
                "copy policies/local.toml from the chitty-secrets README to start",
            )],
        });
    }

    let root = match dir.canonicalize().ok().and_then(|d| d.parent().map(Path::to_path_buf)) {
        Some(root) => root,
        None => dir.join(".."),
    };
    let mut builder = Builder::default();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => builder.file(&Source::new(file, &text)),
            Err(e) => {
                let hint = match e.kind() {
                    std::io::ErrorKind::PermissionDenied => "check the file's permissions",
                    std::io::ErrorKind::InvalidData => "save the policy as UTF-8 text",
                    _ => "check the file",
                };
                builder.problems.push(plain(file, format!("cannot read: {e}"), hint))
            }
        }
    }
    builder.finish(root, dir.to_path_buf(), files)
}

fn plain(file: &Path, message: String, hint: &str) -> Diagnostic {
    Diagnostic { file: file.to_path_buf(), line: 1, col: 1, message, snippet: None, hint: Some(hint.into()) }
}

#[derive(Default)]
struct Builder {
    issuers: BTreeMap<String, IssuerPolicy>,
    tokens: BTreeMap<String, TokenPolicy>,
    /// Issuer references, checked once every file is read.
    references: Vec<(String, Diagnostic)>,
    placeholders: Vec<String>,
    set_elsewhere: Vec<String>,
    problems: Vec<Diagnostic>,
}

impl Builder {
    fn file(&mut self, src: &Source<'_>) {
        let at = |span: Range<usize>, msg: String| Diagnostic::at(src, Some(span), msg);
        let root = match DeTable::parse(src.text) {
            Ok(root) => root.into_inner(),
            Err(e) => {
                self.problems.push(at(e.span().unwrap_or(0..0), e.message().to_string()));
                return;
            }
        };
        for (key, value) in root {
            let span = key.span();
            match key.get_ref().as_ref() {
                "issuers" => self.issuers_table(src, value),
                "tokens" => self.tokens_table(src, value),
                "check" => match decode::<CheckFields>(value) {
                    Ok(check) => {
                        if check.placeholders.iter().any(|p| p.trim().chars().count() < MIN_PLACEHOLDER) {
                            self.problems.push(
                                at(span, "a `[check] placeholders` entry is empty or shorter than 4 characters".into())
                                    .with_hint("a placeholder is matched as a whole value: list words like `YOUR_TOKEN_HERE`; a short one would flag real values"),
                            );
                        }
                        self.placeholders.extend(check.placeholders);
                        self.set_elsewhere.extend(check.set_elsewhere);
                    }
                    Err(e) => self.problems.push(toml_problem(src, e, span)),
                },
                other => {
                    let mut d = at(span, format!("unknown section `{other}`"));
                    d.hint = closest(other, ["issuers", "tokens", "check"].into_iter())
                        .map(|c| format!("did you mean `{c}`?"))
                        .or_else(|| {
                            Some("a policy has `[issuers.NAME]`, `[tokens.NAME]` and `[check]` sections".into())
                        })
                        .map(crate::error::Hint::from);
                    self.problems.push(d);
                }
            }
        }
    }

    fn issuers_table(&mut self, src: &Source<'_>, value: Spanned<DeValue<'_>>) {
        let Some(table) = self.expect_table(src, value, "`issuers` must be a table of issuers") else {
            return;
        };
        for (key, entry) in table {
            let name = key.get_ref().to_string();
            let origin = origin(src, key.span());
            let Some((kind, kind_span)) = self.kind_of(src, &entry, key.span(), IssuerSpec::KINDS) else {
                continue;
            };
            let spec = match kind.as_str() {
                "random" => decode_kind::<RandomSpec>(entry).map(IssuerSpec::Random),
                "manual" => decode_kind::<ManualSpec>(entry).map(IssuerSpec::Manual),
                "chittyid" => decode_kind::<ChittyidSpec>(entry).map(IssuerSpec::Chittyid),
                "chittyauth" => decode_kind::<ChittyauthSpec>(entry).map(IssuerSpec::Chittyauth),
                "command" => decode_kind::<CommandSpec>(entry).map(IssuerSpec::Command),
                _ => unreachable!("kind_of accepts only known kinds"),
            };
            if let Ok(spec) = &spec {
                for (message, hint) in issuer_problems(&name, spec) {
                    self.problems.push(Diagnostic::at(src, Some(key.span()), message).with_hint(hint));
                }
            }
            match spec {
                Ok(IssuerSpec::Random(r)) if !is_safe_prefix(&r.prefix) => self.problems.push(
                    Diagnostic::at(src, Some(kind_span), format!("issuer `{name}`: the prefix is not safe in .env files and shells"))
                        .with_hint(format!("use at most {MAX_PREFIX} of A-Z a-z 0-9 _ . : / @ + - (the value is written unquoted everywhere)")),
                ),
                Ok(IssuerSpec::Random(r)) if r.bytes == 0 || r.bytes > 1024 => self.problems.push(
                    Diagnostic::at(src, Some(kind_span),
                        format!("issuer `{name}`: bytes = {} is out of range", r.bytes),
                    )
                    .with_hint("use between 1 and 1024 random bytes (32 is a good default)"),
                ),
                Ok(spec) => {
                    if let Some(previous) = self.issuers.get(&name).and_then(|i| i.origin.clone()) {
                        self.problems.push(
                            Diagnostic::at(src, Some(key.span()),
                                format!("issuer `{name}` is declared twice"),
                            )
                            .with_hint(format!("it is also declared at {previous}")),
                        );
                        continue;
                    }
                    self.issuers.insert(name.clone(), IssuerPolicy { name, spec, origin: Some(origin) });
                }
                Err(e) => self.problems.push(toml_problem(src, e, key.span())),
            }
        }
    }

    fn tokens_table(&mut self, src: &Source<'_>, value: Spanned<DeValue<'_>>) {
        let Some(table) = self.expect_table(src, value, "`tokens` must be a table of tokens") else {
            return;
        };
        for (key, entry) in table {
            let name = key.get_ref().to_string();
            let key_span = key.span();
            if !is_secret_name(&name) {
                self.problems.push(
                    Diagnostic::at(
                        src,
                        Some(key_span.clone()),
                        format!("token name `{name}` is not a valid variable name"),
                    )
                    .with_hint(
                        "use at most 128 letters, digits and `_`, not starting with a digit, e.g. CHITTY_ID_TOKEN",
                    ),
                );
            }
            let entry_span = entry.span();
            let DeValue::Table(mut fields) = entry.into_inner() else {
                self.problems.push(Diagnostic::at(src, Some(key_span), format!("token `{name}` must be a table")));
                continue;
            };
            let raw_targets = fields.remove("targets");
            let token = match decode::<TokenFields>(Spanned::new(entry_span, DeValue::Table(fields))) {
                Ok(t) => t,
                Err(e) => {
                    self.problems.push(toml_problem(src, e, key_span));
                    continue;
                }
            };
            let targets = match raw_targets {
                Some(raw) => self.targets(src, &name, raw),
                None => Vec::new(),
            };
            for (message, hint) in duration_problems(&name, &token) {
                self.problems.push(Diagnostic::at(src, Some(key_span.clone()), message).with_hint(hint));
            }
            let issuer_span = token.issuer.span();
            let issuer = token.issuer.into_inner();
            self.references.push((
                issuer.clone(),
                Diagnostic::at(
                    src,
                    Some(issuer_span),
                    format!("token `{name}` names issuer `{issuer}`, which no policy declares"),
                ),
            ));
            if token.renew_fraction.is_some_and(|f| !(0.0..1.0).contains(&f)) {
                self.problems.push(
                    Diagnostic::at(
                        src,
                        Some(key_span.clone()),
                        format!("token `{name}`: renew_fraction must be at least 0 and below 1"),
                    )
                    .with_hint("e.g. 0.1 renews in the last tenth of the token's lifetime"),
                );
            }
            if let (Some(every), Some(ttl)) = (token.rotate_every, token.ttl)
                && every > ttl
            {
                self.problems.push(
                    Diagnostic::at(
                        src,
                        Some(key_span.clone()),
                        format!("token `{name}`: rotate_every is longer than ttl"),
                    )
                    .with_hint("the token would expire before it is rotated: make rotate_every shorter than ttl"),
                );
            }
            let policy = TokenPolicy {
                name: name.clone(),
                issuer,
                scopes: token.scopes,
                ttl: token.ttl,
                rotate_every: token.rotate_every,
                overlap: token.overlap.unwrap_or(Dur(chrono::TimeDelta::zero())),
                renew_fraction: token.renew_fraction.unwrap_or(0.1),
                description: token.description,
                targets,
                origin: origin(src, key_span.clone()),
            };
            if let Some(previous) = self.tokens.get(&name) {
                self.problems.push(
                    Diagnostic::at(src, Some(key_span), format!("token `{name}` is declared twice"))
                        .with_hint(format!("it is also declared at {}", previous.origin)),
                );
                continue;
            }
            self.tokens.insert(name, policy);
        }
    }

    fn targets(&mut self, src: &Source<'_>, token: &str, raw: Spanned<DeValue<'_>>) -> Vec<TargetPolicy> {
        let span = raw.span();
        let DeValue::Array(items) = raw.into_inner() else {
            self.problems.push(
                Diagnostic::at(src, Some(span), format!("token `{token}`: `targets` must be an array of tables"))
                    .with_hint(format!("write each target as [[tokens.{token}.targets]]")),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let item_span = item.span();
            let Some((kind, _)) = self.kind_of(src, &item, item_span.clone(), TargetSpec::KINDS) else {
                continue;
            };
            let spec = match TargetSpec::decode(&kind, item, token) {
                Some(Ok(spec)) => spec,
                Some(Err(crate::targets::kind::EntryError::Toml(e))) => {
                    self.problems.push(toml_problem(src, e, item_span));
                    continue;
                }
                Some(Err(crate::targets::kind::EntryError::Problems(problems))) => {
                    for (message, hint) in problems {
                        self.problems.push(Diagnostic::at(src, Some(item_span.clone()), message).with_hint(hint));
                    }
                    continue;
                }
                None => unreachable!("kind_of accepts only known kinds"),
            };
            let names = spec.names().cloned().unwrap_or_else(|| vec![token.to_string()]);
            let at = |msg: String| Diagnostic::at(src, Some(item_span.clone()), msg);
            if names.is_empty() {
                self.problems.push(
                    at(format!("token `{token}`: `names` is empty"))
                        .with_hint("list at least one name, or leave `names` out to use the token's name"),
                );
            }
            if let Some(twice) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
                self.problems.push(
                    at(format!("token `{token}`: `{twice}` is listed twice in this target's `names`"))
                        .with_hint("list each name once"),
                );
            }
            for problem in target_problems(&spec, token, &names) {
                self.problems.push(at(problem.0).with_hint(problem.1));
            }
            out.push(TargetPolicy { spec: spec.normalized(), names, origin: origin(src, item_span) });
        }
        out
    }

    fn expect_table<'i>(
        &mut self,
        src: &Source<'_>,
        value: Spanned<DeValue<'i>>,
        message: &str,
    ) -> Option<DeTable<'i>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.problems.push(Diagnostic::at(src, Some(span), message));
                None
            }
        }
    }

    /// The entry's `kind`, if present and known; otherwise records why not.
    fn kind_of(
        &mut self,
        src: &Source<'_>,
        entry: &Spanned<DeValue<'_>>,
        entry_span: Range<usize>,
        kinds: &[&str],
    ) -> Option<(String, Range<usize>)> {
        let expected = kinds.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
        let Some(kind) = entry.get_ref().get("kind") else {
            self.problems.push(
                Diagnostic::at(src, Some(entry_span), "missing field `kind`")
                    .with_hint(format!("set kind to one of {expected}")),
            );
            return None;
        };
        let Some(text) = kind.get_ref().as_str() else {
            self.problems.push(Diagnostic::at(src, Some(kind.span()), "`kind` must be a string"));
            return None;
        };
        if !kinds.contains(&text) {
            let hint = match closest(text, kinds.iter().copied()) {
                Some(c) => format!("did you mean `{c}`? (known kinds: {expected})"),
                None => format!("known kinds: {expected}"),
            };
            self.problems
                .push(Diagnostic::at(src, Some(kind.span()), format!("unknown kind `{text}`")).with_hint(hint));
            return None;
        }
        Some((text.to_string(), kind.span()))
    }

    fn finish(mut self, root: PathBuf, dir: PathBuf, files: Vec<PathBuf>) -> Result<Policy, PolicyError> {
        for builtin in ["random", "manual"] {
            self.issuers.entry(builtin.into()).or_insert_with(|| IssuerPolicy {
                name: builtin.into(),
                spec: match builtin {
                    "random" => {
                        IssuerSpec::Random(RandomSpec { prefix: String::new(), bytes: 32, encoding: Encoding::Hex })
                    }
                    _ => IssuerSpec::Manual(ManualSpec { instructions: None }),
                },
                origin: None,
            });
        }
        for (issuer, diagnostic) in std::mem::take(&mut self.references) {
            if !self.issuers.contains_key(&issuer) {
                let hint = match closest(&issuer, self.issuers.keys().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "declare it as [issuers.NAME], or use the built-in `random` or `manual`".into(),
                };
                self.problems.push(diagnostic.with_hint(hint));
            }
        }
        // The ChittyID admin API refuses a mint without scopes: say so here.
        for token in self.tokens.values() {
            let shortest = self.issuers.get(&token.issuer).and_then(|i| i.spec.shortest_ttl());
            if let (Some((shortest, why)), Some(ttl)) = (shortest, token.ttl)
                && ttl.0 < shortest
            {
                self.problems.push(Diagnostic {
                    file: token.origin.file.clone(),
                    line: token.origin.line,
                    col: token.origin.col,
                    message: format!(
                        "token `{}`: ttl ({}) is shorter than issuer `{}` can serve (at least {})",
                        token.name,
                        Dur::human(ttl.0),
                        token.issuer,
                        Dur::human(shortest)
                    ),
                    snippet: None,
                    hint: Some(format!("{why}: use ttl = \"{}\" or longer", Dur::human(shortest)).into()),
                });
            }
            let chittyid = self.issuers.get(&token.issuer).is_some_and(|i| matches!(i.spec, IssuerSpec::Chittyid(_)));
            if chittyid && token.scopes.is_empty() {
                self.problems.push(Diagnostic {
                    file: token.origin.file.clone(),
                    line: token.origin.line,
                    col: token.origin.col,
                    message: format!("token `{}`: a `chittyid` issuer needs `scopes`", token.name),
                    snippet: None,
                    hint: Some(
                        "the admin API refuses a mint without them, e.g. scopes = [\"mint\", \"validate\"]".into(),
                    ),
                });
            }
        }
        self.check_claims();
        if !self.problems.is_empty() {
            return Err(PolicyError { diagnostics: self.problems });
        }
        Ok(Policy {
            root,
            dir,
            files,
            issuers: self.issuers,
            tokens: self.tokens,
            placeholders: self.placeholders,
            set_elsewhere: self.set_elsewhere,
        })
    }

    /// Two tokens writing the same name at the same target would overwrite
    /// each other on every run.
    fn check_claims(&mut self) {
        let mut claims: BTreeMap<(String, String), (String, Origin)> = BTreeMap::new();
        for token in self.tokens.values() {
            for target in &token.targets {
                let address = target.address();
                let any_case = target.spec.kind().case_insensitive();
                for name in &target.names {
                    // Some services (GitHub) compare their places and
                    // names without case.
                    let key = if any_case {
                        (address.as_str().to_ascii_lowercase(), name.to_ascii_uppercase())
                    } else {
                        (address.to_string(), name.clone())
                    };
                    match claims.get(&key) {
                        Some((other, first)) if other != &token.name || first != &target.origin => {
                            let message = if other == &token.name {
                                format!("`{name}` at {address} is written twice by `{other}`")
                            } else {
                                format!("`{name}` at {address} is written by both `{other}` and `{}`", token.name)
                            };
                            self.problems.push(Diagnostic {
                                file: target.origin.file.clone(),
                                line: target.origin.line,
                                col: target.origin.col,
                                message,
                                snippet: None,
                                hint: Some(format!(
                                    "the other target is at {first} (the same place spelled differently counts too); keep one, or give one different `names`"
                                ).into()),
                            })
                        }
                        Some(_) => {}
                        None => {
                            claims.insert(key, (token.name.clone(), target.origin.clone()));
                        }
                    }
                }
            }
        }
    }
}

/// Refuses .env targets that would write outside the project or into a
/// file the tool owns (the registry, the policies, an identity file).
pub fn check_places(policy: &Policy, files: &crate::project::ProjectFiles) -> Result<(), PolicyError> {
    let mut diagnostics = Vec::new();
    // Many tokens share a file: each path is resolved once.
    let mut placed: BTreeMap<PathBuf, Result<PathBuf, String>> = BTreeMap::new();
    for token in policy.tokens.values() {
        for target in &token.targets {
            let Some(path) = target.dotenv_path(&policy.root) else { continue };
            let place = placed.entry(path.clone()).or_insert_with(|| files.place(&path));
            if let Err(why) = place {
                diagnostics.push(Diagnostic {
                    file: target.origin.file.clone(),
                    line: target.origin.line,
                    col: target.origin.col,
                    message: format!("token `{}`: {why}", token.name),
                    snippet: None,
                    hint: Some("point the target at an app's own .env file, e.g. `app/.env`".into()),
                });
            }
        }
    }
    if diagnostics.is_empty() { Ok(()) } else { Err(PolicyError { diagnostics }) }
}

fn decode<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value))
}

/// Decodes an entry whose `kind` was already read by [`Builder::kind_of`]:
/// the kind picks the type, so it is not a field of it.
pub(crate) fn decode_kind<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(mut table) => {
            table.remove("kind");
            decode(Spanned::new(span, DeValue::Table(table)))
        }
        other => decode(Spanned::new(span, other)),
    }
}

fn toml_problem(src: &Source<'_>, e: toml::de::Error, fallback: Range<usize>) -> Diagnostic {
    let span = e.span().filter(|s| !s.is_empty() || s.start > 0).unwrap_or(fallback);
    Diagnostic::at(src, Some(span), e.message().trim().to_string())
}

fn origin(src: &Source<'_>, span: Range<usize>) -> Origin {
    let (line, col) = src.line_col(span.start);
    Origin { file: src.file.to_path_buf(), line, col }
}

/// What is wrong with an issuer entry, before any request is made.
fn issuer_problems(name: &str, spec: &IssuerSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(url) = spec.url()
        && let Err(e) = crate::endpoint::check_base(url)
    {
        out.push((format!("issuer `{name}`: {e}"), "use an https:// URL (http is allowed to loopback only)".into()));
    }
    if spec.credential_from() == Some(&CredentialSource::Invalid) {
        out.push((
            // Not echoed: someone may have pasted the secret itself here.
            format!("issuer `{name}`: the credential source is not env:NAME or registry:TOKEN (its text is not shown, in case it is a secret)"),
            "write env:NAME (an environment variable) or registry:TOKEN (a token in this registry); never the secret itself".into(),
        ));
    }
    match spec {
        IssuerSpec::Chittyauth(c) if c.preset == Preset::Live && c.chitty_id.is_none() => out.push((
            format!("issuer `{name}`: the live preset needs `chitty_id`, the identity tokens are issued to"),
            "e.g. chitty_id = \"03-1-USA-1234-P-2601-3-NN\"".into(),
        )),
        IssuerSpec::Command(c) if c.command.is_empty() => {
            out.push((format!("issuer `{name}`: `command` is empty"), "give the program and its arguments".into()))
        }
        _ => {}
    }
    out
}

/// What is wrong with a target entry, before any request is made.
fn target_problems(spec: &TargetSpec, token: &str, names: &[String]) -> Vec<(String, String)> {
    let kind = spec.kind();
    let mut out = kind.problems(token);
    out.extend(names.iter().filter_map(|n| kind.name_problem(token, n)));
    out
}

/// Why `name` cannot be a secret's name anywhere, as (message, hint).
pub fn generic_name_problem(token: &str, name: &str) -> Option<(String, String)> {
    (!is_secret_name(name)).then(|| {
        (
            format!("token `{token}`: `{name}` is not a valid secret name"),
            "use at most 128 letters, digits and `_`, not starting with a digit".into(),
        )
    })
}

/// The validated scope of a github target, or what is wrong with it.
pub(crate) fn github_spec(g: GithubFields, token: &str) -> Result<GithubSpec, Vec<(String, String)>> {
    let mut out = Vec::new();
    if g.org.is_none()
        && (g.visibility.is_some() || g.selected_repository_ids.is_some() || g.selected_repositories.is_some())
    {
        out.push((
            format!("token `{token}`: `visibility` and `selected_repository_ids` are for organization secrets"),
            "remove them, or use org = \"name\"".into(),
        ));
    }
    if g.visibility == Some(Visibility::Selected)
        && g.selected_repository_ids.as_ref().is_none_or(Vec::is_empty)
        && g.selected_repositories.as_ref().is_none_or(Vec::is_empty)
    {
        out.push((
            format!(
                "token `{token}`: visibility = \"selected\" needs selected_repositories (or selected_repository_ids)"
            ),
            "list the ids of the repositories that may use the secret".into(),
        ));
    }
    if g.create_environment && g.environment.is_none() {
        out.push((
            format!("token `{token}`: `create_environment` goes with `environment`"),
            "name the environment to create, or remove create_environment".into(),
        ));
    }
    if g.environment.is_some() && g.app != GithubApp::Actions {
        out.push((
            format!("token `{token}`: environment secrets are Actions secrets, not {}", g.app.as_str()),
            "remove `app`, or deliver to the repository's Dependabot/Codespaces secrets without `environment`".into(),
        ));
    }
    let scope = match (g.repo, g.org) {
        (Some(_), Some(_)) | (None, None) => {
            out.push((
                format!("token `{token}`: a github target needs exactly one of `repo` or `org`"),
                "e.g. repo = \"owner/name\" (optionally with environment = \"production\"), or org = \"name\"".into(),
            ));
            None
        }
        (Some(repo), None) => match repo.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
                let (owner, repo) = (owner.to_string(), name.to_string());
                Some(match g.environment {
                    Some(environment) => GithubScope::Environment { owner, repo, environment },
                    None => GithubScope::Repo { owner, repo },
                })
            }
            _ => {
                out.push((
                    format!("token `{token}`: repo `{repo}` is not `owner/name`"),
                    "write the repository as owner/name".into(),
                ));
                None
            }
        },
        (None, Some(org)) => {
            if g.environment.is_some() {
                out.push((
                    format!("token `{token}`: `environment` goes with `repo`, not `org`"),
                    "environments belong to a repository".into(),
                ));
            }
            if let Some(other) = g
                .selected_repositories
                .iter()
                .flatten()
                .find_map(|r| r.split_once('/').filter(|(owner, _)| !owner.eq_ignore_ascii_case(&org)))
            {
                out.push((
                    format!("token `{token}`: `{}/{}` is not a repository of {org}", other.0, other.1),
                    "an organization secret is shared with that organization's repositories only".into(),
                ));
            }
            Some(GithubScope::Org {
                org,
                visibility: g.visibility,
                selected_repository_ids: g.selected_repository_ids,
                selected_repositories: g.selected_repositories,
            })
        }
    };
    match scope {
        Some(scope) if out.is_empty() => {
            Ok(GithubSpec { scope, app: g.app, create_environment: g.create_environment, names: g.names })
        }
        _ => Err(out),
    }
}

/// GitHub's rules for secret names, checked before any request.
pub fn github_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some("only letters, digits and `_` are allowed")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("it starts with a digit")
    } else if name.to_ascii_uppercase().starts_with("GITHUB_") {
        Some("names starting with GITHUB_ are reserved")
    } else {
        None
    }
}

/// A GitHub account or repository name as it may stand in a path: letters,
/// digits, `-`, `_` and `.`.
pub fn is_github_account_or_repo(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A name every .env parser and every secret store accepts.
pub fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A .env path the tool can own: relative, inside the project, naming a
/// file (not `.`, not `dir/`), with no NUL byte.
pub fn is_relative_file(path: &Path) -> bool {
    let text = path.to_string_lossy();
    let last = text.rsplit(['/', '\\']).next().unwrap_or_default();
    !text.contains('\0')
        && !matches!(last, "" | "." | "..")
        && path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The longest name (token or secret) a policy may give: every file system
/// takes `NAME.toml`, and no service wants more.
const MAX_NAME: usize = 128;
/// A random issuer's prefix: short, and safe unquoted in .env files and shells.
const MAX_PREFIX: usize = 64;
const MIN_PLACEHOLDER: usize = 4;
/// The shortest ttl or rotation period: anything shorter re-mints on every run.
const SHORTEST_PERIOD: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

fn is_safe_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_PREFIX && prefix.chars().all(|c| c.is_ascii_alphanumeric() || "_.:/@+-".contains(c))
}

/// Durations that load but make no sense together.
fn duration_problems(name: &str, token: &TokenFields) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, value) in [("ttl", token.ttl), ("rotate_every", token.rotate_every)] {
        if value.is_some_and(|d| d.0 < SHORTEST_PERIOD) {
            out.push((
                format!("token `{name}`: {field} is shorter than a minute"),
                format!("a {field} that short makes every `rotate --due` mint again: use e.g. `90d`"),
            ));
        }
    }
    if let (Some(overlap), Some(ttl)) = (token.overlap, token.ttl)
        && overlap >= ttl
    {
        out.push((
            format!(
                "token `{name}`: overlap ({}) is not shorter than ttl ({})",
                Dur::human(overlap.0),
                Dur::human(ttl.0)
            ),
            "the previous value would outlive its own expiry: make overlap shorter than ttl".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
