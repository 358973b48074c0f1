//! The `dotenv` target: edits a .env file in place (see [`super::dotenv_file`])
//! and writes it atomically with mode 0600.

use std::path::PathBuf;

use async_trait::async_trait;

use super::dotenv_file::{DotenvFile, ValueError};
use super::{PutResults, Target, TargetError, TargetId, Written, all_failed};
use crate::fsutil;
use crate::project::ProjectFiles;
use crate::secret::Secret;

pub struct DotenvTarget {
    address: TargetId,
    path: PathBuf,
    files: ProjectFiles,
}

impl DotenvTarget {
    pub fn new(address: TargetId, path: PathBuf, files: ProjectFiles) -> Self {
        DotenvTarget { address, path, files }
    }

    fn error(&self, message: String, hint: Option<&str>) -> TargetError {
        TargetError::new(&self.address, message, hint)
    }

    /// Writes every item in one rewrite; says whether the file is new (a
    /// new file, perhaps in a new folder, shows as "created": a typo in a
    /// path is seen at once).
    fn write_all(&self, items: &[(String, Secret)]) -> Result<Written, TargetError> {
        let mut file = self.load()?;
        for (name, value) in items {
            file.set(name, value).map_err(|e| match &e {
                ValueError::Malformed { key, line, why } => self.error(
                    format!("{}:{line}: {why}, so {key} was not written", self.path.display()),
                    Some(&format!(
                        "fix line {line} by hand (close the quote, or remove the stray text); nothing in the file was changed"
                    )),
                ),
                ValueError::NotCarriable { .. } => self.error(
                    e.to_string(),
                    Some("store a value without that mix of quotes, `$`, backslashes and line breaks, or deliver it to a non-.env target"),
                ),
            })?;
        }
        // Checked again at write time: links can change after the policy loaded.
        let real = self.files.place(&self.path).map_err(|why| {
            self.error(why, Some("make the path a regular file inside the project, or a link to one"))
        })?;
        if let Some(dir) = real.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| self.error(format!("cannot create {}: {e}", dir.display()), None))?;
        }
        let new = !real.exists();
        // The folder's sync is shared by every .env file of the delivery
        // (the executor syncs them all before anything is recorded).
        fsutil::replace_synced_later(&real, &file.render()).map_err(|e| {
            let hint = (e.kind() == std::io::ErrorKind::PermissionDenied).then_some("check the folder's permissions");
            self.error(format!("cannot write {}: {e}", real.display()), hint)
        })?;
        Ok(if new { Written::Created } else { Written::Written })
    }

    /// The file as it is now; an absent file is an empty one.
    pub fn load(&self) -> Result<DotenvFile, TargetError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                DotenvFile::parse(&bytes).map_err(|e| {
                    self.error(
                        format!("{} is not UTF-8 text ({e})", self.path.display()),
                        Some("fix or remove the file"),
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DotenvFile::empty()),
            Err(e) => {
                let hint = (e.kind() == std::io::ErrorKind::PermissionDenied).then_some("check the file's permissions");
                Err(self.error(format!("cannot read {}: {e}", self.path.display()), hint))
            }
        }
    }
}

#[async_trait]
impl Target for DotenvTarget {
    fn address(&self) -> &TargetId {
        &self.address
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
        // One rewrite for all names: all of them land, or none.
        match self.write_all(items) {
            Ok(written) => items.iter().map(|(n, _)| (n.clone(), Ok(written))).collect(),
            Err(e) => all_failed(items, &e),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        Err(self
            .error(format!("{name}: deleting keys from .env files is not supported"), Some("remove the line by hand")))
    }

    async fn read(&self, names: &[String]) -> Result<Option<Vec<Option<Secret>>>, TargetError> {
        let file = self.load()?;
        Ok(Some(
            names
                .iter()
                .map(|name| {
                    // Duplicate keys that disagree, or a value the parsers read
                    // differently, hold no one value: not delivered.
                    let all: Option<Vec<Secret>> = file.get_all(name).into_iter().map(|f| f.value.ok()).collect();
                    match all?.split_first() {
                        Some((first, rest)) if rest.iter().all(|v| v.same_as(first)) => Some(first.clone()),
                        _ => None,
                    }
                })
                .collect(),
        ))
    }
}

impl super::kind::KindEntry for crate::policy::DotenvSpec {
    const KIND: &'static str = "dotenv";
    crate::entry_as_written!();

    crate::entry_names!();

    /// `./app//.env` is `app/.env`, so two tokens cannot claim one file
    /// under two spellings.
    fn normalized(mut self) -> Self {
        self.path = self.path.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
        self
    }

    /// A relative file name: not absolute, not a folder, no NUL.
    fn refine_schema(def: &mut serde_json::Map<String, serde_json::Value>) {
        def["properties"]["path"]["pattern"] = serde_json::json!("^[^/\\u0000][^\\u0000]*$");
        def["properties"]["path"]["not"] = serde_json::json!({ "pattern": "(^|/)(\\.{1,2})?$" });
    }
}

/// A .env file in the project: read back, written in place, on this machine.
impl super::TargetKind for crate::policy::DotenvSpec {
    fn address(&self) -> TargetId {
        TargetId::new(<Self as super::kind::KindEntry>::KIND, self.path.display())
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn local_file(&self) -> Option<&std::path::Path> {
        Some(&self.path)
    }

    fn machines(&self) -> Option<&[String]> {
        self.machines.as_deref()
    }

    fn problems(&self, token: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !crate::policy::is_relative_file(&self.path) {
            out.push((
                format!(
                    "token `{token}`: dotenv path `{}` must name a file, relative and inside the project",
                    self.path.to_string_lossy().replace('\0', "\\0")
                ),
                "paths are relative to the folder that holds policies/, e.g. `app/.env`".into(),
            ));
        }
        for m in self.machines.iter().flatten() {
            if !crate::registry::machine::valid_machine_name(m) {
                out.push((
                    format!("token `{token}`: `{m}` is not a machine's name"),
                    "use the machine's CHITTY_SECRETS_MACHINE or host name: letters, digits, `.`, `_`, `-`".into(),
                ));
            }
        }
        if self.machines.as_ref().is_some_and(Vec::is_empty) {
            out.push((
                format!("token `{token}`: `machines` is empty, so no machine would ever write this file"),
                "name the machines it lives on, or remove `machines`".into(),
            ));
        }
        out
    }

    fn value_problem(&self, address: &TargetId, value: &Secret) -> Option<String> {
        (!super::dotenv_file::can_carry(value)).then(|| {
            format!(
                "cannot be carried by any .env quoting in {address} (`${{`, control characters, or a quote mixed with `$`, a backslash or a line break)"
            )
        })
    }

    fn build(
        &self,
        address: TargetId,
        files: &ProjectFiles,
        _remote: Option<&super::Remote>,
    ) -> Result<Box<dyn Target>, TargetError> {
        Ok(Box::new(DotenvTarget::new(address, files.root().join(&self.path), files.clone())))
    }
}
