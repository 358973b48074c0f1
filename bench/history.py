"""A `git fast-import` stream on stdout: a repository's history to scan, for
bench/history.sh (`python3 bench/history.py COMMITS VALUES_FILE | git
fast-import`).

The history: a first commit of 600 text files (source-like lines of random
words, 2-9 KB each), then commits that each edit 1-4 files (a line
replaced, some appended), now and then add a file or delete one; every 200
commits a side branch of 3 commits is merged back (the merge edits a file
of its own), and the last 5 side branches are left unmerged. About 1 commit
in 20 adds a line holding one of the values in VALUES_FILE (one a line:
every version of every token), which later edits may delete again; a few
files are binary (a NUL byte), edited too. COMMITS counts every commit,
merges and side branches included. Deterministic (seeded).
"""
import random
import sys

commits, values = int(sys.argv[1]), open(sys.argv[2]).read().split()
random.seed(25)
out = sys.stdout.buffer
words = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz_') for _ in range(random.randint(2, 10))) for _ in range(5000)]


def line():
    return '    ' + ' '.join(random.choices(words, k=random.randint(4, 12)))


def new_file():
    return [line() for _ in range(random.randint(30, 130))]


mark = 0
when = 1_600_000_000


def blob(content):
    global mark
    mark += 1
    data = content.encode()
    out.write(b'blob\nmark :%d\ndata %d\n' % (mark, len(data)) + data + b'\n')
    return mark


def commit(ref, files, changed, deleted, parents, message):
    """Writes the changed files' blobs and one commit; returns its mark."""
    global mark, when
    marks = {path: blob(files[path]) for path in changed}
    mark += 1
    when += 60
    msg = message.encode()
    out.write(b'commit %s\nmark :%d\n' % (ref.encode(), mark))
    out.write(b'author Bench <bench@example.com> %d +0000\n' % when)
    out.write(b'committer Bench <bench@example.com> %d +0000\n' % when)
    out.write(b'data %d\n' % len(msg) + msg + b'\n')
    if parents:
        out.write(b'from :%d\n' % parents[0])
        for p in parents[1:]:
            out.write(b'merge :%d\n' % p)
    for path in deleted:
        out.write(b'D %s\n' % path.encode())
    for path, m in marks.items():
        out.write(b'M 100644 :%d %s\n' % (m, path.encode()))
    out.write(b'\n')
    return mark


def render(lines, path):
    text = '\n'.join(lines) + '\n'
    return '\0' + text if path.endswith('.bin') else text


# The work tree as lines per path; rendered when written.
tree = {}
for i in range(600):
    ext = '.bin' if i % 100 == 7 else random.choice(['.rs', '.py', '.ts', '.toml', '.md'])
    tree[f'src/m{i % 30:02d}/file{i:04d}{ext}'] = new_file()
made = [0]


def edit(files, state):
    """Edits 1-4 files of `state` (a dict path -> lines); returns (changed, deleted)."""
    changed, deleted = set(), set()
    roll = random.random()
    if roll < 0.05:
        made[0] += 1
        path = f'src/new/n{made[0]:05d}.{random.choice(["rs", "py", "md"])}'
        state[path] = new_file()
        changed.add(path)
    elif roll < 0.06 and len(state) > 100:
        path = random.choice(sorted(state))
        del state[path]
        files.pop(path, None)
        deleted.add(path)
    paths = sorted(state)
    for _ in range(random.randint(1, 4)):
        path = random.choice(paths)
        lines = state[path]
        for _ in range(random.randint(1, 3)):
            lines[random.randrange(len(lines))] = line()
        if random.random() < 0.3:
            lines.append(line())
        if random.random() < 0.02:
            lines.insert(random.randrange(len(lines)), f'    api_key = "{random.choice(values)}"')
        changed.add(path)
    for path in changed:
        files[path] = render(state[path], path)
    return changed - deleted, deleted


files = {p: render(lines, p) for p, lines in tree.items()}
head = commit('refs/heads/main', files, sorted(files), [], [], 'initial import')
n = 1
side_count = 0
while n < commits:
    if n % 200 == 0 and n + 5 <= commits:
        # A side branch of 3 commits from here, merged back unless it is one of the last 5.
        side_count += 1
        side_state = {p: list(lines) for p, lines in tree.items()}
        side_files = dict(files)
        ref = f'refs/heads/feature/f{side_count:03d}'
        side = head
        for k in range(3):
            changed, deleted = edit(side_files, side_state)
            side = commit(ref, side_files, changed, deleted, [side], f'feature {side_count} step {k}')
            n += 1
        if commits - n > 1000:
            # The merge: main's files plus the side's changes, and one edit of its own.
            for path in set(side_state) | set(tree):
                if path not in side_state:
                    continue
                if side_state[path] != tree.get(path):
                    tree[path] = side_state[path]
            for path in [p for p in tree if p not in side_state]:
                del tree[path]
            merged = {p: render(lines, p) for p, lines in tree.items()}
            changed = {p for p in merged if files.get(p) != merged[p]}
            deleted = set(files) - set(merged)
            files = merged
            c2, d2 = edit(files, tree)
            head = commit('refs/heads/main', files, (changed | c2) - (deleted | d2), deleted | d2, [head, side], f'merge feature {side_count}')
            n += 1
        continue
    changed, deleted = edit(files, tree)
    head = commit('refs/heads/main', files, changed, deleted, [head], f'change {n}')
    n += 1
