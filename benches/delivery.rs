//! Delivery benchmark (not a test): 50 secrets to one GitHub repository and
//! one Cloudflare Worker over fakes that answer after 20 ms — a first sync,
//! a no-op re-sync (records only) and a `sync --verify` (lists remotes).
//! Reports wall time and request counts.
//!
//!   cargo bench --bench delivery

#[path = "../tests/fakes/mod.rs"]
mod fakes;

use std::process::Command;
use std::time::{Duration, Instant};

use fakes::Faults;
use fakes::cloudflare::{self, FakeCloudflare};
use fakes::github::{self, FakeGithub};

const SECRETS: usize = 50;
const ROUNDS: usize = 5;

fn main() {
    let bin = env!("CARGO_BIN_EXE_chitty-secrets");
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    let latency = Faults { latency: Duration::from_millis(20), ..Faults::default() };
    gh.control.set_faults(latency);
    cf.control.set_faults(latency);

    let mut first = Vec::new();
    let mut noop = Vec::new();
    let mut verify = Vec::new();
    let mut requests = (0, 0, 0);
    for round in 0..ROUNDS {
        let repo = format!("acme/app{round}");
        let script = format!("api{round}");
        gh.add_repo(&repo);
        cf.add_script(&script);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        let mut policy = String::new();
        for i in 0..SECRETS {
            policy.push_str(&format!("[tokens.SECRET_{i:02}]\nissuer = \"random\"\n"));
        }
        // Mint every value first, with no targets: the timed sync is a pure fan-out.
        std::fs::write(dir.path().join("policies/p.toml"), &policy).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(bin)
                .args(args)
                .current_dir(dir.path())
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env("CHITTY_SECRETS_NO_KEYRING", "1")
                .env("GITHUB_API_URL", gh.url())
                .env("GITHUB_TOKEN", github::TOKEN)
                .env("CLOUDFLARE_API_BASE_URL", cf.url())
                .env("CLOUDFLARE_API_TOKEN", cloudflare::TOKEN)
                .env("CLOUDFLARE_ACCOUNT_ID", cloudflare::ACCOUNT)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["init"]);
        run(&["rotate"]);
        for i in 0..SECRETS {
            policy = policy.replace(
                &format!("[tokens.SECRET_{i:02}]\nissuer = \"random\"\n"),
                &format!(
                    "[tokens.SECRET_{i:02}]\nissuer = \"random\"\n[[tokens.SECRET_{i:02}.targets]]\nkind = \"github\"\nrepo = \"{repo}\"\n[[tokens.SECRET_{i:02}.targets]]\nkind = \"wrangler\"\nworker = \"{script}\"\n"
                ),
            );
        }
        std::fs::write(dir.path().join("policies/p.toml"), &policy).unwrap();

        let timed = |args: &[&str]| {
            gh.control.reset_counts();
            cf.control.reset_counts();
            let start = Instant::now();
            run(args);
            (start.elapsed(), gh.control.total() + cf.control.total())
        };
        let (t, n) = timed(&["sync"]);
        first.push(t);
        requests.0 = n;
        assert_eq!(gh.names(&format!("repo:{repo}")).len(), SECRETS);
        assert_eq!(cf.names(&script).len(), SECRETS);
        let (t, n) = timed(&["sync"]);
        noop.push(t);
        requests.1 = n;
        let (t, n) = timed(&["sync", "--verify"]);
        verify.push(t);
        requests.2 = n;
    }
    let stats = |v: &[Duration]| {
        let ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        let min = ms.iter().cloned().fold(f64::MAX, f64::min);
        format!("mean {mean:7.1} ms, min {min:7.1} ms")
    };
    println!("{SECRETS} secrets to one GitHub repo and one Worker, fakes answering after 20 ms, {ROUNDS} rounds:");
    println!("  first sync        {}  ({} requests)", stats(&first), requests.0);
    println!("  no-op re-sync     {}  ({} requests)", stats(&noop), requests.1);
    println!("  sync --verify     {}  ({} requests)", stats(&verify), requests.2);
    println!("  machine: {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
}
