//! The engine on in-memory backends: no process, no HTTP, no .env file.

use std::sync::Arc;

use super::memory::MemoryBackends;
use super::*;
use crate::registry::Stage;

const POLICY: &str = r#"
[issuers.mem]
kind = "command"
command = ["unused: the memory backends stand in for every issuer"]

[tokens.T]
issuer = "mem"
ttl = "30d"
overlap = "1h"
[[tokens.T.targets]]
kind = "dotenv"
path = "app/.env"
[[tokens.T.targets]]
kind = "github"
repo = "o/r"
names = ["T", "T_ALIAS"]
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    backends: Arc<MemoryBackends>,
    ws: Workspace,
    /// Progress events as the run told them, in `Debug` form.
    progress: Arc<std::sync::Mutex<Vec<String>>>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.toml"), POLICY).unwrap();
    let policy = crate::policy::load(&dir.path().join("policies")).unwrap();
    let registry = Registry::create(&dir.path().join(".chitty-secrets")).unwrap();
    let key = age::x25519::Identity::generate();
    registry.begin(&key.to_public(), "test", chrono::Utc::now()).unwrap();
    let identity = Identity { key, source: crate::identity::Source::EnvKey };
    let backends = Arc::new(MemoryBackends::default());
    let progress = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ws = Workspace {
        policy,
        registry,
        identity: Some(identity),
        now: "2026-11-29T12:00:00Z".parse().unwrap(),
        lock_timeout: Duration::from_secs(5),
        backends: Box::new(backends.clone()),
        progress: {
            let seen = progress.clone();
            Box::new(move |p| seen.lock().unwrap().push(format!("{p:?}")))
        },
    };
    Fixture { _dir: dir, backends, ws, progress }
}

fn rotate(only: &[String]) -> RunRequest<'_> {
    RunRequest {
        mode: Mode::Rotate { only, due_only: false, emergency: false },
        dry_run: false,
        verify: false,
        prune: false,
        force: false,
        max_duration: None,
        redeliver: false,
    }
}

fn sync() -> RunRequest<'static> {
    RunRequest {
        mode: Mode::Sync { only: &[] },
        dry_run: false,
        verify: false,
        prune: false,
        force: false,
        max_duration: None,
        redeliver: false,
    }
}

fn current_value(f: &Fixture) -> String {
    let meta = f.ws.registry.load("T").unwrap();
    let values = f.ws.registry.load_values(&meta, &f.ws.identity.as_ref().unwrap().key).unwrap();
    values.get(meta.current().unwrap().id).unwrap().expose().to_string()
}

#[tokio::test]
async fn a_rotation_mints_delivers_everywhere_verifies_and_promotes() {
    let f = fixture();
    let report = f.ws.run(rotate(&[])).await.unwrap();
    let outcome = &report.outcomes[0].outcome;
    assert!(matches!(outcome, Outcome::Done { .. }), "{outcome:?}");
    let events = outcome.events();
    assert!(matches!(events[0], Event::Minted { version: 1, .. }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Verified { version: 1, .. })));
    assert!(events.iter().any(|e| matches!(e, Event::Promoted { version: 1 })));
    let value = current_value(&f);
    assert!(f.backends.issuer_state("mem").is_valid(&value));
    for (address, name) in [("dotenv:app/.env", "T"), ("github:o/r", "T"), ("github:o/r", "T_ALIAS")] {
        assert_eq!(f.backends.store(address).value(name).unwrap().expose(), value, "{address} {name}");
    }
    let meta = f.ws.registry.load("T").unwrap();
    assert_eq!(meta.deliveries.len(), 3);
    assert!(meta.deliveries.values().all(|d| d.version == 1));
    // Minted once and verified once: nothing else was asked of the issuer.
    assert_eq!(f.backends.issuer_state("mem").calls(), 2);
    // Progress is told as events, one per finished target, never values.
    let progress = f.progress.lock().unwrap();
    let delivering = progress.iter().find(|p| p.starts_with("Delivering { targets: [")).expect("Delivering");
    assert!(delivering.contains("(\"dotenv:app/.env\", \"files\"), (\"github:o/r\", \"GitHub\")"), "{progress:?}");
    assert_eq!(progress.iter().filter(|p| p.starts_with("TargetStarted")).count(), 2, "{progress:?}");
    assert_eq!(progress.iter().filter(|p| p.starts_with("TargetDone")).count(), 2, "{progress:?}");
    assert!(progress.iter().all(|p| !p.contains(&value)), "no value in progress");
}

#[tokio::test]
async fn a_target_that_fails_leaves_the_new_version_pending_and_the_rerun_finishes() {
    let f = fixture();
    f.ws.run(rotate(&[])).await.unwrap();
    let old = current_value(&f);
    f.backends.store("github:o/r").take_down("GitHub is down");
    let report = f.ws.run(rotate(&[])).await.unwrap();
    let Outcome::Partial { error, hint, .. } = &report.outcomes[0].outcome else {
        panic!("{:?}", report.outcomes[0].outcome)
    };
    assert!(error.contains("GitHub is down") && error.contains("github:o/r"), "{error}");
    assert!(hint.contains("bring the target back"), "the target's own hint is kept: {hint}");
    assert!(hint.contains("v2 is saved as pending"), "{hint}");
    let meta = f.ws.registry.load("T").unwrap();
    assert_eq!(meta.pending().unwrap().id, 2);
    assert_eq!(current_value(&f), old, "the old token stays current");
    assert_eq!(f.backends.store("github:o/r").value("T").unwrap().expose(), old);

    f.backends.store("github:o/r").heal();
    let minted_before = f.backends.issuer_state("mem").minted.lock().unwrap().len();
    let report = f.ws.run(rotate(&[])).await.unwrap();
    assert!(matches!(report.outcomes[0].outcome, Outcome::Done { .. }), "{:?}", report.outcomes[0].outcome);
    assert_eq!(f.backends.issuer_state("mem").minted.lock().unwrap().len(), minted_before, "resumed, not re-minted");
    let meta = f.ws.registry.load("T").unwrap();
    assert_eq!(meta.current().unwrap().id, 2);
    assert_eq!(meta.in_stage(Stage::Previous).unwrap().id, 1);
    assert_eq!(f.backends.store("github:o/r").value("T").unwrap().expose(), current_value(&f));
}

#[tokio::test]
async fn a_lost_mint_answer_is_recorded_as_an_orphan_before_minting_again() {
    let f = fixture();
    *f.backends.issuer_state("mem").lose_next_answer.lock().unwrap() = true;
    let report = f.ws.run(rotate(&[])).await.unwrap();
    assert!(matches!(report.outcomes[0].outcome, Outcome::Partial { .. }), "{:?}", report.outcomes[0].outcome);
    let report = f.ws.run(rotate(&[])).await.unwrap();
    let events = report.outcomes[0].outcome.events();
    assert!(matches!(events[0], Event::OrphanRecorded { .. }), "{events:?}");
    let meta = f.ws.registry.load("T").unwrap();
    assert_eq!(meta.orphans.len(), 1);
    let minted = f.backends.issuer_state("mem").minted.lock().unwrap().clone();
    assert!(minted[0].description.as_deref().unwrap().contains(&meta.orphans[0].tag), "the tag finds the orphan");
}

#[tokio::test]
async fn a_quota_answer_stops_resumably_and_mints_nothing() {
    let f = fixture();
    *f.backends.issuer_state("mem").quota.lock().unwrap() = Some(0);
    let report = f.ws.run(rotate(&[])).await.unwrap();
    let Outcome::Partial { hint, .. } = &report.outcomes[0].outcome else { panic!("{:?}", report.outcomes[0].outcome) };
    assert!(hint.contains("quota"), "{hint}");
    assert!(f.backends.issuer_state("mem").minted.lock().unwrap().is_empty());
    assert!(f.ws.registry.load("T").unwrap().rotation.is_some(), "the rotation stays open");
}

#[tokio::test]
async fn the_overlap_ends_with_a_revocation_and_sync_repairs_a_hand_edit() {
    let mut f = fixture();
    f.ws.run(rotate(&[])).await.unwrap();
    f.ws.run(rotate(&[])).await.unwrap();
    f.ws.now += chrono::TimeDelta::hours(2);
    let due = RunRequest { mode: Mode::Rotate { only: &[], due_only: true, emergency: false }, ..rotate(&[]) };
    let report = f.ws.run(due).await.unwrap();
    let events = report.outcomes[0].outcome.events();
    assert_eq!(events, [Event::Ended { version: 1, stage: Stage::Revoked }], "only the retirement is due");
    let minted = f.backends.issuer_state("mem").minted.lock().unwrap().clone();
    assert!(minted[0].revoked && !minted[1].revoked);

    f.backends.store("dotenv:app/.env").set_by_hand("T", "edited-by-hand");
    let report = f.ws.run(sync()).await.unwrap();
    assert!(matches!(report.outcomes[0].outcome, Outcome::Done { .. }), "{:?}", report.outcomes[0].outcome);
    assert_eq!(f.backends.store("dotenv:app/.env").value("T").unwrap().expose(), current_value(&f));
    let summary = report.targets.iter().find(|t| t.target == "dotenv:app/.env").unwrap();
    assert_eq!((summary.created + summary.updated + summary.written, summary.unchanged), (1, 0));
    // In sync now: the next sync writes nothing.
    let writes = f.backends.store("github:o/r").writes();
    assert!(f.ws.run(sync()).await.unwrap().outcomes.is_empty());
    assert_eq!(f.backends.store("github:o/r").writes(), writes);
}
