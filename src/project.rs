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
        Ok(real)
    }
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
