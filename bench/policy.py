"""A benchmark policy on stdout: TOKENS random tokens spread over FILES .env
files (`python3 bench/policy.py TOKENS FILES`), for bench/run.sh and
bench/compare.sh."""
import sys

n, files = int(sys.argv[1]), int(sys.argv[2])
print('[issuers.chittyid]\nkind = "random"\nprefix = "mcp_auth_"\nbytes = 16\n')
for i in range(n):
    print(f'[tokens.TOKEN_{i:05d}]\nissuer = "chittyid"\nttl = "365d"\nrotate_every = "90d"\n')
    print(f'[[tokens.TOKEN_{i:05d}.targets]]\nkind = "dotenv"\npath = "env/service{i % files:02d}.env"\n')
