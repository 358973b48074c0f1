#!/usr/bin/env bash
# Benchmark (not a test): `scan` time against the length of the values it
# looks for (issue 10, item 18). Each step doubles the value length; linear
# time doubles with it, quadratic time quadruples. Generated data goes to
# $BENCH_DIR (default /tmp/chitty-bench-long), never into the repository.
#
#   apt-get install -y hyperfine && bash bench/long-values.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/tmp/chitty-bench-long}
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/chitty-secrets"
rm -rf "$dir" && mkdir -p "$dir/policies" "$dir/tree"
cd "$dir"
export HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" CHITTY_SECRETS_NO_KEYRING=1
printf '[tokens.LONG]\nissuer = "manual"\n' > policies/p.toml
"$bin" init > /dev/null
args=()
for n in 5000 10000 20000 40000 80000; do
  python3 -c "import random,string; random.seed($n); print(''.join(random.choice(string.ascii_letters) for _ in range($n)))" > "value-$n"
  # 10 versions of this length, and a 50 MB file holding the newest once.
  for _ in 1 2 3 4 5 6 7 8 9 10; do "$bin" set LONG < "value-$n" > /dev/null; done
  mkdir -p "tree/$n"
  python3 -c "import sys; v=open('value-$n').read(); f=open('tree/$n/big.txt','w'); [f.write('filler line of text\n'*4000) for _ in range(600)]; f.write(v)"
  cp -r ".chitty-secrets" "registry-$n"
  args+=(-n "values of $n chars" "$bin --registry registry-$n scan tree/$n")
done
hyperfine --warmup 1 --runs 5 -i "${args[@]}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
