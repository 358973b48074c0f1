//! Shell completions driven through real shells: the script that
//! `completions SHELL` prints is sourced, and the shell asks the binary
//! for candidates the way it does at a TAB. bash always; zsh and fish when
//! installed (`scripts/test` installs them, and there they must run).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::*;

/// The binary's folder first on PATH: the scripts call `chitty-secrets`.
fn shell(p: &Project, program: &str) -> Command {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let mut path = std::ffi::OsString::from(bin_dir);
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let mut cmd = Command::new(program);
    cmd.current_dir(p.dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", p.path("home"))
        .env("XDG_CONFIG_HOME", p.path("config"))
        .env("XDG_DATA_HOME", p.path("home/.local/share"))
        .env("CHITTY_SECRETS_NO_KEYRING", "1")
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 0, "{cmd:?}:\n{}", text(&out));
    out
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Sources `completions bash` in a real bash, finds the function it
/// registered for chitty-secrets (`complete -p`), and calls it as bash's
/// programmable completion does for `line` with the cursor at its end
/// (a trailing space starts a new, empty word). Returns COMPREPLY and stderr.
fn bash_at(p: &Project, line: &str) -> (Vec<String>, String) {
    let script = r#"
source <(chitty-secrets completions bash) || exit 9
spec=$(complete -p chitty-secrets) || exit 8
fn=${spec#*-F }; fn=${fn%% *}
COMP_LINE=$LINE; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
"$fn" chitty-secrets "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut cmd = shell(p, "bash");
    cmd.args(["--noprofile", "--norc", "-c", script]).env("LINE", line);
    let out = run(cmd);
    let mut reply = lines(&out);
    reply.retain(|l| !l.is_empty());
    (reply, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn bash(p: &Project, line: &str) -> Vec<String> {
    let (reply, stderr) = bash_at(p, line);
    assert!(stderr.is_empty(), "`{line}`: stderr: {stderr}");
    reply
}

fn has(reply: &[String], wanted: &[&str]) -> bool {
    wanted.iter().all(|w| reply.iter().any(|r| r == w))
}

/// The upstream static script never got past the subcommand
/// (clap-rs/clap#6421): options, values and token names did not complete.
#[test]
fn bash_completes_commands_options_and_token_names() {
    let p = Project::new(LOCAL_POLICY);
    assert_eq!(bash(&p, "chitty-secrets ro"), ["rotate"]);
    let top = bash(&p, "chitty-secrets ");
    assert!(has(&top, &["init", "rotate", "sync", "get", "completions", "man"]), "{top:?}");
    assert!(!top.iter().any(|c| c == "help"), "the parser has no `help` command: {top:?}");

    let options = bash(&p, "chitty-secrets rotate --");
    assert!(has(&options, &["--dry-run", "--emergency", "--due", "--policies"]), "{options:?}");
    assert_eq!(bash(&p, "chitty-secrets rotate --dry"), ["--dry-run"]);

    assert_eq!(bash(&p, "chitty-secrets rotate CH"), ["CHITTY_ID_TOKEN"]);
    let more = bash(&p, "chitty-secrets rotate CHITTY_ID_TOKEN ");
    assert!(has(&more, &["SESSION_KEY", "VENDOR_API_KEY"]), "a second token: {more:?}");
    assert_eq!(bash(&p, "chitty-secrets rotate --emergency S"), ["SESSION_KEY"]);
    assert_eq!(bash(&p, "chitty-secrets sync S"), ["SESSION_KEY"]);
    assert_eq!(bash(&p, "chitty-secrets set V"), ["VENDOR_API_KEY"]);
    assert_eq!(bash(&p, "chitty-secrets run --only V"), ["VENDOR_API_KEY"]);
    assert_eq!(bash(&p, "chitty-secrets import --only S"), ["SESSION_KEY"]);
    // `get` also takes the names targets receive a token under.
    assert_eq!(bash(&p, "chitty-secrets get CHITTY_"), ["CHITTY_API_KEY", "CHITTY_ID_TOKEN"]);
    assert_eq!(bash(&p, "chitty-secrets set CHITTY_"), ["CHITTY_ID_TOKEN"], "set takes token names only");

    // Values: enums, stages, paths.
    let shells = bash(&p, "chitty-secrets completions ");
    assert!(has(&shells, &["bash", "elvish", "fish", "powershell", "zsh"]), "{shells:?}");
    assert_eq!(bash(&p, "chitty-secrets completions p"), ["powershell"]);
    assert_eq!(bash(&p, "chitty-secrets get CHITTY_ID_TOKEN --which p"), ["pending", "previous"]);
    assert_eq!(bash(&p, "chitty-secrets check --fail-on e"), ["error"]);
    assert_eq!(bash(&p, "chitty-secrets --policies pol"), ["policies/"]);
}

/// Token names come from the policies only: no identity is needed (none
/// is configured here), no value is printed, the registry is not touched,
/// and nothing is said on stderr.
#[test]
fn token_names_need_no_identity_and_never_show_a_value() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let value = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    let value = value.trim();
    assert!(value.len() > 16, "{value}");
    let before = snapshot(&p.path(".chitty-secrets"));
    std::fs::rename(p.path("config"), p.path("config-away")).unwrap();

    for line in ["chitty-secrets get ", "chitty-secrets rotate ", "chitty-secrets run --only ", "chitty-secrets get C"]
    {
        let (reply, stderr) = bash_at(&p, line);
        assert!(reply.iter().any(|r| r == "CHITTY_ID_TOKEN"), "`{line}`: {reply:?}");
        assert!(stderr.is_empty(), "`{line}`: {stderr}");
        assert!(!reply.iter().any(|r| r.contains(value)), "`{line}` printed the value");
    }
    let fish_like = shell(&p, BIN)
        .args(["--", "chitty-secrets", "get", ""])
        .env("CHITTY_SECRETS_COMPLETE", "fish")
        .output()
        .unwrap();
    assert_eq!(code(&fish_like), 0, "{}", text(&fish_like));
    assert!(!text(&fish_like).contains(value), "the help lines printed the value");
    assert_eq!(snapshot(&p.path(".chitty-secrets")), before, "completion wrote to the registry");
}

/// No project, broken policies: no token names, no message; the rest
/// still completes. `--policies DIR` on the line is where names come from.
#[test]
fn token_names_are_silent_without_policies_and_follow_the_policies_flag() {
    let p = Project::new(LOCAL_POLICY);
    std::fs::create_dir_all(p.path("elsewhere/policies")).unwrap();
    std::fs::write(p.path("elsewhere/policies/other.toml"), "[tokens.OTHER_TOKEN]\nissuer = \"random\"\n").unwrap();
    assert_eq!(bash(&p, "chitty-secrets --policies elsewhere/policies rotate O"), ["OTHER_TOKEN"]);
    assert_eq!(bash(&p, "chitty-secrets rotate --policies=elsewhere/policies O"), ["OTHER_TOKEN"]);
    assert_eq!(bash(&p, "chitty-secrets rotate O"), Vec::<String>::new(), "this project has no OTHER_TOKEN");
    assert_eq!(bash(&p, "chitty-secrets --policies nowhere rotate C"), Vec::<String>::new());

    std::fs::write(p.path("policies/broken.toml"), "[tokens.BROKEN\n").unwrap();
    assert_eq!(bash(&p, "chitty-secrets rotate C"), Vec::<String>::new(), "no names from broken policies");
    assert_eq!(bash(&p, "chitty-secrets rotate --dry"), ["--dry-run"], "options still complete");

    let empty = Project::new(LOCAL_POLICY);
    std::fs::remove_dir_all(empty.path("policies")).unwrap();
    assert_eq!(bash(&empty, "chitty-secrets rotate C"), Vec::<String>::new());
    assert_eq!(bash(&empty, "chitty-secrets rot"), ["rotate"]);
}

/// A shell that the tests need but that is not installed: skipped here,
/// a failure where outside tools are required (`scripts/test`, CI).
fn installed(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found || unavailable::<()>(program, "not installed (scripts/test installs it)").is_some()
}

/// A real interactive zsh in a pseudo-terminal (zsh/zpty): each line is
/// typed with a TAB, then the line is printed, so what the TAB inserted is
/// read back. `setup` loads the completions.
fn zsh_tab(p: &Project, setup: &str, typed: &[&str]) -> Vec<String> {
    let script = r#"
zmodload zsh/zpty || exit 7
zpty z zsh -f -i
zpty -w z "bindkey -e; PS1='%% '; $SETUP"
for typed in "${(@f)TYPED}"; do
    zpty -w -n z "$typed"$'\t'
    # Back to the start of the line and print it (R$((6*7)) prints as R42,
    # so the echo of the keys is never taken for the result).
    zpty -w z $'\C-aprint -r -- R$((6*7)) '
    out=
    for i in {1..600}; do
        zpty -rt z chunk && out+=$chunk
        [[ $out == *$'\n'R42\ * ]] && break
        sleep 0.05
    done
    line=${${out##*$'\n'R42 }%%$'\r'*}
    print -r -- "$line"
done
zpty -d z
"#;
    let mut cmd = shell(p, "zsh");
    cmd.args(["-f", "-c", script]).env("SETUP", setup).env("TYPED", typed.join("\n"));
    lines(&run(cmd)).into_iter().map(|l| l.trim_end().to_string()).collect()
}

#[test]
fn zsh_completes_at_a_real_tab() {
    if !installed("zsh") {
        return;
    }
    let p = Project::new(LOCAL_POLICY);
    let typed =
        ["chitty-secrets ro", "chitty-secrets rotate --dry", "chitty-secrets rotate CH", "chitty-secrets get CHITTY_A"];
    let want = [
        "chitty-secrets rotate",
        "chitty-secrets rotate --dry-run",
        "chitty-secrets rotate CHITTY_ID_TOKEN",
        "chitty-secrets get CHITTY_API_KEY",
    ];
    let sourced = "autoload -Uz compinit; compinit -u -D; source <(chitty-secrets completions zsh)";
    assert_eq!(zsh_tab(&p, sourced, &typed), want, "sourced in .zshrc");

    // Installed as `_chitty-secrets` in fpath, as from a release archive:
    // the first TAB completes (clap's script alone only registered then).
    std::fs::create_dir_all(p.path("home/zfunc")).unwrap();
    std::fs::write(p.path("home/zfunc/_chitty-secrets"), p.ok(&["completions", "zsh"])).unwrap();
    let fpath = format!("fpath=({} $fpath); autoload -Uz compinit; compinit -u -D", p.path("home/zfunc").display());
    assert_eq!(zsh_tab(&p, &fpath, &typed[2..]), want[2..], "from fpath");
}

/// fish: `complete -C` asks the registered completion for a command line.
#[test]
fn fish_completes_commands_options_and_token_names() {
    if !installed("fish") {
        return;
    }
    let p = Project::new(LOCAL_POLICY);
    let ask = |line: &str| -> Vec<String> {
        let mut cmd = shell(&p, "fish");
        cmd.args(["--no-config", "-c", "chitty-secrets completions fish | source; complete -C $argv[1]", line]);
        let out = run(cmd);
        assert!(out.stderr.is_empty(), "`{line}`: {}", text(&out));
        lines(&out).into_iter().map(|l| l.split('\t').next().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(ask("chitty-secrets ro"), ["rotate"]);
    let options = ask("chitty-secrets rotate --");
    assert!(has(&options, &["--dry-run", "--emergency"]), "{options:?}");
    assert_eq!(ask("chitty-secrets rotate CH"), ["CHITTY_ID_TOKEN"]);
    assert_eq!(ask("chitty-secrets get CHITTY_"), ["CHITTY_API_KEY", "CHITTY_ID_TOKEN"]);
    // The same file, installed where fish looks for completions by name.
    std::fs::create_dir_all(p.path("config/fish/completions")).unwrap();
    std::fs::write(p.path("config/fish/completions/chitty-secrets.fish"), p.ok(&["completions", "fish"])).unwrap();
    let mut cmd = shell(&p, "fish");
    cmd.args(["-c", "complete -C 'chitty-secrets rotate --dry'"]);
    assert_eq!(lines(&run(cmd))[0].split('\t').next(), Some("--dry-run"), "autoloaded from ~/.config/fish/completions");
}

/// No elvish or PowerShell here: their scripts name the binary and the
/// protocol, and the binary answers that protocol for them.
#[test]
fn elvish_and_powershell_scripts_call_the_binary() {
    let p = Project::new(LOCAL_POLICY);
    let elvish = p.ok(&["completions", "elvish"]);
    assert!(elvish.contains("set edit:completion:arg-completer[chitty-secrets]"), "{elvish}");
    assert!(elvish.contains("CHITTY_SECRETS_COMPLETE=\"elvish\" chitty-secrets --"), "{elvish}");
    let powershell = p.ok(&["completions", "powershell"]);
    assert!(powershell.contains("Register-ArgumentCompleter -Native -CommandName chitty-secrets"), "{powershell}");
    assert!(powershell.contains("$env:CHITTY_SECRETS_COMPLETE = \"powershell\""), "{powershell}");
    assert!(powershell.contains("& chitty-secrets -- $args"), "{powershell}");
    // What those scripts then run: elvish passes the index, PowerShell the line.
    for (shell_name, index) in [("elvish", Some("2")), ("powershell", None)] {
        let mut cmd = p.command(&["--", "chitty-secrets", "rotate", "CH"]);
        cmd.env("CHITTY_SECRETS_COMPLETE", shell_name);
        if let Some(index) = index {
            cmd.env("_CLAP_COMPLETE_INDEX", index).env("_CLAP_IFS", "\n");
        }
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 0, "{shell_name}: {}", text(&out));
        assert_eq!(lines(&out)[0].split('\t').next(), Some("CHITTY_ID_TOKEN"), "{shell_name}: {}", text(&out));
    }
    // The variable's name is the tool's own: a stray COMPLETE=… in the
    // environment (another tool's) does not turn a command into completion.
    let out = p.command(&["policy", "check"]).env("COMPLETE", "bash").output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    // An unknown shell is said, with the ones there are.
    let out = p.command(&[]).env("CHITTY_SECRETS_COMPLETE", "tcsh").output().unwrap();
    assert_ne!(code(&out), 0);
    assert!(text(&out).contains("unknown shell `tcsh`"), "{}", text(&out));
}
