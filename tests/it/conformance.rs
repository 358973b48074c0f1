//! One contract, every backend (the object_store pattern): the same target
//! tests run against the in-memory target (local and remote), the .env
//! target, and the GitHub and Cloudflare fakes; the same issuer tests
//! against the in-memory issuer and the ChittyID and ChittyAuth fakes.

use std::sync::Arc;

use chitty_secrets::http::Http;
use chitty_secrets::issuer::chitty::{ChittyauthIssuer, ChittyidIssuer};
use chitty_secrets::issuer::memory::{MemoryIssuer, MemoryIssuerState};
use chitty_secrets::issuer::{IssueRequest, Issuer, IssuerError, Revoked, Verdict};
use chitty_secrets::policy::{IssuerSpec, Policy, TargetPolicy};
use chitty_secrets::project::ProjectFiles;
use chitty_secrets::secret::Secret;
use chitty_secrets::targets::memory::{MemoryStore, MemoryTarget};
use chitty_secrets::targets::{self, Remote, Target, TargetId};

use crate::fakes::chitty::{ADMIN_PASSWORD, FakeChitty, SERVICE_TOKEN};
use crate::fakes::cloudflare::{self, FakeCloudflare};
use crate::fakes::github::{self, FakeGithub};

// ---------------------------------------------------------------- targets

/// Adds a secret behind the tool's back: `(name, value)`.
type ByHand = Box<dyn Fn(&str, &str)>;

/// What a place holds under a name, seen from outside.
type Peek = Box<dyn Fn(&str) -> Option<String>>;

/// A backend under test: a working target, one that cannot work (no such
/// place), and a way to add a secret behind the tool's back.
struct Subject {
    target: Box<dyn Target>,
    broken: Box<dyn Target>,
    by_hand: ByHand,
    /// Remote targets give back names, never values.
    remote: bool,
    /// What the place holds under a name, seen from outside, for a remote
    /// target that cannot list ("not supported": `wrangler` via the CLI).
    peek: Option<Peek>,
}

fn value(n: u32) -> Secret {
    Secret::new(format!("conformance_value_{n}_x"))
}

fn pairs(items: &[(&str, u32)]) -> Vec<(String, Secret)> {
    items.iter().map(|(n, v)| (n.to_string(), value(*v))).collect()
}

/// What the target shows for `name`: its value (local) or its presence (remote).
async fn holds(s: &Subject, name: &str, expected: Option<u32>) {
    let address = s.target.address();
    if s.remote {
        assert!(s.target.read(&[name.to_string()]).await.unwrap().is_none(), "{address}: values are write-only");
        let Some(listed) = s.target.list().await.unwrap() else {
            // Listing not supported: what the place holds, seen from outside.
            let peek = s.peek.as_ref().expect("a target that cannot list is looked at from outside");
            assert_eq!(peek(name), expected.map(|v| value(v).expose().to_string()), "{address}: {name}");
            return;
        };
        let present = listed.iter().any(|l| l.name.eq_ignore_ascii_case(name));
        assert_eq!(present, expected.is_some(), "{address}: {name} listed: {present}");
    } else {
        let read = s.target.read(&[name.to_string()]).await.unwrap().expect("a local target reads back");
        let got = read[0].as_ref().map(|v| v.expose().to_string());
        assert_eq!(got, expected.map(|v| value(v).expose().to_string()), "{address}: {name}");
    }
}

async fn target_contract(s: Subject) {
    let address = s.target.address().to_string();
    // Write, then read back / list.
    for (name, result) in s.target.put_many(&pairs(&[("CONF_A", 1), ("CONF_B", 2)])).await {
        assert!(result.is_ok(), "{address}: {name}: {:?}", result.err());
    }
    holds(&s, "CONF_A", Some(1)).await;
    holds(&s, "CONF_B", Some(2)).await;

    // A name the tool did not write survives every write.
    (s.by_hand)("HAND_MADE", "left-alone-value");
    let results = s.target.put_many(&pairs(&[("CONF_A", 3)])).await;
    assert_eq!(results.len(), 1, "{address}: one result per name");
    assert!(results[0].1.is_ok(), "{address}: rewrite: {:?}", results[0].1);
    holds(&s, "CONF_A", Some(3)).await;
    if s.remote {
        match s.target.list().await.unwrap() {
            Some(listed) => assert!(
                listed.iter().any(|l| l.name.eq_ignore_ascii_case("HAND_MADE")),
                "{address}: hand-made secret gone"
            ),
            None => assert!(s.peek.as_ref().unwrap()("HAND_MADE").is_some(), "{address}: hand-made secret gone"),
        }
    } else {
        let read = s.target.read(&["HAND_MADE".into()]).await.unwrap().unwrap();
        assert_eq!(read[0].as_ref().map(|v| v.expose().to_string()).as_deref(), Some("left-alone-value"));
    }

    // An identical rewrite is harmless: still one name, same value.
    assert!(s.target.put_many(&pairs(&[("CONF_A", 3)])).await[0].1.is_ok());
    holds(&s, "CONF_A", Some(3)).await;
    if s.remote
        && let Some(listed) = s.target.list().await.unwrap()
    {
        assert_eq!(listed.iter().filter(|l| l.name.eq_ignore_ascii_case("CONF_A")).count(), 1, "{address}");
    }

    // Delete removes the name, or is refused with an error naming the target.
    match s.target.delete("CONF_B").await {
        Ok(()) => holds(&s, "CONF_B", None).await,
        Err(e) => {
            assert!(!s.remote, "{address}: a remote target must support delete: {e}");
            assert_eq!(e.address.as_str(), address);
            holds(&s, "CONF_B", Some(2)).await;
        }
    }

    // Failure: every name gets an error that names the target and says what happened.
    let broken = s.broken.address().to_string();
    let results = s.broken.put_many(&pairs(&[("CONF_A", 4), ("CONF_C", 5)])).await;
    assert_eq!(results.len(), 2);
    for (name, result) in results {
        let e = result.expect_err(&format!("{broken}: {name} cannot have been written"));
        assert_eq!(e.address.as_str(), broken);
        assert!(!e.message.is_empty());
        assert!(!e.to_string().contains("conformance_value"), "a value leaked into an error: {e}");
    }
}

fn policy_with_targets(targets: &str) -> (tempfile::TempDir, Policy) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.toml"), format!("[tokens.CONF_A]\nissuer = \"random\"\n{targets}"))
        .unwrap();
    let policy = chitty_secrets::policy::load(&dir.path().join("policies")).unwrap();
    (dir, policy)
}

fn targets_of(policy: &Policy) -> Vec<TargetPolicy> {
    policy.tokens["CONF_A"].targets.clone()
}

fn memory_subject(remote: bool) -> Subject {
    let store = Arc::new(MemoryStore::default());
    let down = Arc::new(MemoryStore::default());
    down.take_down("the target is down");
    let hand = store.clone();
    Subject {
        target: Box::new(MemoryTarget::new(TargetId::parse("memory:a").unwrap(), remote, store)),
        broken: Box::new(MemoryTarget::new(TargetId::parse("memory:down").unwrap(), remote, down)),
        by_hand: Box::new(move |n, v| hand.set_by_hand(n, v)),
        remote,
        peek: None,
    }
}

#[tokio::test]
async fn target_memory_local() {
    target_contract(memory_subject(false)).await;
}

#[tokio::test]
async fn target_memory_remote() {
    target_contract(memory_subject(true)).await;
}

#[tokio::test]
async fn target_dotenv() {
    let (dir, policy) = policy_with_targets(
        "[[tokens.CONF_A.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"\n[[tokens.CONF_A.targets]]\nkind = \"dotenv\"\npath = \"blocked/.env\"\n",
    );
    // `blocked` is a file, so nothing can be written beneath it.
    std::fs::write(dir.path().join("blocked"), "not a folder").unwrap();
    let t = targets_of(&policy);
    let env = dir.path().join("app/.env");
    let subject = Subject {
        target: targets::build(&t[0], &ProjectFiles::new(&policy.root), None).unwrap(),
        broken: targets::build(&t[1], &ProjectFiles::new(&policy.root), None).unwrap(),
        by_hand: Box::new(move |n, v| {
            let mut text = std::fs::read_to_string(&env).unwrap_or_default();
            text.push_str(&format!("{n}={v}\n"));
            std::fs::write(&env, text).unwrap();
        }),
        remote: false,
        peek: None,
    };
    target_contract(subject).await;
}

#[tokio::test]
async fn target_github_fake() {
    let fake = FakeGithub::start();
    fake.add_repo("conf/repo");
    let (_dir, policy) = policy_with_targets(
        "[[tokens.CONF_A.targets]]\nkind = \"github\"\nrepo = \"conf/repo\"\n[[tokens.CONF_A.targets]]\nkind = \"github\"\nrepo = \"conf/missing\"\n",
    );
    let remote = Remote::with_vars([
        ("GITHUB_API_URL".to_string(), fake.url()),
        ("GITHUB_TOKEN".to_string(), github::TOKEN.to_string()),
    ])
    .unwrap();
    let t = targets_of(&policy);
    let fake = Arc::new(fake);
    let hand = fake.clone();
    let subject = Subject {
        target: targets::build(&t[0], &ProjectFiles::new(&policy.root), Some(&remote)).unwrap(),
        broken: targets::build(&t[1], &ProjectFiles::new(&policy.root), Some(&remote)).unwrap(),
        by_hand: Box::new(move |n, v| hand.set_by_hand("repo:conf/repo", n, v)),
        remote: true,
        peek: None,
    };
    target_contract(subject).await;
    // The fake opened every seal with its own key: the value is really there.
    assert_eq!(fake.value("repo:conf/repo", "CONF_A").as_deref(), Some(value(3).expose()));
}

#[tokio::test]
async fn target_cloudflare_fake() {
    cloudflare_contract("").await;
}

/// `deploy = "version"`: each write a new version, not deployed; what it
/// lists is the version it made.
#[tokio::test]
async fn target_cloudflare_versions_fake() {
    let fake = cloudflare_contract("deploy = \"version\"\n").await;
    let script = fake.script("conf-worker");
    let ours: Vec<&str> = script.versions.iter().filter(|v| v.message.is_some()).map(|v| v.id.as_str()).collect();
    assert!(ours.len() >= 3, "one version per write: {ours:?}");
    assert!(script.deployment.iter().all(|(id, _)| !ours.contains(&id.as_str())), "a version was deployed");
}

/// A client of the fake Cloudflare, as a run would make it.
fn cloudflare_remote(fake: &FakeCloudflare) -> Remote {
    Remote::with_vars([
        ("CLOUDFLARE_API_BASE_URL".to_string(), fake.url()),
        ("CLOUDFLARE_API_TOKEN".to_string(), cloudflare::TOKEN.to_string()),
        ("CLOUDFLARE_ACCOUNT_ID".to_string(), cloudflare::ACCOUNT.to_string()),
    ])
    .unwrap()
}

async fn cloudflare_contract(options: &str) -> Arc<FakeCloudflare> {
    let fake = FakeCloudflare::start();
    fake.add_script("conf-worker");
    let (_dir, policy) = policy_with_targets(&format!(
        "[[tokens.CONF_A.targets]]\nkind = \"wrangler\"\nworker = \"conf-worker\"\n{options}[[tokens.CONF_A.targets]]\nkind = \"wrangler\"\nworker = \"missing-worker\"\n{options}",
    ));
    let remote = cloudflare_remote(&fake);
    let t = targets_of(&policy);
    let fake = Arc::new(fake);
    let hand = fake.clone();
    let broken = targets::build(&t[1], &ProjectFiles::new(&policy.root), Some(&remote)).unwrap();
    let subject = Subject {
        target: targets::build(&t[0], &ProjectFiles::new(&policy.root), Some(&remote)).unwrap(),
        broken,
        by_hand: Box::new(move |n, v| hand.set_by_hand("conf-worker", n, v)),
        remote: true,
        peek: None,
    };
    target_contract(subject).await;
    assert_eq!(fake.value("conf-worker", "CONF_A").as_deref(), Some(value(3).expose()));
    fake
}

#[tokio::test]
async fn target_pages_fake() {
    let fake = FakeCloudflare::start();
    fake.add_pages_project("conf-site");
    let (_dir, policy) = policy_with_targets(
        "[[tokens.CONF_A.targets]]\nkind = \"pages\"\nproject = \"conf-site\"\n[[tokens.CONF_A.targets]]\nkind = \"pages\"\nproject = \"missing-site\"\n",
    );
    let remote = cloudflare_remote(&fake);
    let t = targets_of(&policy);
    let fake = Arc::new(fake);
    let hand = fake.clone();
    let files = ProjectFiles::new(&policy.root);
    let subject = Subject {
        target: targets::build(&t[0], &files, Some(&remote)).unwrap(),
        broken: targets::build(&t[1], &files, Some(&remote)).unwrap(),
        by_hand: Box::new(move |n, v| hand.pages_set_by_hand("conf-site", "production", n, v)),
        remote: true,
        peek: None,
    };
    target_contract(subject).await;
    assert_eq!(fake.pages_var("conf-site", "production", "CONF_A").map(|v| v.1), Some(value(3).expose().to_string()));
    assert_eq!(fake.pages_var("conf-site", "production", "SITE_NAME").map(|v| v.0), Some("plain_text".into()));
}

#[tokio::test]
async fn target_secrets_store_fake() {
    let fake = FakeCloudflare::start();
    let store = fake.add_store("conf");
    let (_dir, policy) = policy_with_targets(&format!(
        "[[tokens.CONF_A.targets]]\nkind = \"secrets_store\"\nstore = \"{store}\"\n[[tokens.CONF_A.targets]]\nkind = \"secrets_store\"\nstore = \"{}\"\n",
        "0".repeat(32)
    ));
    let remote = cloudflare_remote(&fake);
    let t = targets_of(&policy);
    let fake = Arc::new(fake);
    let hand = fake.clone();
    let files = ProjectFiles::new(&policy.root);
    let at = store.clone();
    let subject = Subject {
        target: targets::build(&t[0], &files, Some(&remote)).unwrap(),
        broken: targets::build(&t[1], &files, Some(&remote)).unwrap(),
        by_hand: Box::new(move |n, v| hand.store_set_by_hand(&at, n, v)),
        remote: true,
        peek: None,
    };
    target_contract(subject).await;
    assert_eq!(fake.store_value(&store, "CONF_A"), Some(value(3).expose().to_string()));
}

/// `wrangler` with `via = "cli"`: the user's logged-in wrangler (here a
/// stand-in that keeps secrets in files); listing is not supported, so
/// what the Worker holds is looked at from outside.
#[tokio::test]
async fn target_wrangler_cli() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("secrets");
    std::fs::create_dir(&store).unwrap();
    let program = dir.path().join("wrangler");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\n# secret put|delete NAME --name SCRIPT [--force]\n[ \"$5\" = conf-worker ] || {{ echo \"no Worker named $5\" >&2; exit 1; }}\nmkdir -p {0}/$5\ncase $2 in put) cat > {0}/$5/$3 ;; delete) rm -f {0}/$5/$3 ;; esac\n",
            store.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (_dir, policy) = policy_with_targets(
        "[[tokens.CONF_A.targets]]\nkind = \"wrangler\"\nworker = \"conf-worker\"\nvia = \"cli\"\n[[tokens.CONF_A.targets]]\nkind = \"wrangler\"\nworker = \"missing-worker\"\nvia = \"cli\"\n",
    );
    let remote = Remote::with_vars([("CHITTY_SECRETS_WRANGLER".to_string(), program.display().to_string())]).unwrap();
    let t = targets_of(&policy);
    let files = ProjectFiles::new(&policy.root);
    let (hand, look) = (store.join("conf-worker"), store.join("conf-worker"));
    let subject = Subject {
        target: targets::build(&t[0], &files, Some(&remote)).unwrap(),
        broken: targets::build(&t[1], &files, Some(&remote)).unwrap(),
        by_hand: Box::new(move |n, v| {
            std::fs::create_dir_all(&hand).unwrap();
            std::fs::write(hand.join(n), v).unwrap();
        }),
        remote: true,
        peek: Some(Box::new(move |n| std::fs::read_to_string(look.join(n)).ok())),
    };
    target_contract(subject).await;
}

// ---------------------------------------------------------------- issuers

/// A backend under test and a view of what it really holds.
struct IssuerSubject {
    issuer: Box<dyn Issuer>,
    /// Whether the service itself holds `value` as a live token.
    live: Box<dyn Fn(&str) -> bool>,
    /// How many tokens the service has minted so far.
    minted: Box<dyn Fn() -> usize>,
    /// Makes the service answer every call with "quota exhausted"; `None`:
    /// the issuer has no quota (an answer it does not have).
    exhaust: Option<Box<dyn Fn()>>,
    /// Whether it can revoke: one that cannot must answer "not supported",
    /// never pretend.
    revokes: bool,
}

fn request(tag: &str) -> IssueRequest<'_> {
    IssueRequest {
        token: "CONF_TOKEN",
        scopes: &[],
        ttl: Some(chrono::TimeDelta::days(30)),
        description: Some("conformance"),
        now: chrono::Utc::now(),
        tag: Some(tag),
    }
}

async fn issuer_contract(s: IssuerSubject) {
    let name = s.issuer.name().to_string();
    let before = (s.minted)();
    let issued = s.issuer.issue(&request("c0ffee01")).await.unwrap();
    assert!(!issued.value.is_empty(), "{name}: an empty token");
    assert_eq!((s.minted)(), before + 1, "{name}: one mint, one token");
    assert!((s.live)(issued.value.expose()), "{name}: the service does not hold what it issued");
    assert!(issued.expires_at.is_some_and(|e| e > chrono::Utc::now()), "{name}: ttl not honoured");

    // Verify is cheap: it never mints.
    assert_eq!(s.issuer.verify(&issued.value).await.unwrap(), Verdict::Valid, "{name}");
    assert!(matches!(s.issuer.verify(&Secret::new("YOUR_TOKEN_HERE_REPLACE_ME")).await.unwrap(), Verdict::Invalid(_)));
    assert_eq!((s.minted)(), before + 1, "{name}: verify minted");

    // Revoke: the service no longer holds it, and verify says so; an
    // issuer that cannot revoke says "not supported".
    match s.issuer.revoke(issued.token_id.as_deref()).await.unwrap() {
        Revoked::Revoked => {
            assert!(s.revokes, "{name}: says it revoked, but it has no revocation");
            assert!(!(s.live)(issued.value.expose()), "{name}: revoked but still live");
            assert!(matches!(s.issuer.verify(&issued.value).await.unwrap(), Verdict::Invalid(_)), "{name}");
        }
        Revoked::NotSupported => assert!(!s.revokes, "{name}: this issuer can revoke"),
    }

    // Quota: a clear, resumable answer; nothing minted.
    let Some(exhaust) = &s.exhaust else { return };
    exhaust();
    let before = (s.minted)();
    match s.issuer.issue(&request("c0ffee02")).await {
        Err(IssuerError::Quota { issuer, .. }) => assert_eq!(issuer, name),
        other => panic!("{name}: expected a quota answer, got {other:?}"),
    }
    assert_eq!((s.minted)(), before, "{name}: minted past its quota");
}

#[tokio::test]
async fn issuer_memory() {
    let state = Arc::new(MemoryIssuerState::default());
    let (live, minted, exhaust) = (state.clone(), state.clone(), state.clone());
    issuer_contract(IssuerSubject {
        issuer: Box::new(MemoryIssuer::new("memory", state.clone())),
        live: Box::new(move |v| live.is_valid(v)),
        minted: Box::new(move || minted.minted.lock().unwrap().len()),
        exhaust: Some(Box::new(move || *exhaust.quota.lock().unwrap() = Some(0))),
        revokes: true,
    })
    .await;
    // "May have issued": the token exists, the caller hears nothing.
    *state.quota.lock().unwrap() = None;
    *state.lose_next_answer.lock().unwrap() = true;
    let issuer = MemoryIssuer::new("memory", state.clone());
    assert!(matches!(issuer.issue(&request("c0ffee03")).await, Err(IssuerError::Uncertain { .. })));
    let last = state.minted.lock().unwrap().last().cloned().unwrap();
    assert!(last.description.unwrap().contains("[chitty-secrets c0ffee03]"), "the tag finds the orphan");
}

fn issuer_spec(kind_fields: &str) -> IssuerSpec {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.toml"), format!("[issuers.conf]\n{kind_fields}")).unwrap();
    chitty_secrets::policy::load(&dir.path().join("policies")).unwrap().issuers["conf"].spec.clone()
}

fn chitty_subject(fake: Arc<FakeChitty>, issuer: Box<dyn Issuer>) -> IssuerSubject {
    let (live, minted, exhaust) = (fake.clone(), fake.clone(), fake);
    IssuerSubject {
        issuer,
        live: Box::new(move |v| live.is_valid(v)),
        minted: Box::new(move || minted.tokens().len()),
        exhaust: Some(Box::new(move || exhaust.state.quota.store(0, std::sync::atomic::Ordering::SeqCst))),
        revokes: true,
    }
}

fn http() -> Http {
    Http::new().unwrap().without_rate_limit_retries()
}

#[tokio::test]
async fn issuer_chittyid_fake() {
    let fake = Arc::new(FakeChitty::start());
    let IssuerSpec::Chittyid(spec) = issuer_spec(&format!(
        "kind = \"chittyid\"\nurl = \"{}\"\nadmin_password_from = \"env:UNUSED\"\nrevoke_path = \"/admin/tokens/{{token_id}}/revoke\"\n",
        fake.url()
    )) else {
        unreachable!()
    };
    let issuer = ChittyidIssuer::new("conf", spec, http(), Ok(Secret::new(ADMIN_PASSWORD)));
    issuer_contract(chitty_subject(fake, Box::new(issuer))).await;
}

#[tokio::test]
async fn issuer_chittyauth_fake() {
    let fake = Arc::new(FakeChitty::start());
    let IssuerSpec::Chittyauth(spec) = issuer_spec(&format!(
        "kind = \"chittyauth\"\nurl = \"{}\"\nchitty_id = \"03-1-USA-1234-P-2601-3-NN\"\nbearer_from = \"env:UNUSED\"\n",
        fake.url()
    )) else {
        unreachable!()
    };
    let issuer = ChittyauthIssuer::new("conf", spec, http(), Ok(Secret::new(SERVICE_TOKEN)));
    issuer_contract(chitty_subject(fake, Box::new(issuer))).await;
}

/// `random`: minted here; nothing to revoke (it retires by expiry), no
/// quota; verify checks the shape.
#[tokio::test]
async fn issuer_random() {
    let spec = issuer_spec("kind = \"random\"\nprefix = \"conf_\"\nbytes = 16\n");
    let issuer = chitty_secrets::issuer::build(
        &chitty_secrets::policy::IssuerPolicy { name: "conf".into(), spec, origin: None },
        Default::default(),
        || unreachable!("a local issuer makes no HTTP client"),
    )
    .unwrap();
    let minted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    issuer_contract(IssuerSubject {
        issuer: Box::new(Counting { inner: issuer, minted: minted.clone() }),
        live: Box::new(|v| v.starts_with("conf_")),
        minted: Box::new(move || minted.load(std::sync::atomic::Ordering::SeqCst)),
        exhaust: None,
        revokes: false,
    })
    .await;
}

/// `command`: a program that mints, one that verifies (value on stdin) and
/// one that revokes (id in CHITTY_TOKEN_ID), against a "service" that is a
/// file of live tokens.
#[tokio::test]
async fn issuer_command() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    std::fs::write(&live, "").unwrap();
    let at = live.display();
    let spec = issuer_spec(&format!(
        "kind = \"command\"\ncommand = [\"sh\", \"-c\", 'id=$(od -An -N8 -tx1 /dev/urandom | tr -d \" \\n\"); echo \"tok_$id\" >> {at}; printf \"{{\\\"token\\\":\\\"tok_%s\\\",\\\"token_id\\\":\\\"%s\\\",\\\"expires_at\\\":\\\"2099-01-01T00:00:00Z\\\"}}\" $id $id']\nverify = [\"sh\", \"-c\", 'read v; grep -qx \"$v\" {at}']\nrevoke = [\"sh\", \"-c\", 'grep -vx \"tok_$CHITTY_TOKEN_ID\" {at} > {at}.new; mv {at}.new {at}']\n"
    ));
    let issuer = chitty_secrets::issuer::build(
        &chitty_secrets::policy::IssuerPolicy { name: "conf".into(), spec, origin: None },
        Default::default(),
        || unreachable!("a command issuer makes no HTTP client"),
    )
    .unwrap();
    let l1 = live.clone();
    let minted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    issuer_contract(IssuerSubject {
        issuer: Box::new(Counting { inner: issuer, minted: minted.clone() }),
        live: Box::new(move |v| std::fs::read_to_string(&l1).unwrap().lines().any(|l| l == v)),
        minted: Box::new(move || minted.load(std::sync::atomic::Ordering::SeqCst)),
        exhaust: None,
        revokes: true,
    })
    .await;
}

/// An issuer whose mints are counted here (a local one has no service to
/// count them).
struct Counting {
    inner: Box<dyn Issuer>,
    minted: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl Issuer for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn issue(&self, request: &IssueRequest<'_>) -> Result<chitty_secrets::issuer::Issued, IssuerError> {
        let issued = self.inner.issue(request).await?;
        self.minted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(issued)
    }

    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError> {
        self.inner.verify(value).await
    }

    async fn revoke(&self, token_id: Option<&str>) -> Result<Revoked, IssuerError> {
        self.inner.revoke(token_id).await
    }
}

/// `manual`: issuing is not supported (a person supplies the value); the
/// answer says so, with what to do.
#[tokio::test]
async fn issuer_manual_says_it_does_not_issue() {
    let spec = issuer_spec("kind = \"manual\"\ninstructions = \"ask the vendor\"\n");
    let issuer = chitty_secrets::issuer::build(
        &chitty_secrets::policy::IssuerPolicy { name: "conf".into(), spec, origin: None },
        Default::default(),
        || unreachable!("a manual issuer makes no HTTP client"),
    )
    .unwrap();
    let e = issuer.issue(&request("c0ffee04")).await.unwrap_err();
    assert!(matches!(e, IssuerError::ManualOnly { .. }), "{e}");
    assert!(e.hint().unwrap().contains("ask the vendor"), "{:?}", e.hint());
    assert_eq!(issuer.revoke(Some("x")).await.unwrap(), Revoked::NotSupported);
}
