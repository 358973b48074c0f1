//! A project in a temp dir and a way to run the real binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

pub const BIN: &str = env!("CARGO_BIN_EXE_chitty-secrets");

/// A value planted in tests that must never be printed except by get/run.
pub const CANARY: &str = "canary-9f2c1e7a-never-print-me";

pub struct Project {
    pub dir: tempfile::TempDir,
    /// Every argv this project ran, for the canary check.
    pub argv_log: Mutex<Vec<Vec<String>>>,
}

pub const LOCAL_POLICY: &str = r#"
[issuers.local]
kind = "random"
prefix = "mcp_auth_"
bytes = 16

[tokens.CHITTY_ID_TOKEN]
issuer = "local"
rotate_every = "90d"
ttl = "365d"
overlap = "24h"

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "dotenv"
path = "app/.env"
names = ["CHITTY_ID_TOKEN", "CHITTY_API_KEY"]

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "dotenv"
path = "worker/.dev.vars"

[tokens.SESSION_KEY]
issuer = "random"
rotate_every = "30d"

[[tokens.SESSION_KEY.targets]]
kind = "dotenv"
path = "app/.env"

[tokens.VENDOR_API_KEY]
issuer = "manual"

[[tokens.VENDOR_API_KEY.targets]]
kind = "dotenv"
path = "app/.env"
"#;

impl Project {
    pub fn new(policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/main.toml"), policy).unwrap();
        Project { dir, argv_log: Mutex::new(Vec::new()) }
    }

    /// A project whose registry exists, with an identity in its config dir.
    pub fn initialised(policy: &str) -> Self {
        let p = Project::new(policy);
        p.ok(&["init"]);
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// The value file of `token`'s version `version`, as its metadata names it.
    pub fn value_file(&self, token: &str, version: u32) -> PathBuf {
        let meta: toml::Value = toml::from_str(&self.read(&format!(".chitty-secrets/tokens/{token}.toml"))).unwrap();
        let versions = meta["versions"].as_array().unwrap();
        let v = versions.iter().find(|v| v["id"].as_integer() == Some(version.into())).expect("the version");
        self.path(&format!(".chitty-secrets/tokens/{token}.{}.age", v["value"].as_str().expect("a value file")))
    }

    /// Every value file of `token` (`tokens/NAME.ID.age`), named or not.
    pub fn value_files(&self, token: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path(".chitty-secrets/tokens"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with(&format!("{token}.")) && name.ends_with(".age")
            })
            .collect();
        files.sort();
        files
    }

    pub fn identity_file(&self) -> PathBuf {
        self.path("config/chitty-secrets/identity.txt")
    }

    /// The binary, in the project dir, with a private HOME and no keyring.
    pub fn command(&self, args: &[&str]) -> Command {
        self.argv_log.lock().unwrap().push(args.iter().map(|s| s.to_string()).collect());
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("CHITTY_SECRETS_NO_KEYRING", "1")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs and asserts exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(code(&out), 0, "{args:?} failed:\n{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn text(out: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Whether every outside tool must run (`scripts/test` installs them and
/// sets CHITTY_SECRETS_PARSERS=required): then a missing one fails.
pub fn outside_tools_required() -> bool {
    std::env::var("CHITTY_SECRETS_PARSERS").is_ok_and(|v| v == "required")
}

/// An outside tool that cannot run: a failure where they are required
/// (CI), else skipped and named.
pub fn unavailable<T>(name: &str, why: &str) -> Option<T> {
    assert!(!outside_tools_required(), "{name} cannot run: {why}");
    eprintln!("skipped {name}: {}", why.trim().lines().last().unwrap_or(""));
    None
}

/// The Python with the test tools (PyNaCl, python-dotenv): the venv
/// `scripts/test` makes, or `python3`.
pub fn python() -> String {
    std::env::var("CHITTY_SECRETS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Every file under `dir` with its bytes, for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The value a .env file gives `key`, as dotenvy reads it.
pub fn env_value(path: &Path, key: &str) -> Option<String> {
    dotenvy::from_path_iter(path).unwrap().map(|r| r.unwrap()).find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A `command` issuer made of two scripts in the project: `issue.sh`
/// counts its mints in `minted` and prints a token and its id
/// (`svc_tok_0001_…`, `id-1`); `revoke.sh` appends each revoked id to
/// `revoked`. The `[issuers.cmd]` table that runs them.
pub fn counting_command_issuer(p: &Project) -> String {
    let (minted, revoked) = (p.path("minted"), p.path("revoked"));
    let issue = p.path("issue.sh");
    std::fs::write(
        &issue,
        format!(
            "#!/bin/sh\nn=$(cat {m} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {m}\n\
             printf '{{\"token\":\"svc_tok_%04d_abcdefghijklmnop\",\"token_id\":\"id-%d\"}}\\n' $n $n\n",
            m = minted.display()
        ),
    )
    .unwrap();
    let revoke = p.path("revoke.sh");
    std::fs::write(&revoke, format!("#!/bin/sh\necho \"$CHITTY_TOKEN_ID\" >> {}\n", revoked.display())).unwrap();
    for script in [&issue, &revoke] {
        std::fs::set_permissions(script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    format!(
        "[issuers.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\nrevoke = [\"{}\"]\n",
        issue.display(),
        revoke.display()
    )
}
