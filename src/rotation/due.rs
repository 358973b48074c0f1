//! The one rule for "is this token due for rotation", used by the planner
//! (`rotate --due`, `plan`), `status` and `check`.

use chrono::{DateTime, TimeDelta, Utc};

use crate::policy::{Dur, TokenPolicy};
use crate::registry::TokenMeta;

/// Why a token is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Nothing has been stored yet.
    NoValue,
    /// The current version is older than `rotate_every`.
    Age { version: u32, age: TimeDelta, every: TimeDelta },
    /// The current version has expired.
    Expired { version: u32, ago: TimeDelta },
    /// The current version is in the last `renew_fraction` of its lifetime.
    Expiring { version: u32, left: TimeDelta },
}

impl std::fmt::Display for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Due::NoValue => write!(f, "has no value yet"),
            Due::Age { version, age, every } => {
                write!(f, "v{version} is {} old (rotate_every {})", Dur::human(*age), Dur::human(*every))
            }
            Due::Expired { version, ago } => write!(f, "v{version} expired {} ago", Dur::human(*ago)),
            Due::Expiring { version, left } => write!(f, "v{version} expires in {}", Dur::human(*left)),
        }
    }
}

/// When `token` falls due by the same rule as [`due`]: the earlier of its
/// age reaching `rotate_every` and its renewal window opening. `None` when
/// neither applies (no value yet, or a token that never expires).
pub fn next_due(token: &TokenPolicy, meta: &TokenMeta) -> Option<DateTime<Utc>> {
    let current = meta.current()?;
    let by_age = token.rotate_every.and_then(|every| current.created_at.checked_add_signed(every.0));
    let by_expiry = current.expires_at.map(|expires| {
        let lifetime = token.ttl.map_or(expires.signed_duration_since(current.created_at), |ttl| ttl.0);
        let window = TimeDelta::milliseconds((lifetime.num_milliseconds() as f64 * token.renew_fraction) as i64);
        expires - window
    });
    match (by_age, by_expiry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `token` is due for rotation at `now`, and why.
pub fn due(token: &TokenPolicy, meta: &TokenMeta, now: DateTime<Utc>) -> Option<Due> {
    let Some(current) = meta.current() else {
        return Some(Due::NoValue);
    };
    let age = now.signed_duration_since(current.created_at);
    if let Some(every) = token.rotate_every
        && age >= every.0
    {
        return Some(Due::Age { version: current.id, age, every: every.0 });
    }
    let expires = current.expires_at?;
    // Renew in the last `renew_fraction` of the lifetime (default a tenth;
    // the lifetime is the ttl, or what this version was given).
    let lifetime = token.ttl.map_or(expires.signed_duration_since(current.created_at), |ttl| ttl.0);
    let window = TimeDelta::milliseconds((lifetime.num_milliseconds() as f64 * token.renew_fraction) as i64);
    let left = expires.signed_duration_since(now);
    if left > window {
        return None;
    }
    Some(if left <= TimeDelta::zero() {
        Due::Expired { version: current.id, ago: -left }
    } else {
        Due::Expiring { version: current.id, left }
    })
}
