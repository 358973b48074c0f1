#!/usr/bin/env bash
# Before/after comparison of two chitty-secrets binaries in one run (e.g.
# the registry format before and after authentication: one MAC a file, one
# value file a version). Each binary gets a project and a registry of its
# own, made by itself (each reads only its own format):
#
#   - `status` and `check` on 1,000 tokens over 20 .env files (init +
#     rotate first), both binaries side by side in one hyperfine;
#   - a rotation of 50 tokens into 5 .env files, on a fresh project (init
#     only) made again before every run (hyperfine --prepare); and the
#     fsync/fdatasync/rename/openat counts of one such rotation per binary
#     (strace -f -c);
#   - a summary table: after/before ratios of the means (goal <= 1.10) and
#     the machine.
#
# Both binaries run with the same scratch HOME and XDG_CONFIG_HOME and
# CHITTY_SECRETS_NO_KEYRING=1: the identity is the file
# $XDG_CONFIG_HOME/chitty-secrets/identity.txt that the first `init` makes
# (the second adopts it); CHITTY_SECRETS_IDENTITY(_FILE) are unset so that
# nothing else is picked up. Everything generated goes to $BENCH_DIR
# (default /tmp/chitty-compare), never into the repository.
#
#   apt-get install -y hyperfine strace
#   bash bench/compare.sh BEFORE_BIN AFTER_BIN
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BEFORE_BIN AFTER_BIN" >&2
  exit 2
fi
for tool in hyperfine strace python3; do
  command -v "$tool" > /dev/null || { echo "error: $tool is missing (apt-get install -y hyperfine strace)" >&2; exit 2; }
done
before=$(realpath "$1")
after=$(realpath "$2")
for b in "$before" "$after"; do
  [ -x "$b" ] || { echo "error: $b is not an executable" >&2; exit 2; }
done
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/tmp/chitty-compare}
mkdir -p "$dir"
dir=$(realpath "$dir")
case "$dir/" in
  "$repo"/*) echo "error: BENCH_DIR must be outside the repository ($repo)" >&2; exit 2 ;;
esac
runs=${RUNS:-20}
rm -rf "$dir" && mkdir -p "$dir"
cd "$dir"

export HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" CHITTY_SECRETS_NO_KEYRING=1
unset CHITTY_SECRETS_IDENTITY CHITTY_SECRETS_IDENTITY_FILE CHITTY_SECRETS_REGISTRY_ID
mkdir -p "$HOME"
pins="$XDG_CONFIG_HOME/chitty-secrets/registries.toml"

# project NAME TOKENS FILES: $dir/NAME/policies/bench.toml.
project() {
  mkdir -p "$dir/$1/policies"
  python3 "$repo/bench/policy.py" "$2" "$3" > "$dir/$1/policies/bench.toml"
}

# report JSON: each command's mean (and spread), and the second's over the first's.
report() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['results']
for x in r:
    print(f"  {x['command']:<16} mean {x['mean']*1000:8.1f} ms ± {x['stddev']*1000:5.1f}  (median {x['median']*1000:.1f}, min {x['min']*1000:.1f}, n={len(x['times'])})")
print(f"  after/before: {r[1]['mean'] / r[0]['mean']:.3f} (means), {r[1]['median'] / r[0]['median']:.3f} (medians)")
PY
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "   before: $before ($("$before" --version))"
echo "   after:  $after ($("$after" --version))"

echo "== 1,000 tokens over 20 .env files: init + rotate with each binary"
for side in before after; do
  bin=${!side}
  project "big-$side" 1000 20
  (cd "$dir/big-$side" && "$bin" init > "$dir/big-$side.init.log" 2>&1 && "$bin" rotate > "$dir/big-$side.rotate.log" 2>&1)
  echo "  $side: $(find "$dir/big-$side/.chitty-secrets/tokens" -type f | wc -l) registry files"
done
# Exit codes and output sizes first: a command that fails is not timed.
for cmd in status check; do
  for side in before after; do
    bin=${!side}
    code=0
    "$bin" --policies "$dir/big-$side/policies" $cmd > "$dir/$cmd-$side.out" 2> "$dir/$cmd-$side.err" || code=$?
    echo "  $cmd ($side): exit $code, $(wc -l < "$dir/$cmd-$side.out") lines out, $(wc -l < "$dir/$cmd-$side.err") lines err"
    if [ "$code" -ne 0 ]; then
      echo "error: $side's $cmd failed:" >&2
      head -5 "$dir/$cmd-$side.err" >&2
      exit 1
    fi
  done
done

for cmd in status check; do
  echo "== $cmd, 1,000 tokens (hyperfine -N --warmup 3 --runs $runs)"
  hyperfine -N --warmup 3 --runs "$runs" --export-json "$dir/$cmd.json" \
    -n "$cmd (before)" "$before --policies $dir/big-before/policies $cmd" \
    -n "$cmd (after)" "$after --policies $dir/big-after/policies $cmd" > "$dir/$cmd.hyperfine.txt"
  report "$dir/$cmd.json"
done

echo "== rotate of 50 tokens into 5 .env files, on a fresh project (init only) each run"
mkdir -p "$dir/rotate-policies"
python3 "$repo/bench/policy.py" 50 5 > "$dir/rotate-policies/bench.toml"
# prepare.sh BIN NAME: a fresh project, `init` only, then `status` (the
# after binary remembers a registry's id by its path on first use, as any
# machine that has used the registry does: a new registry at the same path
# is a different one, so the old pin is dropped first).
cat > "$dir/prepare.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
rm -rf "$dir/\$2" && mkdir -p "$dir/\$2"
cp -r "$dir/rotate-policies" "$dir/\$2/policies"
rm -f "$pins"
cd "$dir/\$2" && "\$1" init > /dev/null 2>&1 && "\$1" status > /dev/null 2>&1
SH
hyperfine -N --warmup 3 --runs "$runs" --export-json "$dir/rotate.json" \
  --prepare "bash $dir/prepare.sh $before rot-before" \
  --prepare "bash $dir/prepare.sh $after rot-after" \
  -n "rotate (before)" "$before --policies $dir/rot-before/policies rotate" \
  -n "rotate (after)" "$after --policies $dir/rot-after/policies rotate" > "$dir/rotate.hyperfine.txt"
report "$dir/rotate.json"

echo "== syscalls of one such rotation (strace -f -c -e trace=fsync,fdatasync,rename,openat)"
for side in before after; do
  bin=${!side}
  bash "$dir/prepare.sh" "$bin" "rot-$side"
  strace -f -c -e trace=fsync,fdatasync,rename,openat -o "$dir/strace-$side.txt" \
    "$bin" --policies "$dir/rot-$side/policies" rotate > /dev/null 2>&1
done
python3 - "$dir" <<'PY'
import sys
def counts(path):
    out = {}
    for line in open(path):
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and f[-1] in ('fsync', 'fdatasync', 'rename', 'openat'):
            out[f[-1]] = int(f[3])
    return out
sides = {s: counts(f"{sys.argv[1]}/strace-{s}.txt") for s in ('before', 'after')}
print(f"  {'syscall':<10} {'before':>7} {'after':>7}")
for name in ('fsync', 'fdatasync', 'rename', 'openat'):
    print(f"  {name:<10} {sides['before'].get(name, 0):>7} {sides['after'].get(name, 0):>7}")
open(f"{sys.argv[1]}/strace-summary.txt", 'w').write(repr(sides))
PY

echo "== summary (after/before of the means; goal <= 1.10)"
python3 - "$dir" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY'
import ast, json, sys
d, cores, cpu = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [('status, 1,000 tokens', 'status'), ('check, 1,000 tokens', 'check'), ('rotate, 50 tokens', 'rotate')]
print(f"| {'what':<22} | {'before ms':>9} | {'after ms':>9} | {'ratio':>6} | goal |")
print(f"|{'-'*24}|{'-'*11}|{'-'*11}|{'-'*8}|------|")
for label, name in rows:
    r = json.load(open(f"{d}/{name}.json"))['results']
    b, a = r[0]['mean'], r[1]['mean']
    print(f"| {label:<22} | {b*1000:>9.1f} | {a*1000:>9.1f} | {a/b:>6.3f} | {'ok' if a/b <= 1.10 else 'MISS':<4} |")
s = ast.literal_eval(open(f"{d}/strace-summary.txt").read())
sync = lambda x: x.get('fsync', 0) + x.get('fdatasync', 0)
print(f"| {'fsync+fdatasync, rot.':<22} | {sync(s['before']):>9} | {sync(s['after']):>9} | {sync(s['after'])/max(1, sync(s['before'])):>6.3f} |      |")
print(f"| {'rename, rotation':<22} | {s['before'].get('rename', 0):>9} | {s['after'].get('rename', 0):>9} | {s['after'].get('rename', 0)/max(1, s['before'].get('rename', 0)):>6.3f} |      |")
print(f"machine: {cores} cores, {cpu}")
PY
echo "(raw data: $dir)"
