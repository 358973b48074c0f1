#!/usr/bin/env bash
# Benchmark (not a test): `scan --history` against Kingfisher on the same
# generated repository (issue 25). Goal: faster than Kingfisher on 10,000
# commits while searching every version of 1,000 tokens.
#
#   1. A project of 1,000 tokens (bench/policy.py), rotated 3 times: every
#      token has 3 versions (v3 current, v1 and v2 retired), so the
#      registry holds 3,000 values and `scan` searches for all of them.
#   2. A bare repository of 10,000 commits (bench/history.py, through `git
#      fast-import`, then `git repack -adf` as `git gc --aggressive` or a
#      clone would leave it): 600+ text files edited 1-4 at a time, side
#      branches merged every 200 commits (the last 5 left unmerged), about
#      500 commits adding a line with one of the 3,000 values.
#   3. Kingfisher from PyPI (`kingfisher-bin`) in a venv under target/, and
#      hyperfine: `chitty-secrets scan --history REPO` against `kingfisher
#      scan REPO --git-history=full --no-validate` (its built-in rules, no
#      network: the validation and the update check are off), both with
#      their defaults otherwise (Kingfisher: one job per core), both writing
#      JSON to a file; and Kingfisher `--turbo` (no commit metadata, no
#      Base64 decoding: its fastest). Kingfisher looks for its own rules'
#      shapes, not these exact values, so it reports nothing; the point is
#      the time to read every blob of a 10,000-commit history.
#
# Everything generated goes to $BENCH_DIR (default /tmp/chitty-bench-history),
# never into the repository; Kingfisher's venv to target/bench-tools/.
# COMMITS (default 10000) and TOKENS (default 1000) scale it; BIN uses a
# binary you built instead of `cargo build --release`.
#
#   apt-get install -y hyperfine git && bash bench/history.sh
#
# Last run (2-core Xeon VM shared with other builds, load 5; git 2.47,
# Kingfisher 2.14; 10,000 commits, 26,100 blobs, 133 MB; 3,000 values;
# means of 10 runs): chitty-secrets 1.28 s (490 findings); Kingfisher
# 4.10 s = 3.2x (medians 3.0x); Kingfisher --turbo 2.41 s = 1.9x (1.7x).
# The README's Performance section has the table.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/tmp/chitty-bench-history}
commits=${COMMITS:-10000}
tokens=${TOKENS:-1000}
for tool in git hyperfine python3; do
  command -v "$tool" > /dev/null || { echo "error: $tool is missing (apt-get install -y hyperfine git)" >&2; exit 2; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  BIN="$repo/target/release/chitty-secrets"
fi
bin=$(realpath "$BIN")

venv="$repo/target/bench-tools/kingfisher"
if [ ! -x "$venv/bin/kingfisher" ]; then
  echo "== installing Kingfisher (pip install kingfisher-bin) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kingfisher-bin
fi
kingfisher="$venv/bin/kingfisher"

rm -rf "$dir" && mkdir -p "$dir"
dir=$(realpath "$dir")
case "$dir/" in
  "$repo"/*) echo "error: BENCH_DIR must be outside the repository ($repo)" >&2; exit 2 ;;
esac
# The project's commands get a scratch home; cargo keeps the real one.
export HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" CHITTY_SECRETS_NO_KEYRING=1
unset CHITTY_SECRETS_IDENTITY CHITTY_SECRETS_IDENTITY_FILE CHITTY_SECRETS_REGISTRY_ID
mkdir -p "$HOME"

echo "== a registry of $tokens tokens x 3 versions"
mkdir -p "$dir/project/policies"
python3 "$repo/bench/policy.py" "$tokens" 20 > "$dir/project/policies/bench.toml"
cd "$dir/project"
"$bin" init > /dev/null
: > "$dir/values.txt"
for _ in 1 2 3; do
  "$bin" rotate > /dev/null
  # Each version's value while it is current (`run` puts them in the environment).
  "$bin" run -- sh -c env | sed -n 's/^TOKEN_[0-9]*=//p' >> "$dir/values.txt"
done
echo "values: $(sort -u "$dir/values.txt" | wc -l)"

echo "== a repository of $commits commits (git fast-import, git repack -adf)"
git init -q --bare "$dir/history.git"
python3 "$repo/bench/history.py" "$commits" "$dir/values.txt" | git -C "$dir/history.git" fast-import --quiet
git -C "$dir/history.git" repack -a -d -f -q
git -C "$dir/history.git" count-objects -vH | grep -E 'in-pack|size-pack'
echo "commits: $(git -C "$dir/history.git" rev-list --all --count), refs: $(git -C "$dir/history.git" for-each-ref | wc -l)"

echo "== what each scan reports"
set +e
"$bin" scan --history --json "$dir/history.git" > "$dir/ours.json" 2> "$dir/ours.log"
code=$?
set -e
[ "$code" = 3 ] || { echo "error: scan --history exited $code, not 3 (findings)" >&2; exit 1; }
python3 - "$dir/ours.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r['totals']
print(f"chitty-secrets: {len(r['hits'])} findings in {t['commits']} commits, {t['blobs']} blobs, {t['bytes'] / 1e6:.0f} MB; {r['values_searched']} values searched")
PY
"$kingfisher" scan "$dir/history.git" --git-history=full --no-validate --no-update-check -f json -o "$dir/kingfisher.json" > "$dir/kingfisher.log" 2>&1 || true
python3 - "$dir/kingfisher.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['metadata']['summary']
print(f"kingfisher: {r['findings']} findings in {r['blobs_scanned']} blobs, {r['bytes_scanned'] / 1e6:.0f} MB")
PY

echo "== hyperfine"
cd "$dir"
# -N: no shell between hyperfine and the commands; -i: scan exits 3 on findings.
hyperfine -N --warmup 2 --runs "${RUNS:-10}" -i --export-json "$dir/history.json" \
  -n "chitty-secrets scan --history" "$bin --policies $dir/project/policies scan --history --json $dir/history.git" \
  -n "kingfisher --git-history=full" "$kingfisher scan $dir/history.git --git-history=full --no-validate --no-update-check -f json -o $dir/kf.out" \
  -n "kingfisher --turbo" "$kingfisher scan $dir/history.git --git-history=full --no-validate --no-update-check --turbo -f json -o $dir/kf-turbo.out"
python3 - "$dir/history.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['results']
ours = r[0]
for x in r:
    print(f"{x['command']:<32} mean {x['mean']*1000:7.0f} ms  median {x['median']*1000:7.0f} ms  (user {x['user']*1000:.0f} ms, system {x['system']*1000:.0f} ms)")
for x in r[1:]:
    print(f"{x['command']} / chitty-secrets: {x['mean'] / ours['mean']:.2f}x (means), {x['median'] / ours['median']:.2f}x (medians)")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg); $(git --version); kingfisher $("$kingfisher" --version | awk '{print $2}')"
