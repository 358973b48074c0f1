use super::*;
use crate::registry::{Delivery, DeliveryKey, ValueOrigin, Version};

fn policy(text: &str) -> Policy {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("p.toml"), text).unwrap();
    crate::policy::load(&policies).unwrap()
}

const POLICY: &str = r#"
[tokens.A]
issuer = "random"
rotate_every = "90d"
ttl = "365d"
overlap = "24h"
[[tokens.A.targets]]
kind = "dotenv"
path = "app/.env"
names = ["A", "A_ALIAS"]
"#;

fn now() -> DateTime<Utc> {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn version(id: u32, stage: Stage, created: DateTime<Utc>) -> Version {
    Version {
        id,
        stage,
        issuer: "random".into(),
        issuer_kind: None,
        issuer_url: None,
        token_id: None,
        scopes: vec![],
        created_at: created,
        expires_at: Some(created + TimeDelta::days(365)),
        retire_after: None,
        retired_at: None,
        revoked_at: None,
        origin: ValueOrigin::Issued,
        placeholder: false,
        value: None,
    }
}

fn delivered(meta: &mut TokenMeta, version: u32) {
    for name in ["A", "A_ALIAS"] {
        meta.deliveries.insert(
            DeliveryKey::new(&crate::targets::TargetId::parse("dotenv:app/.env").unwrap(), name),
            Delivery { version, at: now(), remote_updated_at: None, worker_version: None },
        );
    }
}

/// What `rotate --due` would do now.
fn rotate_due(p: &Policy, metas: &BTreeMap<String, TokenMeta>) -> Vec<TokenPlan> {
    plan(p, metas, &Observations::new(), now(), Mode::Rotate { only: &[], due_only: true, emergency: false })
}

/// What `sync` would do now, given what the .env files were seen to hold.
fn sync(p: &Policy, metas: &BTreeMap<String, TokenMeta>, seen: &Observations) -> Vec<TokenPlan> {
    plan(p, metas, seen, now(), Mode::Sync { only: &[] })
}

fn metas(meta: TokenMeta) -> BTreeMap<String, TokenMeta> {
    BTreeMap::from([(meta.name.clone(), meta)])
}

#[test]
fn a_new_token_is_minted_delivered_verified_promoted() {
    let p = policy(POLICY);
    let plans = rotate_due(&p, &BTreeMap::new());
    assert_eq!(plans.len(), 1);
    let steps = &plans[0].steps;
    assert!(matches!(&steps[0], Step::Mint { reason } if reason == "has no value yet"));
    assert!(matches!(&steps[1], Step::Deliver { names, version: None, .. } if names == &["A", "A_ALIAS"]));
    assert_eq!(&steps[2..], &[Step::Verify, Step::Promote]);
}

#[test]
fn nothing_is_due_right_after_a_rotation() {
    let p = policy(POLICY);
    let mut meta = TokenMeta::new("A");
    meta.versions.push(version(1, Stage::Current, now() - TimeDelta::days(1)));
    delivered(&mut meta, 1);
    let plans = rotate_due(&p, &metas(meta.clone()));
    assert!(plans.is_empty(), "{plans:?}");
    let plans = sync(&p, &metas(meta), &Observations::new());
    assert!(plans.is_empty(), "{plans:?}");
}

#[test]
fn due_by_age_and_by_expiry() {
    let p = policy(POLICY);
    let token = p.token("A").unwrap();
    let mut meta = TokenMeta::new("A");
    meta.versions.push(version(1, Stage::Current, now() - TimeDelta::days(91)));
    assert_eq!(due_reason(token, &meta, now()).unwrap(), "v1 is 91d old (rotate_every 90d)");
    meta.versions[0].created_at = now() - TimeDelta::days(10);
    meta.versions[0].expires_at = Some(now() + TimeDelta::days(20));
    assert_eq!(due_reason(token, &meta, now()).unwrap(), "v1 expires in 20d");
    meta.versions[0].expires_at = Some(now() + TimeDelta::days(200));
    assert_eq!(due_reason(token, &meta, now()), None);
}

#[test]
fn a_pending_version_is_resumed_only_where_not_delivered() {
    let p = policy(POLICY);
    let mut meta = TokenMeta::new("A");
    meta.versions.push(version(1, Stage::Current, now() - TimeDelta::days(100)));
    meta.versions.push(version(2, Stage::Pending, now()));
    delivered(&mut meta, 1);
    meta.deliveries.insert(
        DeliveryKey::new(&crate::targets::TargetId::parse("dotenv:app/.env").unwrap(), "A"),
        Delivery { version: 2, at: now(), remote_updated_at: None, worker_version: None },
    );
    let plans = rotate_due(&p, &metas(meta));
    let steps = &plans[0].steps;
    assert!(matches!(&steps[0], Step::Resume { version: 2, .. }));
    assert!(matches!(&steps[1], Step::Deliver { names, version: Some(2), .. } if names == &["A_ALIAS"]));
}

#[test]
fn previous_retires_after_the_overlap() {
    let p = policy(POLICY);
    let mut meta = TokenMeta::new("A");
    let mut old = version(1, Stage::Previous, now() - TimeDelta::days(2));
    old.retire_after = Some(now() - TimeDelta::hours(1));
    meta.versions.push(old);
    meta.versions.push(version(2, Stage::Current, now() - TimeDelta::days(1)));
    let plans = rotate_due(&p, &metas(meta));
    assert!(matches!(&plans[0].steps[..], [Step::Retire { version: 1, .. }]), "{plans:?}");
}

#[test]
fn sync_uses_observations_over_records() {
    let p = policy(POLICY);
    let mut meta = TokenMeta::new("A");
    meta.versions.push(version(1, Stage::Current, now()));
    delivered(&mut meta, 1);
    let mut seen = Observations::new();
    seen.insert(
        ("A".into(), DeliveryKey::new(&crate::targets::TargetId::parse("dotenv:app/.env").unwrap(), "A")),
        Observed::Differs,
    );
    seen.insert(
        ("A".into(), DeliveryKey::new(&crate::targets::TargetId::parse("dotenv:app/.env").unwrap(), "A_ALIAS")),
        Observed::Holds,
    );
    let plans = sync(&p, &metas(meta), &seen);
    assert!(
        matches!(&plans[0].steps[..], [Step::Deliver { names, reason, .. }] if names == &["A"] && reason.contains("differs from the registry")),
        "{plans:?}"
    );
}

#[test]
fn a_previous_version_a_target_still_holds_is_not_retired() {
    let p = policy(POLICY);
    let mut meta = TokenMeta::new("A");
    let mut old = version(1, Stage::Previous, now() - TimeDelta::days(2));
    old.retire_after = Some(now() - TimeDelta::hours(1));
    meta.versions.push(old);
    meta.versions.push(version(2, Stage::Current, now() - TimeDelta::days(1)));
    delivered(&mut meta, 1);
    let plans = rotate_due(&p, &metas(meta.clone()));
    assert!(plans.is_empty(), "{plans:?}");
    let plans = sync(&p, &metas(meta), &Observations::new());
    assert!(matches!(&plans[0].steps[..], [Step::Deliver { version: Some(2), .. }]), "{plans:?}");
}

#[test]
fn renew_fraction_sets_how_early_expiry_makes_a_token_due() {
    let p = policy(&POLICY.replace("overlap = \"24h\"", "overlap = \"24h\"\nrenew_fraction = 0.25"));
    let token = p.token("A").unwrap();
    let mut meta = TokenMeta::new("A");
    meta.versions.push(version(1, Stage::Current, now() - TimeDelta::days(10)));
    meta.versions[0].expires_at = Some(now() + TimeDelta::days(80));
    assert_eq!(due_reason(token, &meta, now()).unwrap(), "v1 expires in 80d");
    meta.versions[0].expires_at = Some(now() + TimeDelta::days(100));
    assert_eq!(due_reason(token, &meta, now()), None);
}

#[test]
fn retirements_are_planned_oldest_first() {
    let p = policy(&POLICY.replace("overlap = \"24h\"", "overlap = \"0s\""));
    let mut meta = TokenMeta::new("A");
    let old = now() - TimeDelta::days(200);
    for (id, stage) in [(1, Stage::Previous), (2, Stage::Previous), (3, Stage::Current)] {
        let mut v = version(id, stage, old);
        v.retire_after = Some(now() - TimeDelta::hours(1));
        meta.versions.push(v);
    }
    let plans = rotate_due(&p, &metas(meta));
    let retired: Vec<u32> = plans[0]
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Retire { version, .. } => Some(*version),
            _ => None,
        })
        .collect();
    assert_eq!(retired, [1, 2, 3], "{plans:?}");
}
