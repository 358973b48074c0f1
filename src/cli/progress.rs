//! What a long delivery shows while it runs, on stderr. On a terminal: one
//! live line per service (done/total targets, how many in flight, a wait
//! for the service's request budget and until when, the time left). Not on
//! a terminal (CI logs): plain lines — the start, each target as it
//! finishes, each wait of a second or more. With `--json`: nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Progress;
use crate::targets::kind::LOCAL_FILES;

pub type Sink = Box<dyn Fn(Progress<'_>) + Send + Sync>;

/// The display for this process: live, plain, or none.
pub fn sink(json: bool) -> Sink {
    use std::io::IsTerminal;
    if json {
        return crate::engine::quiet();
    }
    if std::io::stderr().is_terminal() { live() } else { plain() }
}

/// One service's line.
struct Service {
    bar: ProgressBar,
    total: u64,
    done: u64,
    in_flight: u64,
    waiting_until: Option<Instant>,
}

impl Service {
    fn refresh(&self) {
        let mut message = format!("{} in flight", self.in_flight);
        if let Some(until) = self.waiting_until.filter(|u| *u > Instant::now()) {
            message.push_str(&format!(", waiting for the request budget until {}", clock(until)));
        }
        self.bar.set_position(self.done);
        self.bar.set_message(message);
    }
}

/// `14:03:07`, the local wall-clock time of `at`.
fn clock(at: Instant) -> String {
    let from_now = at.saturating_duration_since(Instant::now());
    let when = chrono::Local::now() + chrono::TimeDelta::from_std(from_now).unwrap_or_default();
    when.format("%H:%M:%S").to_string()
}

#[derive(Default)]
struct Live {
    multi: Option<MultiProgress>,
    services: BTreeMap<&'static str, Service>,
    /// Each target's service, to count it when it starts and ends.
    service_of: BTreeMap<String, &'static str>,
}

fn live() -> Sink {
    let state = Arc::new(Mutex::new(Live::default()));
    let waits = Arc::clone(&state);
    crate::targets::pacer::on_wait(Box::new(move |service, until| {
        let mut s = waits.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = s.services.get_mut(service) {
            line.waiting_until = Some(until);
            line.refresh();
        }
    }));
    Box::new(move |p| {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        match p {
            Progress::Delivering { targets } => {
                let multi =
                    s.multi.get_or_insert_with(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
                let multi = multi.clone();
                let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
                // Files on this machine are written at once: no line for them.
                for (target, service) in targets.iter().filter(|(_, s)| *s != LOCAL_FILES) {
                    *totals.entry(service).or_default() += 1;
                    s.service_of.insert(target.to_string(), service);
                }
                let style =
                    ProgressStyle::with_template("{prefix:>10} {bar:24} {pos}/{len} targets, {msg}, {eta} left")
                        .unwrap_or_else(|_| ProgressStyle::default_bar());
                for (service, total) in totals {
                    let line = s.services.entry(service).or_insert_with(|| {
                        let bar = multi.add(
                            ProgressBar::new(0)
                                .with_style(style.clone())
                                .with_prefix(service)
                                .with_message("0 in flight"),
                        );
                        bar.enable_steady_tick(Duration::from_millis(250));
                        Service { bar, total: 0, done: 0, in_flight: 0, waiting_until: None }
                    });
                    line.total += total;
                    line.bar.set_length(line.total);
                    line.refresh();
                }
            }
            Progress::TargetStarted(target) => {
                if let Some(service) = s.service_of.get(target.as_str()).copied()
                    && let Some(line) = s.services.get_mut(service)
                {
                    line.in_flight += 1;
                    line.refresh();
                }
            }
            Progress::TargetDone(summary) => {
                if let Some(service) = s.service_of.get(summary.target.as_str()).copied()
                    && let Some(line) = s.services.get_mut(service)
                {
                    line.in_flight = line.in_flight.saturating_sub(1);
                    line.done += 1;
                    line.refresh();
                    // A finished service's line goes: the run's own report
                    // follows on stdout, and must not share its line.
                    if line.done == line.total {
                        line.bar.finish_and_clear();
                    }
                }
            }
        }
    })
}

fn plain() -> Sink {
    // A wait is said once per second it ends in, and only when it is a
    // second or more: a CI log is read later, by a person.
    let said: Arc<Mutex<BTreeMap<&'static str, Instant>>> = Arc::default();
    crate::targets::pacer::on_wait(Box::new(move |service, until| {
        let mut said = said.lock().unwrap_or_else(PoisonError::into_inner);
        let long = until.saturating_duration_since(Instant::now()) >= Duration::from_secs(1);
        let new = said.get(service).is_none_or(|last| until.saturating_duration_since(*last) >= Duration::from_secs(1));
        if long && new {
            said.insert(service, until);
            eprintln!("  waiting for {service}'s request budget until {}", clock(until));
        }
    }));
    let many = std::sync::atomic::AtomicBool::new(false);
    Box::new(move |p| match p {
        Progress::Delivering { targets } => {
            many.store(targets.len() > 1, std::sync::atomic::Ordering::Relaxed);
            if targets.len() > 1 {
                eprintln!("delivering to {} targets…", targets.len());
            }
        }
        Progress::TargetStarted(_) => {}
        Progress::TargetDone(summary) if many.load(std::sync::atomic::Ordering::Relaxed) => {
            eprintln!("  done: {summary}")
        }
        Progress::TargetDone(_) => {}
    })
}
