#!/usr/bin/env bash
# Benchmarks (not tests): every row of the README's performance tables in
# one run — `policy check` at 1,000/2,000/4,000 tokens (linear?), `status`
# and `check` at 1,000 and 10,000 tokens, the fsyncs of a rotation of 50
# tokens into 5 .env files (strace), a rotation of 1,000 tokens (wall
# against CPU), `scan` throughput on a generated tree of >= 200 MB beside
# `rg -F -f` with the same patterns, and the delivery rows (`cargo bench
# --bench delivery`: HTTPS fakes, with `gh` and `wrangler` on the same
# fakes). Everything generated goes to $BENCH_DIR (default
# /tmp/chitty-bench), never into the repository.
#
#   apt-get install -y hyperfine ripgrep strace gh
#   npm install --prefix /tmp/wr wrangler@4   # optional: the wrangler peer
#   WRANGLER=/tmp/wr/node_modules/.bin/wrangler bash bench/run.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/tmp/chitty-bench}
tokens=${TOKENS:-1000}
tree_mb=${TREE_MB:-210}

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/chitty-secrets"
rm -rf "$dir" && mkdir -p "$dir"
# The project's commands get a scratch home; cargo keeps the real one (its
# registry and toolchain live there).
own_home=$HOME
export HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" CHITTY_SECRETS_NO_KEYRING=1

# project NAME TOKENS FILES: a policy of TOKENS random tokens spread over
# FILES .env files, in $dir/NAME.
project() {
  mkdir -p "$dir/$1/policies"
  python3 "$repo/bench/policy.py" "$2" "$3" > "$dir/$1/policies/bench.toml"
}

echo "== policy check: linear in the number of tokens"
for n in 1000 2000 4000; do project "policy$n" "$n" 20; done
hyperfine -N --warmup 3 --runs 20 --export-json "$dir/policy.json" \
  -n "policy check, 1,000 tokens" "$bin --policies $dir/policy1000/policies policy check" \
  -n "policy check, 2,000 tokens" "$bin --policies $dir/policy2000/policies policy check" \
  -n "policy check, 4,000 tokens" "$bin --policies $dir/policy4000/policies policy check" > /dev/null
python3 - "$dir/policy.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['results']
for x in r:
    print(f"{x['command']}: {x['mean']*1000:.1f} ms")
print(f"4,000 / 1,000 tokens: {r[2]['mean'] / r[0]['mean']:.2f}x (goal <= 4.5x)")
PY

echo "== fsyncs: rotate of 50 tokens into 5 .env files (strace -f -c)"
project fsync 50 5
(cd "$dir/fsync" && "$bin" init > /dev/null && strace -f -c -e trace=fsync,fdatasync,rename,openat -o "$dir/strace.txt" "$bin" rotate > /dev/null)
echo "first rotation:"
grep -E "fsync|rename|openat" "$dir/strace.txt" | awk '{print $NF, $4 " calls"}'
# Again: every token has a value to replace (and the one before to retire).
(cd "$dir/fsync" && strace -f -c -e trace=fsync,fdatasync,rename,openat -o "$dir/strace2.txt" "$bin" rotate > /dev/null)
echo "rotation again:"
grep -E "fsync|rename|openat" "$dir/strace2.txt" | awk '{print $NF, $4 " calls"}'
echo "goal: <= 210 for a rotation that retires the values before (4 fsyncs a token + 2 per .env file)"

project project "$tokens" 20
cd "$dir/project"
"$bin" init > /dev/null
echo "== rotate of $tokens tokens: wall against CPU"
/usr/bin/time -f "rotate of $tokens tokens: %e s wall, %U s user + %S s system CPU" "$bin" rotate > /dev/null

echo "== status and check on $tokens tokens (hyperfine, mean of runs)"
hyperfine --warmup 3 --runs 20 --export-markdown "$dir/registry.md" --export-json "$dir/registry.json" \
  -n "status" "$bin status" \
  -n "status --json" "$bin status --json" \
  -n "check (no identity)" "env -u XDG_CONFIG_HOME HOME=/nonexistent $bin check" \
  -n "check (identity: compares values)" "$bin check" \
  -n "sync --check" "$bin sync --check"

if [ "${TEN_THOUSAND:-1}" = 1 ]; then
  echo "== status and check on 10,000 tokens (goal: <= 10x the 1,000-token time)"
  project big 10000 20
  (cd "$dir/big" && "$bin" init > /dev/null && "$bin" rotate > /dev/null)
  hyperfine --warmup 2 --runs 10 --export-json "$dir/big.json" \
    -n "status, 10,000 tokens" "cd $dir/big && $bin status" \
    -n "check (no identity), 10,000 tokens" "cd $dir/big && env -u XDG_CONFIG_HOME HOME=/nonexistent $bin check"
  # Medians: one slow run (another process, the disk) moves a mean of ten.
  python3 - "$dir/registry.json" "$dir/big.json" <<'PY'
import json, sys
small = {r['command']: r['median'] for r in json.load(open(sys.argv[1]))['results']}
big = [r['median'] for r in json.load(open(sys.argv[2]))['results']]
for name, ten in zip(['status', 'check (no identity)'], big):
    print(f"{name}: median {small[name]*1000:.1f} ms at 1,000 tokens, {ten*1000:.1f} ms at 10,000: {ten / small[name]:.1f}x (goal <= 10x)")
PY
fi

echo "== scan: generating a ${tree_mb} MB tree…"
"$bin" run -- sh -c 'env' | sed -n 's/^TOKEN_[0-9]*=//p' | sort -u > "$dir/patterns.txt"
python3 - "$dir/tree" "$tree_mb" "$dir/patterns.txt" <<'PY'
import os, random, sys
root, mb, patterns = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read().split()
random.seed(7)
words = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(random.randint(2, 10))) for _ in range(5000)]
per_file = 512 * 1024
files = mb * 1024 * 1024 // per_file
for i in range(files):
    d = os.path.join(root, f'd{i % 40:02d}', f'e{i % 7}')
    os.makedirs(d, exist_ok=True)
    lines, size = [], 0
    while size < per_file:
        line = ' '.join(random.choices(words, k=12))
        if random.random() < 0.0005:
            line += ' key=' + random.choice(patterns)
        lines.append(line)
        size += len(line) + 1
    with open(os.path.join(d, f'f{i:05d}.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
PY
size=$(du -sb "$dir/tree" | cut -f1)
echo "tree: $((size / 1000000)) MB, $(find "$dir/tree" -type f | wc -l) files, $(wc -l < "$dir/patterns.txt") patterns"
hyperfine --warmup 1 --runs 5 --export-json "$dir/scan.json" --export-markdown "$dir/scan.md" -i \
  -n "chitty-secrets scan" "$bin scan $dir/tree" \
  -n "rg -F -f" "rg -F -c -f $dir/patterns.txt $dir/tree"
python3 - "$dir/scan.json" "$size" <<'PY'
import json, sys
data, size = json.load(open(sys.argv[1])), int(sys.argv[2])
for r in data['results']:
    print(f"{r['command']}: {size / r['mean'] / 1e6:.0f} MB/s (mean {r['mean']*1000:.0f} ms)")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

echo "== delivery: 50 secrets over HTTPS fakes with 20 ms latency, beside gh and wrangler (cargo bench)"
# gh from apt, wrangler from npm (WRANGLER=path); a peer that is missing is named and skipped.
(cd "$repo" && HOME=$own_home cargo bench --quiet --bench delivery | grep -v '^$')
