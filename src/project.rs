//! The project's own files, and where a `.env` target may write.
//!
//! A `.env` target writes plaintext values, so it must land inside the
//! project and never in a file the tool itself owns (the registry, the
//! policies, an identity file). Paths are compared after following
//! symlinks: `app/.env` may be a link to a shared file inside the project
//! (it is edited in place, atomically, beside its real location), but not to
//! one outside it, and `app` may not be a link that leads out.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ProjectFiles {
    /// The project root, resolved (symlinks followed).
    root: PathBuf,
    /// Resolved paths the tool owns, and what each is, for messages.
    owned: Vec<(PathBuf, &'static str)>,
}

impl ProjectFiles {
    pub fn new(root: &Path) -> Self {
        ProjectFiles { root: resolve(root), owned: Vec::new() }
    }

    /// Adds a file or folder no target may write into.
    pub fn owning(mut self, path: &Path, what: &'static str) -> Self {
        self.owned.push((resolve(path), what));
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real file a target at `path` writes: the file itself, or the
    /// file its symlink points to. Refused when that leads outside the
    /// project or into a file the tool owns.
    pub fn place(&self, path: &Path) -> Result<PathBuf, String> {
        let real = resolve(path);
        if !real.starts_with(&self.root) {
            return Err(format!(
                "{} leads outside the project (to {}) through a symbolic link",
                path.display(),
                real.display()
            ));
        }
        if let Some((_, what)) = self.owned.iter().find(|(owned, _)| real.starts_with(owned)) {
            return Err(format!(
                "{} is inside {what}, which chitty-secrets keeps: a value written there would end up in it",
                path.display()
            ));
        }
        // Git's own files: its folder (config, hooks, objects) and the files
        // it reads from the work tree. A value there is committed, or breaks git.
        let inside_git =
            |p: &Path| p.strip_prefix(&self.root).unwrap_or(p).components().any(|c| c.as_os_str() == ".git");
        let gits_own = real
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| [".gitignore", ".gitattributes", ".gitmodules", ".mailmap"].contains(&n));
        if inside_git(&real) || inside_git(path) || gits_own {
            return Err(format!(
                "{} is git's own file: a value written there is committed, or breaks git",
                path.display()
            ));
        }
        Ok(real)
    }
}

/// Whether `path` is absent and git ignores it: a delivered .env file on a
/// fresh clone (a CI runner), which is "not on this machine", not missing.
/// Without git, or outside a repository, nothing is taken as ignored.
pub fn absent_and_ignored(path: &Path) -> bool {
    if path.exists() {
        return false;
    }
    let Some(dir) = path.parent().and_then(|d| d.ancestors().find(|a| a.is_dir())) else { return false };
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["check-ignore", "-q", "--no-index"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `path` made absolute with every symlink followed, also where the path
/// (or its end) does not exist yet: the longest existing part is resolved by
/// the file system and the rest appended with `.`/`..` applied.
pub fn resolve(path: &Path) -> PathBuf {
    resolve_within(path, 40)
}

fn resolve_within(path: &Path, links_left: u32) -> PathBuf {
    let absolute =
        if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    if let Ok(real) = absolute.canonicalize() {
        return real;
    }
    // A dangling link at the end: where it points, resolved in turn.
    if links_left > 0
        && let Ok(target) = std::fs::read_link(&absolute)
    {
        let base = absolute.parent().unwrap_or(Path::new("/"));
        return resolve_within(&base.join(target), links_left - 1);
    }
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) if parent != absolute => resolve_within(parent, links_left).join(name),
        _ => lexical(&absolute),
    }
}

/// `.` and `..` applied without the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_inside_are_followed_and_links_out_or_into_owned_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        let outside = dir.path().join("elsewhere");
        for d in [root.join("app"), root.join("shared"), root.join(".chitty-secrets"), outside.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(root.join("shared/common.env"), "A=1\n").unwrap();
        symlink(root.join("shared/common.env"), root.join("app/.env")).unwrap();
        symlink(&outside, root.join("out")).unwrap();
        symlink("../.chitty-secrets/recipients", root.join("app/.dev.vars")).unwrap();
        let files = ProjectFiles::new(&root).owning(&root.join(".chitty-secrets"), "the registry");

        let real = files.place(&root.join("app/.env")).unwrap();
        assert_eq!(real, resolve(&root.join("shared/common.env")));
        assert_eq!(files.place(&root.join("new/dir/.env")).unwrap(), resolve(&root).join("new/dir/.env"));
        let out = files.place(&root.join("out/.env")).unwrap_err();
        assert!(out.contains("leads outside the project"), "{out}");
        // A dangling link into the registry is caught before the file exists.
        let owned = files.place(&root.join("app/.dev.vars")).unwrap_err();
        assert!(owned.contains("inside the registry"), "{owned}");
        assert!(files.place(&root.join("app/../.chitty-secrets/tokens/A.toml")).is_err());
    }
}

/// The project file at a project's root: which policies go with which
/// registry. `init` writes it; every command finds it by walking up from
/// the current folder, as git and cargo do.
pub const PROJECT_FILE: &str = "chitty-secrets.toml";

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFileFields {
    #[serde(default = "default_policies")]
    policies: PathBuf,
    #[serde(default = "default_registry")]
    registry: PathBuf,
}

fn default_policies() -> PathBuf {
    PathBuf::from("policies")
}
fn default_registry() -> PathBuf {
    PathBuf::from(".chitty-secrets")
}

/// Where a command's policies and registry are, and how that was decided.
#[derive(Debug, Clone)]
pub struct Located {
    pub policies: PathBuf,
    pub registry: PathBuf,
    /// The project file used, if one was found.
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("no chitty-secrets project here: looked for {PROJECT_FILE} in {}, and for a policies/ folder in {}", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "), .cwd.display())]
    NotFound { cwd: PathBuf, searched: Vec<PathBuf> },
    #[error("{path}: {why}")]
    Bad { path: PathBuf, why: String },
}

impl LocateError {
    pub fn hint(&self) -> &'static str {
        match self {
            LocateError::NotFound { .. } => {
                "run the command inside a project (the folder with chitty-secrets.toml or policies/), or create policies/*.toml and run `chitty-secrets init` there"
            }
            LocateError::Bad { .. } => {
                "the file holds `policies = \"DIR\"` and `registry = \"DIR\"`, both relative to it"
            }
        }
    }
}

/// Finds the project from `cwd`: the nearest `chitty-secrets.toml` in it
/// or a folder above; failing that, `cwd` itself when it has a `policies/`
/// folder (a project made before project files existed).
pub fn locate(cwd: &Path) -> Result<Located, LocateError> {
    let mut searched = Vec::new();
    for dir in cwd.ancestors() {
        let file = dir.join(PROJECT_FILE);
        searched.push(dir.to_path_buf());
        if file.is_file() {
            return read_project_file(&file);
        }
    }
    if cwd.join("policies").is_dir() {
        return Ok(Located { policies: cwd.join("policies"), registry: cwd.join(".chitty-secrets"), file: None });
    }
    Err(LocateError::NotFound { cwd: cwd.to_path_buf(), searched })
}

fn read_project_file(file: &Path) -> Result<Located, LocateError> {
    let bad = |why: String| LocateError::Bad { path: file.to_path_buf(), why };
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let fields: ProjectFileFields = toml::from_str(&text).map_err(|e| bad(e.message().trim().to_string()))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    for (name, path) in [("policies", &fields.policies), ("registry", &fields.registry)] {
        if path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(bad(format!("`{name}` must be a folder inside the project, relative to this file")));
        }
    }
    Ok(Located {
        policies: dir.join(fields.policies),
        registry: dir.join(fields.registry),
        file: Some(file.to_path_buf()),
    })
}

/// The text `init` writes.
pub fn project_file_text(policies: &Path, registry: &Path) -> String {
    format!(
        "# A chitty-secrets project: these policies go with this registry.\n# Commands find this file from any folder below it.\npolicies = \"{}\"\nregistry = \"{}\"\n",
        policies.display(),
        registry.display()
    )
}

#[cfg(test)]
mod locate_tests {
    use super::*;

    #[test]
    fn the_nearest_project_file_above_wins_and_its_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app/src")).unwrap();
        std::fs::write(root.join(PROJECT_FILE), "policies = \"ops/policies\"\nregistry = \"ops/registry\"\n").unwrap();
        let found = locate(&root.join("app/src")).unwrap();
        assert_eq!(found.policies, root.join("ops/policies"));
        assert_eq!(found.registry, root.join("ops/registry"));
        std::fs::write(root.join(PROJECT_FILE), "policies = \"../elsewhere\"\n").unwrap();
        assert!(matches!(locate(root), Err(LocateError::Bad { .. })));
        let empty = tempfile::tempdir().unwrap();
        let err = locate(empty.path()).unwrap_err().to_string();
        assert!(err.contains("looked for chitty-secrets.toml in"), "{err}");
    }
}
