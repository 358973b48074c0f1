#!/usr/bin/env bash
# Benchmarks (not tests): `status` and `check` on a registry of 1,000 tokens,
# and `scan` throughput on a generated tree of >= 200 MB beside `rg -F -f`
# with the same patterns. Everything generated goes to $BENCH_DIR (default
# /tmp/chitty-bench), never into the repository.
#
#   apt-get install -y hyperfine ripgrep && bash bench/run.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/tmp/chitty-bench}
tokens=${TOKENS:-1000}
tree_mb=${TREE_MB:-210}

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/chitty-secrets"
rm -rf "$dir" && mkdir -p "$dir/project/policies"
cd "$dir/project"
export HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" CHITTY_SECRETS_NO_KEYRING=1

python3 - "$tokens" > policies/bench.toml <<'PY'
import sys
n = int(sys.argv[1])
print('[issuers.chittyid]\nkind = "random"\nprefix = "mcp_auth_"\nbytes = 16\n')
for i in range(n):
    print(f'[tokens.TOKEN_{i:04d}]\nissuer = "chittyid"\nttl = "365d"\nrotate_every = "90d"\n')
    print(f'[[tokens.TOKEN_{i:04d}.targets]]\nkind = "dotenv"\npath = "env/service{i % 20:02d}.env"\n')
PY
"$bin" init > /dev/null
echo "minting and delivering $tokens tokens…"
/usr/bin/time -f "rotate of $tokens tokens: %es" "$bin" rotate > /dev/null

echo "== status and check on $tokens tokens (hyperfine, mean of runs)"
hyperfine --warmup 1 --runs 10 --export-markdown "$dir/registry.md" \
  -n "status" "$bin status" \
  -n "status --json" "$bin status --json" \
  -n "check (no identity)" "env -u XDG_CONFIG_HOME HOME=/nonexistent $bin check" \
  -n "check (identity: compares values)" "$bin check" \
  -n "sync --check" "$bin sync --check"

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
