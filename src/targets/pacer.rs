//! Pacing requests to a service's budget: sliding windows (GitHub: 80 a
//! minute and 500 an hour; Cloudflare: 1,200 per 5 minutes), shared by
//! every target of that service in a run, and a deadline past which no
//! request starts (`--max-duration`).

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A service's request budget: at most LIMIT requests in any PERIOD, for
/// every window at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    windows: Vec<(usize, Duration)>,
}

impl Budget {
    /// GitHub's secondary limits on content-creating requests, per token:
    /// about 80 a minute and 500 an hour (`CHITTY_SECRETS_GITHUB_BUDGET`,
    /// e.g. `80/60s,500/3600s`, overrides it; tests compress time).
    pub fn github() -> Self {
        Budget::from_env("CHITTY_SECRETS_GITHUB_BUDGET", "80/60s,500/3600s")
    }

    /// Cloudflare's API limit: 1,200 requests per 5 minutes per token, with
    /// a 5-minute lockout past it (`CHITTY_SECRETS_CLOUDFLARE_BUDGET`).
    pub fn cloudflare() -> Self {
        Budget::from_env("CHITTY_SECRETS_CLOUDFLARE_BUDGET", "1200/300s")
    }

    fn from_env(var: &str, default: &str) -> Self {
        std::env::var(var)
            .ok()
            .and_then(|v| Budget::parse(&v))
            .or_else(|| Budget::parse(default))
            .expect("the default budget parses")
    }

    /// `LIMIT/PERIOD[,LIMIT/PERIOD…]`, periods as `60s`, `1h`, `500ms`.
    pub fn parse(text: &str) -> Option<Budget> {
        let windows = text
            .split(',')
            .map(|w| {
                let (limit, period) = w.trim().split_once('/')?;
                let period = match period.strip_suffix("ms") {
                    Some(ms) => Duration::from_millis(ms.parse().ok()?),
                    None => crate::policy::Dur::parse(period).ok()?.0.to_std().ok()?,
                };
                Some((limit.parse().ok().filter(|l| *l > 0)?, period))
            })
            .collect::<Option<Vec<_>>>()?;
        (!windows.is_empty()).then_some(Budget { windows })
    }

    /// How long until one more write fits in every window, given when the
    /// writes made so far finished (oldest first) and how many are still
    /// in flight; zero when it fits now.
    pub fn wait(&self, finished: &VecDeque<Instant>, in_flight: usize, now: Instant) -> Duration {
        let mut wait = Duration::ZERO;
        for &(limit, period) in &self.windows {
            let inside = finished.iter().rev().take_while(|t| now.duration_since(**t) < period).count();
            let room = limit.saturating_sub(in_flight);
            if room == 0 {
                // Full of writes under way: one of them must finish first.
                wait = wait.max(Duration::from_millis(2));
            } else if inside >= room {
                // The finished write that must leave the window first.
                let leaving = finished[finished.len() - inside + (inside - room)];
                wait = wait.max(period.saturating_sub(now.duration_since(leaving)));
            }
        }
        wait
    }

    /// How many more requests every window takes now, without a wait.
    pub fn room(&self, finished: &VecDeque<Instant>, in_flight: usize, now: Instant) -> usize {
        self.windows
            .iter()
            .map(|&(limit, period)| {
                let inside = finished.iter().rev().take_while(|t| now.duration_since(**t) < period).count();
                limit.saturating_sub(inside + in_flight)
            })
            .min()
            .unwrap_or(0)
    }

    /// The least time `writes` writes take inside every window (writes
    /// themselves taking no time).
    pub fn time_for(&self, writes: usize) -> Duration {
        self.windows
            .iter()
            .map(|&(limit, period)| period * (writes.saturating_sub(1) / limit) as u32)
            .max()
            .unwrap_or_default()
    }

    pub fn longest(&self) -> Duration {
        self.windows.iter().map(|w| w.1).max().unwrap_or_default()
    }
}

/// Who is told when a request waits for a budget (a progress display):
/// the service, and until when. Set once, by the command line.
type WaitObserver = Box<dyn Fn(&'static str, Instant) + Send + Sync>;
static WAITS: OnceLock<WaitObserver> = OnceLock::new();

/// Tells `observe` of every wait for a budget from now on (the first
/// caller's only).
pub fn on_wait(observe: WaitObserver) {
    let _ = WAITS.set(observe);
}

/// Admits requests inside a [`Budget`]. A window holds the requests that
/// finished inside it and every one still under way: the service counts a
/// request when it arrives, some time between the two, so its own window
/// never sees more than the budget.
pub struct Pacer {
    /// Whose budget: `GitHub`, `Cloudflare` (for what a person is shown).
    service: &'static str,
    budget: Budget,
    /// When recent requests finished (oldest first), and how many are under way.
    recent: Mutex<(VecDeque<Instant>, usize)>,
    deadline: OnceLock<Instant>,
}

/// A request that would have to start after the deadline.
#[derive(Debug)]
pub struct PastDeadline;

/// One admitted request; dropping it records when it finished.
pub struct Ticket<'a>(&'a Pacer);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut recent = self.0.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.1 -= 1;
        recent.0.push_back(Instant::now());
    }
}

impl Pacer {
    pub fn new(service: &'static str, budget: Budget) -> Self {
        Pacer { service, budget, recent: Mutex::new((VecDeque::new(), 0)), deadline: OnceLock::new() }
    }

    /// No request starts that would have to wait past `deadline`.
    pub fn stop_at(&self, deadline: Instant) {
        let _ = self.deadline.set(deadline);
    }

    /// How many more requests the budget takes now, without a wait.
    pub fn room(&self) -> usize {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        self.budget.room(&recent.0, recent.1, Instant::now())
    }

    /// Waits until one more request fits every window.
    pub async fn admit(&self) -> Result<Ticket<'_>, PastDeadline> {
        loop {
            let wait = {
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let longest = self.budget.longest();
                while recent.0.front().is_some_and(|t| now.duration_since(*t) >= longest) {
                    recent.0.pop_front();
                }
                let wait = self.budget.wait(&recent.0, recent.1, now);
                if self.deadline.get().is_some_and(|d| now + wait >= *d) {
                    return Err(PastDeadline);
                }
                if wait.is_zero() {
                    recent.1 += 1;
                    return Ok(Ticket(self));
                }
                wait
            };
            tracing::debug!("waiting {} ms for {}'s request budget", wait.as_millis(), self.service);
            if let Some(observe) = WAITS.get() {
                observe(self.service, Instant::now() + wait);
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Duration;

    #[test]
    fn a_write_waits_until_every_window_has_room() {
        let budget = Budget::parse("2/1s,3/10s").unwrap();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut recent = VecDeque::new();
        assert_eq!(budget.wait(&recent, 0, at(0)), Duration::ZERO);
        recent.extend([at(0), at(100)]);
        // The minute-like window is full until the first write is 1 s old.
        assert_eq!(budget.wait(&recent, 0, at(200)), Duration::from_millis(800));
        // One finished and one under way fill it too.
        assert_eq!(budget.wait(&recent.iter().skip(1).copied().collect(), 1, at(200)), Duration::from_millis(900));
        recent.push_back(at(1000));
        // Three in 10 s: the hour-like window waits for the first to leave.
        assert_eq!(budget.wait(&recent, 0, at(1500)), Duration::from_millis(8500));
        assert_eq!(Budget::parse("80/60s,500/3600s").unwrap(), Budget::github());
        assert!(Budget::parse("80").is_none() && Budget::parse("0/1s").is_none());
    }

    #[tokio::test]
    async fn a_pacer_admits_inside_the_budget_and_stops_at_the_deadline() {
        let pacer = Pacer::new("test", Budget::parse("2/200ms").unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            drop(pacer.admit().await.unwrap());
        }
        assert!(start.elapsed() >= Duration::from_millis(190), "the third waited for the window");
        pacer.stop_at(Instant::now() + Duration::from_millis(50));
        drop(pacer.admit().await.ok());
        assert!(pacer.admit().await.is_err(), "a request that would start after the deadline is refused");
    }
}
