//! A testing hook that exists in debug builds only: the process kills
//! itself (SIGKILL) on reaching the point named by
//! `CHITTY_SECRETS_CRASH_AT`, e.g. `after-mint`, `after-deliver`,
//! `before-promote`. The tests use it to prove that a run killed anywhere is
//! finished by the next one. Release builds compile every point to nothing,
//! so no environment variable can make a production binary die half-way.

/// The environment variable naming the point to die at (debug builds only).
#[cfg(debug_assertions)]
pub const CRASH_AT: &str = "CHITTY_SECRETS_CRASH_AT";

/// Dies at once, as `kill -9` would, when the hook names this point.
#[cfg(debug_assertions)]
pub fn point(point: &str) {
    if std::env::var(CRASH_AT).is_ok_and(|p| p == point) {
        let _ = std::process::Command::new("kill").arg("-9").arg(std::process::id().to_string()).status();
        std::process::abort();
    }
}

/// Release builds: nothing.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_point: &str) {}
