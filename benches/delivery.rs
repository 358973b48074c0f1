//! Delivery benchmark (not a test): 50 secrets to one GitHub repository and
//! one Cloudflare Worker over HTTPS fakes that answer after 20 ms — a first
//! sync, a no-op re-sync (records only) and a `sync --verify` (lists
//! remotes) — and, on the same fakes in the same run, the peers: `gh secret
//! set -f` (GitHub alone) and `wrangler secret bulk` (Cloudflare alone).
//! Reports wall time and request counts.
//!
//!   apt-get install -y gh && npm i --prefix /tmp/wr wrangler@4
//!   WRANGLER=/tmp/wr/node_modules/.bin/wrangler cargo bench --bench delivery
//!
//! A peer that is not installed is skipped and named. Knobs, all optional:
//! `BENCH_ROUNDS=10` (more rounds, steadier means), `BENCH_LATENCY_MS=50`,
//! `BENCH_BIN=path` (another build of the binary, to compare two in
//! alternating runs), `BENCH_LOG=1` or `=all` (the syncs' debug logs, with
//! the bench's spawn and exit times), `BENCH_WRAP="perf stat -o f --"` (the
//! first sync run under a tool).

#[path = "../tests/fakes/mod.rs"]
mod fakes;

use std::process::Command;
use std::time::{Duration, Instant};

use fakes::Faults;
use fakes::cloudflare::{self, FakeCloudflare};
use fakes::github::{self, FakeGithub};

const SECRETS: usize = 50;

fn main() {
    // BENCH_BIN=path: another build of the binary (to compare two).
    let bin = std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_chitty-secrets").to_string());
    let bin = bin.as_str();
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    // BENCH_ROUNDS=15: more rounds, for a steadier mean on a noisy machine.
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let ms = std::env::var("BENCH_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let latency = Faults { latency: Duration::from_millis(ms), ..Faults::default() };
    gh.control.set_faults(latency);
    cf.control.set_faults(latency);
    // The same fakes over HTTPS, as every client here would reach them.
    let (gh_tls, gh_pem) = fakes::serve_tls(gh.addr);
    let (cf_tls, cf_pem) = fakes::serve_tls(cf.addr);
    let scratch = tempfile::tempdir().unwrap();
    let ca = scratch.path().join("ca.pem");
    std::fs::write(&ca, format!("{gh_pem}{cf_pem}")).unwrap();
    let gh_host = format!("127.0.0.1:{}", gh_tls.port());
    let gh_url = format!("https://{gh_host}/api/v3");
    let cf_url = format!("https://127.0.0.1:{}/client/v4", cf_tls.port());

    let mut first = Vec::new();
    let mut noop = Vec::new();
    let mut verify = Vec::new();
    let mut requests = (0, 0, 0);
    let mut peers: (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    let mut peer_requests = (0, 0);
    for round in 0..rounds {
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
        // BENCH_LOG=1: the first round's syncs' debug log (each request and
        // step, timestamped) on stderr, to see where their time goes;
        // BENCH_LOG=all: every round's.
        let log = std::env::var("BENCH_LOG").is_ok_and(|v| v == "all" || round == 0);
        let wrapped = std::cell::RefCell::new(false);
        let run = |args: &[&str]| {
            // BENCH_WRAP="strace -f -tt -o /tmp/sync.strace": the first sync run under a tool.
            let wrap =
                std::env::var("BENCH_WRAP").ok().filter(|_| args == ["sync"] && round == 0 && !*wrapped.borrow());
            let mut cmd = match &wrap {
                Some(wrap) => {
                    *wrapped.borrow_mut() = true;
                    let mut words = wrap.split_whitespace();
                    let mut c = Command::new(words.next().unwrap());
                    c.args(words).arg(bin);
                    c
                }
                None => Command::new(bin),
            };
            let epoch_ms =
                || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() * 1e3;
            let spawned = epoch_ms();
            let out = cmd
                .env("CHITTY_SECRETS_LOG", if log && args == ["sync"] { "trace" } else { "" })
                .args(args)
                .current_dir(dir.path())
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env("CHITTY_SECRETS_NO_KEYRING", "1")
                .env("GITHUB_API_URL", &gh_url)
                .env("GITHUB_TOKEN", github::TOKEN)
                .env("SSL_CERT_FILE", &ca)
                .env("CLOUDFLARE_API_BASE_URL", &cf_url)
                .env("CLOUDFLARE_API_TOKEN", cloudflare::TOKEN)
                .env("CLOUDFLARE_ACCOUNT_ID", cloudflare::ACCOUNT)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            if log && args == ["sync"] {
                eprintln!("BENCH spawned {spawned:.3} exited {:.3}", epoch_ms());
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
            }
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

        // The peers, each on its own repository / Worker, same values.
        let values: Vec<(String, String)> = (0..SECRETS)
            .map(|i| (format!("SECRET_{i:02}"), format!("peer-value-{round}-{i:02}-0123456789abcdef")))
            .collect();
        let peer_repo = format!("acme/peer{round}");
        let peer_script = format!("peer{round}");
        gh.add_repo(&peer_repo);
        cf.add_script(&peer_script);
        let env_file = scratch.path().join("secrets.env");
        std::fs::write(&env_file, values.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>()).unwrap();
        let json_file = scratch.path().join("secrets.json");
        let json: serde_json::Map<String, serde_json::Value> =
            values.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        std::fs::write(&json_file, serde_json::to_string(&json).unwrap()).unwrap();
        let peer = |name: &str, mut cmd: Command, count: &dyn Fn() -> usize| -> Option<(Duration, u64)> {
            gh.control.reset_counts();
            cf.control.reset_counts();
            let start = Instant::now();
            let out = cmd.output().ok()?;
            let elapsed = start.elapsed();
            if !out.status.success() {
                eprintln!(
                    "{name} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                return None;
            }
            assert_eq!(count(), SECRETS, "{name} did not write every secret");
            Some((elapsed, gh.control.total() + cf.control.total()))
        };
        if let Some(gh_bin) = which("gh") {
            let mut cmd = Command::new(gh_bin);
            cmd.args(["secret", "set", "-f"])
                .arg(&env_file)
                .args(["-R", &format!("{gh_host}/{peer_repo}")])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", scratch.path())
                .env("GH_CONFIG_DIR", scratch.path().join("gh"))
                .env("GH_ENTERPRISE_TOKEN", github::TOKEN)
                .env("GH_HOST", &gh_host)
                .env("GH_NO_UPDATE_NOTIFIER", "1")
                .env("SSL_CERT_FILE", &ca);
            let repo_scope = format!("repo:{peer_repo}");
            if let Some(r) = peer("gh secret set -f", cmd, &|| gh.names(&repo_scope).len()) {
                peers.0.push(r.0);
                peer_requests.0 = r.1;
            }
        }
        if let Some(wrangler) = std::env::var_os("WRANGLER").map(std::path::PathBuf::from).or_else(|| which("wrangler"))
        {
            let mut cmd = Command::new(wrangler);
            cmd.args(["secret", "bulk"])
                .arg(&json_file)
                .args(["--name", &peer_script])
                .current_dir(scratch.path())
                .env("CLOUDFLARE_API_BASE_URL", &cf_url)
                .env("CLOUDFLARE_API_TOKEN", cloudflare::TOKEN)
                .env("CLOUDFLARE_ACCOUNT_ID", cloudflare::ACCOUNT)
                .env("NODE_EXTRA_CA_CERTS", &ca)
                .env("WRANGLER_SEND_METRICS", "false")
                .env("HOME", scratch.path());
            if let Some(r) = peer("wrangler secret bulk", cmd, &|| cf.names(&peer_script).len()) {
                peers.1.push(r.0);
                peer_requests.1 = r.1;
            }
        }
    }
    let stats = |v: &[Duration]| {
        let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        format!("mean {mean:7.1} ms, median {:7.1} ms, min {:7.1} ms", ms[ms.len() / 2], ms[0])
    };
    println!("{SECRETS} secrets to one GitHub repo and one Worker, fakes answering after 20 ms, {rounds} rounds:");
    println!("  first sync        {}  ({} requests)", stats(&first), requests.0);
    println!("  no-op re-sync     {}  ({} requests)", stats(&noop), requests.1);
    println!("  sync --verify     {}  ({} requests)", stats(&verify), requests.2);
    let mean = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len().max(1) as f64;
    if peers.0.is_empty() {
        println!("  gh secret set -f  not measured (gh is not installed)");
    } else {
        println!("  gh secret set -f  {}  ({} requests; GitHub alone)", stats(&peers.0), peer_requests.0);
        println!("  first sync / gh secret set -f: {:.2}x", mean(&first) / mean(&peers.0));
    }
    if peers.1.is_empty() {
        println!("  wrangler secret bulk  not measured (set WRANGLER=path/to/wrangler)");
    } else {
        println!("  wrangler secret bulk {}  ({} requests; Cloudflare alone)", stats(&peers.1), peer_requests.1);
    }
    println!("  machine: {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
}

/// A program on PATH.
fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
